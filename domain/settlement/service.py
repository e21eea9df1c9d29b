"""Clearing and settlement rules that span aggregates, checked in a documented order.

Submit obligation (``SUBMIT_OBLIGATION_ORDER``)
    1. ``id_must_not_be_zero``, ``id_must_not_be_int_max``   ids are 1..2^128-2
    2. ``amount_must_be_positive``        zero or negative amounts
    3. ``amount_too_large``               more than 10^18 minor units
    4. ``payer_must_differ_from_payee``
    5. ``unknown_currency``               not an ISO 4217 code
    6. ``value_date_invalid``             not a calendar date YYYY-MM-DD
    7. ``scheme_not_found``
    8. ``currency_not_cleared``           the scheme does not clear the currency
    9. ``participant_not_found``          payer first, then payee (unknown participant)
   10. ``participant_not_member``         payer, then payee
   11. ``participant_defaulted``, ``participant_suspended``   payer, then payee
   12. ``participant_lacks_account``      no settlement account in the currency
   13. ``cycle_not_found``                a named cycle the scheme does not have (yet)
   14. ``cycle_closed``                   a named cycle that no longer takes obligations
   15. ``value_date_mismatch``            not the value date of the cycle it would join
   16. ``obligation_exists``              its id is already in that cycle
    Then the cycle accepts or queues it (never a rejection). When the open cycle's scheduled
    cut-off has passed, the obligation is late: the open cycle is cut off first (trigger
    ``scheduled``) and the obligation joins the next cycle, all in the same unit of work.

Cut-off (``CUT_OFF_ORDER``): ``scheme_not_found``, ``cycle_not_found``, ``cycle_not_open``.
Release (``RELEASE_ORDER``): ``scheme_not_found``.
Unwind (``UNWIND_ORDER``): ``scheme_not_found``, ``cycle_not_found``,
    ``participant_not_found``, ``participant_not_member``, ``rtgs_payments_are_final``,
    ``cycle_already_settled``,
    ``cycle_not_cut_off``, ``participant_already_unwound``, ``nothing_to_unwind``.
    The participant is declared ``defaulted`` in the same unit of work.
Settle (``SETTLE_ORDER``): ``scheme_not_found``, ``cycle_not_found``,
    ``cycle_already_settled``, ``cycle_not_cut_off``, then (posting, in the application
    layer) ``funding_shortfall``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.aggregate import Aggregate
from domain.money import is_currency
from domain.settlement import errors as e
from domain.settlement.cycle import NO_LIMITS, Cycle, Instruction, LimitsOf, ObligationSpec
from domain.settlement.events import CycleCutOff, ParticipantUnwound
from domain.settlement.participant import Limits, Participant, ParticipantSpec
from domain.settlement.scheme import Scheme, SchemeSpec, parse_cycle_id, value_date_of

MAX_AMOUNT_MINOR = 10**18

SUBMIT_OBLIGATION_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "amount_must_be_positive",
    "amount_too_large",
    "payer_must_differ_from_payee",
    "unknown_currency",
    "value_date_invalid",
    "scheme_not_found",
    "currency_not_cleared",
    "participant_not_found",
    "participant_not_member",
    "participant_defaulted",
    "participant_suspended",
    "participant_lacks_account",
    "cycle_not_found",
    "cycle_closed",
    "value_date_mismatch",
    "obligation_exists",
)
CUT_OFF_ORDER: tuple[str, ...] = ("scheme_not_found", "cycle_not_found", "cycle_not_open")
RELEASE_ORDER: tuple[str, ...] = ("scheme_not_found",)
UNWIND_ORDER: tuple[str, ...] = (
    "scheme_not_found",
    "cycle_not_found",
    "participant_not_found",
    "participant_not_member",
    "rtgs_payments_are_final",
    "cycle_already_settled",
    "cycle_not_cut_off",
    "participant_already_unwound",
    "nothing_to_unwind",
)
SETTLE_ORDER: tuple[str, ...] = (
    "scheme_not_found",
    "cycle_not_found",
    "cycle_already_settled",
    "cycle_not_cut_off",
    "funding_shortfall",
)


class SettlementSource(Protocol):
    """Where the service finds aggregates (a unit of work, or a dict in tests)."""

    def get_participant(self, participant_id: int) -> Participant | None: ...

    def get_scheme(self, scheme_id: int) -> Scheme | None: ...

    def get_cycle(self, scheme_id: int, seq: int) -> Cycle | None: ...

    def add(self, aggregate: Aggregate) -> None: ...


@dataclass(frozen=True, slots=True)
class Submitted:
    """What became of an obligation: its status and the cycle it joined."""

    status: str  # accepted | queued | released
    cycle: Cycle
    released: list[int]  # queued obligations this one released (it may be one of them)
    late_cut_off: CycleCutOff | None  # the scheduled cut-off this late obligation triggered


def limits_of(src: SettlementSource, known: Sequence[Participant] = ()) -> LimitsOf:
    """Participants' limits, read through the source once per participant."""
    seen: dict[int, Participant | None] = {p.participant_id: p for p in known}

    def lookup(participant_id: int, currency: str) -> Limits:
        if participant_id not in seen:
            seen[participant_id] = src.get_participant(participant_id)
        participant = seen[participant_id]
        return NO_LIMITS if participant is None else participant.limits(currency)

    return lookup


# ------------------------------------------------------------------ participants


def register_participant(src: SettlementSource, spec: ParticipantSpec, now_ns: int) -> Participant:
    participant = Participant.register(spec, src.get_participant(spec.participant_id), now_ns)
    src.add(participant)
    return participant


def _participant(src: SettlementSource, participant_id: int, **ids: object) -> Participant:
    participant = src.get_participant(participant_id)
    if participant is None:
        raise e.ParticipantNotFound(
            f"participant {participant_id} is not registered", participant_id=participant_id, **ids
        )
    return participant


def change_limits(
    src: SettlementSource,
    participant_id: int,
    caps: dict[str, int],
    mins: dict[str, int],
    maxs: dict[str, int],
    now_ns: int,
) -> Participant:
    participant = _participant(src, participant_id)
    participant.change_limits(caps, mins, maxs, now_ns)
    return participant


def change_status(
    src: SettlementSource, participant_id: int, status: str, reason: str, now_ns: int
) -> Participant:
    participant = _participant(src, participant_id)
    participant.change_status(status, reason, now_ns)
    return participant


# ------------------------------------------------------------------ schemes


def _check_can_join(participant: Participant, scheme_id: int, currencies: tuple[str, ...]) -> None:
    ids = {"scheme_id": scheme_id, "participant_id": participant.participant_id}
    if participant.status == "defaulted":
        raise e.ParticipantDefaulted(
            f"participant {participant.participant_id} is in default", **ids
        )
    if all(participant.account(currency) is None for currency in currencies):
        raise e.ParticipantLacksAccount(
            f"participant {participant.participant_id} has a settlement account in none of "
            f"the scheme's currencies {list(currencies)}",
            **ids,
        )


def create_scheme(src: SettlementSource, spec: SchemeSpec, now_ns: int) -> tuple[Scheme, Cycle]:
    """Create the scheme and open its first cycle."""
    Scheme.check_spec(spec)
    if src.get_scheme(spec.scheme_id) is not None:
        raise e.SchemeExists(f"scheme {spec.scheme_id} exists", scheme_id=spec.scheme_id)
    currencies = tuple(sorted(spec.settlement_accounts))
    for participant_id in dict.fromkeys(spec.participants):
        participant = _participant(src, participant_id, scheme_id=spec.scheme_id)
        _check_can_join(participant, spec.scheme_id, currencies)
    scheme = Scheme.create(spec, now_ns)
    src.add(scheme)
    cycle = _open_cycle(scheme, scheme.open_seq, now_ns)
    src.add(cycle)
    return scheme, cycle


def admit_participant(
    src: SettlementSource, scheme_id: int, participant_id: int, now_ns: int
) -> Scheme:
    scheme = _scheme(src, scheme_id)
    participant = _participant(src, participant_id, scheme_id=scheme_id)
    if scheme.is_member(participant_id):
        scheme.admit(participant_id, now_ns)  # raises participant_already_member
    _check_can_join(participant, scheme_id, scheme.currencies)
    scheme.admit(participant_id, now_ns)
    return scheme


def _scheme(src: SettlementSource, scheme_id: int) -> Scheme:
    scheme = src.get_scheme(scheme_id)
    if scheme is None:
        raise e.SchemeNotFound(f"scheme {scheme_id} does not exist", scheme_id=scheme_id)
    return scheme


def _cycle(src: SettlementSource, scheme: Scheme, seq: int) -> Cycle:
    cycle = src.get_cycle(scheme.scheme_id, seq) if 0 < seq <= scheme.open_seq else None
    if cycle is None:
        raise e.CycleNotFound(
            f"scheme {scheme.scheme_id} has no cycle {seq}",
            scheme_id=scheme.scheme_id,
            cycle_id=f"{scheme.scheme_id}-{seq}",
        )
    return cycle


def _open_cycle(scheme: Scheme, seq: int, now_ns: int) -> Cycle:
    cut = scheme.next_cut_off_ns(now_ns)
    return Cycle.open(
        scheme.scheme_id,
        seq,
        scheme.mode,
        scheme.currencies,
        value_date_of(cut or now_ns),
        cut,
        now_ns,
    )


def _roll(
    src: SettlementSource, scheme: Scheme, cycle: Cycle, now_ns: int, trigger: str
) -> tuple[CycleCutOff, Cycle]:
    """Cut the open cycle off and open the next one. Raises only before any event."""
    event = cycle.cut_off(limits_of(src), now_ns, trigger, cycle.cut_off_at_ns)
    seq = scheme.advance(now_ns)
    following = _open_cycle(scheme, seq, now_ns)
    src.add(following)
    return event, following


# ------------------------------------------------------------------ obligations


def _valid_date(text: str) -> bool:
    if len(text) != 10:
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_shape(spec: ObligationSpec) -> None:
    ids = {"obligation_id": spec.obligation_id}
    e.check_ids(
        "obligation, scheme and participant ids",
        spec.obligation_id,
        spec.scheme_id,
        spec.payer_id,
        spec.payee_id,
        **ids,
    )
    if spec.amount_minor <= 0:
        raise e.AmountMustBePositive(f"amount {spec.amount_minor} is not positive", **ids)
    if spec.amount_minor > MAX_AMOUNT_MINOR:
        raise e.AmountTooLarge(f"amount {spec.amount_minor} exceeds 10^18 minor units", **ids)
    if spec.payer_id == spec.payee_id:
        raise e.PayerMustDifferFromPayee(
            f"participant {spec.payer_id} cannot owe itself", participant_id=spec.payer_id, **ids
        )
    if not is_currency(spec.currency):
        raise e.UnknownCurrency(f"{spec.currency!r} is not an ISO 4217 currency", **ids)
    if spec.value_date is not None and not _valid_date(spec.value_date):
        raise e.ValueDateInvalid(f"value date {spec.value_date!r} is not YYYY-MM-DD", **ids)


def _check_parties(
    src: SettlementSource, scheme: Scheme, spec: ObligationSpec
) -> list[Participant]:
    ids = {"obligation_id": spec.obligation_id, "scheme_id": spec.scheme_id}
    roles = (("payer", spec.payer_id), ("payee", spec.payee_id))
    found: list[Participant] = []
    for role, pid in roles:
        found.append(_participant(src, pid, role=role, **ids))
    for role, pid in roles:
        if not scheme.is_member(pid):
            raise e.ParticipantNotMember(
                f"{role} {pid} is not a member of scheme {scheme.scheme_id}",
                participant_id=pid,
                role=role,
                **ids,
            )
    for (role, pid), participant in zip(roles, found, strict=True):
        if participant.status == "defaulted":
            raise e.ParticipantDefaulted(
                f"{role} {pid} is in default", participant_id=pid, role=role, **ids
            )
        if participant.status == "suspended":
            raise e.ParticipantSuspended(
                f"{role} {pid} is suspended", participant_id=pid, role=role, **ids
            )
    for (role, pid), participant in zip(roles, found, strict=True):
        if participant.account(spec.currency) is None:
            raise e.ParticipantLacksAccount(
                f"{role} {pid} has no {spec.currency} settlement account",
                participant_id=pid,
                role=role,
                currency=spec.currency,
                **ids,
            )
    return found


def submit_obligation(src: SettlementSource, spec: ObligationSpec, now_ns: int) -> Submitted:
    _check_shape(spec)
    scheme = _scheme(src, spec.scheme_id)
    ids = {"obligation_id": spec.obligation_id, "scheme_id": spec.scheme_id}
    if not scheme.clears(spec.currency):
        raise e.CurrencyNotCleared(
            f"scheme {scheme.scheme_id} does not clear {spec.currency}",
            currency=spec.currency,
            **ids,
        )
    parties = _check_parties(src, scheme, spec)
    cycle = _cycle(src, scheme, scheme.open_seq)
    late = bool(cycle.cut_off_at_ns) and now_ns >= cycle.cut_off_at_ns
    target_seq = scheme.open_seq + 1 if late else scheme.open_seq
    if spec.cycle_id is not None:
        named = parse_cycle_id(spec.cycle_id)
        if named is None or named[0] != scheme.scheme_id or not 0 < named[1] <= target_seq:
            raise e.CycleNotFound(
                f"scheme {scheme.scheme_id} has no cycle {spec.cycle_id!r} open to obligations",
                cycle_id=spec.cycle_id,
                **ids,
            )
        if named[1] != target_seq:
            raise e.CycleClosed(
                f"cycle {spec.cycle_id} no longer takes obligations", cycle_id=spec.cycle_id, **ids
            )
    target_date = value_date_of(scheme.next_cut_off_ns(now_ns) or now_ns) if late else None
    expected = target_date or cycle.value_date
    if spec.value_date is not None and spec.value_date != expected:
        raise e.ValueDateMismatch(
            f"value date {spec.value_date} is not the cycle's value date {expected}",
            value_date=spec.value_date,
            cycle_value_date=expected,
            **ids,
        )
    late_cut: CycleCutOff | None = None
    if late:
        late_cut, cycle = _roll(src, scheme, cycle, now_ns, "scheduled")
    else:
        cycle.check_takes(spec)
    status, released = cycle.submit(spec, limits_of(src, parties), now_ns)
    return Submitted(status, cycle, released, late_cut)


def submit_obligations(
    src: SettlementSource, specs: list[ObligationSpec], now_ns: int
) -> list[Submitted | e.SettlementRejection]:
    """Each obligation in order, each with its own outcome (one event each, as for one).

    A rejected item changes nothing (each is validated before its event); later items see
    the earlier ones, as consecutive single submissions would.
    """
    outcomes: list[Submitted | e.SettlementRejection] = []
    for spec in specs:
        try:
            outcomes.append(submit_obligation(src, spec, now_ns))
        except e.SettlementRejection as exc:
            outcomes.append(exc)
    return outcomes


# ------------------------------------------------------------------ cycle life


def cut_off(
    src: SettlementSource, scheme_id: int, seq: int | None, now_ns: int, trigger: str = "manual"
) -> tuple[CycleCutOff, Cycle]:
    """Cut off a cycle (the open one when ``seq`` is None) and open the next one."""
    scheme = _scheme(src, scheme_id)
    cycle = _cycle(src, scheme, scheme.open_seq if seq is None else seq)
    if cycle.state != "open":
        raise e.CycleNotOpen(
            f"cycle {cycle.cycle_id} is {cycle.state}: it was cut off already",
            cycle_id=cycle.cycle_id,
        )
    return _roll(src, scheme, cycle, now_ns, trigger)


def cut_off_if_due(
    src: SettlementSource, scheme_id: int, now_ns: int
) -> tuple[CycleCutOff, Cycle] | None:
    """The scheduled cut-off, when the open cycle's time has come (the clock duty's step)."""
    scheme = _scheme(src, scheme_id)
    cycle = _cycle(src, scheme, scheme.open_seq)
    if not cycle.cut_off_at_ns or now_ns < cycle.cut_off_at_ns:
        return None
    return _roll(src, scheme, cycle, now_ns, "scheduled")


def release(
    src: SettlementSource, scheme_id: int, now_ns: int
) -> tuple[Cycle, dict[str, list[int]]]:
    """Run the release search on the open cycle's queues now."""
    scheme = _scheme(src, scheme_id)
    cycle = _cycle(src, scheme, scheme.open_seq)
    return cycle, cycle.release(limits_of(src), now_ns)


def unwind(
    src: SettlementSource, scheme_id: int, seq: int, participant_id: int, now_ns: int
) -> ParticipantUnwound:
    scheme = _scheme(src, scheme_id)
    cycle = _cycle(src, scheme, seq)
    participant = _participant(src, participant_id, scheme_id=scheme_id, cycle_id=cycle.cycle_id)
    if not scheme.is_member(participant_id):
        raise e.ParticipantNotMember(
            f"participant {participant_id} is not a member of scheme {scheme_id}",
            participant_id=participant_id,
            scheme_id=scheme_id,
        )
    if scheme.mode == "rtgs":
        raise e.RtgsPaymentsAreFinal(
            f"scheme {scheme_id} settles gross in real time: its payments are final",
            scheme_id=scheme_id,
            cycle_id=cycle.cycle_id,
        )
    event = cycle.unwind(participant_id, limits_of(src), now_ns)
    if participant.status != "defaulted":  # cannot raise: the status changes
        participant.change_status("defaulted", f"unwound from cycle {cycle.cycle_id}", now_ns)
    return event


def plan_settlement(
    src: SettlementSource,
    scheme_id: int,
    seq: int,
    transfer_id_of: Callable[[Instruction], int] | None = None,
) -> tuple[Cycle, list[Instruction]]:
    """The settlement instructions of a cut-off cycle, with their ledger transfer ids.

    Changes nothing: the application layer posts them, then calls ``Cycle.settle``.
    """
    scheme = _scheme(src, scheme_id)
    cycle = _cycle(src, scheme, seq)
    ids = {"cycle_id": cycle.cycle_id}
    if cycle.state == "settled":
        raise e.CycleAlreadySettled(f"cycle {cycle.cycle_id} is settled", **ids)
    if cycle.state != "cut_off":
        raise e.CycleNotCutOff(
            f"cycle {cycle.cycle_id} is {cycle.state}: settle follows the cut-off", **ids
        )
    participants: dict[int, Participant | None] = {}

    def account(pid: int, currency: str) -> int | None:
        if pid not in participants:
            participants[pid] = src.get_participant(pid)
        participant = participants[pid]
        return None if participant is None else participant.account(currency)

    for currency in cycle.currencies:
        for pid, n in cycle.books[currency].positions().items():
            if n and account(pid, currency) is None:  # accounts are never removed; a guard
                raise e.ParticipantLacksAccount(
                    f"participant {pid} has no {currency} settlement account",
                    participant_id=pid,
                    currency=currency,
                    **ids,
                )
    planned = cycle.instructions_for(account, scheme.settlement_accounts)
    id_of = transfer_id_of or instruction_transfer_id_for(scheme_id, seq)
    return cycle, [
        Instruction(
            i.currency,
            i.participant_id,
            i.direction,
            i.amount_minor,
            i.debit_account_id,
            i.credit_account_id,
            id_of(i),
        )
        for i in planned
    ]


# ------------------------------------------------------------------ ledger transfer ids

SYSTEM_ID_FLOOR = 2**126
"""Ledger ids from 2^126 to 2^127-1 are derived by the system; clients use 1..2^126-1."""


def instruction_transfer_id(
    scheme_id: int, seq: int, currency: str, participant_id: int, direction: str
) -> int:
    """The ledger transfer id of one settlement instruction: deterministic, in the system range.

    SHA-256 of ``settlement-instruction/<scheme>/<seq>/<currency>/<participant>/<direction>``,
    its first 126 bits, plus 2^126. The same instruction always gets the same id (a replayed
    or retried settle cannot post twice), and the id is >= 2^126, where client ids never are.
    """
    text = f"settlement-instruction/{scheme_id}/{seq}/{currency}/{participant_id}/{direction}"
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    return SYSTEM_ID_FLOOR + (digest >> 2)


def instruction_transfer_id_for(scheme_id: int, seq: int) -> Callable[[Instruction], int]:
    def id_of(i: Instruction) -> int:
        return instruction_transfer_id(scheme_id, seq, i.currency, i.participant_id, i.direction)

    return id_of
