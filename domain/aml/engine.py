"""The monitoring engine: incremental, deterministic detectors over windowed state.

Definition
    :class:`Engine` consumes, in log order, the monitored transactions (:class:`Txn`) and the
    reference-data changes (rules, rates, account profiles). Each transaction updates the
    windowed state of the two accounts it touches (:mod:`domain.aml.state`) and runs every
    enabled rule's detector (:mod:`domain.aml.detectors`) on the accounts it touched. Alerts
    go to an :class:`AlertBook` that deduplicates and scores them; ``drain()`` hands the
    alerts raised or updated since the last call to the caller (the projection writes them).

Guarantees
    * Incremental: a transaction costs binary searches and scans of the touched accounts'
      windows (bounded by ``hub_degree`` for the network detectors); history is never
      rescanned.
    * Business time: every window is measured on the transactions' own timestamps, so a
      backfill raises what living through the same history would have.
    * Deterministic, and order-insensitive within one timestamp: every detector condition
      only grows with the transactions of the current timestamp (counts, sums, existence of
      structures), and whatever may shrink (hub status, last activity) is read from the
      snapshot taken before the current timestamp. The tie-break, where one is needed
      (evidence order, truncation), is ``(ts_ns, tx_id)``.
    * Rules and rates apply from the position they are consumed at.
    * Bounded memory: state is trimmed to the horizon (the longest window of the enabled
      rules, at least 35 days) behind each account's newest transaction, and an account
      idle for a whole horizon is forgotten (its last activity time is kept for dormancy).
      Given a cold store (:class:`~domain.aml.windows.Windows`), only the most recently
      used accounts' windows stay in memory; the alerts are the same.
    * Resumable: :meth:`checkpoint` gives the state as bytes (the engine's own, then each
      account's window), :meth:`restore` takes them back.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any

from domain.aml import detectors
from domain.aml.alerts import RISK_ORDER, Alert, alert_id, score_of
from domain.aml.calendar import BusinessCalendar
from domain.aml.detectors import DETECT, GATES
from domain.aml.model import CASH, AccountProfile, Txn
from domain.aml.rates import USD_ONLY, RateTable
from domain.aml.rules import DAY_S, DEFAULT_RULES, RuleDefinition
from domain.aml.state import AccountState, add_sorted
from domain.aml.windows import Windows
from domain.invariant import invariant

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S
MIN_HORIZON_S = 35 * DAY_S


class Cfg:
    """A rule compiled for speed: its parameters as attributes, its calendar built once."""

    def __init__(self, definition: RuleDefinition) -> None:
        self.definition = definition
        self.rule_id = definition.rule_id
        self.version = definition.version
        self.detector = definition.detector
        self.typology = definition.typology
        self.category = definition.spec.category
        self.weight = definition.weight
        self.enabled = definition.enabled
        for name, value in definition.params.items():
            setattr(self, name, value)
        params = definition.params
        self.calendar = (
            BusinessCalendar(
                params["timezone"], params.get("cutoff_minute", 0), params["weekdays_only"]
            )
            if "timezone" in params
            else BusinessCalendar()
        )
        if "countries" in params:
            self.country_set = frozenset(params["countries"])
        if "cash_business_types" in params:
            self.cash_types = frozenset(params["cash_business_types"])
        self.state: dict[Any, Any] = {}  # detector state not tied to one account

    def __getattr__(self, name: str) -> Any:  # parameters are set in __init__
        raise AttributeError(f"rule {self.__dict__.get('rule_id')} has no parameter {name}")

    def horizon_s(self) -> int:
        p = self.definition.params
        days = max(p.get("lookback_days", 0), p.get("regular_lookback_days", 0)) + 2
        return max(  # type: ignore[no-any-return]
            p.get("window_s", 0) + p.get("baseline_s", 0),
            p.get("new_account_s", 0),
            days * DAY_S,
        )


class AlertBook:
    """Open alerts by (rule, subject, episode); raised and updated ones wait in ``changed``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.open: dict[tuple[str, str, str], Alert] = {}
        self.changed: dict[str, Alert] = {}
        self.history: dict[str, list[int]] = {}  # account -> business times alerts were raised
        self.raised = 0

    def upsert(
        self,
        cfg: Cfg,
        subject: str,
        txns: Iterable[Txn],
        accounts: Iterable[str],
        features: dict[str, int] | None = None,
        labels: Iterable[str] = (),
        episode: str = "",
    ) -> Alert:
        txns = list(txns)
        newest = max(t.ts_ns for t in txns)
        key = (cfg.rule_id, subject, episode)
        alert = self.open.get(key)
        if alert is None or (
            not episode and newest - alert.updated_event_ts > cfg.dedup_window_s * NS_PER_S
        ):
            alert = Alert(
                alert_id(cfg.rule_id, subject, episode, newest),
                cfg.rule_id,
                cfg.version,
                cfg.typology,
                cfg.category,
                subject,
                episode,
                newest,
            )
            self.open[key] = alert
            self.raised += 1
            if not subject.startswith("conductor:"):
                self.history.setdefault(subject, []).append(newest)
        alert.add(txns, accounts)
        alert.merge_features(features or {}, labels)
        self._score(cfg, alert)
        self.changed[alert.alert_id] = alert
        return alert

    def _score(self, cfg: Cfg, alert: Alert) -> None:
        eng = self.engine
        scoring = eng.scoring
        risk = "low"
        for account in alert.accounts:
            profile = eng.profiles.get(account)
            if profile is not None and RISK_ORDER.get(profile.risk_rating, 0) > RISK_ORDER[risk]:
                risk = profile.risk_rating
        lo = alert.raised_event_ts - scoring["history_s"] * NS_PER_S
        prior = sum(
            1 for ts in self.history.get(alert.subject, ()) if lo <= ts < alert.raised_event_ts
        )
        alert.score, alert.scoring = score_of(cfg.weight, risk, prior, scoring)

    def expire(self, now_ns: int) -> None:
        """Forget open alerts that can no longer be updated (the read model keeps them)."""
        longest = max((c.dedup_window_s for c in self.engine.cfgs.values()), default=0)
        lo = now_ns - (longest + DAY_S) * NS_PER_S
        stale = [k for k, a in self.open.items() if a.updated_event_ts < lo]
        for k in stale:
            del self.open[k]
        hist_lo = now_ns - (self.engine.scoring["history_s"] + DAY_S) * NS_PER_S
        for account in [a for a, ts in self.history.items() if ts[-1] < hist_lo]:
            del self.history[account]

    def drain(self) -> list[Alert]:
        out = list(self.changed.values())
        self.changed = {}
        return out


class Engine:
    def __init__(
        self,
        rules: Iterable[RuleDefinition] = DEFAULT_RULES.values(),
        rates: RateTable = USD_ONLY,
        windows: Windows | None = None,
    ) -> None:
        self.rates = rates
        self.profiles: dict[str, AccountProfile] = {}
        self.accounts = Windows() if windows is None else windows
        self.last_seen: dict[str, int] = {}  # account -> newest business time, kept forever
        self.stream_start = -1  # the oldest business time monitored (the start of monitoring)
        # rule id -> account -> from when its relationships count as new (see detectors)
        self.novelty: dict[str, dict[str, int]] = {}
        self.alerts = AlertBook(self)
        self.cfgs: dict[str, Cfg] = {}
        self.scoring: dict[str, int] = dict(DEFAULT_RULES["scoring"].params)
        self.p_all: list[tuple[Any, Cfg]] = []
        self.p_cash: list[tuple[Any, Cfg]] = []
        self.p_novel: list[tuple[Any, Cfg]] = []
        self.p_net: list[tuple[Any, Cfg]] = []
        self.horizon_ns = MIN_HORIZON_S * NS_PER_S
        self.sweep_day = -1
        self.touched_days: dict[int, set[str]] = {}
        self.transactions = 0
        for definition in rules:
            self._install(definition)
        self._rebuild_pipeline()

    # ------------------------------------------------------------------ reference data

    def set_rule(self, definition: RuleDefinition) -> None:
        """Apply a rule version from now on (the caller's log position)."""
        self.novelty.pop(definition.rule_id, None)
        self._install(definition)
        self._rebuild_pipeline()

    def _install(self, definition: RuleDefinition) -> None:
        if definition.detector == "scoring":
            self.scoring = dict(definition.params)
            return
        old = self.cfgs.get(definition.rule_id)
        cfg = Cfg(definition)
        if old is not None and old.detector == cfg.detector:
            cfg.state = old.state  # windows kept under the previous version carry over
        self.cfgs[definition.rule_id] = cfg

    def _rebuild_pipeline(self) -> None:
        """Group the enabled rules by the cheap test that decides whether they can see
        anything in a transaction (cash, a new relationship, a large non-hub transfer)."""
        enabled = [c for _, c in sorted(self.cfgs.items()) if c.enabled and c.detector in DETECT]
        groups: dict[str, list[tuple[Any, Cfg]]] = {g: [] for g in ("all", "cash", "novel", "net")}
        for c in enabled:
            groups[GATES.get(c.detector, "all")].append((DETECT[c.detector], c))
        self.p_all, self.p_cash = groups["all"], groups["cash"]
        self.p_novel, self.p_net = groups["novel"], groups["net"]
        self.novel_window_ns = max((c.window_s for _, c in self.p_novel), default=0) * NS_PER_S
        self.net_min_usd = min((c.min_usd_minor for _, c in self.p_net), default=0)
        self.net_hub = max((c.hub_degree for _, c in self.p_net), default=0)
        horizon = max([MIN_HORIZON_S, *(c.horizon_s() for c in self.cfgs.values() if c.enabled)])
        self.horizon_ns = horizon * NS_PER_S

    def set_rates(self, rates: RateTable) -> None:
        self.rates = rates

    def set_profile(self, profile: AccountProfile) -> None:
        self.profiles[profile.account] = profile
        for cache in self.novelty.values():
            cache.pop(profile.account, None)

    def rule(self, rule_id: str) -> Cfg | None:
        return self.cfgs.get(rule_id)

    # ------------------------------------------------------------------ transactions

    def observe(self, t: Txn) -> None:  # noqa: PLR0912, PLR0915 - the hot path, inlined
        """Update the state with one transaction and run the enabled detectors on it."""
        self.transactions += 1
        ts = t.ts_ns
        if ts < self.stream_start or self.stream_start < 0:
            self.stream_start = ts
            self.novelty = {}
        day = ts // DAY_NS
        if day > self.sweep_day:
            self._sweep(day, ts)
        a, b = t.src, t.dst
        src = dst = None
        rel: list[int] = []
        if a != CASH:
            src = self._state(a, ts, day)
            lst = src.outs
            if not lst or lst[-1][0] <= ts:
                lst.append(t)
            else:
                add_sorted(lst, t)
            out_rel = src.cp_out.get(b)
            if out_rel is None:
                src.cp_out[b] = [ts, ts]
            elif ts > out_rel[1]:
                out_rel[1] = ts
            elif ts < out_rel[0]:
                out_rel[0] = ts
        if b != CASH:
            dst = self._state(b, ts, day)
            lst = dst.ins
            if not lst or lst[-1][0] <= ts:
                lst.append(t)
            else:
                add_sorted(lst, t)
            in_rel = dst.cp_in.get(a)
            if in_rel is None:
                rel = dst.cp_in[a] = [ts, ts]
            else:
                rel = in_rel
            if ts > rel[1]:
                rel[1] = ts
            elif ts < rel[0]:
                rel[0] = ts
        for detect, cfg in self.p_all:
            detect(self, cfg, t, src, dst)
        if src is None or dst is None:
            for detect, cfg in self.p_cash:
                detect(self, cfg, t, src, dst)
        else:
            if ts - rel[0] <= self.novel_window_ns:  # a relationship new within the window
                for detect, cfg in self.p_novel:
                    detect(self, cfg, t, src, dst)
            if t.usd >= self.net_min_usd:
                hub = self.net_hub
                if src.degree0() <= hub and dst.degree0() <= hub:
                    for detect, cfg in self.p_net:
                        detect(self, cfg, t, src, dst)
        # Last activity moves after the detectors ran (dormancy reads the earlier value).
        if src is not None and ts > src.last_ts:
            src.last_ts = ts
            self.last_seen[a] = ts
        if dst is not None and ts > dst.last_ts:
            dst.last_ts = ts
            self.last_seen[b] = ts
        self.accounts.settle()

    def _state(self, account: str, ts: int, day: int) -> AccountState:
        state = self.accounts.get(account)
        if state is None:
            state = self.accounts[account] = AccountState()
            state.last_ts = state.prev_last = self.last_seen.get(account, -1)
        if ts > state.group_ts:
            state.group_ts = ts
            state.deg_in0 = len(state.cp_in)
            state.deg_out0 = len(state.cp_out)
            state.prev_last = state.last_ts
        if state.day != day:  # the first transaction of a UTC day on this account
            state.day = day
            touched = self.touched_days.get(day)
            if touched is None:
                touched = self.touched_days[day] = set()
            touched.add(account)
            state.trim(ts - self.horizon_ns, ts)
        return state

    def _sweep(self, day: int, ts: int) -> None:
        """Once per UTC day of business time: forget idle accounts and stale alerts."""
        first = self.sweep_day < 0
        self.sweep_day = day
        if first:
            return
        horizon_days = self.horizon_ns // (DAY_S * NS_PER_S) + 1
        idle_before = ts - self.horizon_ns
        last_seen = self.last_seen  # an account's newest time, as its state's last_ts
        for old_day in [d for d in self.touched_days if d < day - horizon_days]:
            self.accounts.forget(
                a for a in self.touched_days.pop(old_day) if last_seen.get(a, -1) < idle_before
            )
        for cfg in self.cfgs.values():
            detectors.expire(cfg, ts)
        self.alerts.expire(ts)

    # ------------------------------------------------------------------ helpers

    def profile(self, account: str) -> AccountProfile | None:
        return self.profiles.get(account)

    def drain(self) -> list[Alert]:
        return self.alerts.drain()

    def checkpoint(self) -> bytes:
        """Everything but the account windows, as bytes: the windows are saved apart, all of
        them (``accounts.saved()``) or those changed since the last checkpoint
        (``accounts.take_changes()`` and ``accounts.saved_of``), and :meth:`restore` puts the
        two back together.

        An internal cache format (``pickle``), as :meth:`to_snapshot`.
        """
        windows, self.accounts = self.accounts, Windows()
        try:
            return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.accounts = windows

    @staticmethod
    def restore(rest: bytes, windows: Windows) -> Engine:
        """The engine of a :meth:`checkpoint`, with ``windows`` holding its accounts' windows
        (saved in their cold store, say, as the checkpoint gave them)."""
        engine = Engine.from_snapshot(rest)
        engine.accounts = windows
        return engine

    def to_snapshot(self) -> bytes:
        """The whole state (windows, open alerts, rules, rates, profiles) as bytes.

        An internal cache format (``pickle``) for the projection's own snapshots, never an
        exchange format: it is only read back by the process that wrote it or its peers.
        """
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_snapshot(data: bytes) -> Engine:
        engine = pickle.loads(data)  # noqa: S301 - our own snapshot (see to_snapshot)
        invariant(isinstance(engine, Engine), "an engine snapshot holds an Engine")
        return engine  # type: ignore[no-any-return]
