"""Business days in a named time zone: which day a transaction's business time belongs to.

Definition
    A :class:`BusinessCalendar` turns a business time (nanoseconds since the Unix epoch, UTC)
    into a business-day number: the proleptic Gregorian ordinal of a local date in the
    calendar's IANA time zone (``datetime.date.toordinal``).

    * ``cutoff_minute`` (default 0): a transaction at or after this local minute of the day
      (0..1439) belongs to the next day, as banks post late transactions the next morning.
    * ``weekdays_only`` (default False): with it, Saturday's and Sunday's transactions belong
      to the following Monday (a bank that posts nothing on weekends).

Guarantees
    * The same instant always maps to the same day; daylight-saving transitions follow the
      tz database (``zoneinfo``), so a New York business day can be 23 or 25 hours long.
    * Conversions are cached per day span, so a stream in time order costs two integer
      comparisons per transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NS_PER_S = 1_000_000_000
DAY_S = 86_400
DEFAULT_TIMEZONE = "America/New_York"


def is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


class BusinessCalendar:
    __slots__ = ("_hi", "_lo", "_ordinal", "cutoff_minute", "timezone", "weekdays_only", "zone")

    def __init__(
        self, timezone: str = DEFAULT_TIMEZONE, cutoff_minute: int = 0, weekdays_only: bool = False
    ) -> None:
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.cutoff_minute = cutoff_minute
        self.weekdays_only = weekdays_only
        self._lo = 1  # the cached span [lo, hi) of business time maps to _ordinal
        self._hi = 0
        self._ordinal = 0

    def __reduce__(self) -> tuple[object, ...]:  # the cache is rebuilt, not pickled
        return (BusinessCalendar, (self.timezone, self.cutoff_minute, self.weekdays_only))

    def day_of(self, ts_ns: int) -> int:
        """The business day (a date ordinal) that ``ts_ns`` belongs to."""
        if self._lo <= ts_ns < self._hi:
            return self._ordinal
        local = datetime.fromtimestamp(ts_ns // NS_PER_S, UTC).astimezone(self.zone)
        day = local.date()
        if local.hour * 60 + local.minute >= self.cutoff_minute > 0:
            day += timedelta(days=1)
        if self.weekdays_only and day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())
        # Cache the span of local time that maps to this same calendar date (and cut-off):
        # from the local start of that date's posting window to the start of the next one.
        start = self._boundary(day)
        end = self._boundary(day + timedelta(days=1))
        if self.weekdays_only and day.weekday() == 0:
            start = self._boundary(day - timedelta(days=2))  # Saturday and Sunday roll here
        if start <= ts_ns < end:
            self._lo, self._hi, self._ordinal = start, end, day.toordinal()
        return day.toordinal()

    def _boundary(self, day: date) -> int:
        """The first instant (ns) that belongs to ``day``: local midnight (or the previous
        day's cut-off minute) in the zone."""
        if self.cutoff_minute > 0:
            prev = day - timedelta(days=1)
            local = datetime(prev.year, prev.month, prev.day, tzinfo=self.zone) + timedelta(
                minutes=self.cutoff_minute
            )
            # Wall-clock arithmetic: rebuild the aware datetime so DST applies to the cut-off.
            local = local.replace(tzinfo=None).replace(tzinfo=self.zone)
        else:
            local = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return int(local.timestamp()) * NS_PER_S


def day_to_iso(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def iso_to_day(text: str) -> int:
    return date.fromisoformat(text).toordinal()
