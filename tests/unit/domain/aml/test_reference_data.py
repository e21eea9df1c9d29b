"""Rates, business days, ingest records, KYC profiles: the rules of the AML context's data."""

from __future__ import annotations

from typing import Any

import pytest

from domain.aml import errors as e
from domain.aml.calendar import BusinessCalendar, day_to_iso
from domain.aml.model import format_rfc3339, parse_rfc3339_ns
from domain.aml.rates import RateTable, round_half_even
from domain.aml.reference import AccountReference, Rates, parse_profile
from domain.aml.transactions import (
    TRANSACTION_ORDER,
    MonitoredTransaction,
    parse_record,
)
from tests.unit.domain.aml.builders import NS, at

NOW = at("2025-03-03T15:00:00+00:00")
RATES = RateTable.of({"EUR": "1.0842", "JPY": "0.006735"})


def record(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "tx-1",
        "timestamp": "2025-03-03T09:30:00-05:00",
        "from_account": "A1",
        "to_account": "B1",
        "amount": "125.50",
        "currency": "USD",
        "channel": "ach",
        "kind": "transfer",
        "from_country": "US",
        "to_country": "US",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# ------------------------------------------------------------------ rates


@pytest.mark.parametrize(
    ("amount_minor", "currency", "cents"),
    [
        (100, "USD", 100),
        (10_000, "EUR", 10_842),  # 100.00 EUR at 1.0842
        (1, "EUR", 1),  # 1.0842 cents rounds down
        (100, "JPY", 67),  # 100 JPY = 67.35 cents
        (742_390, "JPY", 500_000),  # 499,999.665 cents rounds to 500,000
    ],
)
def test_amounts_convert_to_usd_cents_exactly(amount_minor: int, currency: str, cents: int) -> None:
    assert RATES.to_usd_minor(amount_minor, currency) == cents


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 0), (15, 10, 2), (25, 10, 2), (35, 10, 4), (14, 10, 1), (16, 10, 2), (0, 7, 0)],
)
def test_rounding_is_half_to_even(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_even(numerator, denominator) == expected


@pytest.mark.parametrize(
    ("rates", "code"),
    [
        ({"EUR": "1,08"}, "invalid_rate"),
        ({"EUR": "-1.08"}, "invalid_rate"),
        ({"EUR": "0"}, "invalid_rate"),
        ({"EUR": "1e3"}, "invalid_rate"),
        ({"XYZ": "1.0"}, "unknown_currency"),
        ({"USD": "0.9"}, "invalid_rate"),
    ],
)
def test_a_bad_rate_is_refused_with_its_rule(rates: dict[str, str], code: str) -> None:
    with pytest.raises(e.AmlRejection) as caught:
        RateTable.of(rates)
    assert caught.value.code == code


def test_a_currency_without_a_rate_cannot_be_converted() -> None:
    with pytest.raises(e.CurrencyWithoutRate):
        RATES.to_usd_minor(100, "GBP")


def test_a_rates_load_adds_and_replaces_and_a_repeat_records_nothing() -> None:
    rates = Rates.load({"EUR": "1.08"}, None, "test", NOW)
    rates.collect_events()
    rates = Rates.load({"EUR": "1.09", "GBP": "1.27"}, rates, "test", NOW)
    (event,) = rates.collect_events()
    assert event.rates == {"EUR": "1.09", "GBP": "1.27", "USD": "1"}
    assert event.changed == ["EUR", "GBP"]
    with pytest.raises(e.Exists):
        Rates.load({"GBP": "1.27"}, rates, "test", NOW)
    with pytest.raises(e.RatesMustNotBeEmpty):
        Rates.load({}, rates, "test", NOW)


# ------------------------------------------------------------------ time


def test_rfc3339_is_read_to_the_nanosecond_with_its_offset() -> None:
    assert (
        parse_rfc3339_ns("2025-03-03T09:30:00.000000001-05:00")
        == at("2025-03-03T14:30:00+00:00") + 1
    )
    assert parse_rfc3339_ns("2025-03-03T14:30:00Z") == at("2025-03-03T14:30:00+00:00")
    assert format_rfc3339(at("2025-03-03T14:30:00+00:00") + 500_000_000) == (
        "2025-03-03T14:30:00.5Z"
    )


@pytest.mark.parametrize(
    "text", ["2025-03-03", "2025-03-03T09:30:00", "2025-13-03T09:30:00Z", "yesterday", ""]
)
def test_a_timestamp_without_date_time_and_offset_is_refused(text: str) -> None:
    with pytest.raises(e.InvalidTimestamp):
        parse_rfc3339_ns(text)


@pytest.mark.parametrize(
    ("utc", "calendar", "business_day"),
    [
        ("2025-03-04T04:59:59+00:00", BusinessCalendar(), "2025-03-03"),
        ("2025-03-04T05:00:00+00:00", BusinessCalendar(), "2025-03-04"),
        ("2025-03-10T03:59:59+00:00", BusinessCalendar(), "2025-03-09"),  # daylight time
        ("2025-03-10T04:00:00+00:00", BusinessCalendar(), "2025-03-10"),
        ("2025-03-08T15:00:00+00:00", BusinessCalendar(weekdays_only=True), "2025-03-10"),
        ("2025-03-07T01:00:00+00:00", BusinessCalendar(cutoff_minute=20 * 60), "2025-03-07"),
        ("2025-03-04T03:00:00+00:00", BusinessCalendar("Europe/London"), "2025-03-04"),
    ],
)
def test_business_days_are_local_dates_in_the_rules_time_zone(
    utc: str, calendar: BusinessCalendar, business_day: str
) -> None:
    assert day_to_iso(calendar.day_of(at(utc))) == business_day


# ------------------------------------------------------------------ ingest records

REJECTED = [
    ("invalid_transaction_id", record(id="has space")),
    ("invalid_transaction_id", record(id="ledger:5")),
    ("invalid_timestamp", record(timestamp="2025-03-03 09:30")),
    ("invalid_account_reference", record(from_account="")),
    ("accounts_must_be_different", record(to_account="A1")),
    ("invalid_channel", record(channel="crypto")),
    ("invalid_kind", record(kind="refund")),
    ("cash_side_mismatch", record(kind="cash_deposit")),
    ("cash_side_mismatch", record(from_account="CASH", kind="cash_deposit", channel="ach")),
    ("cash_side_mismatch", record(to_account="CASH", kind="transfer")),
    ("invalid_country", record(to_country="USA")),
    ("unknown_currency", record(currency="XYZ")),
    ("invalid_amount", record(amount="12.345")),
    ("invalid_amount", record(amount="0.00")),
    ("invalid_amount", record(amount=12.5)),
    ("invalid_amount", record(amount="-5")),
]


@pytest.mark.parametrize(("code", "rec"), REJECTED, ids=[c for c, _ in REJECTED])
def test_a_malformed_record_is_refused_with_its_rule(code: str, rec: dict[str, Any]) -> None:
    assert code in TRANSACTION_ORDER
    with pytest.raises(e.AmlRejection) as caught:
        parse_record(rec)
    assert caught.value.code == code
    assert caught.value.to_outcome()["code"] == code


def test_the_first_failing_rule_in_precedence_order_is_named() -> None:
    with pytest.raises(e.AmlRejection) as caught:
        parse_record(record(timestamp="soon", channel="crypto", currency="XYZ"))
    assert caught.value.code == "invalid_timestamp"


def test_unknown_extra_fields_are_kept_and_cash_fields_read() -> None:
    spec = parse_record(
        record(
            from_account="CASH",
            kind="cash_deposit",
            channel="cash",
            conducted_by="P-7",
            branch="BR-12",
            memo="rent",
            device={"ip": "10.0.0.1"},
        )
    )
    assert spec.extra == {"device": {"ip": "10.0.0.1"}, "memo": "rent"}
    assert (spec.conducted_by, spec.branch, spec.amount_minor) == ("P-7", "BR-12", 12_550)
    assert spec.ts_ns == at("2025-03-03T14:30:00+00:00")


def test_an_integer_id_is_read_as_its_decimal_string() -> None:
    assert parse_record(record(id=42)).tx_id == "42"


def _record_once(rec: dict[str, Any]) -> MonitoredTransaction:
    tx = MonitoredTransaction.record(parse_record(rec), None, RATES, NOW)
    tx.collect_events()
    return tx


def test_the_same_record_again_exists_and_another_body_names_the_first_different_field() -> None:
    first = _record_once(record())
    with pytest.raises(e.Exists):
        MonitoredTransaction.record(parse_record(record()), first, RATES, NOW)
    for field, value, code in [
        ("amount", "125.51", "exists_with_different_amount"),
        ("to_account", "B2", "exists_with_different_to_account"),
        ("timestamp", "2025-03-03T09:31:00-05:00", "exists_with_different_timestamp"),
        ("memo", "x", "exists_with_different_extra"),
    ]:
        with pytest.raises(e.AmlRejection) as caught:
            MonitoredTransaction.record(parse_record(record(**{field: value})), first, RATES, NOW)
        assert caught.value.code == code
    # 125.50 and 125.5 are the same amount.
    with pytest.raises(e.Exists):
        MonitoredTransaction.record(parse_record(record(amount="125.5")), first, RATES, NOW)


def test_a_currency_without_a_rate_and_a_far_future_time_are_refused() -> None:
    with pytest.raises(e.CurrencyWithoutRate):
        MonitoredTransaction.record(parse_record(record(currency="GBP")), None, RATES, NOW)
    tomorrow_and_a_bit = "2025-03-04T15:00:01Z"
    with pytest.raises(e.TimestampInFuture):
        MonitoredTransaction.record(
            parse_record(record(timestamp=tomorrow_and_a_bit)), None, RATES, NOW
        )
    # exactly one day ahead (the allowed skew) is accepted
    ok = MonitoredTransaction.record(
        parse_record(record(timestamp="2025-03-04T15:00:00Z")), None, RATES, NOW
    )
    (event,) = ok.collect_events()
    assert event.ts_ns == NOW + 86_400 * NS


# ------------------------------------------------------------------ KYC profiles


def test_a_profile_is_recorded_once_and_again_only_when_it_changes() -> None:
    profile = parse_profile(
        {
            "account": "A1",
            "name": "Ann Example",
            "country": "US",
            "segment": "individual",
            "opened": "2024-02-01",
            "risk_rating": "medium",
            "employer": "ACME",
        }
    )
    assert profile.opened_ns == at("2024-02-01T00:00:00+00:00")
    assert profile.extra == {"employer": "ACME"}
    ref = AccountReference.record(profile, None, NOW)
    ref.collect_events()
    with pytest.raises(e.Exists):
        AccountReference.record(profile, ref, NOW)
    higher = parse_profile({"account": "A1", "risk_rating": "high"})
    AccountReference.record(higher, ref, NOW)
    assert ref.profile is not None and ref.profile.risk_rating == "high"
    assert ref.version == 2


@pytest.mark.parametrize(
    ("rec", "code"),
    [
        ({"account": ""}, "invalid_account_reference"),
        ({"account": "A", "country": "usa"}, "invalid_country"),
        ({"account": "A", "segment": "trust"}, "invalid_segment"),
        ({"account": "A", "risk_rating": "extreme"}, "invalid_risk_rating"),
        ({"account": "A", "opened": "last year"}, "invalid_opened"),
    ],
)
def test_a_bad_profile_is_refused_with_its_rule(rec: dict[str, Any], code: str) -> None:
    with pytest.raises(e.AmlRejection) as caught:
        parse_profile(rec)
    assert caught.value.code == code
