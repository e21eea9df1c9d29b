"""Named rejections of the ledger, one class per rule. ``code`` is the stable public name.

Every rejection carries the ids involved. The codes are TigerBeetle's wherever TigerBeetle has
the rule (``requests/create_accounts.md``, ``requests/create_transfers.md``); the order in
which rules are checked is documented in :mod:`domain.ledger.service` and exported as
``CREATE_TRANSFER_ORDER`` and friends. Rules Ledgerline adds (currencies, the chart of
accounts, closed periods, reversals, expiry) have codes in the same style.
"""

from __future__ import annotations

from typing import ClassVar

from domain.rejection import Rejection, rule


class LedgerRejection(Rejection):
    """Root of every ledger rule violation."""

    code: ClassVar[str] = "ledger_rejection"


def _rule(
    name: str, code: str, doc: str, base: type[LedgerRejection] = LedgerRejection
) -> type[LedgerRejection]:
    return rule(base, name, code, doc)


# ------------------------------------------------------------------ batches: chains, imports
LinkedEventFailed = _rule(
    "LinkedEventFailed",
    "linked_event_failed",
    "Another event of the same linked chain failed, so none of the chain was applied.",
)
LinkedEventChainOpen = _rule(
    "LinkedEventChainOpen",
    "linked_event_chain_open",
    "The last event of a batch has flags.linked: the chain it opens never closes.",
)
ImportedEventExpected = _rule(
    "ImportedEventExpected",
    "imported_event_expected",
    "The batch's first event is imported, this one is not: a batch does not mix them.",
)
ImportedEventNotExpected = _rule(
    "ImportedEventNotExpected",
    "imported_event_not_expected",
    "The batch's first event is not imported, this one is: a batch does not mix them.",
)
TimestampMustBeZero = _rule(
    "TimestampMustBeZero",
    "timestamp_must_be_zero",
    "Only an imported event carries its own timestamp; the ledger stamps the others.",
)
ImportedEventTimestampOutOfRange = _rule(
    "ImportedEventTimestampOutOfRange",
    "imported_event_timestamp_out_of_range",
    "An imported timestamp is 1..2^63-1 nanoseconds since the Unix epoch.",
)
ImportedEventTimestampMustNotAdvance = _rule(
    "ImportedEventTimestampMustNotAdvance",
    "imported_event_timestamp_must_not_advance",
    "An imported timestamp lies in the past: before the ledger's clock at the request.",
)
ImportedEventTimestampInClosedPeriod = _rule(
    "ImportedEventTimestampInClosedPeriod",
    "imported_event_timestamp_in_closed_period",
    "The books of the ledger are closed up to and including this time.",
)
ImportedEventTimestampMustNotRegress = _rule(
    "ImportedEventTimestampMustNotRegress",
    "imported_event_timestamp_must_not_regress",
    "Imported timestamps strictly increase: after the last imported account (or transfer) of "
    "the ledger, and after every balance change of the transfer's accounts.",
)
ImportedEventTimestampMustPostdateDebitAccount = _rule(
    "ImportedEventTimestampMustPostdateDebitAccount",
    "imported_event_timestamp_must_postdate_debit_account",
    "An imported transfer happens after its debit account was opened.",
)
ImportedEventTimestampMustPostdateCreditAccount = _rule(
    "ImportedEventTimestampMustPostdateCreditAccount",
    "imported_event_timestamp_must_postdate_credit_account",
    "An imported transfer happens after its credit account was opened.",
)
ImportedEventTimeoutMustBeZero = _rule(
    "ImportedEventTimeoutMustBeZero",
    "imported_event_timeout_must_be_zero",
    "An imported pending transfer has no timeout: the ledger's clock did not start it.",
)

# ------------------------------------------------------------------ identity and shape
IdMustNotBeZero = _rule("IdMustNotBeZero", "id_must_not_be_zero", "Ids are 1..2^128-2.")
IdMustNotBeIntMax = _rule(
    "IdMustNotBeIntMax", "id_must_not_be_int_max", "2^128-1 is reserved, as in TigerBeetle."
)
DebitAccountIdMustNotBeZero = _rule(
    "DebitAccountIdMustNotBeZero", "debit_account_id_must_not_be_zero", "0 names no account."
)
DebitAccountIdMustNotBeIntMax = _rule(
    "DebitAccountIdMustNotBeIntMax",
    "debit_account_id_must_not_be_int_max",
    "2^128-1 names no account.",
)
CreditAccountIdMustNotBeZero = _rule(
    "CreditAccountIdMustNotBeZero", "credit_account_id_must_not_be_zero", "0 names no account."
)
CreditAccountIdMustNotBeIntMax = _rule(
    "CreditAccountIdMustNotBeIntMax",
    "credit_account_id_must_not_be_int_max",
    "2^128-1 names no account.",
)
FlagsAreMutuallyExclusive = _rule(
    "FlagsAreMutuallyExclusive",
    "flags_are_mutually_exclusive",
    "An account cannot limit both debits and credits; a post or void is neither pending, "
    "balancing nor closing, and not both.",
)
UnknownCurrencyCode = _rule(
    "UnknownCurrencyCode", "unknown_currency", "The currency is not an ISO 4217 code."
)
AccountsMustBeDifferent = _rule(
    "AccountsMustBeDifferent",
    "accounts_must_be_different",
    "A transfer moves money between two distinct accounts.",
)
PendingIdMustBeZero = _rule(
    "PendingIdMustBeZero",
    "pending_id_must_be_zero",
    "Only a post or void names a pending transfer.",
)
PendingIdMustNotBeZero = _rule(
    "PendingIdMustNotBeZero",
    "pending_id_must_not_be_zero",
    "A post or void names the pending transfer it settles.",
)
PendingIdMustNotBeIntMax = _rule(
    "PendingIdMustNotBeIntMax", "pending_id_must_not_be_int_max", "2^128-1 names no transfer."
)
PendingIdMustBeDifferent = _rule(
    "PendingIdMustBeDifferent",
    "pending_id_must_be_different",
    "A post or void is a transfer of its own, with an id other than the pending one's.",
)
AmountMustNotBeZero = _rule(
    "AmountMustNotBeZero",
    "amount_must_not_be_zero",
    "Deprecated, as in TigerBeetle 0.16: zero amounts are allowed; no rule raises this.",
)
TimeoutReservedForPendingTransfer = _rule(
    "TimeoutReservedForPendingTransfer",
    "timeout_reserved_for_pending_transfer",
    "Only a pending transfer may have a timeout.",
)
ClosingTransferMustBePending = _rule(
    "ClosingTransferMustBePending",
    "closing_transfer_must_be_pending",
    "A closing transfer is pending, so voiding it reopens the account.",
)
LedgerMustNotBeZero = _rule(
    "LedgerMustNotBeZero", "ledger_must_not_be_zero", "Ledgers are 1..2^32-1."
)
CodeMustNotBeZero = _rule("CodeMustNotBeZero", "code_must_not_be_zero", "Codes are 1..65535.")

# ------------------------------------------------------------------ idempotency
AccountExistsWithDifferentFlags = _rule(
    "AccountExistsWithDifferentFlags", "exists_with_different_flags", "Same id, other flags."
)
AccountExistsWithDifferentUserData128 = _rule(
    "AccountExistsWithDifferentUserData128",
    "exists_with_different_user_data_128",
    "Same id, other user_data_128.",
)
AccountExistsWithDifferentUserData64 = _rule(
    "AccountExistsWithDifferentUserData64",
    "exists_with_different_user_data_64",
    "Same id, other user_data_64.",
)
AccountExistsWithDifferentUserData32 = _rule(
    "AccountExistsWithDifferentUserData32",
    "exists_with_different_user_data_32",
    "Same id, other user_data_32.",
)
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
AccountExistsWithDifferentAccountType = _rule(
    "AccountExistsWithDifferentAccountType",
    "exists_with_different_account_type",
    "Same id, another place in the chart of accounts (type).",
)
AccountExistsWithDifferentParentId = _rule(
    "AccountExistsWithDifferentParentId",
    "exists_with_different_parent_id",
    "Same id, another parent in the chart of accounts.",
)
AccountExistsWithDifferentName = _rule(
    "AccountExistsWithDifferentName", "exists_with_different_name", "Same id, another name."
)
ExistsWithDifferentFlags = _rule(
    "ExistsWithDifferentFlags",
    "exists_with_different_flags",
    "A transfer with this id exists with other flags.",
)
ExistsWithDifferentPendingId = _rule(
    "ExistsWithDifferentPendingId",
    "exists_with_different_pending_id",
    "Same id, settling another pending transfer.",
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
    "ExistsWithDifferentAmount",
    "exists_with_different_amount",
    "Same id, another amount (compared in minor units; for a balancing transfer, less than "
    "was moved; for a post, another resulting amount).",
)
ExistsWithDifferentUserData128 = _rule(
    "ExistsWithDifferentUserData128",
    "exists_with_different_user_data_128",
    "Same id, other user_data_128.",
)
ExistsWithDifferentUserData64 = _rule(
    "ExistsWithDifferentUserData64",
    "exists_with_different_user_data_64",
    "Same id, other user_data_64.",
)
ExistsWithDifferentUserData32 = _rule(
    "ExistsWithDifferentUserData32",
    "exists_with_different_user_data_32",
    "Same id, other user_data_32.",
)
ExistsWithDifferentLedger = _rule(
    "ExistsWithDifferentLedger", "exists_with_different_ledger", "Same id, other ledger."
)
ExistsWithDifferentCode = _rule(
    "ExistsWithDifferentCode", "exists_with_different_code", "Same id, other code."
)
ExistsWithDifferentReversesId = _rule(
    "ExistsWithDifferentReversesId",
    "exists_with_different_reverses_id",
    "Same id, reversing another transfer (or none).",
)
IdAlreadyFailed = _rule(
    "IdAlreadyFailed",
    "id_already_failed",
    "The id was used by a transfer that failed for a reason that depends on state; a failed "
    "id never succeeds later.",
)
# ------------------------------------------------------------------ references
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
AccountsMustHaveTheSameLedger = _rule(
    "AccountsMustHaveTheSameLedger",
    "accounts_must_have_the_same_ledger",
    "The debit and the credit account are on different ledgers.",
    LedgerMustMatch,
)
TransferMustHaveTheSameLedgerAsAccounts = _rule(
    "TransferMustHaveTheSameLedgerAsAccounts",
    "transfer_must_have_the_same_ledger_as_accounts",
    "The accounts share a ledger; the transfer names another.",
    LedgerMustMatch,
)
CurrencyMustMatch = _rule(
    "CurrencyMustMatch", "currency_must_match", "Both accounts must hold the same currency."
)
AccountClosed = _rule(
    "AccountClosed", "account_closed", "A closed account takes no transfers (voids excepted)."
)
DebitAccountAlreadyClosed = _rule(
    "DebitAccountAlreadyClosed",
    "debit_account_already_closed",
    "The debit account is closed: it takes no transfer but a void.",
    AccountClosed,
)
CreditAccountAlreadyClosed = _rule(
    "CreditAccountAlreadyClosed",
    "credit_account_already_closed",
    "The credit account is closed: it takes no transfer but a void.",
    AccountClosed,
)
# ------------------------------------------------------------------ balances
OverflowsDebitsPending = _rule(
    "OverflowsDebitsPending",
    "overflows_debits_pending",
    "debits_pending + amount would pass 2^128-1.",
)
OverflowsCreditsPending = _rule(
    "OverflowsCreditsPending",
    "overflows_credits_pending",
    "credits_pending + amount would pass 2^128-1.",
)
OverflowsDebitsPosted = _rule(
    "OverflowsDebitsPosted", "overflows_debits_posted", "debits_posted + amount would pass 2^128-1."
)
OverflowsCreditsPosted = _rule(
    "OverflowsCreditsPosted",
    "overflows_credits_posted",
    "credits_posted + amount would pass 2^128-1.",
)
OverflowsDebits = _rule(
    "OverflowsDebits",
    "overflows_debits",
    "debits_pending + debits_posted + amount would pass 2^128-1.",
)
OverflowsCredits = _rule(
    "OverflowsCredits",
    "overflows_credits",
    "credits_pending + credits_posted + amount would pass 2^128-1.",
)
OverflowsTimeout = _rule(
    "OverflowsTimeout",
    "overflows_timeout",
    "timestamp + timeout would pass 2^63-1 nanoseconds.",
)
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
# ------------------------------------------------------------------ two-phase transfers
PendingTransferNotFound = _rule(
    "PendingTransferNotFound", "pending_transfer_not_found", "No transfer with this id."
)
PendingTransferNotPending = _rule(
    "PendingTransferNotPending",
    "pending_transfer_not_pending",
    "The transfer was not created as pending.",
)
PendingTransferHasDifferentDebitAccountId = _rule(
    "PendingTransferHasDifferentDebitAccountId",
    "pending_transfer_has_different_debit_account_id",
    "A post or void names a debit account (non-zero) other than the pending transfer's.",
)
PendingTransferHasDifferentCreditAccountId = _rule(
    "PendingTransferHasDifferentCreditAccountId",
    "pending_transfer_has_different_credit_account_id",
    "A post or void names a credit account (non-zero) other than the pending transfer's.",
)
PendingTransferHasDifferentLedger = _rule(
    "PendingTransferHasDifferentLedger",
    "pending_transfer_has_different_ledger",
    "A post or void names a ledger (non-zero) other than the pending transfer's.",
)
PendingTransferHasDifferentCode = _rule(
    "PendingTransferHasDifferentCode",
    "pending_transfer_has_different_code",
    "A post or void names a code (non-zero) other than the pending transfer's.",
)
PendingTransferHasDifferentAmount = _rule(
    "PendingTransferHasDifferentAmount",
    "pending_transfer_has_different_amount",
    "A void releases the whole pending amount: its amount is 0 or exactly that.",
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
# ------------------------------------------------------------------ chart of accounts
UnknownAccountType = _rule(
    "UnknownAccountType",
    "unknown_account_type",
    "An account's type is asset, liability, equity, income or expense (or none).",
)
ParentAccountNotFound = _rule(
    "ParentAccountNotFound", "parent_account_not_found", "The parent account does not exist."
)
ParentAccountMustHaveTheSameLedger = _rule(
    "ParentAccountMustHaveTheSameLedger",
    "parent_account_must_have_the_same_ledger",
    "A chart node and its parent are on one ledger.",
)
ParentAccountMustHaveTheSameCurrency = _rule(
    "ParentAccountMustHaveTheSameCurrency",
    "parent_account_must_have_the_same_currency",
    "A roll-up adds amounts of one currency only.",
)
ParentAccountMustHaveTheSameType = _rule(
    "ParentAccountMustHaveTheSameType",
    "parent_account_must_have_the_same_type",
    "A chart node has its parent's type (an asset rolls up into an asset).",
)
# ------------------------------------------------------------------ period close
PeriodMustHaveEnded = _rule(
    "PeriodMustHaveEnded",
    "period_must_have_ended",
    "A period is closed after its end: its end is before the ledger's clock.",
)
PeriodAlreadyClosed = _rule(
    "PeriodAlreadyClosed",
    "period_already_closed",
    "The books are already closed up to this time or later.",
)
EquityAccountNotFound = _rule(
    "EquityAccountNotFound", "equity_account_not_found", "The equity account does not exist."
)
EquityAccountMustBeEquity = _rule(
    "EquityAccountMustBeEquity",
    "equity_account_must_be_equity",
    "Income and expense are closed into an account of type equity on the same ledger.",
)
PeriodHasLaterActivity = _rule(
    "PeriodHasLaterActivity",
    "period_has_later_activity",
    "An income, expense or the equity account changed after the period's end: its balance "
    "at the end is no longer its balance now, so the period cannot be closed from it.",
)
# ------------------------------------------------------------------ reversals
TransferNotFound = _rule("TransferNotFound", "transfer_not_found", "No transfer with this id.")
TransferAlreadyReversed = _rule(
    "TransferAlreadyReversed",
    "transfer_already_reversed",
    "A transfer is reversed at most once.",
)
PendingTransferCannotBeReversed = _rule(
    "PendingTransferCannotBeReversed",
    "pending_transfer_cannot_be_reversed",
    "A pending transfer is voided, not reversed; a posted one is reversed by its post.",
)
VoidTransferCannotBeReversed = _rule(
    "VoidTransferCannotBeReversed",
    "void_transfer_cannot_be_reversed",
    "A void moved nothing: there is nothing to reverse.",
)


class Exists(LedgerRejection):
    """Not an error: the same object already exists with identical fields.

    The application answers it with the existing object, as TigerBeetle's ``exists``.
    """

    code = "exists"


ALL_RULES: tuple[type[LedgerRejection], ...] = tuple(
    v for v in globals().values() if isinstance(v, type) and issubclass(v, LedgerRejection)
)
BY_CODE: dict[str, type[LedgerRejection]] = {}
for _cls in ALL_RULES:
    BY_CODE.setdefault(_cls.code, _cls)
