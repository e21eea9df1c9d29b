"""Named rejections of reconciliation, one class per rule. ``code`` is the stable public name.

The order in which they are checked is documented in :mod:`domain.reconciliation.service`
(``RECONCILE_ORDER``). Every one is about the request (the statement, the account it names,
the options): none is recorded, and the same statement can be sent again once it is fixed.
"""

from __future__ import annotations

from typing import ClassVar

from domain.rejection import Rejection, rule


class ReconciliationRejection(Rejection):
    """Root of every reconciliation rule violation."""

    code: ClassVar[str] = "reconciliation_rejection"


def _rule(name: str, code: str, doc: str) -> type[ReconciliationRejection]:
    return rule(ReconciliationRejection, name, code, doc)


StatementMalformed = _rule(
    "StatementMalformed",
    "statement_malformed",
    "The statement is not well-formed CAMT.053 XML or CSV of the documented columns.",
)
StatementFormatUnsupported = _rule(
    "StatementFormatUnsupported",
    "statement_format_unsupported",
    "The statement is neither CAMT.053 (versions .02 to .08) nor the documented CSV.",
)
StatementAccountRequired = _rule(
    "StatementAccountRequired",
    "statement_account_required",
    "No ledger account was named for a statement (--account, or a numeric account id in it).",
)
DateToleranceOutOfRange = _rule(
    "DateToleranceOutOfRange",
    "date_tolerance_out_of_range",
    "The date tolerance is 0 to 10 business days.",
)
AccountNotFound = _rule(
    "AccountNotFound",
    "account_not_found",
    "The statement's ledger account does not exist.",
)
StatementCurrencyMustMatch = _rule(
    "StatementCurrencyMustMatch",
    "statement_currency_must_match",
    "The statement (or one of its entries or balances) is in another currency than its account.",
)
