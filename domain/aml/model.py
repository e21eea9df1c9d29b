"""Value types of monitoring: a transaction as the detectors see it, and account reference data.

Definition
    * :class:`Txn` is one monitored movement of money with its business time (``ts_ns``), its
      two parties (``src`` pays ``dst``; cash has the party ``CASH``), its amount in minor units
      of its currency and in US cents (``usd``), and the log ``position`` it was recorded at.
      It is a named tuple ordered by ``(ts_ns, tx_id)``: the detectors' tie-break.
    * :class:`AccountProfile` is the know-your-customer record of one account: holder name,
      country, segment, business type, opening time and risk rating.

Guarantees
    Both are immutable. Field names carry units (``ts_ns``, ``usd``, ``amount_minor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from domain.aml import errors as e

CASH = "CASH"
CHANNELS = ("card", "ach", "instant", "wire", "cash")
KINDS = ("transfer", "cash_deposit", "cash_withdrawal")
SEGMENTS = ("individual", "business")
RISK_RATINGS = ("low", "medium", "high")
NS_PER_S = 1_000_000_000

_REF = re.compile(r"[!-~]{1,128}")  # printable ASCII without spaces
_COUNTRY = re.compile(r"[A-Z]{2}")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class Txn(NamedTuple):
    """One monitored transaction. Ordered (and tie-broken) by ``(ts_ns, tx_id)``."""

    ts_ns: int
    tx_id: str
    src: str
    dst: str
    usd: int  # US cents, converted with the rates in force at ``position``
    amount_minor: int
    currency: str
    channel: str
    kind: str
    from_country: str
    to_country: str
    conductor: str
    branch: str
    position: int

    @property
    def is_cash(self) -> bool:
        return self.kind != "transfer" or self.channel == "cash"


@dataclass(frozen=True, slots=True)
class AccountProfile:
    """Know-your-customer data of one account (all optional but the account reference)."""

    account: str
    name: str = ""
    country: str = ""
    segment: str = ""
    business_type: str = ""
    opened_ns: int | None = None
    risk_rating: str = "low"
    last_activity_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def float_free(value: Any) -> Any:
    """An extra field made fit for an event payload: every float becomes its decimal string
    (``1.5`` -> ``"1.5"``); strings, integers, booleans, null, lists and objects are kept."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [float_free(v) for v in value]
    if isinstance(value, dict):
        return {str(k): float_free(v) for k, v in value.items()}
    return value


def check_reference(value: str, what: str) -> str:
    if not isinstance(value, str) or _REF.fullmatch(value) is None:
        raise e.InvalidAccountReference(
            f"{what} {value!r} is not 1 to 128 printable characters without spaces",
            field=what,
        )
    return value


def check_country(value: str, what: str) -> str:
    if value == "":
        return value
    if not isinstance(value, str) or _COUNTRY.fullmatch(value) is None:
        raise e.InvalidCountry(f"{what} {value!r} is not an ISO 3166-1 alpha-2 code", field=what)
    return value


def parse_rfc3339_ns(text: str, what: str = "timestamp") -> int:
    """``2025-03-01T09:30:00.123456789-05:00`` -> nanoseconds since the epoch (UTC).

    Exact to the nanosecond (no float); a date-time without an offset is refused.
    """
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise e.InvalidTimestamp(
            f"{what} {text!r} is not an RFC 3339 date-time such as 2025-03-01T09:30:00Z",
            field=what,
        )
    year, month, day, hour, minute, second = map(int, match.group(1, 2, 3, 4, 5, 6))
    fraction = match.group(7)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    if not (
        1 <= month <= 12
        and 1 <= day <= _days_in_month(year, month)
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        raise e.InvalidTimestamp(f"{what} {text!r} is not a valid date-time", field=what)
    offset_s = 0
    if not match.group(8):
        hours, minutes = int(match.group(10)), int(match.group(11))
        if hours > 23 or minutes > 59:
            raise e.InvalidTimestamp(f"{what} {text!r} has an invalid offset", field=what)
        offset_s = (hours * 3600 + minutes * 60) * (1 if match.group(9) == "+" else -1)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return (seconds - offset_s) * NS_PER_S + nanos


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_DAYS[month - 1]


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (integer arithmetic only)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def parse_date_or_time_ns(text: str, what: str) -> int:
    """An RFC 3339 date (midnight UTC) or date-time, as nanoseconds since the epoch."""
    if isinstance(text, str) and _DATE.fullmatch(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise e.InvalidOpened(f"{what} {text!r} is not a valid date", field=what) from None
        return int(day.timestamp()) * NS_PER_S
    try:
        return parse_rfc3339_ns(text, what)
    except e.InvalidTimestamp:
        raise e.InvalidOpened(
            f"{what} {text!r} is not an RFC 3339 date or date-time", field=what
        ) from None


def format_rfc3339(ts_ns: int) -> str:
    """Nanoseconds since the epoch -> ``2025-03-01T14:30:00Z`` (fraction only when non-zero)."""
    seconds, nanos = divmod(ts_ns, NS_PER_S)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"
