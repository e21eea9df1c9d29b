"""Given/when/then helpers for order-book tests: steps, a compact view of events, replay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from commands.processor import canonical_json
from domain.trading.book import OrderBook
from domain.trading.events import (
    InstrumentClosed,
    InstrumentHalted,
    InstrumentListed,
    InstrumentResumed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderReduced,
    OrderRested,
    TradeExecuted,
    TradingEvent,
    decode_event,
)
from domain.trading.instrument import InstrumentSpec
from domain.trading.orders import NewOrder

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000

Step = Callable[[OrderBook], Any]

SPEC = InstrumentSpec(
    instrument_id=1,
    symbol="AAA/BBB",
    base_asset="AAA",
    quote_asset="BBB",
    tick_size="0.01",
    lot_size="1",
    self_trade_prevention="none",
)


def new_book(**spec: Any) -> OrderBook:
    book = OrderBook.list_instrument(replace(SPEC, **spec), T0)
    book.collect_events()
    return book


def given(*steps: Step, **spec: Any) -> OrderBook:
    """A book with its instrument listed (``spec`` overrides) after ``steps``."""
    book = new_book(**spec)
    for step in steps:
        step(book)
        book.check_integrity()
    book.collect_events()
    return book


def when(book: OrderBook, step: Step) -> list[tuple[Any, ...]]:
    """Run ``step``; the compact view of the events it triggered (the book stays checked)."""
    step(book)
    book.check_integrity()
    return [brief(x) for x in book.collect_events()]


def order(
    oid: int, side: str, price: int | None, qty: int | None, acct: int = 1, **kw: Any
) -> NewOrder:
    return NewOrder(oid, acct, side, price, qty, **kw)


def buy(
    oid: int, price: int | None, qty: int | None, acct: int = 1, at: int = T0, **kw: Any
) -> Step:
    return lambda b: b.place(order(oid, "buy", price, qty, acct, **kw), at)


def sell(
    oid: int, price: int | None, qty: int | None, acct: int = 1, at: int = T0, **kw: Any
) -> Step:
    return lambda b: b.place(order(oid, "sell", price, qty, acct, **kw), at)


def cancel(oid: int, acct: int = 1, at: int = T0) -> Step:
    return lambda b: b.cancel(oid, acct, at)


def reduce(oid: int, acct: int = 1, at: int = T0, **kw: Any) -> Step:
    return lambda b: b.reduce(oid, acct, at, **kw)


def amend(oid: int, acct: int = 1, at: int = T0, **kw: Any) -> Step:
    return lambda b: b.amend(oid, acct, at, **kw)


def brief(ev: TradingEvent) -> tuple[Any, ...]:
    """Events as short tuples, so tables read like the rule they state."""
    if isinstance(ev, OrderAccepted):
        return ("accepted", ev.order.order_id, ev.rested_lots)
    if isinstance(ev, TradeExecuted):
        return ("trade", ev.maker_order_id, ev.taker_order_id, ev.price_ticks, ev.quantity_lots)
    if isinstance(ev, OrderRested):
        return ("rested", ev.order_id, ev.price_ticks, ev.quantity_lots)
    if isinstance(ev, OrderCancelled):
        return ("cancelled", ev.order_id, ev.quantity_lots, ev.reason)
    if isinstance(ev, OrderReduced):
        return ("reduced", ev.order_id, ev.reduced_by_lots, ev.remaining_lots, ev.reason)
    if isinstance(ev, OrderAmended):
        return ("amended", ev.order_id, ev.price_ticks, ev.quantity_lots)
    if isinstance(ev, OrderExpired):
        return ("expired", ev.order_id, ev.quantity_lots)
    if isinstance(ev, InstrumentHalted):
        return ("halted",)
    if isinstance(ev, InstrumentResumed):
        return ("resumed",)
    if isinstance(ev, InstrumentClosed):
        return ("closed",)
    if isinstance(ev, InstrumentListed):
        return ("listed", ev.instrument_id)
    raise AssertionError(f"no brief for {ev!r}")


def encoded(events: list[TradingEvent]) -> list[bytes]:
    return [ev.TOPIC.encode() + b" " + canonical_json(ev.to_payload()) for ev in events]


def rebuilt(instrument_id: int, events: list[TradingEvent]) -> OrderBook:
    """A book rebuilt from its events after a round trip through their payloads."""
    decoded = [decode_event(ev.TOPIC, ev.to_payload()) for ev in events]
    return OrderBook(instrument_id).replay(decoded)


def resting(book: OrderBook) -> list[tuple[int, str, int, int]]:
    """``(order id, side, price, open lots)`` in priority order, bids then asks."""
    return [(o.order_id, o.side, o.price_ticks, o.remaining_lots) for o in book.resting()]
