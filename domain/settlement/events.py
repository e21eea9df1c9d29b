"""Clearing and settlement events: immutable, past-tense facts carrying all replay needs.

Streams
    ``participant:<id>``          a participant's registration, limits and status
    ``scheme:<id>``               a scheme's terms, members and which cycle is open
    ``cycle:<scheme id>:<seq>``   one netting cycle (DNS) or business day (RTGS): every
                                  obligation is exactly one event here (accepted or queued,
                                  naming the queued obligations it released), then cut-off,
                                  unwinds and settlement

Payloads hold only JSON-safe values: ints (minor units, ids, nanoseconds), strings, lists,
and dicts keyed by currency code. No floats: efficiencies are derived, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from domain.event import FlatEvent
from domain.frozen import fast_frozen_all


@dataclass(frozen=True, slots=True)
class SettlementEvent(FlatEvent):
    """Root of the settlement events (payload conversion: :class:`domain.event.FlatEvent`)."""


# ------------------------------------------------------------------ participant streams


@dataclass(frozen=True, slots=True)
class ParticipantRegistered(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.ParticipantRegistered.v1"
    participant_id: int
    name: str
    accounts: dict[str, int]  # currency -> ledger account id (its settlement account)
    caps_minor: dict[str, int]  # currency -> net debit cap; absent: no cap
    min_positions_minor: dict[str, int]  # currency -> RTGS minimum position; absent: 0
    max_positions_minor: dict[str, int]  # currency -> RTGS maximum position; absent: none
    registered_at_ns: int


@dataclass(frozen=True, slots=True)
class ParticipantLimitsChanged(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.ParticipantLimitsChanged.v1"
    participant_id: int
    caps_minor: dict[str, int]
    min_positions_minor: dict[str, int]
    max_positions_minor: dict[str, int]
    at_ns: int


@dataclass(frozen=True, slots=True)
class ParticipantStatusChanged(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.ParticipantStatusChanged.v1"
    participant_id: int
    status: str  # active | suspended | defaulted
    previous: str
    reason: str
    at_ns: int


# ------------------------------------------------------------------ scheme streams


@dataclass(frozen=True, slots=True)
class SchemeCreated(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.SchemeCreated.v1"
    scheme_id: int
    name: str
    mode: str  # dns | rtgs
    currencies: list[str]
    settlement_accounts: dict[str, int]  # currency -> the scheme's hub account in the ledger
    cut_off_times_s: list[int]  # seconds after midnight UTC, ascending
    participants: list[int]
    created_at_ns: int


@dataclass(frozen=True, slots=True)
class ParticipantAdmitted(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.ParticipantAdmitted.v1"
    scheme_id: int
    participant_id: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class CycleAdvanced(SettlementEvent):
    """The scheme's open cycle moved on: ``closed_seq`` was cut off, ``open_seq`` opened."""

    TOPIC: ClassVar[str] = "settlement.CycleAdvanced.v1"
    scheme_id: int
    closed_seq: int
    open_seq: int
    at_ns: int


# ------------------------------------------------------------------ cycle streams


@dataclass(frozen=True, slots=True)
class CycleOpened(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.CycleOpened.v1"
    scheme_id: int
    seq: int
    mode: str
    currencies: list[str]
    value_date: str
    cut_off_at_ns: int  # the scheduled cut-off; 0 when the scheme has no schedule
    opened_at_ns: int


@dataclass(frozen=True, slots=True)
class ObligationAccepted(SettlementEvent):
    """Accepted into the cycle's netting (DNS) or settled at once (RTGS).

    ``released`` names queued obligations of the same currency that this one made room for;
    they are accepted (DNS) or released (RTGS) by this same event, in that order.
    """

    TOPIC: ClassVar[str] = "settlement.ObligationAccepted.v1"
    scheme_id: int
    seq: int
    obligation_id: int
    payer_id: int
    payee_id: int
    currency: str
    amount_minor: int
    value_date: str
    reference: str
    at_ns: int
    released: list[int]


@dataclass(frozen=True, slots=True)
class ObligationQueued(SettlementEvent):
    """Queued: accepting it alone would breach a bound (``reason``).

    ``released`` may name this very obligation when it offsets queued ones at once.
    """

    TOPIC: ClassVar[str] = "settlement.ObligationQueued.v1"
    scheme_id: int
    seq: int
    obligation_id: int
    payer_id: int
    payee_id: int
    currency: str
    amount_minor: int
    value_date: str
    reference: str
    at_ns: int
    reason: str  # net_debit_cap | minimum_position | maximum_position
    released: list[int]


@dataclass(frozen=True, slots=True)
class QueueReleased(SettlementEvent):
    TOPIC: ClassVar[str] = "settlement.QueueReleased.v1"
    scheme_id: int
    seq: int
    currency: str
    released: list[int]
    trigger: str  # on_demand | cut_off
    at_ns: int


@dataclass(frozen=True, slots=True)
class CycleCutOff(SettlementEvent):
    """Positions frozen. Queued obligations still waiting are ``dropped`` (rejected)."""

    TOPIC: ClassVar[str] = "settlement.CycleCutOff.v1"
    scheme_id: int
    seq: int
    trigger: str  # manual | scheduled
    scheduled_at_ns: int
    at_ns: int
    released: dict[str, list[int]]  # currency -> queued obligations released at the final search
    dropped: dict[str, list[int]]  # currency -> queued obligations that never fit
    positions: dict[str, list[list[int]]]  # currency -> [[participant, n_i], ...] by id
    totals: dict[str, dict[str, int]]  # currency -> gross, bilateral, multilateral, count
    breaches: list[list[Any]]  # [[currency, participant, debit, cap], ...]


@dataclass(frozen=True, slots=True)
class ParticipantUnwound(SettlementEvent):
    """Every obligation to or from the participant was deleted and positions recomputed."""

    TOPIC: ClassVar[str] = "settlement.ParticipantUnwound.v1"
    scheme_id: int
    seq: int
    participant_id: int
    at_ns: int
    removed_gross: dict[str, int]  # currency -> gross value removed
    changes: list[list[Any]]  # [[currency, participant, before, after], ...] every survivor moved
    debit_increases: list[list[Any]]  # [[currency, participant, debit before, debit after], ...]
    totals: dict[str, dict[str, int]]  # currency -> totals after the unwind
    breaches: list[list[Any]]  # [[currency, participant, debit, cap], ...] after the unwind


@dataclass(frozen=True, slots=True)
class CycleSettled(SettlementEvent):
    """The instructions were posted to the ledger, in the same unit of work as this event."""

    TOPIC: ClassVar[str] = "settlement.CycleSettled.v1"
    scheme_id: int
    seq: int
    at_ns: int
    instructions: list[dict[str, Any]]


EVENT_TYPES: dict[str, type[SettlementEvent]] = {
    cls.TOPIC: cls
    for cls in (
        ParticipantRegistered,
        ParticipantLimitsChanged,
        ParticipantStatusChanged,
        SchemeCreated,
        ParticipantAdmitted,
        CycleAdvanced,
        CycleOpened,
        ObligationAccepted,
        ObligationQueued,
        QueueReleased,
        CycleCutOff,
        ParticipantUnwound,
        CycleSettled,
    )
}
fast_frozen_all(EVENT_TYPES.values())  # built per command and per replayed event


class UnknownEventType(ValueError):
    pass


def decode_event(topic: str, payload: dict[str, Any]) -> SettlementEvent:
    try:
        cls = EVENT_TYPES[topic]
    except KeyError:
        raise UnknownEventType(f"unknown settlement event type {topic!r}") from None
    return cls.from_payload(payload)
