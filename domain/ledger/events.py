"""Ledger events: immutable, past-tense facts that carry everything needed to replay them.

Transfer streams (``transfer:<id>``) hold the transfer's own life; account streams
(``account:<id>``) hold every change to the account's balances and its closed flag, each
naming the transfer, the ledger, the currency and the amounts, so balances can be rebuilt from
account events alone. The ledger's own stream (``ledger:<ledger>``) holds what spans accounts:
how far imports have come, the income and expense accounts of the chart, closed periods.

Fields added after an event type was first written have defaults, and are left out of the
payload while they hold their default (``OPTIONAL``): an event written before they existed
reads back unchanged, and an ordinary transfer's payload is what it always was.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal

from domain.frozen import fast_frozen_all

Side = Literal["debit", "credit"]


_NAMES: dict[type, tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]] = {}


def _field_names(cls: type) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """(always written, (optional name, default) pairs) for an event class."""
    names = _NAMES.get(cls)
    if names is None:
        optional: frozenset[str] = getattr(cls, "OPTIONAL", frozenset())
        always = tuple(f.name for f in fields(cls) if f.name not in optional)
        opt = tuple(
            (f.name, f.default)
            for f in fields(cls)
            if f.name in optional and f.default is not MISSING
        )
        names = _NAMES[cls] = (always, opt)
    return names


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    TOPIC: ClassVar[str] = ""
    # Fields written to the payload only when they differ from their default.
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    def to_payload(self) -> dict[str, Any]:
        # Flat fields of JSON-safe values: a comprehension, not asdict()'s deep copy.
        always, optional = _field_names(type(self))
        payload = {name: getattr(self, name) for name in always}
        for name, default in optional:
            value = getattr(self, name)
            if value != default:
                payload[name] = value
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> LedgerEvent:
        try:
            return cls(**payload)  # the payload was written from exactly these fields
        except TypeError:
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in payload.items() if k in names})


# ------------------------------------------------------------------ account streams

_ACCOUNT_OPTIONAL = frozenset(
    {
        "user_data_128",
        "user_data_64",
        "user_data_32",
        "linked",
        "history",
        "imported",
        "account_type",
        "parent_id",
        "name",
    }
)


@dataclass(frozen=True, slots=True)
class AccountOpened(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.AccountOpened.v1"
    OPTIONAL: ClassVar[frozenset[str]] = _ACCOUNT_OPTIONAL
    account_id: int
    ledger: int
    currency: str
    code: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    opened_at_ns: int  # the account's timestamp (the imported one, for an imported account)
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    linked: bool = False
    history: bool = False
    imported: bool = False
    account_type: str = ""  # asset | liability | equity | income | expense | "" (no chart)
    parent_id: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True)
class BalanceChange(LedgerEvent):
    """Base of the account-side events: which account, transfer, ledger and currency."""

    account_id: int
    transfer_id: int
    ledger: int
    currency: str
    side: str  # "debit" | "credit"
    at_ns: int  # the transfer's timestamp

    def deltas(self) -> tuple[int, int, int, int]:
        """(debits_pending, debits_posted, credits_pending, credits_posted) changes."""
        raise NotImplementedError

    @property
    def cause_id(self) -> int:
        """The transfer that caused the change (a post or void names itself, when it has an
        id of its own)."""
        return self.transfer_id


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
    """A pending transfer was posted: ``posted`` moves to posted, the rest is released.

    ``by_transfer_id``: the post's own id (a post made with flags.post_pending_transfer).
    """

    TOPIC: ClassVar[str] = "ledger.ReservationPosted.v1"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"by_transfer_id"})
    reserved: int = 0
    posted: int = 0
    by_transfer_id: int = 0

    def deltas(self) -> tuple[int, int, int, int]:
        r, p = self.reserved, self.posted
        return (-r, p, 0, 0) if self.side == "debit" else (0, 0, -r, p)

    @property
    def cause_id(self) -> int:
        return self.by_transfer_id or self.transfer_id


@dataclass(frozen=True, slots=True)
class ReservationReleased(BalanceChange):
    """A pending transfer was voided or expired: its reservation is released."""

    TOPIC: ClassVar[str] = "ledger.ReservationReleased.v1"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"by_transfer_id"})
    amount: int = 0
    reason: str = "voided"  # "voided" | "expired"
    by_transfer_id: int = 0

    def deltas(self) -> tuple[int, int, int, int]:
        a = self.amount
        return (-a, 0, 0, 0) if self.side == "debit" else (0, 0, -a, 0)

    @property
    def cause_id(self) -> int:
        return self.by_transfer_id or self.transfer_id


@dataclass(frozen=True, slots=True)
class AccountClosed(LedgerEvent):
    """A pending transfer with flags.closing_debit/closing_credit closed the account."""

    TOPIC: ClassVar[str] = "ledger.AccountClosed.v1"
    account_id: int
    transfer_id: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class AccountReopened(LedgerEvent):
    """The pending transfer that closed the account was voided (or expired): it is open."""

    TOPIC: ClassVar[str] = "ledger.AccountReopened.v1"
    account_id: int
    transfer_id: int
    at_ns: int


# ------------------------------------------------------------------ transfer streams

_TRANSFER_OPTIONAL = frozenset(
    {
        "user_data_128",
        "user_data_64",
        "user_data_32",
        "linked",
        "balancing_debit",
        "balancing_credit",
        "closing_debit",
        "closing_credit",
        "imported",
        "reverses_id",
    }
)


@dataclass(frozen=True, slots=True)
class TransferCreated(LedgerEvent):
    """A single-phase or pending transfer. ``amount`` is what it moved or reserved (for a
    balancing transfer, at most what was asked); ``created_at_ns`` its timestamp."""

    TOPIC: ClassVar[str] = "ledger.TransferCreated.v1"
    OPTIONAL: ClassVar[frozenset[str]] = _TRANSFER_OPTIONAL
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
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    linked: bool = False
    balancing_debit: bool = False
    balancing_credit: bool = False
    closing_debit: bool = False
    closing_credit: bool = False
    imported: bool = False
    reverses_id: int = 0  # a reversal names the transfer it reverses


@dataclass(frozen=True, slots=True)
class SettlingTransferCreated(LedgerEvent):
    """A transfer that posts or voids a pending one (flags.post_pending_transfer or
    flags.void_pending_transfer), with an id of its own. Its effect on balances is recorded
    in the pending transfer's stream (``PendingTransferPosted``/``...Voided``, naming it) and
    the accounts'. ``amount``: posted (a post) or released (a void)."""

    TOPIC: ClassVar[str] = "ledger.SettlingTransferCreated.v1"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"user_data_128", "user_data_64", "user_data_32", "linked", "imported"}
    )
    transfer_id: int
    pending_id: int
    kind: str  # "post" | "void"
    debit_account_id: int
    credit_account_id: int
    amount: int
    ledger: int
    currency: str
    code: int
    created_at_ns: int
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    linked: bool = False
    imported: bool = False


@dataclass(frozen=True, slots=True)
class TransferFailed(LedgerEvent):
    """A transfer failed for a reason that depends on state (``reason``): its id is spent and
    answers ``id_already_failed`` from now on, as in TigerBeetle."""

    TOPIC: ClassVar[str] = "ledger.TransferFailed.v1"
    transfer_id: int
    reason: str
    failed_at_ns: int


@dataclass(frozen=True, slots=True)
class PendingTransferPosted(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferPosted.v1"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"by_transfer_id"})
    transfer_id: int
    amount: int
    posted_at_ns: int
    by_transfer_id: int = 0  # the post's own id, when it has one


@dataclass(frozen=True, slots=True)
class PendingTransferVoided(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferVoided.v1"
    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"by_transfer_id"})
    transfer_id: int
    voided_at_ns: int
    by_transfer_id: int = 0


@dataclass(frozen=True, slots=True)
class PendingTransferExpired(LedgerEvent):
    TOPIC: ClassVar[str] = "ledger.PendingTransferExpired.v1"
    transfer_id: int
    expired_at_ns: int


@dataclass(frozen=True, slots=True)
class TransferReversed(LedgerEvent):
    """The transfer was reversed by ``reversal_id`` (same amount, accounts swapped)."""

    TOPIC: ClassVar[str] = "ledger.TransferReversed.v1"
    transfer_id: int
    reversal_id: int
    reason: str
    reversed_by: str
    reversed_at_ns: int


# ------------------------------------------------------------------ the ledger's own stream


@dataclass(frozen=True, slots=True)
class ImportsAdvanced(LedgerEvent):
    """Imported accounts and transfers reached these timestamps (one event per request)."""

    TOPIC: ClassVar[str] = "ledger.ImportsAdvanced.v1"
    ledger: int
    last_account_ns: int
    last_transfer_ns: int
    accounts: int
    transfers: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class IncomeStatementAccountAdded(LedgerEvent):
    """An income or expense account joined the ledger's chart: a period close moves it."""

    TOPIC: ClassVar[str] = "ledger.IncomeStatementAccountAdded.v1"
    ledger: int
    account_id: int
    account_type: str
    at_ns: int


@dataclass(frozen=True, slots=True)
class PeriodClosed(LedgerEvent):
    """The books were closed up to and including ``through_ns``: income and expense moved
    to ``equity_account_id`` by ``transfer_ids`` (one linked batch)."""

    TOPIC: ClassVar[str] = "ledger.PeriodClosed.v1"
    ledger: int
    period_id: int
    through_ns: int
    equity_account_id: int
    transfer_ids: list[int]
    closed_at_ns: int


EVENT_TYPES: dict[str, type[LedgerEvent]] = {
    cls.TOPIC: cls
    for cls in (
        AccountOpened,
        AmountPosted,
        AmountReserved,
        ReservationPosted,
        ReservationReleased,
        AccountClosed,
        AccountReopened,
        TransferCreated,
        SettlingTransferCreated,
        TransferFailed,
        PendingTransferPosted,
        PendingTransferVoided,
        PendingTransferExpired,
        TransferReversed,
        ImportsAdvanced,
        IncomeStatementAccountAdded,
        PeriodClosed,
    )
}
fast_frozen_all(EVENT_TYPES.values())  # built per command and per replayed event


class UnknownEventType(ValueError):
    pass


def decode_event(topic: str, payload: dict[str, Any]) -> LedgerEvent:
    try:
        cls = EVENT_TYPES[topic]
    except KeyError:
        raise UnknownEventType(f"unknown ledger event type {topic!r}") from None
    return cls.from_payload(payload)
