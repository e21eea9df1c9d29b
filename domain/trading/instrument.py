"""Instrument: what trades on one order book, and how its prices and quantities are counted.

Definition
    An instrument has a client-chosen id, a symbol, a base asset (what is bought and sold)
    and a quote asset (what prices are in), a ``tick_size`` (the price step) and a
    ``lot_size`` (the quantity step) as decimal strings, a ``min_quantity`` (a whole number of
    lots), an optional price band (``price_band_bps`` around the last trade price, or around
    ``reference_price`` before the first trade), a status (``open``, ``halted``, ``closed``),
    a settlement mode (``none``: the venue only matches; ``ledger``: trades settle into the
    ledger, on ``ledger``, through the venue's hold and fee accounts), maker and taker fees in
    basis points and the default self-trade prevention.

Guarantees
    Inside the domain a price is a whole number of ticks (``price_ticks``) and a quantity a
    whole number of lots (``quantity_lots``); a notional is ``price_ticks x quantity_lots``
    (one unit = one tick times one lot). Conversions from and to decimal strings are exact
    (integer arithmetic, no floats, no ``decimal`` context).

Constraints
    With settlement ``ledger`` both assets are ISO 4217 currencies, one tick times one lot is
    a whole number of the quote currency's minor units (``tick_value_minor``) and one lot is a
    whole number of the base currency's minor units (``lot_minor``), so every trade moves
    integer minor units.

Rejections (in precedence order, ``LIST_INSTRUMENT_ORDER``)
    ``id_must_not_be_zero``, ``id_must_not_be_int_max``, ``invalid_symbol``, ``invalid_asset``,
    ``assets_must_be_different``, ``invalid_tick_size``, ``invalid_lot_size``,
    ``invalid_min_quantity``, ``invalid_price_band``, ``invalid_reference_price``,
    ``invalid_fee``, ``invalid_self_trade_prevention``, ``invalid_settlement_mode``,
    ``invalid_status``, ``invalid_settlement_accounts``, ``asset_not_a_currency``,
    ``tick_value_not_integral``,
    ``lot_not_integral``, ``instrument_exists``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.money import currency_exponent, is_currency
from domain.trading import errors as e

ID_MAX = 2**128 - 2  # ids are unsigned 128-bit; 2^128-1 is reserved, as the ledger's


def check_id(value: int, what: str, **ids: object) -> None:
    """``id_must_not_be_zero`` below 1, ``id_must_not_be_int_max`` past 2^128-2."""
    if value <= 0:
        raise e.IdMustNotBeZero(f"{what} must be 1 or more", **ids)
    if value > ID_MAX:
        raise e.IdMustNotBeIntMax(f"{what} must be below 2^128-1 (reserved)", **ids)


BPS = 10_000
STP_MODES = ("none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement")
SETTLEMENT_MODES = ("none", "ledger")

LIST_INSTRUMENT_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "invalid_symbol",
    "invalid_asset",
    "assets_must_be_different",
    "invalid_tick_size",
    "invalid_lot_size",
    "invalid_min_quantity",
    "invalid_price_band",
    "invalid_reference_price",
    "invalid_fee",
    "invalid_self_trade_prevention",
    "invalid_settlement_mode",
    "invalid_status",
    "invalid_settlement_accounts",
    "asset_not_a_currency",
    "tick_value_not_integral",
    "lot_not_integral",
    "instrument_exists",
)

_DECIMAL = re.compile(r"(-)?(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,31}")
_ASSET = re.compile(r"[A-Z0-9]{1,12}")
_MAX_DIGITS = 38  # a decimal string longer than this is refused, not parsed


def parse_decimal(text: object) -> tuple[int, int] | None:
    """``"12.50"`` -> ``(1250, 2)`` (value = units / 10**scale); None if not a plain decimal.

    A leading ``-`` is accepted (so a negative value can be refused by name); exponents,
    spaces, ``+`` and more than 38 digits are not.
    """
    if not isinstance(text, str) or len(text) > _MAX_DIGITS + 2:
        return None
    match = _DECIMAL.fullmatch(text)
    if match is None:
        return None
    fraction = match.group(3) or ""
    units = int(match.group(2) + fraction)
    return (-units if match.group(1) else units), len(fraction)


def format_units(units: int, scale: int) -> str:
    """``(1250, 2)`` -> ``"12.50"``: exactly ``scale`` fraction digits."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}" if scale else f"{sign}{whole}"


def _ratio(value: tuple[int, int], step: tuple[int, int]) -> tuple[int, int]:
    """(quotient, remainder) of value / step, exactly."""
    (vu, vs), (su, ss) = value, step
    quotient, rest = divmod(vu * 10**ss, su * 10**vs)
    return quotient, rest


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """An instrument as a client lists it (decimal strings, as at the API)."""

    instrument_id: int
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    min_quantity: str = ""  # "" means one lot
    price_band_bps: int = 0  # 0 means no band
    reference_price: str = ""  # "" means none: the band applies from the first trade
    status: str = "open"
    settlement: str = "none"
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    self_trade_prevention: str = "cancel_newest"
    # Settlement "ledger" only: the ledger the accounts are on, and the venue's own accounts
    # (holds of each asset, fees in the quote asset). 0 with settlement "none".
    ledger: int = 0
    base_hold_account_id: int = 0
    quote_hold_account_id: int = 0
    fee_account_id: int = 0

    @property
    def venue_accounts(self) -> tuple[int, int, int]:
        return (self.base_hold_account_id, self.quote_hold_account_id, self.fee_account_id)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A validated instrument with its derived integers (see the module docstring)."""

    spec: InstrumentSpec
    tick: tuple[int, int]
    lot: tuple[int, int]
    min_lots: int
    reference_price_ticks: int | None
    tick_value_minor: int | None  # quote minor units per tick x lot (settlement ledger)
    lot_minor: int | None  # base minor units per lot (settlement ledger)

    @property
    def instrument_id(self) -> int:
        return self.spec.instrument_id

    # ------------------------------------------------------------------ validation

    @classmethod
    def validate(cls, spec: InstrumentSpec) -> Instrument:  # noqa: PLR0912, PLR0915 - one per rule
        """Check ``spec`` in the documented order; return the instrument with its integers."""
        ids = {"instrument_id": spec.instrument_id}
        check_id(spec.instrument_id, "the instrument id", **ids)
        if not isinstance(spec.symbol, str) or not _SYMBOL.fullmatch(spec.symbol):
            raise e.InvalidSymbol(f"symbol {spec.symbol!r} is not 1-32 of A-Z 0-9 . _ / -", **ids)
        for asset in (spec.base_asset, spec.quote_asset):
            if not isinstance(asset, str) or not _ASSET.fullmatch(asset):
                raise e.InvalidAsset(f"asset {asset!r} is not 1-12 of A-Z and 0-9", **ids)
        if spec.base_asset == spec.quote_asset:
            raise e.AssetsMustBeDifferent("base and quote asset must differ", **ids)
        tick = parse_decimal(spec.tick_size)
        if tick is None or tick[0] <= 0:
            raise e.InvalidTickSize(
                f"tick size {spec.tick_size!r} is not a positive decimal", **ids
            )
        lot = parse_decimal(spec.lot_size)
        if lot is None or lot[0] <= 0:
            raise e.InvalidLotSize(f"lot size {spec.lot_size!r} is not a positive decimal", **ids)
        min_lots = 1
        if spec.min_quantity != "":
            value = parse_decimal(spec.min_quantity)
            if value is None or value[0] <= 0 or _ratio(value, lot)[1]:
                raise e.InvalidMinQuantity(
                    f"minimum quantity {spec.min_quantity!r} is not a positive number of lots "
                    f"of {spec.lot_size}",
                    **ids,
                )
            min_lots = _ratio(value, lot)[0]
        if not _is_int(spec.price_band_bps) or not 0 <= spec.price_band_bps <= BPS:
            raise e.InvalidPriceBand("the price band is 0 (none) or 1..10000 bps", **ids)
        reference: int | None = None
        if spec.reference_price != "":
            value = parse_decimal(spec.reference_price)
            if value is None or value[0] <= 0 or _ratio(value, tick)[1]:
                raise e.InvalidReferencePrice(
                    f"reference price {spec.reference_price!r} is not a positive number of "
                    f"ticks of {spec.tick_size}",
                    **ids,
                )
            reference = _ratio(value, tick)[0]
        for fee in (spec.maker_fee_bps, spec.taker_fee_bps):
            if not _is_int(fee) or not 0 <= fee <= BPS:
                raise e.InvalidFee("fees are 0..10000 basis points", **ids)
        if spec.self_trade_prevention not in STP_MODES:
            raise e.InvalidSelfTradePrevention(
                f"self-trade prevention {spec.self_trade_prevention!r} is not one of "
                f"{', '.join(STP_MODES)}",
                **ids,
            )
        if spec.settlement not in SETTLEMENT_MODES:
            raise e.InvalidSettlementMode(
                f"settlement {spec.settlement!r} is not 'none' or 'ledger'", **ids
            )
        if spec.status not in ("open", "halted"):
            raise e.InvalidStatus("an instrument is listed 'open' or 'halted'", **ids)
        accounts = (spec.ledger, *spec.venue_accounts)
        if spec.settlement == "ledger" and not all(
            _is_int(x) and 0 < x <= ID_MAX for x in accounts
        ):
            raise e.InvalidSettlementAccounts(
                "settlement 'ledger' needs the ledger and the venue's base hold, quote hold "
                "and fee account ids",
                **ids,
            )
        if spec.settlement == "none" and any(accounts):
            raise e.InvalidSettlementAccounts(
                "settlement 'none' takes no ledger or venue accounts", **ids
            )
        tick_value = lot_minor = None
        if spec.settlement == "ledger":
            for asset in (spec.base_asset, spec.quote_asset):
                if not is_currency(asset):
                    raise e.AssetNotACurrency(
                        f"{asset} is not a ledger currency (ISO 4217)", asset=asset, **ids
                    )
            tick_value = _minor_units(tick[0] * lot[0], tick[1] + lot[1], spec.quote_asset)
            if tick_value is None:
                raise e.TickValueNotIntegral(
                    f"one tick ({spec.tick_size}) times one lot ({spec.lot_size}) is not a "
                    f"whole number of {spec.quote_asset} minor units",
                    **ids,
                )
            lot_minor = _minor_units(lot[0], lot[1], spec.base_asset)
            if lot_minor is None:
                raise e.LotNotIntegral(
                    f"one lot ({spec.lot_size}) is not a whole number of {spec.base_asset} "
                    "minor units",
                    **ids,
                )
        return cls(spec, tick, lot, min_lots, reference, tick_value, lot_minor)

    # ------------------------------------------------------------------ conversions

    def price_to_ticks(self, text: object) -> int:
        """A price decimal string as whole ticks, or ``invalid_price`` /
        ``price_must_be_positive`` / ``price_not_on_tick``."""
        value = parse_decimal(text)
        if value is None:
            raise e.InvalidPrice(f"price {text!r} is not a plain decimal string")
        if value[0] <= 0:
            raise e.PriceMustBePositive(f"price {text} is not positive")
        ticks, rest = _ratio(value, self.tick)
        if rest:
            raise e.PriceNotOnTick(
                f"price {text} is not a multiple of the tick {self.spec.tick_size}"
            )
        return ticks

    def quantity_to_lots(self, text: object) -> int:
        """A quantity decimal string as whole lots, or ``invalid_quantity`` /
        ``quantity_must_be_positive`` / ``quantity_not_on_lot``."""
        value = parse_decimal(text)
        if value is None:
            raise e.InvalidQuantity(f"quantity {text!r} is not a plain decimal string")
        if value[0] <= 0:
            raise e.QuantityMustBePositive(f"quantity {text} is not positive")
        lots, rest = _ratio(value, self.lot)
        if rest:
            raise e.QuantityNotOnLot(
                f"quantity {text} is not a multiple of the lot {self.spec.lot_size}"
            )
        return lots

    def quantity_to_lots_or_zero(self, text: object) -> int:
        """Like :meth:`quantity_to_lots` but ``"0"`` is 0 (a reduction to nothing)."""
        value = parse_decimal(text)
        if value is not None and value[0] == 0:
            return 0
        return self.quantity_to_lots(text)

    def quote_to_notional(self, text: object) -> int:
        """A quote budget (decimal string in the quote asset) as notional units (ticks x lots).

        Rounded down: a budget can only ever be spent in whole notional units, so the part
        below one unit could never buy anything. Less than one unit is refused.
        """
        value = parse_decimal(text)
        if value is None:
            raise e.InvalidQuoteQuantity(f"quote quantity {text!r} is not a plain decimal string")
        unit = (self.tick[0] * self.lot[0], self.tick[1] + self.lot[1])
        units = _ratio(value, unit)[0] if value[0] > 0 else 0
        if units <= 0:
            raise e.QuoteQuantityMustBePositive(
                f"quote quantity {text} is less than one tick times one lot "
                f"({format_units(*unit)} {self.spec.quote_asset})"
            )
        return units

    def ticks_to_price(self, ticks: int) -> str:
        return format_units(ticks * self.tick[0], self.tick[1])

    def lots_to_quantity(self, lots: int) -> str:
        return format_units(lots * self.lot[0], self.lot[1])

    def notional_to_quote(self, notional: int) -> str:
        """Notional units as a decimal string in the quote asset."""
        return format_units(notional * self.tick[0] * self.lot[0], self.tick[1] + self.lot[1])


def is_asset_code(value: object) -> bool:
    """1-12 of A-Z and 0-9: an ISO 4217 code or an instrument's own asset code."""
    return isinstance(value, str) and _ASSET.fullmatch(value) is not None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _minor_units(units: int, scale: int, currency: str) -> int | None:
    """``units / 10**scale`` of ``currency`` in its minor units, or None if not whole."""
    whole, rest = divmod(units * 10 ** currency_exponent(currency), 10**scale)
    return None if rest else whole
