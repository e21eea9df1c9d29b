"""Named rejections of the ledger, one class per rule. ``code`` is the stable public name.

Every rejection carries the ids involved. The order in which rules are checked is documented
in :mod:`domain.ledger.service` and exported as ``CREATE_TRANSFER_ORDER`` and friends.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LedgerRejection(Exception):
    """Root of every ledger rule violation."""

    code: ClassVar[str] = "ledger_rejection"

    def __init__(self, detail: str, **ids: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.ids = ids

    def to_outcome(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.ids}


def _rule(name: str, code: str, doc: str) -> type[LedgerRejection]:
    return type(name, (LedgerRejection,), {"code": code, "__doc__": doc})


# Identity and shape
IdMustNotBeZero = _rule("IdMustNotBeZero", "id_must_not_be_zero", "Ids are 1..2^128-2.")
IdMustNotBeIntMax = _rule(
    "IdMustNotBeIntMax", "id_must_not_be_int_max", "2^128-1 is reserved, as in TigerBeetle."
)
DebitAccountIdMustNotBeIntMax = _rule(
    "DebitAccountIdMustNotBeIntMax",
    "debit_account_id_must_not_be_int_max",
    "2^128-1 names no account.",
)
CreditAccountIdMustNotBeIntMax = _rule(
    "CreditAccountIdMustNotBeIntMax",
    "credit_account_id_must_not_be_int_max",
    "2^128-1 names no account.",
)
FlagsAreMutuallyExclusive = _rule(
    "FlagsAreMutuallyExclusive",
    "flags_are_mutually_exclusive",
    "An account cannot limit both debits and credits.",
)
UnknownCurrencyCode = _rule(
    "UnknownCurrencyCode", "unknown_currency", "The currency is not an ISO 4217 code."
)
AccountsMustBeDifferent = _rule(
    "AccountsMustBeDifferent",
    "accounts_must_be_different",
    "A transfer moves money between two distinct accounts.",
)
AmountMustNotBeZero = _rule(
    "AmountMustNotBeZero", "amount_must_not_be_zero", "Amounts are positive minor units."
)
TimeoutReservedForPendingTransfer = _rule(
    "TimeoutReservedForPendingTransfer",
    "timeout_reserved_for_pending_transfer",
    "Only a pending transfer may have a timeout.",
)
# Idempotency
AccountExistsWithDifferentLedger = _rule(
    "AccountExistsWithDifferentLedger", "exists_with_different_ledger", "Same id, other ledger."
)
AccountExistsWithDifferentCurrency = _rule(
    "AccountExistsWithDifferentCurrency",
    "exists_with_different_currency",
    "Same id, other currency.",
)
AccountExistsWithDifferentCode = _rule(
    "AccountExistsWithDifferentCode", "exists_with_different_code", "Same id, other code."
)
AccountExistsWithDifferentFlags = _rule(
    "AccountExistsWithDifferentFlags", "exists_with_different_flags", "Same id, other flags."
)
ExistsWithDifferentFlags = _rule(
    "ExistsWithDifferentFlags",
    "exists_with_different_flags",
    "A transfer with this id exists with other flags (pending or not).",
)
ExistsWithDifferentTimeout = _rule(
    "ExistsWithDifferentTimeout", "exists_with_different_timeout", "Same id, other timeout."
)
ExistsWithDifferentDebitAccountId = _rule(
    "ExistsWithDifferentDebitAccountId",
    "exists_with_different_debit_account_id",
    "Same id, other debit account.",
)
ExistsWithDifferentCreditAccountId = _rule(
    "ExistsWithDifferentCreditAccountId",
    "exists_with_different_credit_account_id",
    "Same id, other credit account.",
)
ExistsWithDifferentAmount = _rule(
    "ExistsWithDifferentAmount", "exists_with_different_amount", "Same id, other amount."
)
ExistsWithDifferentLedger = _rule(
    "ExistsWithDifferentLedger", "exists_with_different_ledger", "Same id, other ledger."
)
ExistsWithDifferentCode = _rule(
    "ExistsWithDifferentCode", "exists_with_different_code", "Same id, other code."
)
IdAlreadyFailed = _rule(
    "IdAlreadyFailed",
    "id_already_failed",
    "The id was used by a command that was rejected; a failed id never succeeds later.",
)
# References
AccountNotFound = _rule("AccountNotFound", "account_not_found", "No account with this id.")
DebitAccountNotFound = _rule(
    "DebitAccountNotFound", "debit_account_not_found", "The debit account does not exist."
)
CreditAccountNotFound = _rule(
    "CreditAccountNotFound", "credit_account_not_found", "The credit account does not exist."
)
LedgerMustMatch = _rule(
    "LedgerMustMatch",
    "ledger_must_match",
    "Both accounts and the transfer must be on the same ledger.",
)
CurrencyMustMatch = _rule(
    "CurrencyMustMatch", "currency_must_match", "Both accounts must hold the same currency."
)
AccountClosed = _rule(
    "AccountClosed", "account_closed", "A closed account takes no transfers (voids excepted)."
)
# Balance limits
ExceedsCredits = _rule(
    "ExceedsCredits",
    "exceeds_credits",
    "The debit would take a debits_must_not_exceed_credits account past its credits.",
)
ExceedsDebits = _rule(
    "ExceedsDebits",
    "exceeds_debits",
    "The credit would take a credits_must_not_exceed_debits account past its debits.",
)
# Two-phase transfers
PendingTransferNotFound = _rule(
    "PendingTransferNotFound", "pending_transfer_not_found", "No transfer with this id."
)
PendingTransferNotPending = _rule(
    "PendingTransferNotPending",
    "pending_transfer_not_pending",
    "The transfer was not created as pending.",
)
PendingTransferAlreadyPosted = _rule(
    "PendingTransferAlreadyPosted",
    "pending_transfer_already_posted",
    "The pending transfer was already posted.",
)
PendingTransferAlreadyVoided = _rule(
    "PendingTransferAlreadyVoided",
    "pending_transfer_already_voided",
    "The pending transfer was already voided.",
)
PendingTransferExpired = _rule(
    "PendingTransferExpired",
    "pending_transfer_expired",
    "The pending transfer's timeout has passed; its amounts are released.",
)
PendingTransferNotExpired = _rule(
    "PendingTransferNotExpired",
    "pending_transfer_not_expired",
    "The pending transfer's timeout has not passed yet.",
)
ExceedsPendingTransferAmount = _rule(
    "ExceedsPendingTransferAmount",
    "exceeds_pending_transfer_amount",
    "A post may not exceed the pending amount.",
)
LinkedEventFailed = _rule(
    "LinkedEventFailed",
    "linked_event_failed",
    "Another transfer of the same linked batch failed, so none was applied.",
)


class Exists(LedgerRejection):
    """Not an error: the same object already exists with identical fields.

    The application answers it with the existing object, as TigerBeetle's ``exists``.
    """

    code = "exists"


ALL_RULES: tuple[type[LedgerRejection], ...] = tuple(
    v for v in globals().values() if isinstance(v, type) and issubclass(v, LedgerRejection)
)
