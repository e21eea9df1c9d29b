"""The detectors: one function per detector, run for every enabled rule on each transaction.

Each detector has the signature ``detect(engine, cfg, txn, src_state, dst_state)``: the
states are those of the paying and the receiving account (``None`` for ``CASH``), already
updated with ``txn``. A detector reads windows of the touched accounts (and, for network
structures, of their direct counterparties), and raises or updates alerts through
``engine.alerts.upsert``.

Rules of the house for detectors (what makes them order-insensitive within a timestamp):

* a condition may only become true, never false, as more transactions of the current
  timestamp arrive (counts, sums, existence of a structure);
* values that could shrink as such transactions arrive (hub status, last activity) are read
  from the snapshot taken before the current timestamp (:meth:`AccountState.touch`);
* every transaction re-evaluates every subject whose evidence it can extend.

The parameters of each detector, their defaults and meaning are in :mod:`domain.aml.rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from domain.aml.calendar import day_to_iso
from domain.aml.model import CASH, Txn
from domain.aml.state import AccountState, since, upto
from domain.money import currency_exponent

if TYPE_CHECKING:
    from domain.aml.engine import Cfg, Engine

NS = 1_000_000_000
State = AccountState | None
Detector = Callable[["Engine", "Cfg", Txn, State, State], None]
MAX_CYCLE_EXPANSIONS = 4_000
# Rules without a hub_degree parameter leave out accounts with more counterparties than this.
HUB_DEGREE = 50
# Each rule's cache of when an account's relationships count as new starts again from empty
# at this size (it is derived from profiles and the start of monitoring alone).
NOVELTY_CACHE_MAX = 20_000


def _deg0(eng: Engine, account: str, ts: int) -> int:
    """Distinct counterparties of ``account`` before the business time ``ts``."""
    st = eng.accounts.get(account)
    if st is None:
        return 0
    if st.group_ts >= ts:
        return st.degree0()
    a, b = len(st.cp_in), len(st.cp_out)
    return a if a > b else b


def _novel_from(eng: Engine, cfg: Cfg, account: str) -> int:
    """From when a relationship of ``account`` counts as new. Monthly relationships of a
    business (payroll, rent collected, suppliers) first show up during the first month of
    monitoring, so for a business account, or one we hold no KYC for, relationships count
    as new only after the warm-up. A KYC individual, or an account opened during
    monitoring, has no warm-up. A relationship is new only if it is new for both parties."""
    cache = eng.novelty.get(cfg.rule_id)
    if cache is None or len(cache) >= NOVELTY_CACHE_MAX:  # a pure function's cache: bounded
        cache = eng.novelty[cfg.rule_id] = {}
    found = cache.get(account)
    if found is not None:
        return found
    profile = eng.profiles.get(account)
    if profile is not None and (
        profile.segment == "individual"
        or (profile.opened_ns is not None and profile.opened_ns > eng.stream_start)
    ):
        found = eng.stream_start
    else:
        warmup_ns: int = cfg.warmup_s * NS
        found = eng.stream_start + warmup_ns
    cache[account] = found
    return found


def _new_from(eng: Engine, cfg: Cfg, a: str, b: str, lo: int) -> int:
    """The earliest first-seen time at which the relationship of ``a`` and ``b`` is new."""
    return max(lo, _novel_from(eng, cfg, a), _novel_from(eng, cfg, b))


def _cash_holder(t: Txn) -> tuple[str, str] | None:
    """(account, "in"|"out") for a cash transaction, else None."""
    if t.src == CASH:
        return t.dst, "in"
    if t.dst == CASH:
        return t.src, "out"
    return None


# ------------------------------------------------------------------ cash


def ctr(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    side = _cash_holder(t)
    if side is None:
        return
    holder, direction = side
    day = cfg.calendar.day_of(t.ts_ns)
    bucket: dict[Any, Any] | None = cfg.state.get(day)
    if bucket is None:
        bucket = cfg.state[day] = {}
    th = cfg.threshold_usd_minor
    iso = day_to_iso(day)
    episode = f"{direction}:{iso}"
    agg: list[Any] | None = bucket.get((holder, direction))
    if agg is None:
        agg = bucket[(holder, direction)] = [0, []]
    agg[0] += t.usd
    agg[1].append(t)
    if agg[0] > th:
        _ctr_alert(eng, cfg, holder, agg, direction, iso, episode, {holder})
    if t.conductor and t.conductor != holder:
        # A conductor's cash across several accounts: a CTR about the conductor (a single
        # account's total is already covered by the account's own CTR).
        key = ("conductor:" + t.conductor, direction)
        cagg: list[Any] | None = bucket.get(key)
        if cagg is None:
            cagg = bucket[key] = [0, []]
        cagg[0] += t.usd
        cagg[1].append(t)
        accounts = {x.dst if direction == "in" else x.src for x in cagg[1]}
        if cagg[0] > th and len(accounts) >= 2:
            _ctr_alert(eng, cfg, key[0], cagg, direction, iso, episode, accounts)


def _ctr_alert(
    eng: Engine,
    cfg: Cfg,
    subject: str,
    agg: list[Any],
    direction: str,
    iso: str,
    episode: str,
    accounts: set[str],
) -> None:
    txns: list[Txn] = agg[1]
    eng.alerts.upsert(
        cfg,
        subject,
        txns,
        accounts,
        {
            "day_total_usd_minor": agg[0],
            "branches": len({x.branch for x in txns if x.branch}),
            "conductors": len({x.conductor for x in txns if x.conductor}),
        },
        (f"cash_{direction}", f"business_day:{iso}"),
        episode,
    )


class _CashHistory:
    """An account's recent sub-threshold cash (by business day) and its cash-deposit days."""

    __slots__ = ("days", "recent")

    def __init__(self) -> None:
        self.recent: list[tuple[int, str, Txn]] = []  # (business day, direction, txn)
        self.days: dict[int, int] = {}  # business day -> cash deposits that day


def structuring(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    side = _cash_holder(t)
    if side is None:
        return
    holder, direction = side
    hstate = dst if direction == "in" else src
    if hstate is None:
        return
    day = cfg.calendar.day_of(t.ts_ns)
    hist = hstate.detector.get(cfg.rule_id)
    if hist is None:
        hist = hstate.detector[cfg.rule_id] = _CashHistory()
    expects = _expects_cash(eng, cfg, holder, hist, day)
    if direction == "in":
        hist.days[day] = hist.days.get(day, 0) + 1
    if t.usd > cfg.threshold_usd_minor:
        return  # reported by the CTR; not an attempt to stay under it
    keep_from = day - max(cfg.lookback_days, cfg.multi_conductor_days, 1)
    if hist.recent and hist.recent[0][0] < keep_from:
        hist.recent = [r for r in hist.recent if r[0] >= keep_from]
        hist.days = {d: n for d, n in hist.days.items() if d >= day - cfg.regular_lookback_days}
    hist.recent.append((day, direction, t))
    _split_within_day(eng, cfg, holder, direction, hist, day, expects)
    if not expects:
        if direction == "in":
            _multiple_conductors(eng, cfg, holder, hist, day)
        _repeated_near_threshold(eng, cfg, holder, direction, hist, day)
    if t.conductor and t.conductor != holder:
        _conductor_spread(eng, cfg, t, direction, day)


def _near(cfg: Cfg, usd: int) -> bool:
    return bool(usd * 10_000 >= cfg.threshold_usd_minor * cfg.near_band_bps)


def _split_within_day(
    eng: Engine,
    cfg: Cfg,
    holder: str,
    direction: str,
    hist: _CashHistory,
    day: int,
    expects: bool,
) -> None:
    """(b) Several sub-threshold cash transactions in one business day over the threshold
    (for an account expecting cash, near-threshold ones only)."""
    same = [
        x
        for d, dr, x in hist.recent
        if d == day and dr == direction and (not expects or _near(cfg, x.usd))
    ]
    total = sum(x.usd for x in same)
    if len(same) < cfg.split_min_count or total <= cfg.threshold_usd_minor:
        return
    branches = {x.branch for x in same if x.branch}
    conductors = {x.conductor or holder for x in same}
    if len(branches) >= 2 or len(conductors) >= 2 or len(same) >= 3:
        eng.alerts.upsert(
            cfg,
            holder,
            same,
            {holder},
            {
                "day_total_usd_minor": total,
                "split_count": len(same),
                "branches": len(branches),
                "conductors": len(conductors),
            },
            ("split_within_day", f"cash_{direction}", f"business_day:{day_to_iso(day)}"),
        )


def _multiple_conductors(eng: Engine, cfg: Cfg, holder: str, hist: _CashHistory, day: int) -> None:
    """(c) Several conductors depositing for one beneficiary within a few business days."""
    lo = day - cfg.multi_conductor_days + 1
    window = [x for d, dr, x in hist.recent if d >= lo and dr == "in"]
    conductors = {x.conductor or holder for x in window}
    total = sum(x.usd for x in window)
    if len(conductors) >= cfg.multi_conductor_min and total > cfg.threshold_usd_minor:
        eng.alerts.upsert(
            cfg,
            holder,
            window,
            {holder},
            {"conductors": len(conductors), "window_total_usd_minor": total},
            ("multiple_conductors", "cash_in"),
        )


def _repeated_near_threshold(
    eng: Engine, cfg: Cfg, holder: str, direction: str, hist: _CashHistory, day: int
) -> None:
    """(a) Near-threshold cash on several business days of the lookback."""
    lo = day - cfg.lookback_days + 1
    near = [(d, x) for d, dr, x in hist.recent if d >= lo and dr == direction and _near(cfg, x.usd)]
    days = {d for d, _ in near}
    if len(near) >= cfg.min_near_count and len(days) >= cfg.min_near_days:
        eng.alerts.upsert(
            cfg,
            holder,
            [x for _, x in near],
            {holder},
            {"near_threshold_count": len(near), "near_threshold_days": len(days)},
            ("repeated_near_threshold", f"cash_{direction}"),
        )


def _conductor_spread(eng: Engine, cfg: Cfg, t: Txn, direction: str, day: int) -> None:
    """A conductor spreading sub-threshold cash over several accounts in one business day."""
    bucket: dict[Any, Any] | None = cfg.state.get(day)
    if bucket is None:
        bucket = cfg.state[day] = {}
    spread: list[Txn] | None = bucket.get((t.conductor, direction))
    if spread is None:
        spread = bucket[(t.conductor, direction)] = []
    spread.append(t)
    accounts = {x.dst if direction == "in" else x.src for x in spread}
    total = sum(x.usd for x in spread)
    if len(accounts) >= 2 and total > cfg.threshold_usd_minor:
        eng.alerts.upsert(
            cfg,
            "conductor:" + t.conductor,
            spread,
            accounts,
            {"accounts": len(accounts), "day_total_usd_minor": total},
            ("conductor_split", f"cash_{direction}", f"business_day:{day_to_iso(day)}"),
        )


def _expects_cash(eng: Engine, cfg: Cfg, holder: str, hist: _CashHistory, day: int) -> bool:
    """A cash-intensive business type, or cash deposits on many recent days (before today)."""
    profile = eng.profiles.get(holder)
    if profile is not None and profile.business_type in cfg.cash_types:
        return True
    lo = day - cfg.regular_lookback_days
    return bool(sum(1 for d in hist.days if lo <= d < day) >= cfg.regular_days)


# ------------------------------------------------------------------ activity


def velocity(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    ts = t.ts_ns
    window = cfg.window_s * NS
    lo = ts - window
    base_lo = lo - cfg.baseline_s * NS
    if eng.stream_start > base_lo:
        return  # monitoring has not watched a whole baseline yet
    min_count = cfg.min_count
    for account, st in ((t.src, src), (t.dst, dst)):
        if st is None or len(st.ins) + len(st.outs) < min_count or st.degree0() > HUB_DEGREE:
            continue
        profile = eng.profiles.get(account)
        if profile is not None and profile.opened_ns is not None and profile.opened_ns > base_lo:
            continue  # a new account, not a quiet one
        ins, outs = st.ins, st.outs
        i_in, i_out = since(ins, lo), since(outs, lo)
        j_in, j_out = upto(ins, ts), upto(outs, ts)
        count = (j_in - i_in) + (j_out - i_out)
        if count < cfg.min_count:
            continue
        baseline = (i_in - since(ins, base_lo)) + (i_out - since(outs, base_lo))
        if baseline > cfg.quiet_max_count:
            continue
        burst = ins[i_in:j_in] + outs[i_out:j_out]
        total = sum(x.usd for x in burst)
        if total < cfg.min_total_usd_minor:
            continue
        eng.alerts.upsert(
            cfg,
            account,
            burst,
            {account},
            {"burst_count": count, "baseline_count": baseline, "burst_total_usd_minor": total},
        )


def rapid_movement(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    ts = t.ts_ns
    window = cfg.window_s * NS
    hub = cfg.hub_degree
    max_out = cfg.max_out_bps
    if dst is not None and t.usd >= cfg.min_in_usd_minor and dst.degree0() <= hub:
        anchors = dst.detector.get(cfg.rule_id)
        if anchors is None:
            anchors = dst.detector[cfg.rule_id] = []
        elif anchors[0][0] < ts - window:
            anchors[:] = [a for a in anchors if a[0] >= ts - window]
        anchor: list[Any] = [ts, t.usd, t, 0, []]
        anchors.append(anchor)
        outs = dst.outs
        for o in outs[since(outs, ts) : upto(outs, ts + window)]:
            if o.usd * 10_000 <= t.usd * max_out:
                anchor[3] += o.usd
                anchor[4].append(o)
        _rapid_check(eng, cfg, t.dst, anchor)
    if src is not None and src.degree0() <= hub:
        anchors = src.detector.get(cfg.rule_id)
        if anchors:
            for anchor in anchors:
                a_ts, a_usd = anchor[0], anchor[1]
                if a_ts <= ts <= a_ts + window and t.usd * 10_000 <= a_usd * max_out:
                    anchor[3] += t.usd
                    anchor[4].append(t)
                    _rapid_check(eng, cfg, t.src, anchor)


def _rapid_check(eng: Engine, cfg: Cfg, account: str, anchor: list[Any]) -> None:
    _, usd, inflow, out_sum, outs = anchor
    if out_sum * 10_000 < usd * cfg.ratio_bps:
        return
    eng.alerts.upsert(
        cfg,
        account,
        [inflow, *outs],
        {account, inflow.src, *(o.dst for o in outs)} - {CASH},
        {
            "in_usd_minor": usd,
            "out_usd_minor": out_sum,
            "out_share_bps": out_sum * 10_000 // usd,
            "minutes_to_out": (max(o.ts_ns for o in outs) - inflow.ts_ns) // (60 * NS),
        },
    )


def round_amounts(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if t.usd < cfg.min_usd_minor:
        return
    units = cfg.state.get("units")
    if units is None:
        units = cfg.state["units"] = {}
    unit = units.get(t.currency)
    if unit is None:
        unit = units[t.currency] = cfg.round_unit_major * 10 ** currency_exponent(t.currency)
    if t.amount_minor % unit:
        return
    ts = t.ts_ns
    lo = ts - cfg.window_s * NS
    for account, st in ((t.src, src), (t.dst, dst)):
        if st is None or st.degree0() > HUB_DEGREE:
            continue
        seen = st.detector.get(cfg.rule_id)
        if seen is None:
            seen = st.detector[cfg.rule_id] = []
        elif seen[0].ts_ns < lo:
            seen[:] = [x for x in seen if x.ts_ns >= lo]
        seen.append(t)
        recent = [x for x in seen if lo <= x.ts_ns <= ts]
        if len(recent) >= cfg.min_count:
            eng.alerts.upsert(
                cfg,
                account,
                recent,
                {account},
                {"round_count": len(recent), "round_unit_major": cfg.round_unit_major},
            )


# ------------------------------------------------------------------ jurisdictions


def _risky_destination(eng: Engine, countries: frozenset[str], t: Txn) -> str:
    if t.to_country in countries:
        return t.to_country
    profile = eng.profiles.get(t.dst)
    if profile is not None and profile.country in countries:
        return profile.country
    return ""


def _risky_origin(eng: Engine, countries: frozenset[str], t: Txn) -> str:
    if t.from_country in countries:
        return t.from_country
    profile = eng.profiles.get(t.src)
    if profile is not None and profile.country in countries:
        return profile.country
    return ""


def high_risk_jurisdiction(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if t.usd < cfg.min_usd_minor:
        return
    countries = cfg.country_set
    to_c = _risky_destination(eng, countries, t)
    from_c = _risky_origin(eng, countries, t)
    if to_c and t.src != CASH:
        _hrj(eng, cfg, t.src, [t], {t.src, t.dst}, f"to:{to_c}", "direct")
    if from_c and t.dst != CASH:
        _hrj(eng, cfg, t.dst, [t], {t.src, t.dst}, f"from:{from_c}", "direct")
    if from_c and dst is not None:  # remember when high-risk money last arrived here
        dst.detector[cfg.rule_id] = max(dst.detector.get(cfg.rule_id, t.ts_ns), t.ts_ns)
    # Through an intermediary B, within the window, forwarding at least forward_bps.
    if src is not None and src.degree0() <= HUB_DEGREE:
        if to_c:  # A -> B earlier, B -> high-risk now: about A
            _via_before(eng, cfg, t, src, to_c)
        elif t.dst != CASH and src.detector.get(cfg.rule_id, -1) >= t.ts_ns - cfg.window_s * NS:
            _via_after(eng, cfg, t, src)  # high-risk -> B earlier, B -> A now: about A
    if (
        dst is not None
        and dst.outs
        and dst.outs[-1].ts_ns >= t.ts_ns
        and dst.degree0() <= HUB_DEGREE
    ):
        _via_same_time(eng, cfg, t, dst, from_c)


def _hrj(
    eng: Engine, cfg: Cfg, subject: str, txns: list[Txn], accounts: set[str], *labels: str
) -> None:
    eng.alerts.upsert(cfg, subject, txns, accounts - {CASH}, {labels[-1]: 1}, labels)


def _via_before(eng: Engine, cfg: Cfg, t: Txn, b: AccountState, to_c: str) -> None:
    ins = b.ins
    for a in ins[since(ins, t.ts_ns - cfg.window_s * NS) : upto(ins, t.ts_ns)]:
        if a.src == CASH or _risky_origin(eng, cfg.country_set, a):
            continue
        if t.usd * 10_000 >= a.usd * cfg.forward_bps:
            _hrj(eng, cfg, a.src, [a, t], {a.src, t.src}, f"to:{to_c}", "via_intermediary")


def _via_after(eng: Engine, cfg: Cfg, t: Txn, b: AccountState) -> None:
    ins = b.ins
    for h in ins[since(ins, t.ts_ns - cfg.window_s * NS) : upto(ins, t.ts_ns)]:
        h_c = _risky_origin(eng, cfg.country_set, h)
        if h_c and t.usd * 10_000 >= h.usd * cfg.forward_bps:
            _hrj(eng, cfg, t.dst, [h, t], {t.src, t.dst}, f"from:{h_c}", "via_intermediary")


def _via_same_time(eng: Engine, cfg: Cfg, t: Txn, b: AccountState, from_c: str) -> None:
    """Money into B (this) arriving after B's onward transfer of the same business time."""
    outs = b.outs
    countries, forward = cfg.country_set, cfg.forward_bps
    for o in outs[since(outs, t.ts_ns) : upto(outs, t.ts_ns + cfg.window_s * NS)]:
        if not from_c:
            o_c = _risky_destination(eng, countries, o)
            if o_c and t.src != CASH and o.usd * 10_000 >= t.usd * forward:
                _hrj(eng, cfg, t.src, [t, o], {t.src, t.dst}, f"to:{o_c}", "via_intermediary")
        elif (
            o.dst != CASH
            and not _risky_destination(eng, countries, o)
            and o.usd * 10_000 >= t.usd * forward
        ):
            _hrj(eng, cfg, o.dst, [t, o], {t.dst, o.dst}, f"from:{from_c}", "via_intermediary")


# ------------------------------------------------------------------ fan in / fan out


def fan_in(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if dst is not None and t.src != CASH:
        _fan(eng, cfg, t, t.dst, dst, t.src, incoming=True)


def fan_out(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if src is not None and t.dst != CASH:
        _fan(eng, cfg, t, t.src, src, t.dst, incoming=False)


def _fan(
    eng: Engine, cfg: Cfg, t: Txn, hub_id: str, st: AccountState, other: str, incoming: bool
) -> None:
    """Distinct new counterparties of ``hub_id`` within the window: senders into it
    (``incoming``) or receivers from it, each relationship new for both parties."""
    rels = st.cp_in if incoming else st.cp_out
    hub = cfg.hub_degree
    if len(rels) < cfg.min_counterparties or st.degree0() > hub:
        return
    ts = t.ts_ns
    lo = ts - cfg.window_s * NS
    new_from = max(lo, _novel_from(eng, cfg, hub_id))
    min_usd = cfg.min_usd_minor
    if (
        t.usd < min_usd
        or rels[other][0] < max(new_from, _novel_from(eng, cfg, other))
        or _deg0(eng, other, ts) > hub
    ):
        return  # this transfer cannot add a counterparty: nothing new to find
    flows = st.ins if incoming else st.outs
    i, j = since(flows, lo), upto(flows, ts)
    if j - i < cfg.min_counterparties:
        return
    parties: set[str] = set()
    txns: list[Txn] = []
    total = 0
    for x in flows[i:j]:
        cp = x.src if incoming else x.dst
        if x.usd < min_usd or cp == CASH or rels[cp][0] < new_from or _deg0(eng, cp, ts) > hub:
            continue
        if rels[cp][0] < _novel_from(eng, cfg, cp):
            continue
        parties.add(cp)
        txns.append(x)
        total += x.usd
    if len(parties) >= cfg.min_counterparties and total >= cfg.min_total_usd_minor:
        eng.alerts.upsert(
            cfg,
            hub_id,
            txns,
            parties | {hub_id},
            {"counterparties": len(parties), "window_total_usd_minor": total},
        )


# ------------------------------------------------------------------ cycles


def _follows(prev_usd: int, next_usd: int, keep: int, grow: int) -> bool:
    """True when a hop of ``next_usd`` may carry on a hop of ``prev_usd``."""
    return prev_usd * keep <= next_usd * 10_000 <= prev_usd * (10_000 + grow)


def cycle(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    """A cycle through this transfer ``x -> u``: a prefix ``origin -> ... -> x`` in time and
    amount order, this edge, and a suffix ``u -> ... -> origin`` of transfers at this same
    business time (a transfer completing a cycle may arrive before another of the same
    timestamp that lies after it in the cycle; the suffix is empty when origin is ``u``)."""
    if src is None or dst is None or t.usd < cfg.min_usd_minor or not (src.ins or dst.outs):
        return
    hub = cfg.hub_degree
    if src.degree0() > hub or dst.degree0() > hub:
        return
    targets = _cycle_suffixes(eng, cfg, t)
    found = [[t, *suffix] for suffix in targets.get(t.src, ()) if suffix]  # all at this time
    found += _cycle_prefixes(eng, cfg, t, targets)
    for edges in found:
        if not cfg.min_hops <= len(edges) <= cfg.max_hops:
            continue
        members = {e.src for e in edges}
        eng.alerts.upsert(
            cfg,
            min(members),
            edges,
            members,
            {"hops": len(edges), "cycle_usd_minor": edges[0].usd},
            (f"hops:{len(edges)}",),
        )


def _cycle_suffixes(eng: Engine, cfg: Cfg, t: Txn) -> dict[str, list[list[Txn]]]:
    """Origins reachable from ``t.dst`` by transfers at ``t``'s business time, with the
    paths that reach them (the empty path reaches ``t.dst`` itself)."""
    ts, x = t.ts_ns, t.src
    keep, grow, min_usd, hub = cfg.keep_bps, cfg.grow_bps, cfg.min_usd_minor, cfg.hub_degree
    targets: dict[str, list[list[Txn]]] = {t.dst: [[]]}
    frontier: list[tuple[str, Txn, list[Txn]]] = [(t.dst, t, [])]
    for _ in range(cfg.max_hops - 1):
        grown: list[tuple[str, Txn, list[Txn]]] = []
        for node, last, path in frontier:
            st = eng.accounts.get(node)
            if st is None:
                continue
            outs = st.outs
            on_path = {node, x, *(p.src for p in path)}
            for o in outs[since(outs, ts) : upto(outs, ts)]:
                if o is t or o.dst == CASH or o.usd < min_usd:
                    continue
                if (o.dst in on_path and o.dst != x) or not _follows(last.usd, o.usd, keep, grow):
                    continue
                if _deg0(eng, o.dst, ts) > hub:
                    continue
                longer = [*path, o]
                targets.setdefault(o.dst, []).append(longer)
                if o.dst != x:
                    grown.append((o.dst, o, longer))
        frontier = grown
        if not frontier:
            break
    return targets


def _cycle_prefixes(
    eng: Engine, cfg: Cfg, t: Txn, targets: dict[str, list[list[Txn]]]
) -> list[list[Txn]]:
    """Search backward from ``t.src`` for predecessors in time and amount order until an
    origin of ``targets``; the cycles found, as transfer lists in time order."""
    ts, x, u = t.ts_ns, t.src, t.dst
    lo = ts - cfg.window_s * NS
    keep, grow, min_usd, hub = cfg.keep_bps, cfg.grow_bps, cfg.min_usd_minor, cfg.hub_degree
    max_hops = cfg.max_hops
    found: list[list[Txn]] = []
    expansions = 0
    stack: list[tuple[str, Txn, list[Txn], frozenset[str]]] = [(x, t, [], frozenset({x, u}))]
    while stack:
        node, nxt, prefix, seen = stack.pop()
        st = eng.accounts.get(node)
        if st is None:
            continue
        ins = st.ins
        for p in ins[since(ins, lo) : upto(ins, nxt.ts_ns)]:
            origin = p.src
            if p is t or origin == CASH or p.usd < min_usd:
                continue
            if not _follows(p.usd, nxt.usd, keep, grow) or (origin in seen and origin != u):
                continue  # amounts do not carry on, or not a simple cycle
            chain = [p, *prefix]
            for suffix in targets.get(origin, ()):
                if not seen & {q.src for q in suffix[1:]}:
                    found.append([*chain, t, *suffix])
            if origin == u or len(chain) + 1 >= max_hops or _deg0(eng, origin, ts) > hub:
                continue
            expansions += 1
            if expansions > MAX_CYCLE_EXPANSIONS:
                return found
            stack.append((origin, p, chain, seen | {origin}))
    return found


# ------------------------------------------------------------------ layering structures


def scatter_gather(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if src is None or dst is None or t.usd < cfg.min_usd_minor:
        return
    as_gather = len(dst.cp_in) >= cfg.min_intermediaries and bool(src.ins)
    as_scatter = bool(dst.outs) and dst.outs[-1].ts_ns >= t.ts_ns
    if not (as_gather or as_scatter):
        return
    hub = cfg.hub_degree
    if src.degree0() > hub or dst.degree0() > hub:
        return
    ts = t.ts_ns
    window = cfg.window_s * NS
    lo = ts - window
    keep, grow, min_usd = cfg.keep_bps, cfg.grow_bps, cfg.min_usd_minor
    pairs: set[tuple[str, str]] = set()
    ins = src.ins  # as a gather: origin -> src -> dst
    for x in ins[since(ins, lo) : upto(ins, ts)]:
        if x.src not in (CASH, t.dst) and x.usd >= min_usd and _follows(x.usd, t.usd, keep, grow):
            pairs.add((x.src, t.dst))
    outs = dst.outs  # as a scatter: src -> dst -> beneficiary, at the same time or later
    for y in outs[since(outs, ts) : upto(outs, ts)]:
        if y.dst not in (CASH, t.src) and y.usd >= min_usd and _follows(t.usd, y.usd, keep, grow):
            pairs.add((t.src, y.dst))
    for origin, beneficiary in sorted(pairs):
        _scatter_gather_pair(eng, cfg, origin, beneficiary, ts, lo)


def _scatter_gather_pair(eng: Engine, cfg: Cfg, o: str, b: str, ts: int, lo: int) -> None:
    hub = cfg.hub_degree
    ost, bst = eng.accounts.get(o), eng.accounts.get(b)
    if ost is None or bst is None or _deg0(eng, o, ts) > hub or _deg0(eng, b, ts) > hub:
        return
    keep, grow, min_usd = cfg.keep_bps, cfg.grow_bps, cfg.min_usd_minor
    into_b: dict[str, list[Txn]] = {}
    bins = bst.ins
    for z in bins[since(bins, lo) : upto(bins, ts)]:
        if z.usd >= min_usd:
            into_b.setdefault(z.src, []).append(z)
    if len(into_b) < cfg.min_intermediaries:
        return
    mids: set[str] = set()
    edges: list[Txn] = []
    oouts = ost.outs
    for a in oouts[since(oouts, lo) : upto(oouts, ts)]:
        m = a.dst
        gathered = into_b.get(m)
        if not gathered or m in (b, CASH) or a.usd < min_usd or _deg0(eng, m, ts) > hub:
            continue
        for z in gathered:
            if z.ts_ns >= a.ts_ns and _follows(a.usd, z.usd, keep, grow):
                mids.add(m)
                edges.append(a)
                edges.append(z)
    if len(mids) >= cfg.min_intermediaries:
        eng.alerts.upsert(
            cfg,
            o,
            edges,
            mids | {o, b},
            {"intermediaries": len(mids)},
            (f"beneficiary:{b}",),
        )


def gather_scatter(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    hub = cfg.hub_degree
    ts = t.ts_ns
    lo = ts - cfg.window_s * NS
    min_in, min_out = cfg.min_in, cfg.min_out
    sides = (
        (t.src, src, t.dst, src.cp_out if src is not None else None),
        (t.dst, dst, t.src, dst.cp_in if dst is not None else None),
    )
    for h, st, other, rels in sides:
        if st is None or rels is None or len(st.cp_in) < min_in or len(st.cp_out) < min_out:
            continue
        if st.degree0() > hub or other == CASH:
            continue
        new_from = max(lo, _novel_from(eng, cfg, h))
        if rels[other][0] < _new_from(eng, cfg, h, other, lo) or _deg0(eng, other, ts) > hub:
            continue  # this transfer adds neither a new sender nor a new receiver
        ins, outs = st.ins, st.outs
        i_in, j_in = since(ins, lo), upto(ins, ts)
        i_out, j_out = since(outs, lo), upto(outs, ts)
        if j_in - i_in < cfg.min_in or j_out - i_out < cfg.min_out:
            continue
        senders: set[str] = set()
        gathered: list[Txn] = []
        total = 0
        first = ts
        for x in ins[i_in:j_in]:
            s = x.src
            if s == CASH or st.cp_in[s][0] < new_from or _deg0(eng, s, ts) > hub:
                continue
            if st.cp_in[s][0] < _novel_from(eng, cfg, s):
                continue
            senders.add(s)
            gathered.append(x)
            total += x.usd
            first = min(first, x.ts_ns)
        if len(senders) < cfg.min_in or total < cfg.min_total_usd_minor:
            continue
        receivers: set[str] = set()
        scattered: list[Txn] = []
        for y in outs[i_out:j_out]:
            r = y.dst
            if (
                y.ts_ns < first
                or r == CASH
                or st.cp_out[r][0] < new_from
                or _deg0(eng, r, ts) > hub
                or st.cp_out[r][0] < _novel_from(eng, cfg, r)
            ):
                continue
            receivers.add(r)
            scattered.append(y)
        if len(receivers) >= cfg.min_out:
            eng.alerts.upsert(
                cfg,
                h,
                gathered + scattered,
                senders | receivers | {h},
                {
                    "senders": len(senders),
                    "receivers": len(receivers),
                    "gathered_usd_minor": total,
                    "scattered_usd_minor": sum(y.usd for y in scattered),
                },
            )


def _block_at(
    eng: Engine, cfg: Cfg, r: str, ts: int, lo: int
) -> tuple[set[str], set[str], list[Txn]] | None:
    """The dense bipartite block around receiver ``r`` within [lo, ts]: senders into ``r``
    that each paid at least two receivers which at least two of these senders paid. Only
    new relationships (after the warm-up) of accounts that are not hubs count."""
    hub, min_usd = cfg.hub_degree, cfg.min_usd_minor
    rst = eng.accounts.get(r)
    if rst is None or _deg0(eng, r, ts) > hub:
        return None
    senders: set[str] = set()
    rins = rst.ins
    rels = rst.cp_in
    for x in rins[since(rins, lo) : upto(rins, ts)]:
        s = x.src
        if (
            x.usd >= min_usd
            and s != CASH
            and _deg0(eng, s, ts) <= hub
            and rels[s][0] >= _new_from(eng, cfg, s, r, lo)
        ):
            senders.add(s)
    if len(senders) < 2:
        return None
    paid: dict[str, dict[str, list[Txn]]] = {}  # receiver -> sender -> transfers
    for s in sorted(senders):
        sst = eng.accounts[s]
        souts = sst.outs
        new_from = max(lo, _novel_from(eng, cfg, s))
        for y in souts[since(souts, lo) : upto(souts, ts)]:
            first = sst.cp_out.get(y.dst, (0,))[0] if y.dst != CASH else 0
            if y.usd >= min_usd and first >= new_from and first >= _novel_from(eng, cfg, y.dst):
                paid.setdefault(y.dst, {}).setdefault(s, []).append(y)
    shared = {r2: by for r2, by in paid.items() if len(by) >= 2 and _deg0(eng, r2, ts) <= hub}
    counts: dict[str, int] = {}
    for by in shared.values():
        for s in by:
            counts[s] = counts.get(s, 0) + 1
    block_senders = {s for s, n in counts.items() if n >= 2}
    receivers = {r2 for r2, by in shared.items() if sum(1 for s in by if s in block_senders) >= 2}
    edges = [
        y for r2 in receivers for s, ys in shared[r2].items() if s in block_senders for y in ys
    ]
    return block_senders, receivers, edges


def _fed_by_two(eng: Engine, cfg: Cfg, st: AccountState, account: str, ts: int, lo: int) -> bool:
    """Whether ``account`` received, within [lo, ts], from at least two qualifying senders
    (new relationships, not hubs, at least ``min_usd_minor``): without that, no transfer
    into it can be part of a dense block (the pre-filter of bipartite and stack)."""
    ins = st.ins
    i, j = since(ins, lo), upto(ins, ts)
    if j - i < 2:
        return False
    rels = st.cp_in
    hub, min_usd = cfg.hub_degree, cfg.min_usd_minor
    first: str | None = None
    for x in ins[i:j]:
        s = x.src
        if x.usd < min_usd or s in (CASH, first):
            continue
        if rels[s][0] < _new_from(eng, cfg, s, account, lo) or _deg0(eng, s, ts) > hub:
            continue
        if first is None:
            first = s
        else:
            return True
    return False


def bipartite(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if src is None or dst is None or t.usd < cfg.min_usd_minor:
        return
    hub = cfg.hub_degree
    if src.degree0() > hub or dst.degree0() > hub:
        return
    ts = t.ts_ns
    lo = ts - cfg.window_s * NS
    if len(dst.cp_in) < 2 or src.cp_out[t.dst][0] < _new_from(eng, cfg, t.src, t.dst, lo):
        return
    if not _fed_by_two(eng, cfg, dst, t.dst, ts, lo):
        return
    outs = src.outs
    anchors = {t.dst} | {
        y.dst for y in outs[since(outs, lo) : upto(outs, ts)] if y.usd >= cfg.min_usd_minor
    }
    for r in sorted(anchors - {CASH}):
        block = _block_at(eng, cfg, r, ts, lo)
        if block is None:
            continue
        senders, receivers, edges = block
        pairs = len({(e.src, e.dst) for e in edges})
        if (
            len(senders) >= cfg.min_senders
            and len(receivers) >= cfg.min_receivers
            and pairs >= cfg.min_edges
        ):
            eng.alerts.upsert(
                cfg,
                r,
                edges,
                senders | receivers,
                {"senders": len(senders), "receivers": len(receivers), "pairs": pairs},
            )


def stack(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    if src is None or dst is None or t.usd < cfg.min_usd_minor:
        return
    hub = cfg.hub_degree
    if src.degree0() > hub or dst.degree0() > hub:
        return
    ts = t.ts_ns
    lo = ts - cfg.window_s * NS
    min_usd = cfg.min_usd_minor
    if len(dst.cp_in) < 2 or src.cp_out[t.dst][0] < _new_from(eng, cfg, t.src, t.dst, lo):
        return
    if not _fed_by_two(eng, cfg, dst, t.dst, ts, lo):
        return
    anchors = {t.dst}
    for st in (src, dst):  # this edge may extend the blocks around the receivers of both
        outs = st.outs
        anchors.update(y.dst for y in outs[since(outs, lo) : upto(outs, ts)] if y.usd >= min_usd)
    for r in sorted(anchors - {CASH}):
        _stack_at(eng, cfg, r, ts, lo)


def _stack_at(eng: Engine, cfg: Cfg, r: str, ts: int, lo: int) -> None:
    """The stack ending at receiver ``r``: the dense block of its senders (the middle layer)
    and, before their transfers, a dense block of senders into that middle layer."""
    hub, min_usd, layer = cfg.hub_degree, cfg.min_usd_minor, cfg.min_layer
    block = _block_at(eng, cfg, r, ts, lo)
    if block is None:
        return
    _, final, upper = block
    last_out: dict[str, int] = {}
    for e in upper:
        last_out[e.src] = max(last_out.get(e.src, 0), e.ts_ns)
    middle = set(last_out)
    if len(middle) < layer or len(final) < layer:
        return
    fed: dict[str, dict[str, list[Txn]]] = {}  # sender -> middle account -> transfers
    for m in sorted(middle):
        mst = eng.accounts[m]
        mins = mst.ins
        for x in mins[since(mins, lo) : upto(mins, last_out[m])]:
            if (
                x.usd >= min_usd
                and x.src != CASH
                and _deg0(eng, x.src, ts) <= hub
                and mst.cp_in[x.src][0] >= _new_from(eng, cfg, x.src, m, lo)
            ):
                fed.setdefault(x.src, {}).setdefault(m, []).append(x)
    senders, fed_middle = _dense(fed, middle)
    if len(senders) < layer or len(fed_middle) < layer:
        return
    lower = [x for s in senders for m, xs in fed[s].items() if m in fed_middle for x in xs]
    eng.alerts.upsert(
        cfg,
        r,
        lower + upper,
        senders | middle | final,
        {"senders": len(senders), "middle": len(fed_middle), "receivers": len(final)},
    )


def _dense(fed: dict[str, dict[str, list[Txn]]], middle: set[str]) -> tuple[set[str], set[str]]:
    """The densest part of the lower layer: senders that each fed at least two middle accounts
    of it, and middle accounts that each at least two of those senders fed (removing one may
    drop another: repeated until neither changes). Whatever the order the transfers came in,
    an edge that does not make it part of such a block changes nothing."""
    senders, fed_middle = set(fed), set(middle)
    while True:
        kept = {s for s in senders if sum(1 for m in fed[s] if m in fed_middle) >= 2}
        kept_middle = {m for m in fed_middle if sum(1 for s in kept if m in fed[s]) >= 2}
        if kept == senders and kept_middle == fed_middle:
            return senders, fed_middle
        senders, fed_middle = kept, kept_middle


# ------------------------------------------------------------------ account life


def dormant_reactivation(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    ts = t.ts_ns
    window = cfg.window_s * NS
    dormant = cfg.dormant_s * NS
    for account, st in ((t.src, src), (t.dst, dst)):
        if st is None:
            continue
        episode = st.detector.get(cfg.rule_id)
        if episode is None or not episode[0] <= ts <= episode[0] + window:
            prev = st.prev_last
            if prev >= 0 and ts - prev < dormant:
                continue  # active recently (a KYC last activity can only be older)
            profile = eng.profiles.get(account)
            if profile is not None and profile.last_activity_ns is not None:
                prev = max(prev, profile.last_activity_ns)
            if prev < 0 or ts - prev < dormant:
                continue
            episode = st.detector[cfg.rule_id] = [ts, prev, 0, []]
        episode[2] += t.usd
        episode[3].append(t)
        if episode[2] >= cfg.min_total_usd_minor:
            eng.alerts.upsert(
                cfg,
                account,
                episode[3],
                {account},
                {
                    "dormant_days": (episode[0] - episode[1]) // (86_400 * NS),
                    "woken_usd_minor": episode[2],
                },
            )


def new_account_burst(eng: Engine, cfg: Cfg, t: Txn, src: State, dst: State) -> None:
    ts = t.ts_ns
    for account, st in ((t.src, src), (t.dst, dst)):
        if st is None:
            continue
        profile = eng.profiles.get(account)
        if profile is None or profile.opened_ns is None:
            continue
        opened = profile.opened_ns
        if not opened <= ts < opened + cfg.new_account_s * NS:
            continue
        ins, outs = st.ins, st.outs
        txns = ins[since(ins, opened) : upto(ins, ts)] + outs[since(outs, opened) : upto(outs, ts)]
        if len(txns) < cfg.min_count:
            continue
        total = sum(x.usd for x in txns)
        if total >= cfg.min_total_usd_minor:
            eng.alerts.upsert(
                cfg,
                account,
                txns,
                {account},
                {"account_age_days": (ts - opened) // (86_400 * NS), "moved_usd_minor": total},
            )


DETECT: dict[str, Detector] = {
    "ctr": ctr,
    "structuring": structuring,
    "velocity": velocity,
    "rapid_movement": rapid_movement,
    "round_amounts": round_amounts,
    "high_risk_jurisdiction": high_risk_jurisdiction,
    "fan_in": fan_in,
    "fan_out": fan_out,
    "cycle": cycle,
    "scatter_gather": scatter_gather,
    "gather_scatter": gather_scatter,
    "bipartite": bipartite,
    "stack": stack,
    "dormant_reactivation": dormant_reactivation,
    "new_account_burst": new_account_burst,
}


# Which cheap test lets the engine skip a detector for a transaction: "cash" detectors see
# only cash, "novel" ones only transfers on a relationship that started within their window
# (nothing else can extend a structure of new relationships), "net" ones only transfers
# above their minimum between accounts that are not hubs; the rest see everything.
GATES: dict[str, str] = {
    "ctr": "cash",
    "structuring": "cash",
    "fan_in": "novel",
    "fan_out": "novel",
    "gather_scatter": "novel",
    "bipartite": "novel",
    "stack": "novel",
    "cycle": "net",
    "scatter_gather": "net",
}


def expire(cfg: Cfg, now_ns: int) -> None:
    """Drop per-day state (CTR totals, conductors' spreads) older than the rule needs."""
    if cfg.detector not in ("ctr", "structuring"):
        return
    today = cfg.calendar.day_of(now_ns)
    keep = 3
    for day in [d for d in cfg.state if isinstance(d, int) and d < today - keep]:
        del cfg.state[day]
