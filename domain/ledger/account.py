"""Account: one side of every transfer.

Definition
    An account has a client-chosen id, a ledger, an ISO 4217 currency, a code, flags
    (``debits_must_not_exceed_credits``, ``credits_must_not_exceed_debits``, ``closed``,
    ``history``, ``imported``, ``linked``), three user_data fields, a place in the chart of
    accounts (``account_type``, ``parent_id``, ``name``; all optional), a timestamp, and four
    balances in minor units: ``debits_pending``, ``debits_posted``, ``credits_pending``,
    ``credits_posted``. Stream: ``account:<id>``.

Guarantees
    * Balances change only through transfer events; each is 0..2^128-1, and so are
      ``debits_pending + debits_posted`` and ``credits_pending + credits_posted``.
    * With ``debits_must_not_exceed_credits``: debits_pending + debits_posted <= credits_posted,
      always. With ``credits_must_not_exceed_debits``: the mirror image.
    * Fields other than the balances and ``closed`` never change after opening. ``closed`` is
      set at opening or by a pending transfer with ``closing_debit``/``closing_credit``, and
      unset only by voiding (or the expiry of) that transfer.
    * ``last_at_ns`` is the latest timestamp of the account's own events: imported transfers
      may not be dated before it, so the account's history is in time order.

Constraints
    The two limit flags are mutually exclusive. A closed account takes no new debits or
    credits; a void (or expiry) of a reservation made before closing still releases it.

Rejections (in precedence order)
    Opening: see ``CREATE_ACCOUNT_ORDER`` in :mod:`domain.ledger.service`.
    Debiting or crediting: ``debit_account_already_closed`` / ``credit_account_already_closed``,
    the ``overflows_*`` codes, then ``exceeds_credits`` / ``exceeds_debits``.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.aggregate import Aggregate
from domain.frozen import fast_frozen
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.events import (
    AccountClosed,
    AccountOpened,
    AccountReopened,
    AmountPosted,
    AmountReserved,
    BalanceChange,
    ReservationPosted,
    ReservationReleased,
)
from domain.money import format_major, is_currency

ID_INT_MAX = 2**128 - 1  # ids are unsigned 128-bit; this one is reserved (TigerBeetle)
U128_MAX = 2**128 - 1  # the largest amount and balance
U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
U16_MAX = 2**16 - 1
TIMESTAMP_MAX = 2**63 - 1  # imported timestamps are 1..2^63-1 ns (TigerBeetle)
ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense")
# The side on which each type's balance is normally positive.
DEBIT_NORMAL = frozenset({"asset", "expense"})


def stream_id(account_id: int) -> str:
    return f"account:{account_id}"


@fast_frozen
@dataclass(frozen=True, slots=True)
class AccountSpec:
    account_id: int
    ledger: int
    currency: str
    code: int
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    closed: bool = False
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    linked: bool = False
    history: bool = False
    imported: bool = False
    timestamp_ns: int = 0  # only with ``imported``: when the account was really opened
    account_type: str = ""
    parent_id: int = 0
    name: str = ""

    @property
    def flags(self) -> tuple[bool, ...]:
        """Every flag, as TigerBeetle compares them (``exists_with_different_flags``)."""
        return (
            self.linked,
            self.debits_must_not_exceed_credits,
            self.credits_must_not_exceed_debits,
            self.history,
            self.imported,
            self.closed,
        )


class Account(Aggregate):
    __slots__ = (
        "account_id",
        "account_type",
        "closed",
        "closed_by",
        "code",
        "credits_must_not_exceed_debits",
        "credits_pending",
        "credits_posted",
        "currency",
        "debits_must_not_exceed_credits",
        "debits_pending",
        "debits_posted",
        "history",
        "imported",
        "last_at_ns",
        "ledger",
        "linked",
        "name",
        "opened_at_ns",
        "opened_closed",
        "parent_id",
        "user_data_32",
        "user_data_64",
        "user_data_128",
    )

    def __init__(self, account_id: int) -> None:
        super().__init__(stream_id(account_id))
        self.account_id = account_id
        self.ledger = 0
        self.currency = ""
        self.code = 0
        self.debits_must_not_exceed_credits = False
        self.credits_must_not_exceed_debits = False
        self.closed = False
        self.opened_closed = False  # the closed flag as given at opening (compared on retry)
        self.closed_by = 0  # the pending transfer that closed the account, if one did
        self.opened_at_ns = 0
        self.last_at_ns = 0
        self.debits_pending = 0
        self.debits_posted = 0
        self.credits_pending = 0
        self.credits_posted = 0
        self.user_data_128 = 0
        self.user_data_64 = 0
        self.user_data_32 = 0
        self.linked = False
        self.history = False
        self.imported = False
        self.account_type = ""
        self.parent_id = 0
        self.name = ""

    @property
    def flags(self) -> tuple[bool, ...]:
        return (
            self.linked,
            self.debits_must_not_exceed_credits,
            self.credits_must_not_exceed_debits,
            self.history,
            self.imported,
            self.opened_closed,
        )

    # ------------------------------------------------------------------ commands

    @classmethod
    def open(cls, spec: AccountSpec, existing: Account | None, now_ns: int) -> Account:
        """The rules one account decides alone, in their order, then ``AccountOpened``.

        The rules that need other aggregates (the parent in the chart, the ledger's imports
        and closed periods) are checked by :func:`domain.ledger.service.open_account`.
        """
        check_account_shape(spec, existing)
        return cls.create(spec, now_ns)

    @classmethod
    def create(cls, spec: AccountSpec, timestamp_ns: int) -> Account:
        account = cls(spec.account_id)
        account._trigger(
            AccountOpened(
                spec.account_id,
                spec.ledger,
                spec.currency,
                spec.code,
                spec.debits_must_not_exceed_credits,
                spec.credits_must_not_exceed_debits,
                spec.closed,
                timestamp_ns,
                spec.user_data_128,
                spec.user_data_64,
                spec.user_data_32,
                spec.linked,
                spec.history,
                spec.imported,
                spec.account_type,
                spec.parent_id,
                spec.name,
            )
        )
        return account

    def check_same(self, spec: AccountSpec) -> None:
        """TigerBeetle's order for a re-submitted id (then Ledgerline's own fields)."""
        ids = {"account_id": self.account_id}
        if spec.flags != self.flags:
            raise e.AccountExistsWithDifferentFlags("account exists with other flags", **ids)
        if spec.user_data_128 != self.user_data_128:
            raise e.AccountExistsWithDifferentUserData128(
                "account exists with another user_data_128", **ids
            )
        if spec.user_data_64 != self.user_data_64:
            raise e.AccountExistsWithDifferentUserData64(
                "account exists with another user_data_64", **ids
            )
        if spec.user_data_32 != self.user_data_32:
            raise e.AccountExistsWithDifferentUserData32(
                "account exists with another user_data_32", **ids
            )
        if spec.ledger != self.ledger:
            raise e.AccountExistsWithDifferentLedger("account exists on another ledger", **ids)
        if spec.currency != self.currency:
            raise e.AccountExistsWithDifferentCurrency("account exists in another currency", **ids)
        if spec.code != self.code:
            raise e.AccountExistsWithDifferentCode("account exists with another code", **ids)
        if spec.account_type != self.account_type:
            raise e.AccountExistsWithDifferentAccountType(
                "account exists with another account type", **ids
            )
        if spec.parent_id != self.parent_id:
            raise e.AccountExistsWithDifferentParentId("account exists with another parent", **ids)
        if spec.name != self.name:
            raise e.AccountExistsWithDifferentName("account exists with another name", **ids)

    # Kept for callers of the earlier API.
    _check_same = check_same

    def check_can_take(self, side: str, amount: int, transfer_id: int) -> None:
        """The rules for a new debit or credit of ``amount``, without applying it."""
        ids = {"account_id": self.account_id, "transfer_id": transfer_id}
        if self.closed:
            kind = e.DebitAccountAlreadyClosed if side == "debit" else e.CreditAccountAlreadyClosed
            raise kind(f"account {self.account_id} is closed", side=side, **ids)
        if (
            side == "debit"
            and self.debits_must_not_exceed_credits
            and self.debits_pending + self.debits_posted + amount > self.credits_posted
        ):
            raise e.ExceedsCredits(
                f"debiting {self.major(amount)} would take account {self.account_id}'s debits "
                f"past its credits ({self.major(self.credits_posted)} posted)",
                **ids,
            )
        if (
            side == "credit"
            and self.credits_must_not_exceed_debits
            and self.credits_pending + self.credits_posted + amount > self.debits_posted
        ):
            raise e.ExceedsDebits(
                f"crediting {self.major(amount)} would take account {self.account_id}'s "
                f"credits past its debits ({self.major(self.debits_posted)} posted)",
                **ids,
            )

    def major(self, amount_minor: int) -> str:
        """An amount as people read it: major units and the currency (``900.00 USD``)."""
        return f"{format_major(amount_minor, self.currency)} {self.currency}"

    def balancing_room(self, side: str) -> int:
        """How much a balancing transfer may move on this side (TigerBeetle's formula, whether
        or not the account has the limit flag)."""
        if side == "debit":
            return max(0, self.credits_posted - (self.debits_posted + self.debits_pending))
        return max(0, self.debits_posted - (self.credits_posted + self.credits_pending))

    def post_amount(
        self, side: str, transfer_id: int, amount: int, now_ns: int, *, checked: bool = False
    ) -> None:
        if not checked:
            self.check_can_take(side, amount, transfer_id)
        self._trigger(
            AmountPosted(
                self.account_id, transfer_id, self.ledger, self.currency, side, now_ns, amount
            )
        )

    def reserve_amount(
        self, side: str, transfer_id: int, amount: int, now_ns: int, *, checked: bool = False
    ) -> None:
        if not checked:
            self.check_can_take(side, amount, transfer_id)
        self._trigger(
            AmountReserved(
                self.account_id, transfer_id, self.ledger, self.currency, side, now_ns, amount
            )
        )

    def post_reservation(
        self,
        side: str,
        transfer_id: int,
        reserved: int,
        posted: int,
        now_ns: int,
        by_transfer_id: int = 0,
    ) -> None:
        pending = self.debits_pending if side == "debit" else self.credits_pending
        invariant(0 <= posted <= reserved <= pending, "a post stays within the reservation")
        self._trigger(
            ReservationPosted(
                self.account_id,
                transfer_id,
                self.ledger,
                self.currency,
                side,
                now_ns,
                reserved,
                posted,
                by_transfer_id,
            )
        )

    def release_reservation(
        self,
        side: str,
        transfer_id: int,
        amount: int,
        reason: str,
        now_ns: int,
        by_transfer_id: int = 0,
    ) -> None:
        pending = self.debits_pending if side == "debit" else self.credits_pending
        invariant(0 <= amount <= pending, "a release stays within the reservation")
        self._trigger(
            ReservationReleased(
                self.account_id,
                transfer_id,
                self.ledger,
                self.currency,
                side,
                now_ns,
                amount,
                reason,
                by_transfer_id,
            )
        )

    def close_by(self, transfer_id: int, now_ns: int) -> None:
        invariant(not self.closed, "only an open account is closed by a transfer")
        self._trigger(AccountClosed(self.account_id, transfer_id, now_ns))

    def reopen_by(self, transfer_id: int, now_ns: int) -> None:
        invariant(
            self.closed and self.closed_by == transfer_id,
            "only the transfer that closed an account reopens it",
        )
        self._trigger(AccountReopened(self.account_id, transfer_id, now_ns))

    def _trigger(self, event: object) -> None:
        super()._trigger(event)
        # Paired check: the rule was validated before the event; the state must agree after.
        broken = self._broken_balances()
        if broken is not None:
            invariant(False, f"account {self.account_id} {broken}")

    def _broken_balances(self) -> str | None:
        """What is wrong with the balances, if anything (a message is built only then)."""
        debits = self.debits_pending + self.debits_posted
        credits = self.credits_pending + self.credits_posted
        lowest = min(
            self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted
        )
        if lowest < 0:
            return "balances went negative"
        if debits > U128_MAX or credits > U128_MAX:
            return "balances overflowed 128 bits"
        if self.debits_must_not_exceed_credits and debits > self.credits_posted:
            return "debits exceed credits"
        if self.credits_must_not_exceed_debits and credits > self.debits_posted:
            return "credits exceed debits"
        return None

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        if isinstance(event, BalanceChange):
            dp, dpo, cp, cpo = event.deltas()
            self.debits_pending += dp
            self.debits_posted += dpo
            self.credits_pending += cp
            self.credits_posted += cpo
            self.last_at_ns = max(self.last_at_ns, event.at_ns)
        elif isinstance(event, AccountOpened):
            self.ledger = event.ledger
            self.currency = event.currency
            self.code = event.code
            self.debits_must_not_exceed_credits = event.debits_must_not_exceed_credits
            self.credits_must_not_exceed_debits = event.credits_must_not_exceed_debits
            self.closed = event.closed
            self.opened_closed = event.closed
            self.opened_at_ns = event.opened_at_ns
            self.last_at_ns = event.opened_at_ns
            self.user_data_128 = event.user_data_128
            self.user_data_64 = event.user_data_64
            self.user_data_32 = event.user_data_32
            self.linked = event.linked
            self.history = event.history
            self.imported = event.imported
            self.account_type = event.account_type
            self.parent_id = event.parent_id
            self.name = event.name
        elif isinstance(event, AccountClosed):
            self.closed = True
            self.closed_by = event.transfer_id
            self.last_at_ns = max(self.last_at_ns, event.at_ns)
        elif isinstance(event, AccountReopened):
            self.closed = False
            self.closed_by = 0
            self.last_at_ns = max(self.last_at_ns, event.at_ns)
        else:  # pragma: no cover - a programming error
            invariant(False, f"Account cannot apply {type(event).__name__}")

    def approx_bytes(self) -> int:
        """Roughly the memory held: a slot holding a shared default (0, False, "") costs its
        pointer; TigerBeetle's fields are mostly at their defaults."""
        return self._shared_defaults_size()

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, object]) -> Account:
        # A snapshot taken before a field existed lacks it: start from the defaults.
        account = cls(int(stream_id.split(":", 1)[1]))
        for name in cls._state_slots():
            if name in state:
                setattr(account, name, state[name])
        if "opened_closed" not in state:  # before closing by transfer, only opening closed
            account.opened_closed = account.closed
        account.version = version
        return account


def check_account_shape(spec: AccountSpec, existing: Account | None) -> None:
    """The rules of opening that need no other aggregate, in TigerBeetle's order: ids,
    idempotency, flags, ledger and code; then Ledgerline's currency and account type."""
    ids = {"account_id": spec.account_id}
    if spec.account_id == 0:
        raise e.IdMustNotBeZero("account id 0 is reserved", **ids)
    if spec.account_id >= ID_INT_MAX:
        raise e.IdMustNotBeIntMax("account id 2^128-1 is reserved", **ids)
    if existing is not None:
        existing.check_same(spec)
        raise e.Exists(f"account {spec.account_id} exists", **ids)
    if spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits:
        raise e.FlagsAreMutuallyExclusive(
            "an account cannot limit both its debits and its credits", **ids
        )
    if spec.ledger == 0:
        raise e.LedgerMustNotBeZero("an account's ledger is 1..2^32-1", **ids)
    if spec.code == 0:
        raise e.CodeMustNotBeZero("an account's code is 1..65535", **ids)
    if not is_currency(spec.currency):
        raise e.UnknownCurrencyCode(f"{spec.currency!r} is not an ISO 4217 currency", **ids)
    if spec.account_type and spec.account_type not in ACCOUNT_TYPES:
        raise e.UnknownAccountType(
            f"{spec.account_type!r} is not one of {', '.join(ACCOUNT_TYPES)}", **ids
        )
