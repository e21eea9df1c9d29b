"""Reconciliation events: immutable, past-tense facts carrying all a replay needs.

Stream ``reconciliation:<id>``: one reconciliation of one statement against one account,
written in one command: ``ReconciliationOpened``, one event per item (a match, a break, an
unmatched entry or posting) in the result's order, ``BalanceChecked`` per balance the
statement carries, then ``ReconciliationCompleted``. Amounts are integer minor units (signed:
money in positive), dates ``YYYY-MM-DD``; payloads hold no floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from domain.event import FlatEvent
from domain.frozen import fast_frozen_all


@dataclass(frozen=True, slots=True)
class ReconciliationEvent(FlatEvent):
    """Root of the reconciliation events (payload conversion: :class:`domain.event.FlatEvent`)."""


@dataclass(frozen=True, slots=True)
class ReconciliationOpened(ReconciliationEvent):
    TOPIC: ClassVar[str] = "reconciliation.ReconciliationOpened.v1"
    reconciliation_id: str
    statement_id: str
    statement_digest: str
    statement_format: str
    bank_account: str
    account_id: int
    ledger: int
    currency: str
    nostro_view: str  # asset (money in is a debit of the account) | liability
    period_from: str
    period_to: str
    entries: int
    date_tolerance_days: int
    ledger_position: int  # the ledger read model's position the postings were read at
    opened_at_ns: int


@dataclass(frozen=True, slots=True)
class ItemRecorded(ReconciliationEvent):
    """Base of the item events. ``entry``: the statement entry (``Entry.to_payload``);
    ``transfer_id``/``ledger_amount_minor``/``ledger_date``: the posting's."""

    reconciliation_id: str
    seq: int
    rule: str
    entry: dict[str, Any] | None
    transfer_id: int | None
    ledger_amount_minor: int | None
    ledger_date: str | None
    candidates: list[int]

    STATUS: ClassVar[str] = ""


@dataclass(frozen=True, slots=True)
class EntryMatched(ItemRecorded):
    TOPIC: ClassVar[str] = "reconciliation.EntryMatched.v1"
    STATUS: ClassVar[str] = "matched"


@dataclass(frozen=True, slots=True)
class AmountBreakFound(ItemRecorded):
    TOPIC: ClassVar[str] = "reconciliation.AmountBreakFound.v1"
    STATUS: ClassVar[str] = "amount_break"


@dataclass(frozen=True, slots=True)
class DateBreakFound(ItemRecorded):
    TOPIC: ClassVar[str] = "reconciliation.DateBreakFound.v1"
    STATUS: ClassVar[str] = "date_break"


@dataclass(frozen=True, slots=True)
class StatementEntryUnmatched(ItemRecorded):
    TOPIC: ClassVar[str] = "reconciliation.StatementEntryUnmatched.v1"
    STATUS: ClassVar[str] = "unmatched_statement"


@dataclass(frozen=True, slots=True)
class LedgerTransferUnmatched(ItemRecorded):
    TOPIC: ClassVar[str] = "reconciliation.LedgerTransferUnmatched.v1"
    STATUS: ClassVar[str] = "unmatched_ledger"


ITEM_EVENTS: dict[str, type[ItemRecorded]] = {
    cls.STATUS: cls
    for cls in (
        EntryMatched,
        AmountBreakFound,
        DateBreakFound,
        StatementEntryUnmatched,
        LedgerTransferUnmatched,
    )
}


@dataclass(frozen=True, slots=True)
class BalanceChecked(ReconciliationEvent):
    """The statement's opening (``OPBD``: before the period's first day) or closing (``CLBD``:
    at the end of its last day) booked balance against the ledger's balance then."""

    TOPIC: ClassVar[str] = "reconciliation.BalanceChecked.v1"
    reconciliation_id: str
    kind: str  # opening | closing
    date: str
    statement_minor: int
    ledger_minor: int


@dataclass(frozen=True, slots=True)
class ReconciliationCompleted(ReconciliationEvent):
    TOPIC: ClassVar[str] = "reconciliation.ReconciliationCompleted.v1"
    reconciliation_id: str
    counts: dict[str, int]  # per status, and balance_break
    completed_at_ns: int


_ALL: tuple[type[ReconciliationEvent], ...] = (
    ReconciliationOpened,
    *ITEM_EVENTS.values(),
    BalanceChecked,
    ReconciliationCompleted,
)
EVENT_TYPES: dict[str, type[ReconciliationEvent]] = {cls.TOPIC: cls for cls in _ALL}
fast_frozen_all(EVENT_TYPES.values())  # built per command and per replayed event


class UnknownEventType(ValueError):
    pass


def decode_event(topic: str, payload: dict[str, Any]) -> ReconciliationEvent:
    try:
        cls = EVENT_TYPES[topic]
    except KeyError:
        raise UnknownEventType(f"unknown reconciliation event type {topic!r}") from None
    return cls.from_payload(payload)
