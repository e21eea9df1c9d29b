"""Reference data: know-your-customer profiles of accounts, and the USD rates table.

Account profile (stream ``aml-account:<account>``)
    Definition: the holder's ``name``, ``country``, ``segment`` (individual or business),
    ``business_type``, ``opened`` (RFC 3339 date or date-time), ``risk_rating`` (low, medium,
    high; rules use it to boost scores) and any extra fields, kept as they are.
    Guarantees: re-sending an identical profile records nothing (``exists``); any change
    records the whole new profile, which applies to detection from its log position on.
    Rejections (in precedence order, ``PROFILE_ORDER``): ``invalid_account_reference``,
    ``invalid_country``, ``invalid_segment``, ``invalid_risk_rating``, ``invalid_opened``,
    ``exists``.

Rates (stream ``aml-rates:USD``)
    Definition: USD per one major unit of each currency, as decimal strings.
    Guarantees: a load adds or replaces the given currencies and keeps the others; each load
    applies from its log position on, so a replay converts every amount exactly as the live
    run did. Rates are never removed.
    Rejections (in precedence order, ``RATES_ORDER``): ``rates_must_not_be_empty``,
    ``unknown_currency``, ``invalid_rate``, ``exists``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.events import AccountProfileRecorded, RatesSet
from domain.aml.model import (
    RISK_RATINGS,
    SEGMENTS,
    AccountProfile,
    check_country,
    check_reference,
    float_free,
    parse_date_or_time_ns,
)
from domain.aml.rates import RateTable
from domain.invariant import invariant

PROFILE_ORDER: tuple[str, ...] = (
    "invalid_account_reference",
    "invalid_country",
    "invalid_segment",
    "invalid_risk_rating",
    "invalid_opened",
    "exists",
)
RATES_ORDER: tuple[str, ...] = (
    "rates_must_not_be_empty",
    "unknown_currency",
    "invalid_rate",
    "exists",
)
PROFILE_FIELDS = (
    "account",
    "name",
    "country",
    "segment",
    "business_type",
    "opened",
    "risk_rating",
    "last_activity",
)
RATES_STREAM = "aml-rates:USD"


def profile_stream(account: str) -> str:
    return f"aml-account:{account}"


def parse_profile(record: Mapping[str, Any]) -> AccountProfile:
    """Validate one KYC record; raises the first failing rule of ``PROFILE_ORDER``."""
    account = check_reference(record.get("account"), "account")  # type: ignore[arg-type]
    ids = {"account": account}
    try:
        country = check_country(record.get("country") or "", "country")
    except e.AmlRejection as exc:
        exc.ids.update(ids)
        raise
    segment = record.get("segment") or ""
    if segment not in ("", *SEGMENTS):
        raise e.InvalidSegment(f"segment {segment!r} is not individual or business", **ids)
    risk = record.get("risk_rating") or "low"
    if risk not in RISK_RATINGS:
        raise e.InvalidRiskRating(f"risk_rating {risk!r} is not low, medium or high", **ids)
    opened = record.get("opened")
    last = record.get("last_activity")
    try:
        opened_ns = parse_date_or_time_ns(opened, "opened") if opened else None
        last_ns = parse_date_or_time_ns(last, "last_activity") if last else None
    except e.AmlRejection as exc:
        exc.ids.update(ids)
        raise
    name = record.get("name") or ""
    business_type = record.get("business_type") or ""
    if not isinstance(name, str) or not isinstance(business_type, str):
        raise e.InvalidAccountReference("name and business_type are strings", **ids)
    extra = {k: float_free(v) for k, v in record.items() if k not in PROFILE_FIELDS}
    return AccountProfile(
        account,
        name,
        country,
        segment,
        business_type,
        opened_ns,
        risk,
        last_ns,
        dict(sorted(extra.items())),
    )


def profile_of(event: AccountProfileRecorded) -> AccountProfile:
    return AccountProfile(
        event.account,
        event.name,
        event.country,
        event.segment,
        event.business_type,
        event.opened_ns,
        event.risk_rating,
        event.last_activity_ns,
        dict(event.extra),
    )


class AccountReference(Aggregate):
    """The KYC profile of one account, as a history of whole profiles."""

    __slots__ = ("profile",)

    def __init__(self, account: str) -> None:
        super().__init__(profile_stream(account))
        self.profile: AccountProfile | None = None

    @classmethod
    def record(
        cls, profile: AccountProfile, existing: AccountReference | None, now_ns: int
    ) -> AccountReference:
        agg = existing if existing is not None else cls(profile.account)
        current = agg.profile
        if current is not None and current == profile and current.extra == profile.extra:
            raise e.Exists(f"account {profile.account} has this profile", account=profile.account)
        agg._trigger(
            AccountProfileRecorded(
                profile.account,
                profile.name,
                profile.country,
                profile.segment,
                profile.business_type,
                profile.opened_ns,
                profile.risk_rating,
                profile.last_activity_ns,
                profile.extra,
                now_ns,
            )
        )
        return agg

    def apply(self, event: object) -> None:
        if isinstance(event, AccountProfileRecorded):
            self.profile = profile_of(event)
        else:  # pragma: no cover - a programming error
            invariant(False, f"AccountReference cannot apply {type(event).__name__}")


class Rates(Aggregate):
    """The USD rates table (one stream, ``aml-rates:USD``)."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        super().__init__(RATES_STREAM)
        self.table = RateTable.of({})

    @classmethod
    def load(
        cls, rates: Mapping[str, str], existing: Rates | None, source: str, now_ns: int
    ) -> Rates:
        if not rates:
            raise e.RatesMustNotBeEmpty("a rates load names at least one currency")
        agg = existing if existing is not None else cls()
        table = agg.table.merged(rates)  # unknown_currency, invalid_rate
        changed = sorted(c for c in rates if agg.table.rates.get(c) != table.rates[c])
        if not changed:
            raise e.Exists("the rates table already holds these rates")
        agg._trigger(RatesSet(table.to_payload(), changed, source, now_ns))
        return agg

    def apply(self, event: object) -> None:
        if isinstance(event, RatesSet):
            self.table = RateTable.of(event.rates)
        else:  # pragma: no cover - a programming error
            invariant(False, f"Rates cannot apply {type(event).__name__}")
