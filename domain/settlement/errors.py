"""Named rejections of clearing and settlement, one class per rule. ``code`` is the public name.

Every rejection carries the ids involved (``participant_id``, ``scheme_id``, ``cycle_id``,
``obligation_id``, ``role``, ...). The order in which the rules of each command are checked is
documented in :mod:`domain.settlement.service` and exported there as ``*_ORDER`` tuples.
"""

from __future__ import annotations

from typing import ClassVar

from domain.rejection import Rejection, rule


class SettlementRejection(Rejection):
    """Root of every clearing and settlement rule violation."""

    code: ClassVar[str] = "settlement_rejection"


def _rule(name: str, code: str, doc: str) -> type[SettlementRejection]:
    return rule(SettlementRejection, name, code, doc)


# ------------------------------------------------------------------ shape of the request
IdMustNotBeZero = _rule(
    "IdMustNotBeZero", "id_must_not_be_zero", "Ids (and ledger account ids) are positive."
)
IdMustNotBeIntMax = _rule(
    "IdMustNotBeIntMax",
    "id_must_not_be_int_max",
    "Ids are unsigned 128-bit; 2^128-1 and above are refused, as by the ledger.",
)
AmountMustBePositive = _rule(
    "AmountMustBePositive",
    "amount_must_be_positive",
    "An obligation moves a positive number of minor units (zero and negatives are refused).",
)
AmountTooLarge = _rule(
    "AmountTooLarge",
    "amount_too_large",
    "One obligation is at most 10^18 minor units, so sums stay exact everywhere.",
)
PayerMustDifferFromPayee = _rule(
    "PayerMustDifferFromPayee",
    "payer_must_differ_from_payee",
    "A participant does not owe itself: payer and payee differ.",
)
UnknownCurrency = _rule(
    "UnknownCurrency", "unknown_currency", "The currency is not an active ISO 4217 code."
)
ValueDateInvalid = _rule(
    "ValueDateInvalid", "value_date_invalid", "A value date is a calendar date, YYYY-MM-DD."
)
NameMustNotBeEmpty = _rule(
    "NameMustNotBeEmpty", "name_must_not_be_empty", "Participants and schemes have a name."
)
CapMustNotBeNegative = _rule(
    "CapMustNotBeNegative",
    "cap_must_not_be_negative",
    "A net debit cap is a non-negative amount of minor units.",
)
PositionBoundsMustIncludeZero = _rule(
    "PositionBoundsMustIncludeZero",
    "position_bounds_must_include_zero",
    "RTGS bounds satisfy min_position <= 0 <= max_position: a fresh position (0) is within them.",
)
LimitWithoutAccount = _rule(
    "LimitWithoutAccount",
    "limit_without_account",
    "A cap or position bound names a currency the participant has no settlement account in.",
)
UnknownMode = _rule(
    "UnknownMode", "unknown_mode", "A scheme settles either by deferred netting (dns) or rtgs."
)
CurrenciesMustNotBeEmpty = _rule(
    "CurrenciesMustNotBeEmpty",
    "currencies_must_not_be_empty",
    "A scheme clears at least one currency.",
)
CutOffTimeInvalid = _rule(
    "CutOffTimeInvalid",
    "cut_off_time_invalid",
    "Cut-off times are distinct seconds after midnight UTC, 0..86399.",
)
# ------------------------------------------------------------------ existence
ParticipantExists = _rule(
    "ParticipantExists", "participant_exists", "A participant with this id is registered."
)
SchemeExists = _rule("SchemeExists", "scheme_exists", "A scheme with this id exists.")
SchemeNotFound = _rule("SchemeNotFound", "scheme_not_found", "No scheme with this id.")
ParticipantNotFound = _rule(
    "ParticipantNotFound",
    "participant_not_found",
    "No participant with this id is registered (unknown participant).",
)
ParticipantNotMember = _rule(
    "ParticipantNotMember",
    "participant_not_member",
    "The participant is registered but not admitted to the scheme.",
)
ParticipantAlreadyMember = _rule(
    "ParticipantAlreadyMember",
    "participant_already_member",
    "The participant is already admitted to the scheme.",
)
CycleNotFound = _rule("CycleNotFound", "cycle_not_found", "The scheme has no cycle with this id.")
# ------------------------------------------------------------------ participant state
ParticipantDefaulted = _rule(
    "ParticipantDefaulted",
    "participant_defaulted",
    "The participant was declared in default: it takes part in nothing new.",
)
ParticipantSuspended = _rule(
    "ParticipantSuspended",
    "participant_suspended",
    "The participant is suspended: no new obligations to or from it until reinstated.",
)
ParticipantLacksAccount = _rule(
    "ParticipantLacksAccount",
    "participant_lacks_account",
    "The participant has no settlement account in the currency, so it cannot settle there.",
)
StatusUnchanged = _rule(
    "StatusUnchanged", "status_unchanged", "The participant already has this status."
)
UnknownStatus = _rule(
    "UnknownStatus", "unknown_status", "A status is active, suspended or defaulted."
)
# ------------------------------------------------------------------ scheme and cycle
CurrencyNotCleared = _rule(
    "CurrencyNotCleared",
    "currency_not_cleared",
    "The scheme does not clear this currency.",
)
CycleClosed = _rule(
    "CycleClosed",
    "cycle_closed",
    "The obligation names a cycle that no longer takes obligations (cut off or settled).",
)
ValueDateMismatch = _rule(
    "ValueDateMismatch",
    "value_date_mismatch",
    "The obligation's value date is not the value date of the cycle it would join.",
)
ObligationExists = _rule(
    "ObligationExists",
    "obligation_exists",
    "An obligation with this id is already in the cycle (accepted or queued).",
)
CycleNotOpen = _rule(
    "CycleNotOpen", "cycle_not_open", "Only an open cycle can be cut off or released."
)
CycleNotCutOff = _rule(
    "CycleNotCutOff",
    "cycle_not_cut_off",
    "Positions are frozen at cut-off: settle and unwind wait for it.",
)
CycleAlreadySettled = _rule(
    "CycleAlreadySettled",
    "cycle_already_settled",
    "A settled cycle is final: nothing is unwound or settled again.",
)
NothingToUnwind = _rule(
    "NothingToUnwind",
    "nothing_to_unwind",
    "The participant has no obligation to or from it left in the cycle.",
)
ParticipantAlreadyUnwound = _rule(
    "ParticipantAlreadyUnwound",
    "participant_already_unwound",
    "The participant's obligations were already removed from this cycle.",
)
RtgsPaymentsAreFinal = _rule(
    "RtgsPaymentsAreFinal",
    "rtgs_payments_are_final",
    "An RTGS payment is final once settled: an RTGS cycle is never unwound.",
)
FundingShortfall = _rule(
    "FundingShortfall",
    "funding_shortfall",
    "A net debtor's settlement account cannot fund its pay-in: fund it or unwind the debtor.",
)


ALL_RULES: tuple[type[SettlementRejection], ...] = tuple(
    v
    for v in globals().values()
    if isinstance(v, type) and issubclass(v, SettlementRejection) and v is not SettlementRejection
)


ID_INT_MAX = 2**128 - 1  # reserved, as in TigerBeetle and the ledger


def check_ids(detail: str, *values: int, **context: object) -> None:
    """``id_must_not_be_zero`` for a value below 1, ``id_must_not_be_int_max`` from 2^128-1."""
    if any(v < 1 for v in values):
        raise IdMustNotBeZero(f"{detail} must be positive", **context)
    if any(v >= ID_INT_MAX for v in values):
        raise IdMustNotBeIntMax(f"{detail} must be below 2^128-1", **context)
