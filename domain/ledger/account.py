"""Account: one side of every transfer.

Definition
    An account has a client-chosen id, a ledger, an ISO 4217 currency, a code, flags, and four
    balances in minor units: ``debits_pending``, ``debits_posted``, ``credits_pending``,
    ``credits_posted``. Stream: ``account:<id>``.

Guarantees
    * Balances change only through transfer events and are never negative.
    * With ``debits_must_not_exceed_credits``: debits_pending + debits_posted <= credits_posted,
      always. With ``credits_must_not_exceed_debits``: the mirror image.
    * Fields other than the balances never change after opening.

Constraints
    The two limit flags are mutually exclusive. A closed account takes no new debits or
    credits; reservations made before closing can still be posted or released.

Rejections (in precedence order)
    Opening: ``id_must_not_be_zero``, ``id_must_not_be_int_max``,
    ``flags_are_mutually_exclusive``, ``unknown_currency``,
    ``exists_with_different_flags``, ``exists_with_different_ledger``,
    ``exists_with_different_currency``, ``exists_with_different_code``, ``exists``.
    Debiting or crediting: ``account_closed``, ``exceeds_credits`` / ``exceeds_debits``.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.events import (
    AccountOpened,
    AmountPosted,
    AmountReserved,
    BalanceChange,
    ReservationPosted,
    ReservationReleased,
)
from domain.money import is_currency

ID_INT_MAX = 2**128 - 1  # ids are unsigned 128-bit; this one is reserved (TigerBeetle)


def stream_id(account_id: int) -> str:
    return f"account:{account_id}"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    account_id: int
    ledger: int
    currency: str
    code: int
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    closed: bool = False


class Account(Aggregate):
    __slots__ = (
        "account_id",
        "closed",
        "code",
        "credits_must_not_exceed_debits",
        "credits_pending",
        "credits_posted",
        "currency",
        "debits_must_not_exceed_credits",
        "debits_pending",
        "debits_posted",
        "ledger",
        "opened_at_ns",
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
        self.opened_at_ns = 0
        self.debits_pending = 0
        self.debits_posted = 0
        self.credits_pending = 0
        self.credits_posted = 0

    # ------------------------------------------------------------------ commands

    @classmethod
    def open(cls, spec: AccountSpec, existing: Account | None, now_ns: int) -> Account:
        if spec.account_id <= 0 or spec.ledger <= 0 or spec.code <= 0:
            raise e.IdMustNotBeZero(
                "account id, ledger and code must be positive", account_id=spec.account_id
            )
        if spec.account_id == ID_INT_MAX:
            raise e.IdMustNotBeIntMax("account id 2^128-1 is reserved", account_id=spec.account_id)
        if spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits:
            raise e.FlagsAreMutuallyExclusive(
                "an account cannot limit both its debits and its credits",
                account_id=spec.account_id,
            )
        if not is_currency(spec.currency):
            raise e.UnknownCurrencyCode(
                f"{spec.currency!r} is not an ISO 4217 currency", account_id=spec.account_id
            )
        if existing is not None:
            existing._check_same(spec)
            raise e.Exists(f"account {spec.account_id} exists", account_id=spec.account_id)
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
                now_ns,
            )
        )
        return account

    def _check_same(self, spec: AccountSpec) -> None:
        ids = {"account_id": self.account_id}
        if (
            spec.debits_must_not_exceed_credits,
            spec.credits_must_not_exceed_debits,
            spec.closed,
        ) != (
            self.debits_must_not_exceed_credits,
            self.credits_must_not_exceed_debits,
            self.closed,
        ):
            raise e.AccountExistsWithDifferentFlags("account exists with other flags", **ids)
        if spec.ledger != self.ledger:
            raise e.AccountExistsWithDifferentLedger("account exists on another ledger", **ids)
        if spec.currency != self.currency:
            raise e.AccountExistsWithDifferentCurrency("account exists in another currency", **ids)
        if spec.code != self.code:
            raise e.AccountExistsWithDifferentCode("account exists with another code", **ids)

    def check_can_take(self, side: str, amount: int, transfer_id: int) -> None:
        """The rules for a new debit or credit of ``amount``, without applying it."""
        ids = {"account_id": self.account_id, "transfer_id": transfer_id}
        if self.closed:
            raise e.AccountClosed(f"account {self.account_id} is closed", side=side, **ids)
        if (
            side == "debit"
            and self.debits_must_not_exceed_credits
            and self.debits_pending + self.debits_posted + amount > self.credits_posted
        ):
            raise e.ExceedsCredits(
                f"debiting {amount} would take account {self.account_id}'s debits past its "
                f"credits ({self.credits_posted} posted)",
                **ids,
            )
        if (
            side == "credit"
            and self.credits_must_not_exceed_debits
            and self.credits_pending + self.credits_posted + amount > self.debits_posted
        ):
            raise e.ExceedsDebits(
                f"crediting {amount} would take account {self.account_id}'s credits past "
                f"its debits ({self.debits_posted} posted)",
                **ids,
            )

    def post_amount(self, side: str, transfer_id: int, amount: int, now_ns: int) -> None:
        self.check_can_take(side, amount, transfer_id)
        self._trigger(
            AmountPosted(
                self.account_id, transfer_id, self.ledger, self.currency, side, now_ns, amount
            )
        )

    def reserve_amount(self, side: str, transfer_id: int, amount: int, now_ns: int) -> None:
        self.check_can_take(side, amount, transfer_id)
        self._trigger(
            AmountReserved(
                self.account_id, transfer_id, self.ledger, self.currency, side, now_ns, amount
            )
        )

    def post_reservation(
        self, side: str, transfer_id: int, reserved: int, posted: int, now_ns: int
    ) -> None:
        pending = self.debits_pending if side == "debit" else self.credits_pending
        invariant(0 < posted <= reserved <= pending, "a post stays within the reservation")
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
            )
        )

    def release_reservation(
        self, side: str, transfer_id: int, amount: int, reason: str, now_ns: int
    ) -> None:
        pending = self.debits_pending if side == "debit" else self.credits_pending
        invariant(0 < amount <= pending, "a release stays within the reservation")
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
            )
        )

    def _trigger(self, event: object) -> None:
        super()._trigger(event)
        # Paired check: the rule was validated before the event; the state must agree after.
        invariant(
            min(self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted)
            >= 0,
            f"account {self.account_id} balances went negative",
        )
        invariant(
            not self.debits_must_not_exceed_credits
            or self.debits_pending + self.debits_posted <= self.credits_posted,
            f"account {self.account_id} debits exceed credits",
        )
        invariant(
            not self.credits_must_not_exceed_debits
            or self.credits_pending + self.credits_posted <= self.debits_posted,
            f"account {self.account_id} credits exceed debits",
        )

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        if isinstance(event, BalanceChange):
            dp, dpo, cp, cpo = event.deltas()
            self.debits_pending += dp
            self.debits_posted += dpo
            self.credits_pending += cp
            self.credits_posted += cpo
        elif isinstance(event, AccountOpened):
            self.ledger = event.ledger
            self.currency = event.currency
            self.code = event.code
            self.debits_must_not_exceed_credits = event.debits_must_not_exceed_credits
            self.credits_must_not_exceed_debits = event.credits_must_not_exceed_debits
            self.closed = event.closed
            self.opened_at_ns = event.opened_at_ns
        else:  # pragma: no cover - a programming error
            invariant(False, f"Account cannot apply {type(event).__name__}")
