"""Ledger events: immutable, past-tense facts that carry everything needed to replay them.

Transfer streams (``transfer:<id>``) hold the transfer's own life; account streams
(``account:<id>``) hold every change to the account's balances, each naming the transfer,
the ledger, the currency and the amounts, so balances can be rebuilt from account events alone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

Side = Literal["debit", "credit"]


_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    TOPIC: ClassVar[str] = ""

    def to_payload(self) -> dict[str, Any]:
        # Flat fields of JSON-safe values: a comprehension, not asdict()'s deep copy.
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> LedgerEvent:
        try:
            return cls(**payload)  # the payload was written from exactly these fields
        except TypeError:
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in payload.items() if k in names})


# ------------------------------------------------------------------ account streams


@dataclass(frozen=True, slots=True)
class AccountOpened(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.AccountOpened.v1"
    account_id: int
    ledger: int
    currency: str
    code: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    opened_at_ns: int


@dataclass(frozen=True, slots=True)
class BalanceChange(LedgerEvent):
    """Base of the account-side events: which account, transfer, ledger and currency."""

    account_id: int
    transfer_id: int
    ledger: int
    currency: str
    side: str  # "debit" | "credit"
    at_ns: int

    def deltas(self) -> tuple[int, int, int, int]:
        """(debits_pending, debits_posted, credits_pending, credits_posted) changes."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class AmountPosted(BalanceChange):
    """A single-phase transfer moved ``amount`` straight into the posted balance."""

    TOPIC: ClassVar[str] = "ledger.AmountPosted.v1"
    amount: int = 0

    def deltas(self) -> tuple[int, int, int, int]:
        a = self.amount
        return (0, a, 0, 0) if self.side == "debit" else (0, 0, 0, a)


@dataclass(frozen=True, slots=True)
class AmountReserved(BalanceChange):
    """A pending transfer reserved ``amount`` in the pending balance."""

    TOPIC: ClassVar[str] = "ledger.AmountReserved.v1"
    amount: int = 0

    def deltas(self) -> tuple[int, int, int, int]:
        a = self.amount
        return (a, 0, 0, 0) if self.side == "debit" else (0, 0, a, 0)


@dataclass(frozen=True, slots=True)
class ReservationPosted(BalanceChange):
    """A pending transfer was posted: ``posted`` moves to posted, the rest is released."""

    TOPIC: ClassVar[str] = "ledger.ReservationPosted.v1"
    reserved: int = 0
    posted: int = 0

    def deltas(self) -> tuple[int, int, int, int]:
        r, p = self.reserved, self.posted
        return (-r, p, 0, 0) if self.side == "debit" else (0, 0, -r, p)


@dataclass(frozen=True, slots=True)
class ReservationReleased(BalanceChange):
    """A pending transfer was voided or expired: its reservation is released."""

    TOPIC: ClassVar[str] = "ledger.ReservationReleased.v1"
    amount: int = 0
    reason: str = "voided"  # "voided" | "expired"

    def deltas(self) -> tuple[int, int, int, int]:
        a = self.amount
        return (-a, 0, 0, 0) if self.side == "debit" else (0, 0, -a, 0)


# ------------------------------------------------------------------ transfer streams


@dataclass(frozen=True, slots=True)
class TransferCreated(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.TransferCreated.v1"
    transfer_id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    ledger: int
    currency: str
    code: int
    pending: bool
    timeout_s: int
    created_at_ns: int


@dataclass(frozen=True, slots=True)
class PendingTransferPosted(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferPosted.v1"
    transfer_id: int
    amount: int
    posted_at_ns: int


@dataclass(frozen=True, slots=True)
class PendingTransferVoided(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferVoided.v1"
    transfer_id: int
    voided_at_ns: int


@dataclass(frozen=True, slots=True)
class PendingTransferExpired(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferExpired.v1"
    transfer_id: int
    expired_at_ns: int


EVENT_TYPES: dict[str, type[LedgerEvent]] = {
    cls.TOPIC: cls
    for cls in (
        AccountOpened,
        AmountPosted,
        AmountReserved,
        ReservationPosted,
        ReservationReleased,
        TransferCreated,
        PendingTransferPosted,
        PendingTransferVoided,
        PendingTransferExpired,
    )
}


class UnknownEventType(ValueError):
    pass


def decode_event(topic: str, payload: dict[str, Any]) -> LedgerEvent:
    try:
        cls = EVENT_TYPES[topic]
    except KeyError:
        raise UnknownEventType(f"unknown ledger event type {topic!r}") from None
    return cls.from_payload(payload)
