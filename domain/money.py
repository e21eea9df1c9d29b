"""Money: integer minor units plus an ISO 4217 currency. Decimal strings only at the edges.

Definition
    ``Money(amount_minor, currency)``; the currency's exponent (minor-unit digits) comes from
    the ISO 4217 table below (active codes, as published by the maintenance agency).

Guarantees
    Arithmetic never mixes currencies and never takes floats. ``parse_major`` accepts a plain
    decimal string with at most the currency's number of fraction digits (trailing zeros past
    them change nothing and are allowed) and at most 2^128-1 minor units, and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ISO 4217 active codes and their minor-unit exponents.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
        "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP "
        "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
        "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN "
        "NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE "
        "SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES "
        "WST XCD XCG YER ZAR ZMW ZWG".split(),
        2,
    ),
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}

_DECIMAL = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


class MoneyError(ValueError):
    """Root of the money errors; each names its rule in ``code``."""

    code = "invalid_money"


class UnknownCurrency(MoneyError):
    code = "unknown_currency"


class InvalidAmount(MoneyError):
    code = "invalid_amount"


class AmountPrecisionExceeded(InvalidAmount):
    code = "amount_precision_exceeded"


class AmountTooLarge(InvalidAmount):
    code = "amount_too_large"


# Amounts and balances are unsigned 128-bit integers of minor units, as in TigerBeetle.
MAX_AMOUNT_MINOR = 2**128 - 1


CURRENCIES: frozenset[str] = frozenset(_EXPONENTS)


def currency_exponent(currency: str) -> int:
    try:
        return _EXPONENTS[currency]
    except KeyError:
        raise UnknownCurrency(f"{currency!r} is not an active ISO 4217 currency code") from None


def is_currency(code: str) -> bool:
    return code in _EXPONENTS


def parse_major(text: str, currency: str) -> int:
    """``"12.34"`` USD -> 1234. Refuses signs, exponents, spaces and excess precision."""
    exponent = currency_exponent(currency)
    match = _DECIMAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidAmount(f"amount {text!r} is not a plain decimal string such as '12.34'")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent and fraction[exponent:].strip("0"):
        raise AmountPrecisionExceeded(
            f"amount {text} has {len(fraction.rstrip('0'))} decimal places; "
            f"{currency} allows {exponent}"
        )
    fraction = fraction[:exponent]
    scale: int = 10**exponent
    minor = int(whole) * scale + (int(fraction.ljust(exponent, "0")) if exponent else 0)
    if minor > MAX_AMOUNT_MINOR:
        raise AmountTooLarge(
            f"amount {text} {currency} is {minor} minor units; the ledger holds at most "
            f"2^128-1 ({MAX_AMOUNT_MINOR})"
        )
    return minor


def format_major(amount_minor: int, currency: str) -> str:
    """1234 USD -> ``"12.34"``; 1200 JPY -> ``"1200"``."""
    exponent = currency_exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{exponent}d}"


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amount_minor must be an int")
        currency_exponent(self.currency)

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: object) -> Money:
        return Money(self.amount_minor + self._same(other).amount_minor, self.currency)

    def __sub__(self, other: object) -> Money:
        return Money(self.amount_minor - self._same(other).amount_minor, self.currency)

    def __mul__(self, factor: object) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            raise TypeError("Money can only be multiplied by an int")
        return Money(self.amount_minor * factor, self.currency)

    def __str__(self) -> str:
        return f"{format_major(self.amount_minor, self.currency)} {self.currency}"
