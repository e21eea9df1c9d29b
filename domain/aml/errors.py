"""Named rejections of the AML context, one class per rule. ``code`` is the stable public name.

Every rejection carries the ids involved. The order in which the rules of each command are
checked is documented in the module that owns the command (:mod:`domain.aml.transactions`,
:mod:`domain.aml.reference`, :mod:`domain.aml.rules`, :mod:`domain.aml.cases`) and exported
there as ``*_ORDER`` tuples.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.rejection import Rejection, rule


class AmlRejection(Rejection):
    """Root of every AML rule violation."""

    code: ClassVar[str] = "aml_rejection"


def _rule(name: str, code: str, doc: str) -> type[AmlRejection]:
    return rule(AmlRejection, name, code, doc)


# ------------------------------------------------------------------ transactions
InvalidTransactionId = _rule(
    "InvalidTransactionId",
    "invalid_transaction_id",
    "A transaction id is 1 to 128 printable characters without spaces.",
)
InvalidAccountReference = _rule(
    "InvalidAccountReference",
    "invalid_account_reference",
    "An account reference is 1 to 128 printable characters without spaces.",
)
InvalidChannel = _rule(
    "InvalidChannel", "invalid_channel", "channel is one of card, ach, instant, wire, cash."
)
InvalidKind = _rule(
    "InvalidKind",
    "invalid_kind",
    "kind is one of transfer, cash_deposit, cash_withdrawal.",
)
CashSideMismatch = _rule(
    "CashSideMismatch",
    "cash_side_mismatch",
    "A cash deposit comes from CASH, a cash withdrawal goes to CASH, a transfer touches no CASH.",
)
AccountsMustBeDifferent = _rule(
    "AccountsMustBeDifferent",
    "accounts_must_be_different",
    "A transaction moves money between two distinct parties.",
)
InvalidCountry = _rule(
    "InvalidCountry", "invalid_country", "Countries are ISO 3166-1 alpha-2 codes (two letters)."
)
UnknownCurrency = _rule(
    "UnknownCurrency", "unknown_currency", "The currency is not an active ISO 4217 code."
)
InvalidAmount = _rule(
    "InvalidAmount",
    "invalid_amount",
    "The amount is a positive plain decimal string within the currency's precision.",
)
CurrencyWithoutRate = _rule(
    "CurrencyWithoutRate",
    "currency_without_rate",
    "No USD rate is loaded for the currency, so no USD threshold could apply to it.",
)
TimestampInFuture = _rule(
    "TimestampInFuture",
    "timestamp_in_future",
    "The business time lies further in the future than the allowed clock skew.",
)
InvalidTimestamp = _rule(
    "InvalidTimestamp", "invalid_timestamp", "The timestamp is not an RFC 3339 date-time."
)
TransactionExistsWithDifferentField = _rule(
    "TransactionExistsWithDifferentField",
    "exists_with_different_field",
    "A transaction with this id exists with another value of a field (the code names it).",
)
# ------------------------------------------------------------------ reference data
InvalidSegment = _rule("InvalidSegment", "invalid_segment", "segment is individual or business.")
InvalidRiskRating = _rule(
    "InvalidRiskRating", "invalid_risk_rating", "risk_rating is low, medium or high."
)
InvalidOpened = _rule("InvalidOpened", "invalid_opened", "opened is an RFC 3339 date or date-time.")
InvalidRate = _rule(
    "InvalidRate",
    "invalid_rate",
    "A rate is a positive plain decimal string: USD per one unit of the currency.",
)
RatesMustNotBeEmpty = _rule(
    "RatesMustNotBeEmpty", "rates_must_not_be_empty", "A rates table names at least one rate."
)
# ------------------------------------------------------------------ rules
UnknownRule = _rule("UnknownRule", "unknown_rule", "No rule with this id exists.")
UnknownDetector = _rule(
    "UnknownDetector", "unknown_detector", "A rule runs one of the built-in detectors."
)
RuleExists = _rule("RuleExists", "rule_exists", "A rule with this id exists; change it instead.")
UnknownRuleParameter = _rule(
    "UnknownRuleParameter",
    "unknown_rule_parameter",
    "The detector has no parameter with this name.",
)
InvalidRuleParameter = _rule(
    "InvalidRuleParameter",
    "invalid_rule_parameter",
    "The value has the wrong type or lies outside the parameter's bounds.",
)
AuthorRequired = _rule("AuthorRequired", "author_required", "A rule change names its author.")
ReasonRequired = _rule("ReasonRequired", "reason_required", "A rule change states its reason.")
RuleUnchanged = _rule(
    "RuleUnchanged", "rule_unchanged", "The change would leave the rule as it is."
)
# ------------------------------------------------------------------ cases
CaseNotFound = _rule("CaseNotFound", "case_not_found", "No case with this id.")
CaseExists = _rule("CaseExists", "case_exists", "A case with this id was already opened.")
AlertsRequired = _rule(
    "AlertsRequired", "alerts_required", "A case is opened from at least one alert."
)
ActorRequired = _rule("ActorRequired", "actor_required", "Every case action names who took it.")
TextRequired = _rule(
    "TextRequired", "text_required", "A note, reason or evidence reference is not empty."
)
CaseClosed = _rule(
    "CaseClosed",
    "case_closed",
    "A closed case (or one with a SAR filed) takes no further work; reopen it first.",
)
CaseNotClosed = _rule("CaseNotClosed", "case_not_closed", "Only a closed case can be reopened.")
CaseAlreadyEscalated = _rule(
    "CaseAlreadyEscalated", "case_already_escalated", "The case was already escalated."
)
CaseNotEscalated = _rule(
    "CaseNotEscalated",
    "case_not_escalated",
    "A SAR is filed from an escalated case (the second pair of eyes).",
)
SarAlreadyFiled = _rule(
    "SarAlreadyFiled", "sar_already_filed", "A SAR was already filed for this case."
)
InvalidDisposition = _rule(
    "InvalidDisposition",
    "invalid_disposition",
    "The disposition is not one of the documented closing dispositions.",
)
AlreadyAssigned = _rule(
    "AlreadyAssigned", "already_assigned", "The case is already assigned to this analyst."
)
# ------------------------------------------------------------------ sanctions
SanctionsListEmpty = _rule(
    "SanctionsListEmpty", "sanctions_list_empty", "A sanctions list holds at least one entry."
)
InvalidSanctionsEntry = _rule(
    "InvalidSanctionsEntry",
    "invalid_sanctions_entry",
    "Every sanctions entry has a uid and a name.",
)


class Exists(AmlRejection):
    """Not an error: the same object already exists with identical fields."""

    code = "exists"


_DIFFERENT: dict[str, type[AmlRejection]] = {}


def exists_with_different(field: str, detail: str, **ids: Any) -> AmlRejection:
    """The rejection for a re-used id whose ``field`` differs: ``exists_with_different_<field>``.

    One subclass of :class:`TransactionExistsWithDifferentField` per field, made once.
    """
    cls = _DIFFERENT.get(field)
    if cls is None:
        name = "ExistsWithDifferent" + "".join(p.title() for p in field.split("_"))
        cls = type(
            name, (TransactionExistsWithDifferentField,), {"code": f"exists_with_different_{field}"}
        )
        _DIFFERENT[field] = cls
    return cls(detail, field=field, **ids)


ALL_RULES: tuple[type[AmlRejection], ...] = tuple(
    v for v in globals().values() if isinstance(v, type) and issubclass(v, AmlRejection)
)
