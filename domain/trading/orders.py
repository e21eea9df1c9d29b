"""NewOrder: an order to place, well-formed by construction.

Definition
    The order's own fields, in whole ticks and lots: id, account, side, type, time in force,
    price, quantity and/or quote budget (notional units: ticks x lots), post-only flags,
    self-trade prevention (None: the instrument's default) and the 'gtd' expiry time.

Guarantees
    Building a ``NewOrder`` checks every rule about its own fields, in the documented order
    (the first part of ``domain.trading.book.PLACE_ORDER_ORDER``), and raises the first one
    broken. These rules need no state, so they run where the command is built (API threads,
    the bench's generator), not on the one thread that decides; the book then checks only
    the rules that need the book. ``OrderAccepted`` carries the ``NewOrder`` as placed.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from domain.trading import errors as e
from domain.trading.instrument import STP_MODES, Instrument, check_id

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
TIMES_IN_FORCE = ("gtc", "ioc", "fok", "gtd")
_TIFS = frozenset(TIMES_IN_FORCE)
_STPS = frozenset(STP_MODES)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order to place (see the module docstring; strings: ``OrderBook.parse_order``)."""

    order_id: int
    account_id: int
    side: str
    price_ticks: int | None = None
    quantity_lots: int | None = None
    order_type: str = "limit"
    time_in_force: str = "gtc"
    quote_quantity: int | None = None
    post_only: bool = False
    post_only_reprice: bool = False
    self_trade_prevention: str | None = None
    expire_at_ns: int | None = None

    def __post_init__(self) -> None:
        _check_order_rules(self)

    def to_payload(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NAMES}

    @classmethod
    def recorded(cls, **fields: Any) -> NewOrder:
        """An order read back from an event or a snapshot: it was checked when placed, and
        is not checked again (a later, stricter rule must not make history unreadable)."""
        order = object.__new__(cls)
        for name in _NAMES:
            object.__setattr__(order, name, fields.get(name, _DEFAULTS.get(name)))
        return order


_NAMES = tuple(f.name for f in fields(NewOrder))
_DEFAULTS = {f.name: f.default for f in fields(NewOrder) if f.default is not MISSING}


def _check_order_rules(o: NewOrder) -> None:  # noqa: PLR0912 - a branch per rule
    """The rules about an order's own fields, in the documented order."""
    oid = o.order_id
    check_id(oid, "the order id", order_id=oid)
    check_id(o.account_id, "the account id", order_id=oid)
    side = o.side
    if side not in {"buy", "sell"}:
        raise e.InvalidSide(f"side {side!r} is not 'buy' or 'sell'", order_id=oid)
    order_type = o.order_type
    if order_type not in {"limit", "market"}:
        raise e.InvalidOrderType(
            f"order type {order_type!r} is not 'limit' or 'market'", order_id=oid
        )
    tif = o.time_in_force
    if tif not in _TIFS:
        raise e.InvalidTimeInForce(
            f"time in force {tif!r} is not one of {', '.join(TIMES_IN_FORCE)}", order_id=oid
        )
    stp = o.self_trade_prevention
    if stp is not None and stp not in _STPS:
        raise e.InvalidSelfTradePrevention(
            f"self-trade prevention {stp!r} is not one of {', '.join(STP_MODES)}",
            order_id=oid,
        )
    resting = tif in {"gtc", "gtd"}
    if order_type == "market":
        if resting:
            raise e.MarketOrderCannotRest(
                f"a market order cannot be {tif!r}: it never rests", order_id=oid
            )
        if o.price_ticks is not None:
            raise e.PriceNotAllowed("a market order has no price", order_id=oid)
    elif o.price_ticks is None:
        raise e.PriceRequired("a limit order needs a price", order_id=oid)
    qty, budget = o.quantity_lots, o.quote_quantity
    if qty is None and (budget is None or tif != "ioc"):
        raise e.QuantityRequired("the order needs a quantity", order_id=oid)
    if budget is not None and (resting or (tif == "ioc" and (qty is not None or side == "sell"))):
        raise e.QuoteQuantityNotAllowed(
            "a quote budget is for an 'ioc' buy without quantity or a 'fok' order",
            order_id=oid,
        )
    if o.post_only:
        if not resting:
            raise e.PostOnlyNotAllowed(
                "post-only is for limit orders that rest ('gtc' or 'gtd')", order_id=oid
            )
    elif o.post_only_reprice:
        raise e.PostOnlyNotAllowed("post_only_reprice needs post_only", order_id=oid)
    if tif == "gtd":
        if o.expire_at_ns is None:
            raise e.ExpireAtRequired("a 'gtd' order needs expire_at", order_id=oid)
    elif o.expire_at_ns is not None:
        raise e.ExpireAtNotAllowed("only a 'gtd' order expires", order_id=oid)
    if o.price_ticks is not None and o.price_ticks <= 0:
        raise e.PriceMustBePositive("the price must be positive", order_id=oid)
    if qty is not None and qty <= 0:
        raise e.QuantityMustBePositive("the quantity must be positive", order_id=oid)
    if budget is not None and budget <= 0:
        raise e.QuoteQuantityMustBePositive("the quote quantity must be positive", order_id=oid)


def parse_order(
    instrument: Instrument,
    *,
    order_id: int,
    account_id: int,
    side: str,
    order_type: str = "limit",
    time_in_force: str = "gtc",
    price: str | None = None,
    quantity: str | None = None,
    quote_quantity: str | None = None,
    post_only: bool = False,
    post_only_reprice: bool = False,
    self_trade_prevention: str | None = None,
    expire_at_ns: int | None = None,
) -> NewOrder:
    """An order with decimal strings as a :class:`NewOrder`, rules in the documented order.

    The shape rules run first on placeholder values (so a market order with a malformed
    price answers ``price_not_allowed``), then the decimal conversions, then the values.
    """
    NewOrder(
        order_id,
        account_id,
        side,
        None if price is None else 1,
        None if quantity is None else 1,
        order_type,
        time_in_force,
        None if quote_quantity is None else 1,
        post_only,
        post_only_reprice,
        self_trade_prevention,
        expire_at_ns,
    )
    return NewOrder(
        order_id,
        account_id,
        side,
        None if price is None else instrument.price_to_ticks(price),
        None if quantity is None else instrument.quantity_to_lots(quantity),
        order_type,
        time_in_force,
        None if quote_quantity is None else instrument.quote_to_notional(quote_quantity),
        post_only,
        post_only_reprice,
        self_trade_prevention,
        expire_at_ns,
    )
