"""Currency rates as data, and the conversion of amounts to USD minor units.

Definition
    A :class:`RateTable` maps ISO 4217 codes to the USD value of ONE major unit of the currency,
    held exactly as a decimal string (``"1.0842"``: one euro is worth 1.0842 US dollars) and as
    the integer fraction ``numerator / 10**scale``. USD itself is always ``1``.

Guarantees
    * No floats: :func:`RateTable.to_usd_minor` is integer arithmetic only.
    * Rounding rule: the exact USD value in cents is rounded half to even (banker's rounding)
      to an integer number of cents. Examples: 1 JPY at ``"0.006735"`` is 0.6735 cents -> 1
      cent; 0.5 cents -> 0; 1.5 cents -> 2.
    * A table is immutable; :meth:`RateTable.merged` returns a new one (a later rate for a
      currency replaces the earlier one, the others stay).

Constraints
    A rate is a plain positive decimal string (no sign, no exponent) with at most 12 fraction
    digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from domain.aml import errors as e
from domain.money import currency_exponent, is_currency

_RATE = re.compile(r"(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,12}))?")
USD = "USD"


def parse_rate(text: str, currency: str = "") -> tuple[int, int]:
    """``"1.0842"`` -> ``(10842, 4)``: the rate as ``numerator / 10**scale``."""
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise e.InvalidRate(
            f"rate {text!r} is not a plain positive decimal string such as '1.0842'",
            currency=currency,
        )
    whole, fraction = match.group(1), match.group(2) or ""
    numerator = int(whole + fraction)
    if numerator == 0:
        raise e.InvalidRate(f"rate {text!r} must be positive", currency=currency)
    return numerator, len(fraction)


def round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even (both positive or numerator zero)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


@dataclass(frozen=True, slots=True)
class RateTable:
    """USD per one major unit of each currency; ``rates`` holds the decimal strings."""

    rates: Mapping[str, str] = field(default_factory=dict)
    # currency -> (numerator, denominator of one MINOR unit in USD cents), precomputed.
    _minor: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, rates: Mapping[str, str]) -> RateTable:
        """Validate and build a table; USD is always present at 1."""
        clean: dict[str, str] = {}
        minor: dict[str, tuple[int, int]] = {}
        for currency, text in sorted(rates.items()):
            if not is_currency(currency):
                raise e.UnknownCurrency(
                    f"{currency!r} is not an active ISO 4217 currency code", currency=currency
                )
            numerator, scale = parse_rate(text, currency)
            if currency == USD and (numerator, scale) != (1, 0) and numerator != 10**scale:
                raise e.InvalidRate("the USD rate is 1 by definition", currency=currency)
            clean[currency] = text
            # cents = amount_minor * numerator * 100 / (10**scale * 10**exponent)
            exponent = currency_exponent(currency)
            minor[currency] = (numerator * 100, 10**scale * 10**exponent)
        clean.setdefault(USD, "1")
        minor.setdefault(USD, (1, 1))
        return cls(clean, minor)

    def has(self, currency: str) -> bool:
        return currency in self._minor

    def to_usd_minor(self, amount_minor: int, currency: str) -> int:
        """The USD value of ``amount_minor`` (minor units of ``currency``) in cents.

        Raises :class:`~domain.aml.errors.CurrencyWithoutRate` when the table has no rate.
        """
        try:
            numerator, denominator = self._minor[currency]
        except KeyError:
            raise e.CurrencyWithoutRate(
                f"no USD rate is loaded for {currency}", currency=currency
            ) from None
        if denominator == 1:
            return amount_minor * numerator
        return round_half_even(amount_minor * numerator, denominator)

    def merged(self, rates: Mapping[str, str]) -> RateTable:
        """A new table: these rates replace or add to the current ones."""
        return RateTable.of({**self.rates, **rates})

    def to_payload(self) -> dict[str, str]:
        return dict(sorted(self.rates.items()))


USD_ONLY = RateTable.of({})
