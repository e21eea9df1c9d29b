"""Cycle: one netting cycle of a DNS scheme, or one business day of an RTGS scheme.

Definition
    A cycle belongs to a scheme and is numbered from 1 (``seq``). It holds, per currency, a
    :class:`~domain.settlement.netting.NettingBook` of the accepted obligations and an
    :class:`~domain.settlement.release.ObligationQueue` of the queued ones. States:
    ``open`` -> ``cut_off`` (positions frozen; unwinds happen here) -> ``settled``.
    Stream: ``cycle:<scheme id>:<seq>``; each obligation is exactly one event in it.

DNS (deferred net settlement)
    An obligation is accepted when the payer's net position after it stays >= -cap (its net
    debit cap in that currency; no cap: always). Otherwise it is queued (recycled, DTC-style)
    and accepted automatically, in arrival order, as soon as offsetting credits make room: an
    accepted obligation credits its payee, whose queued obligations are then retried
    (:func:`~domain.settlement.release.cascade`), and so on outwards. At cut-off a final
    release search runs and whatever is still queued is dropped (rejected), as DTC drops what
    is still recycling at the end of the day.

RTGS (real-time gross settlement, CHIPS-style)
    An obligation settles at once iff the payer's position after it is >= its minimum and the
    payee's is <= its maximum; otherwise it queues. The release search
    (:func:`~domain.settlement.release.search`, bilateral and multilateral offsets) runs on
    every change that can unblock something: a new queued obligation, or an accepted one whose
    payee has queued outgoing obligations or whose payer has queued incoming ones (a change
    elsewhere cannot make a blocked set feasible). It also runs on demand and at cut-off.

Guarantees
    * No accepted state breaches a bound: after every event, every participant whose position
      fell is >= its lower bound (or no lower than before, if a limit was tightened under it),
      and, in RTGS, every participant whose position rose is <= its upper bound.
    * Decisions are made in the command methods and recorded in the events (``released``
      names the queued obligations an event releases); ``apply`` only replays them, so the
      same events always give the same state, whatever limits are in force at replay.
    * The netting identities (sum n_i = 0, 0 <= M <= B <= G) hold after every event; at
      cut-off, unwind and snapshot restore every book is recomputed and compared (paired
      check), and the event's positions and totals must equal the state it produces.
    * ``MUTATES_IN_PLACE``: every command method raises, if at all, before its first
      ``_trigger``; the processor then hands out the cached cycle itself instead of a copy.

Rejections (in precedence order)
    Obligation: ``obligation_exists`` (its id is already in this cycle), ``cycle_closed``,
    ``currency_not_cleared`` (the service checks the scheme's rules first).
    Release: ``cycle_not_open``. Cut-off: ``cycle_not_open``.
    Unwind: ``cycle_already_settled``, ``cycle_not_cut_off``, ``participant_already_unwound``,
    ``nothing_to_unwind``. Settle: ``cycle_already_settled``, ``cycle_not_cut_off``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.settlement import errors as e
from domain.settlement import release as r
from domain.settlement.events import (
    CycleCutOff,
    CycleOpened,
    CycleSettled,
    ObligationAccepted,
    ObligationQueued,
    ParticipantUnwound,
    QueueReleased,
)
from domain.settlement.netting import NettingBook, Totals, plan_unwind
from domain.settlement.participant import Limits
from domain.settlement.scheme import cycle_id

LimitsOf = Callable[[int, str], Limits]
NO_LIMITS = Limits(None, 0, None)


def stream_id(scheme_id: int, seq: int) -> str:
    return f"cycle:{scheme_id}:{seq}"


@dataclass(frozen=True, slots=True)
class ObligationSpec:
    obligation_id: int
    scheme_id: int
    payer_id: int
    payee_id: int
    currency: str
    amount_minor: int
    value_date: str | None = None  # None: the cycle's value date
    reference: str = ""
    cycle_id: str | None = None  # None: whichever cycle is open


@dataclass(frozen=True, slots=True)
class Instruction:
    """One settlement instruction of the hub model."""

    currency: str
    participant_id: int
    direction: str  # pay_in (a net debtor pays the hub) | pay_out (the hub pays a creditor)
    amount_minor: int
    debit_account_id: int
    credit_account_id: int
    transfer_id: int = 0

    def to_payload(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "participant_id": self.participant_id,
            "direction": self.direction,
            "amount_minor": self.amount_minor,
            "debit_account_id": self.debit_account_id,
            "credit_account_id": self.credit_account_id,
            "transfer_id": self.transfer_id,
        }


def bounds(mode: str, limits: LimitsOf, currency: str) -> tuple[r.Bound, r.Bound]:
    """(low, high) for the release search: DNS -cap and no maximum; RTGS min and max."""
    if mode == "dns":

        def dns_low(pid: int) -> int | None:
            cap = limits(pid, currency).cap_minor
            return None if cap is None else -cap

        return dns_low, lambda _pid: None

    def rtgs_low(pid: int) -> int | None:
        return limits(pid, currency).min_position_minor

    def rtgs_high(pid: int) -> int | None:
        return limits(pid, currency).max_position_minor

    return rtgs_low, rtgs_high


class Cycle(Aggregate):
    MUTATES_IN_PLACE = True
    # A snapshot costs O(pairs + obligations) to build: at most one per 100,000 events (the
    # processor's default, one per 1,000, would rebuild a million-obligation cycle's snapshot
    # a thousand times).
    SNAPSHOT_EVERY = 100_000

    __slots__ = (
        "arrivals",
        "books",
        "breaches",
        "currencies",
        "cut_at_ns",
        "cut_off_at_ns",
        "cut_trigger",
        "dropped_count",
        "instructions",
        "mode",
        "obligation_ids",
        "opened_at_ns",
        "queues",
        "released_count",
        "scheme_id",
        "seq",
        "settled_at_ns",
        "state",
        "unwound",
        "value_date",
    )

    def __init__(self, scheme_id: int, seq: int) -> None:
        super().__init__(stream_id(scheme_id, seq))
        self.scheme_id = scheme_id
        self.seq = seq
        self.mode = "dns"
        self.currencies: tuple[str, ...] = ()
        self.value_date = ""
        self.cut_off_at_ns = 0
        self.opened_at_ns = 0
        self.state = "open"
        self.books: dict[str, NettingBook] = {}
        self.queues: dict[str, r.ObligationQueue] = {}
        self.arrivals = 0
        self.obligation_ids: set[int] = set()  # every obligation the cycle took (duplicates)
        self.released_count = 0
        self.dropped_count = 0
        self.unwound: list[int] = []
        self.breaches: list[list[Any]] = []
        self.cut_trigger = ""
        self.cut_at_ns = 0
        self.settled_at_ns = 0
        self.instructions: list[dict[str, Any]] = []

    @property
    def is_final(self) -> bool:
        return self.state == "settled"

    @property
    def cycle_id(self) -> str:
        return cycle_id(self.scheme_id, self.seq)

    def clone(self) -> Self:  # pragma: no cover - the processor never clones in-place aggregates
        invariant(False, "a cycle mutates in place; it is never cloned")
        return self

    # ------------------------------------------------------------------ reading

    def position(self, participant_id: int, currency: str) -> int:
        book = self.books.get(currency)
        return 0 if book is None else book.position(participant_id)

    def totals(self, currency: str) -> Totals:
        return self.books[currency].totals()

    def queued(self, currency: str) -> list[r.Queued]:
        return list(self.queues[currency])

    def is_queued(self, obligation_id: int) -> bool:
        return any(obligation_id in q for q in self.queues.values())

    def involves(self, participant_id: int) -> bool:
        return any(participant_id in book for book in self.books.values())

    def approx_bytes(self) -> int:
        return (
            2_000
            + 64 * len(self.obligation_ids)
            + sum(b.approx_bytes() for b in self.books.values())
            + sum(q.approx_bytes() for q in self.queues.values())
            + 300 * len(self.instructions)
        )

    def breaches_now(self, limits: LimitsOf) -> list[list[Any]]:
        """[[currency, participant, debit, cap], ...] for every -n_i > cap_i now (DNS caps)."""
        return self._breaches({c: self.books[c].positions() for c in self.currencies}, limits)

    def instructions_for(
        self, accounts: Callable[[int, str], int | None], hub_accounts: dict[str, int]
    ) -> list[Instruction]:
        """Hub model: each net debtor pays |n_i| to the hub, each net creditor receives n_i.

        Per currency, pay-ins come first (so a hub account that may not go negative is funded
        before it pays out), each group by participant id. Missing accounts are a bug here:
        the service checks them before.
        """
        out: list[Instruction] = []
        for currency in self.currencies:
            hub = hub_accounts[currency]
            positions = self.books[currency].positions()
            for pid, n in positions.items():
                if n < 0:
                    account = accounts(pid, currency)
                    invariant(account is not None, f"{pid} has a {currency} account")
                    assert account is not None  # for the type checker
                    out.append(Instruction(currency, pid, "pay_in", -n, account, hub))
            for pid, n in positions.items():
                if n > 0:
                    account = accounts(pid, currency)
                    invariant(account is not None, f"{pid} has a {currency} account")
                    assert account is not None
                    out.append(Instruction(currency, pid, "pay_out", n, hub, account))
        return out

    # ------------------------------------------------------------------ commands

    @classmethod
    def open(
        cls,
        scheme_id: int,
        seq: int,
        mode: str,
        currencies: tuple[str, ...],
        value_date: str,
        cut_off_at_ns: int,
        now_ns: int,
    ) -> Cycle:
        cycle = cls(scheme_id, seq)
        cycle._trigger(
            CycleOpened(scheme_id, seq, mode, sorted(currencies), value_date, cut_off_at_ns, now_ns)
        )
        return cycle

    def check_takes(self, spec: ObligationSpec) -> None:
        """The cycle's own rules for a new obligation (the service checks the rest first)."""
        if spec.obligation_id in self.obligation_ids:
            raise e.ObligationExists(
                f"obligation {spec.obligation_id} is already in cycle {self.cycle_id}",
                cycle_id=self.cycle_id,
                obligation_id=spec.obligation_id,
            )
        if self.state != "open":
            raise e.CycleClosed(
                f"cycle {self.cycle_id} is {self.state}: it takes no obligations",
                cycle_id=self.cycle_id,
                obligation_id=spec.obligation_id,
            )
        if spec.currency not in self.books:
            raise e.CurrencyNotCleared(
                f"cycle {self.cycle_id} does not clear {spec.currency}",
                cycle_id=self.cycle_id,
                obligation_id=spec.obligation_id,
            )

    def submit(self, spec: ObligationSpec, limits: LimitsOf, now_ns: int) -> tuple[str, list[int]]:
        """Accept or queue the obligation: one event. Returns ``accepted``, ``queued``, or
        ``released`` (RTGS: queued, then released at once with the queued ones it offsets),
        and the queued obligations the event released.

        O(1) when nothing is queued that the obligation could unblock; otherwise the cascade
        (DNS) or the release search (RTGS) of :mod:`domain.settlement.release`.
        """
        self.check_takes(spec)
        currency = spec.currency
        book = self.books[currency]
        queue = self.queues[currency]
        payer, payee, amount = spec.payer_id, spec.payee_id, spec.amount_minor
        payer_now, payee_now = book.position(payer), book.position(payee)
        reason = ""
        if self.mode == "dns":
            cap = limits(payer, currency).cap_minor
            if cap is not None and payer_now - amount < -cap:
                reason = "net_debit_cap"
        else:
            payer_limits, payee_limits = limits(payer, currency), limits(payee, currency)
            high_payee = payee_limits.max_position_minor
            if payer_now - amount < payer_limits.min_position_minor:
                reason = "minimum_position"
            elif high_payee is not None and payee_now + amount > high_payee:
                reason = "maximum_position"
        released: list[r.Queued] = []
        if len(queue):
            released = self._unblocked(spec, reason, limits)
        ids = [q.obligation_id for q in released]
        before = {payer: payer_now, payee: payee_now}
        if released:
            before.update(self._positions_of(currency, released))
        value_date = spec.value_date or self.value_date
        if reason:
            self._trigger(
                ObligationQueued(
                    self.scheme_id,
                    self.seq,
                    spec.obligation_id,
                    payer,
                    payee,
                    currency,
                    amount,
                    value_date,
                    spec.reference,
                    now_ns,
                    reason,
                    ids,
                )
            )
        else:
            self._trigger(
                ObligationAccepted(
                    self.scheme_id,
                    self.seq,
                    spec.obligation_id,
                    payer,
                    payee,
                    currency,
                    amount,
                    value_date,
                    spec.reference,
                    now_ns,
                    ids,
                )
            )
        if released:
            # Paired check of the decision: whoever the event moved stays within bounds.
            low, high = bounds(self.mode, limits, currency)
            self._check_bounds(currency, before, low, high)
        elif not reason:  # the same check, for the two parties of a plain acceptance
            self._check_pair(payer, payee, currency, payer_now, payee_now, limits)
        if not reason:
            return "accepted", ids
        return ("released" if spec.obligation_id in ids else "queued"), ids

    def _unblocked(self, spec: ObligationSpec, reason: str, limits: LimitsOf) -> list[r.Queued]:
        """The queued obligations a new one releases (it may be one of them when queued)."""
        currency = spec.currency
        book, queue = self.books[currency], self.queues[currency]
        payer, payee, amount = spec.payer_id, spec.payee_id, spec.amount_minor
        low, high = bounds(self.mode, limits, currency)
        if reason:
            if self.mode == "dns":
                return []  # positions did not move: nothing new fits (on demand: release)
            item = r.Queued(spec.obligation_id, payer, payee, amount, self.arrivals)
            return r.search([*queue, item], book.position, low, high)

        def after(pid: int) -> int:
            moved = -amount if pid == payer else amount if pid == payee else 0
            return book.position(pid) + moved

        if self.mode == "dns":
            return r.cascade(queue, [payee], after, low, high) if queue.has_outgoing(payee) else []
        if queue.has_outgoing(payee) or queue.has_incoming(payer):
            return r.search(queue, after, low, high)
        return []

    def release(
        self, limits: LimitsOf, now_ns: int, trigger: str = "on_demand"
    ) -> dict[str, list[int]]:
        """Run the release search on every currency's queue; one event per currency that
        releases anything. Returns the released obligation ids by currency."""
        if self.state != "open":
            raise e.CycleNotOpen(f"cycle {self.cycle_id} is {self.state}", cycle_id=self.cycle_id)
        found = self._search_all(limits)
        for currency, released in found.items():
            low, high = bounds(self.mode, limits, currency)
            before = self._positions_of(currency, released)
            self._trigger(
                QueueReleased(
                    self.scheme_id,
                    self.seq,
                    currency,
                    [q.obligation_id for q in released],
                    trigger,
                    now_ns,
                )
            )
            self._check_bounds(currency, before, low, high)
        return {c: [q.obligation_id for q in qs] for c, qs in found.items()}

    def cut_off(
        self, limits: LimitsOf, now_ns: int, trigger: str = "manual", scheduled_at_ns: int = 0
    ) -> CycleCutOff:
        """Freeze positions: a final release search, the rest dropped, caps checked.

        O(P + Q) to build the event (positions of P participants, a search over Q queued
        obligations); the paired check after it recomputes each book (O(pairs)).
        """
        if self.state != "open":
            raise e.CycleNotOpen(
                f"cycle {self.cycle_id} is {self.state}: it was cut off already",
                cycle_id=self.cycle_id,
            )
        found = self._search_all(limits)
        released: dict[str, list[int]] = {}
        dropped: dict[str, list[int]] = {}
        positions: dict[str, list[list[int]]] = {}
        totals: dict[str, dict[str, int]] = {}
        afters: dict[str, dict[int, int]] = {}
        for currency in self.currencies:
            go = found.get(currency, [])
            going = {q.obligation_id for q in go}
            released[currency] = [q.obligation_id for q in go]
            dropped[currency] = [
                q.obligation_id for q in self.queues[currency] if q.obligation_id not in going
            ]
            after, totals[currency] = self._net_scratch(currency, go)
            afters[currency] = after
            positions[currency] = [[pid, after[pid]] for pid in sorted(after)]
        event = CycleCutOff(
            self.scheme_id,
            self.seq,
            trigger,
            scheduled_at_ns,
            now_ns,
            released,
            dropped,
            positions,
            totals,
            self._breaches(afters, limits),
        )
        self._trigger(event)
        for currency in self.currencies:
            book = self.books[currency]
            book.verify()
            invariant(
                [[p, n] for p, n in book.positions().items()] == positions[currency],
                f"cut-off positions of {currency} differ from the netted state",
            )
            invariant(
                book.totals().to_payload() == totals[currency],
                f"cut-off totals of {currency} differ from the netted state",
            )
        return event

    def _net_scratch(
        self, currency: str, go: list[r.Queued]
    ) -> tuple[dict[int, int], dict[str, int]]:
        """Positions and totals after netting ``go`` in, without changing state.

        Only the pairs and participants the releases touch are read: O(P + len(go)).
        """
        book = self.books[currency]
        pair: dict[tuple[int, int], int] = {}
        pos = book.positions()
        gross, bilateral, debit = book.gross_total, book.bilateral_total, book.debit_total
        for q in go:
            key, back = (q.payer_id, q.payee_id), (q.payee_id, q.payer_id)
            o_sr = pair.get(key, book.gross(*key))
            o_rs = pair.get(back, book.gross(*back))
            bilateral += abs(o_sr + q.amount - o_rs) - abs(o_sr - o_rs)
            pair[key] = o_sr + q.amount
            gross += q.amount
            for pid, delta in ((q.payer_id, -q.amount), (q.payee_id, q.amount)):
                was = pos.get(pid, 0)
                pos[pid] = was + delta
                debit += max(0, -(was + delta)) - max(0, -was)
        return pos, {"gross": gross, "bilateral": bilateral, "multilateral": debit}

    def check_unwind(self, participant_id: int) -> None:
        ids = {"cycle_id": self.cycle_id, "participant_id": participant_id}
        if self.state == "settled":
            raise e.CycleAlreadySettled(f"cycle {self.cycle_id} is settled", **ids)
        if self.state != "cut_off":
            raise e.CycleNotCutOff(
                f"cycle {self.cycle_id} is {self.state}: unwind follows the cut-off", **ids
            )
        if participant_id in self.unwound:
            raise e.ParticipantAlreadyUnwound(
                f"participant {participant_id} was already unwound from cycle {self.cycle_id}",
                **ids,
            )
        if not self.involves(participant_id):
            raise e.NothingToUnwind(
                f"participant {participant_id} has no obligations in cycle {self.cycle_id}",
                **ids,
            )

    def unwind(self, participant_id: int, limits: LimitsOf, now_ns: int) -> ParticipantUnwound:
        """Delete every obligation to or from the participant and recompute (CPMI "unwind").

        O(d + P) per currency to plan (d: its counterparties), O(d) to apply; the paired
        check after it recomputes each book (O(pairs)).
        """
        self.check_unwind(participant_id)
        plans = {c: plan_unwind(self.books[c], participant_id) for c in self.currencies}
        changes = [[c, *change] for c, plan in plans.items() for change in plan.changes]
        grew = [[c, *g] for c, plan in plans.items() for g in plan.debit_increases()]
        event = ParticipantUnwound(
            self.scheme_id,
            self.seq,
            participant_id,
            now_ns,
            {c: plan.removed_gross for c, plan in plans.items()},
            changes,
            grew,
            {c: plan.totals.to_payload() for c, plan in plans.items()},
            self._breaches({c: plan.positions for c, plan in plans.items()}, limits),
        )
        self._trigger(event)
        for currency, plan in plans.items():
            book = self.books[currency]
            book.verify()
            invariant(book.totals() == plan.totals, f"unwind totals of {currency} differ")
            invariant(participant_id not in book, f"{participant_id} kept {currency} obligations")
            live = {p: n for p, n in book.positions().items() if n}
            invariant(
                live == {p: n for p, n in plan.positions.items() if n},
                f"unwind positions of {currency} differ",
            )
        return event

    def _breaches(self, positions: dict[str, dict[int, int]], limits: LimitsOf) -> list[list[Any]]:
        """[[currency, participant, debit, cap], ...] where -n_i > cap_i (DNS caps only)."""
        found: list[list[Any]] = []
        if self.mode != "dns":
            return found
        for currency in sorted(positions):
            for pid in sorted(positions[currency]):
                n = positions[currency][pid]
                cap = limits(pid, currency).cap_minor
                if cap is not None and -n > cap:
                    found.append([currency, pid, -n, cap])
        return found

    def settle(self, instructions: list[Instruction], now_ns: int) -> None:
        ids = {"cycle_id": self.cycle_id}
        if self.state == "settled":
            raise e.CycleAlreadySettled(f"cycle {self.cycle_id} is settled", **ids)
        if self.state != "cut_off":
            raise e.CycleNotCutOff(
                f"cycle {self.cycle_id} is {self.state}: settle follows the cut-off", **ids
            )
        for currency in self.currencies:
            # Paired check: the instructions settle every position to zero.
            net: dict[int, int] = {}
            for ins in instructions:
                if ins.currency == currency:
                    sign = -1 if ins.direction == "pay_in" else 1
                    net[ins.participant_id] = (
                        net.get(ins.participant_id, 0) + sign * ins.amount_minor
                    )
            positions = {p: n for p, n in self.books[currency].positions().items() if n}
            invariant(net == positions, f"{currency} instructions do not match the positions")
        self._trigger(
            CycleSettled(self.scheme_id, self.seq, now_ns, [i.to_payload() for i in instructions])
        )

    # ------------------------------------------------------------------ helpers

    def _search_all(self, limits: LimitsOf) -> dict[str, list[r.Queued]]:
        found: dict[str, list[r.Queued]] = {}
        for currency in self.currencies:
            queue = self.queues[currency]
            if not len(queue):
                continue
            low, high = bounds(self.mode, limits, currency)
            released = r.search(queue, self.books[currency].position, low, high)
            if released:
                found[currency] = released
        return found

    def _positions_of(self, currency: str, items: list[r.Queued]) -> dict[int, int]:
        book = self.books[currency]
        out: dict[int, int] = {}
        for q in items:
            out.setdefault(q.payer_id, book.position(q.payer_id))
            out.setdefault(q.payee_id, book.position(q.payee_id))
        return out

    def _check_pair(
        self,
        payer: int,
        payee: int,
        currency: str,
        payer_was: int,
        payee_was: int,
        limits: LimitsOf,
    ) -> None:
        book = self.books[currency]
        payer_now, payee_now = book.position(payer), book.position(payee)
        if self.mode == "dns":
            cap = limits(payer, currency).cap_minor
            invariant(
                cap is None or payer_now >= min(-cap, payer_was),
                f"participant {payer} went past its {currency} net debit cap",
            )
            return
        low = limits(payer, currency).min_position_minor
        high = limits(payee, currency).max_position_minor
        invariant(payer_now >= min(low, payer_was), f"{payer} fell below its {currency} minimum")
        invariant(
            high is None or payee_now <= max(high, payee_was),
            f"participant {payee} rose above its {currency} maximum",
        )

    def _check_bounds(
        self, currency: str, before: dict[int, int], low: r.Bound, high: r.Bound
    ) -> None:
        """Paired check of the decision: no participant the event moved ended outside bounds."""
        book = self.books[currency]
        for pid, was in before.items():
            now = book.position(pid)
            low_p, high_p = low(pid), high(pid)
            if now < was:
                invariant(
                    low_p is None or now >= min(low_p, was),
                    f"participant {pid} fell below its {currency} lower bound",
                )
            if now > was:
                invariant(
                    high_p is None or now <= max(high_p, was),
                    f"participant {pid} rose above its {currency} upper bound",
                )

    # ------------------------------------------------------------------ apply: assign only

    def _net_released(self, currency: str, released: list[int]) -> None:
        queue = self.queues[currency]
        book = self.books[currency]
        for obligation_id in released:
            q = queue.pop(obligation_id)
            book.add(q.payer_id, q.payee_id, q.amount)
        self.released_count += len(released)

    def apply(self, event: object) -> None:
        handler = _APPLY.get(type(event))
        if handler is None:  # pragma: no cover - a programming error
            invariant(False, f"Cycle cannot apply {type(event).__name__}")
            return
        handler(self, event)

    def _apply_accepted(self, event: ObligationAccepted) -> None:
        self.books[event.currency].add(event.payer_id, event.payee_id, event.amount_minor)
        self.obligation_ids.add(event.obligation_id)
        self.arrivals += 1
        if event.released:
            self._net_released(event.currency, event.released)

    def _apply_queued(self, event: ObligationQueued) -> None:
        self.queues[event.currency].push(
            r.Queued(
                event.obligation_id,
                event.payer_id,
                event.payee_id,
                event.amount_minor,
                self.arrivals,
            )
        )
        self.obligation_ids.add(event.obligation_id)
        self.arrivals += 1
        if event.released:
            self._net_released(event.currency, event.released)

    def _apply_released(self, event: QueueReleased) -> None:
        self._net_released(event.currency, event.released)

    def _apply_opened(self, event: CycleOpened) -> None:
        self.mode = event.mode
        self.currencies = tuple(event.currencies)
        self.value_date = event.value_date
        self.cut_off_at_ns = event.cut_off_at_ns
        self.opened_at_ns = event.opened_at_ns
        self.books = {c: NettingBook() for c in event.currencies}
        self.queues = {c: r.ObligationQueue() for c in event.currencies}

    def _apply_cut_off(self, event: CycleCutOff) -> None:
        for currency in sorted(event.released):
            self._net_released(currency, event.released[currency])
        for currency in sorted(event.dropped):
            for obligation_id in event.dropped[currency]:
                self.queues[currency].pop(obligation_id)
            self.dropped_count += len(event.dropped[currency])
        self.state = "cut_off"
        self.cut_trigger = event.trigger
        self.cut_at_ns = event.at_ns
        self.breaches = [list(b) for b in event.breaches]

    def _apply_unwound(self, event: ParticipantUnwound) -> None:
        for currency in self.currencies:
            self.books[currency].remove_participant(event.participant_id)
        self.unwound = [*self.unwound, event.participant_id]
        self.breaches = [list(b) for b in event.breaches]

    def _apply_settled(self, event: CycleSettled) -> None:
        self.state = "settled"
        self.settled_at_ns = event.at_ns
        self.instructions = [dict(i) for i in event.instructions]

    # ------------------------------------------------------------------ snapshots

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "currencies": list(self.currencies),
            "value_date": self.value_date,
            "cut_off_at_ns": self.cut_off_at_ns,
            "opened_at_ns": self.opened_at_ns,
            "state": self.state,
            "books": {c: self.books[c].to_snapshot() for c in self.currencies},
            "queues": {c: [q.to_row() for q in self.queues[c]] for c in self.currencies},
            "arrivals": self.arrivals,
            "obligation_ids": sorted(self.obligation_ids),
            "released_count": self.released_count,
            "dropped_count": self.dropped_count,
            "unwound": list(self.unwound),
            "breaches": [list(b) for b in self.breaches],
            "cut_trigger": self.cut_trigger,
            "cut_at_ns": self.cut_at_ns,
            "settled_at_ns": self.settled_at_ns,
            "instructions": [dict(i) for i in self.instructions],
        }

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> Self:
        _, scheme, seq = stream_id.split(":")
        cycle = cls(int(scheme), int(seq))
        cycle.version = version
        cycle.mode = state["mode"]
        cycle.currencies = tuple(state["currencies"])
        cycle.value_date = state["value_date"]
        cycle.cut_off_at_ns = int(state["cut_off_at_ns"])
        cycle.opened_at_ns = int(state["opened_at_ns"])
        cycle.state = state["state"]
        cycle.books = {c: NettingBook.from_snapshot(state["books"][c]) for c in cycle.currencies}
        cycle.queues = {}
        for c in cycle.currencies:
            queue = r.ObligationQueue()
            for row in state["queues"][c]:
                queue.push(r.Queued.from_row(row))
            cycle.queues[c] = queue
        cycle.arrivals = int(state["arrivals"])
        cycle.obligation_ids = {int(i) for i in state["obligation_ids"]}
        cycle.released_count = int(state["released_count"])
        cycle.dropped_count = int(state["dropped_count"])
        cycle.unwound = [int(p) for p in state["unwound"]]
        cycle.breaches = [list(b) for b in state["breaches"]]
        cycle.cut_trigger = state["cut_trigger"]
        cycle.cut_at_ns = int(state["cut_at_ns"])
        cycle.settled_at_ns = int(state["settled_at_ns"])
        cycle.instructions = [dict(i) for i in state["instructions"]]
        return cycle


_APPLY: dict[type, Callable[[Cycle, Any], None]] = {
    ObligationAccepted: Cycle._apply_accepted,
    ObligationQueued: Cycle._apply_queued,
    QueueReleased: Cycle._apply_released,
    CycleOpened: Cycle._apply_opened,
    CycleCutOff: Cycle._apply_cut_off,
    ParticipantUnwound: Cycle._apply_unwound,
    CycleSettled: Cycle._apply_settled,
}
