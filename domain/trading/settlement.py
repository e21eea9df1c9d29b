"""Settlement arithmetic for instruments that settle into the ledger: pure functions.

Definition
    A trade of ``quantity_lots`` at ``price_ticks`` moves ``quantity_lots x lot_minor`` of the
    base currency from seller to buyer and ``price_ticks x quantity_lots x tick_value_minor``
    (the notional, in the quote currency's minor units) from buyer to seller. Both fees are
    charged in the quote currency: the buyer pays notional + its fee, the seller receives
    notional - its fee; each side's rate is the instrument's maker or taker rate by its role
    in the trade.

Rounding
    A fee is ``floor(notional_minor x fee_bps / 10_000)``, per trade. Rounding down never
    charges more than the rate and keeps holds sufficient: for fills c_1..c_n of an order,
    sum(floor(c_i x r)) <= floor(sum(c_i) x r), so a hold that reserves the fee on the
    order's largest possible notional covers every fill, however the order is split.

Holds (what an order reserves when it is placed)
    * a buy with a limit price: the notional at its limit for its whole quantity, plus the
      fee on it at the higher of the maker and taker rates (it can only trade at or below
      its limit);
    * a buy with a quote budget: the budget (it never spends more) plus the taker fee on it;
    * a market buy by quantity: the notional of what it would fill, found by walking the
      book before it trades (the same walk matching makes), plus the taker fee;
    * a sell: its quantity in the base currency (fees come out of the proceeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.invariant import invariant
from domain.trading.instrument import BPS, Instrument


def fee_minor(notional_minor: int, fee_bps: int) -> int:
    """The fee on ``notional_minor`` at ``fee_bps``, rounded down to the minor unit."""
    invariant(notional_minor >= 0 and 0 <= fee_bps <= BPS, "fee inputs in range")
    return notional_minor * fee_bps // BPS


def _values(instrument: Instrument) -> tuple[int, int]:
    invariant(
        instrument.tick_value_minor is not None and instrument.lot_minor is not None,
        f"instrument {instrument.instrument_id} does not settle into the ledger",
    )
    return instrument.tick_value_minor or 0, instrument.lot_minor or 0


def notional_minor(instrument: Instrument, notional: int) -> int:
    """Notional units (ticks x lots) in the quote currency's minor units."""
    return notional * _values(instrument)[0]


def base_minor(instrument: Instrument, quantity_lots: int) -> int:
    """Lots in the base currency's minor units."""
    return quantity_lots * _values(instrument)[1]


def buy_hold_minor(instrument: Instrument, price_ticks: int, quantity_lots: int) -> int:
    """The quote reserved by a buy of ``quantity_lots`` limited at ``price_ticks``."""
    spec = instrument.spec
    notional = notional_minor(instrument, price_ticks * quantity_lots)
    return notional + fee_minor(notional, max(spec.maker_fee_bps, spec.taker_fee_bps))


def budget_hold_minor(instrument: Instrument, budget_notional: int) -> int:
    """The quote reserved by a buy that spends at most ``budget_notional`` (ticks x lots)."""
    notional = notional_minor(instrument, budget_notional)
    return notional + fee_minor(notional, instrument.spec.taker_fee_bps)


def taker_hold_minor(instrument: Instrument, filled_notional: int) -> int:
    """The quote reserved by a buy that will fill exactly ``filled_notional`` as taker."""
    notional = notional_minor(instrument, filled_notional)
    return notional + fee_minor(notional, instrument.spec.taker_fee_bps)


def sell_hold_minor(instrument: Instrument, quantity_lots: int) -> int:
    """The base reserved by a sell of ``quantity_lots``."""
    return base_minor(instrument, quantity_lots)


@dataclass(frozen=True, slots=True)
class TradeAmounts:
    """What one trade moves, in minor units.

    The buyer pays ``quote_minor + buyer_fee_minor``; the seller receives
    ``quote_minor - seller_fee_minor``; the venue's fee account gets both fees;
    ``base_minor`` goes from seller to buyer.
    """

    base_minor: int
    quote_minor: int
    buyer_fee_minor: int
    seller_fee_minor: int

    @property
    def fees_minor(self) -> int:
        return self.buyer_fee_minor + self.seller_fee_minor


def trade_amounts(
    instrument: Instrument, price_ticks: int, quantity_lots: int, aggressor_side: str
) -> TradeAmounts:
    """The amounts of one trade; the aggressor pays the taker rate, the other the maker's."""
    spec = instrument.spec
    quote = notional_minor(instrument, price_ticks * quantity_lots)
    taker_fee = fee_minor(quote, spec.taker_fee_bps)
    maker_fee = fee_minor(quote, spec.maker_fee_bps)
    buyer_fee, seller_fee = (
        (taker_fee, maker_fee) if aggressor_side == "buy" else (maker_fee, taker_fee)
    )
    return TradeAmounts(base_minor(instrument, quantity_lots), quote, buyer_fee, seller_fee)
