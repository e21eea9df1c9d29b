"""On random limit/cancel streams the book trades exactly as the minimal reference engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.trading import errors as e
from domain.trading.book import OrderBook
from domain.trading.events import TradeExecuted
from domain.trading.instrument import InstrumentSpec
from domain.trading.orders import NewOrder
from domain.trading.reference import ReferenceBook

T0 = 1_700_000_000_000_000_000
LIMIT = st.tuples(
    st.just("limit"),
    st.booleans(),
    st.integers(90, 110),
    st.integers(1, 50),
    st.sampled_from(["gtc", "gtc", "gtc", "ioc"]),
)
CANCEL = st.tuples(st.just("cancel"), st.integers(1, 80))
MARKET = st.tuples(st.just("market"), st.booleans(), st.integers(1, 80))
STREAMS = st.lists(
    st.one_of(LIMIT, LIMIT, LIMIT, CANCEL, CANCEL, MARKET), min_size=20, max_size=400
)


@settings(max_examples=200, deadline=None)
@given(STREAMS)
def test_trades_and_the_resting_book_equal_the_reference_engines(
    stream: list[tuple[object, ...]],
) -> None:
    spec = InstrumentSpec(1, "DIFF", "AAA", "BBB", "1", "1", self_trade_prevention="none")
    book = OrderBook.list_instrument(spec, T0)
    reference = ReferenceBook()
    trades: list[tuple[int, int, int, int]] = []
    for oid, command in enumerate(stream, start=1):
        if command[0] == "cancel":
            target = int(command[1])  # type: ignore[call-overload]
            try:
                book.cancel(target, 1, T0)
                cancelled = True
            except e.OrderNotFound:
                cancelled = False
            assert cancelled == reference.cancel(target)
        elif command[0] == "limit":
            _, is_buy, price, qty, tif = command
            side = "buy" if is_buy else "sell"
            book.place(NewOrder(oid, 1, side, price, qty, time_in_force=tif), T0)  # type: ignore[arg-type]
            reference.add(oid, bool(is_buy), price, qty, rest=tif == "gtc")  # type: ignore[arg-type]
        else:
            _, is_buy, qty = command
            side = "buy" if is_buy else "sell"
            book.place(NewOrder(oid, 1, side, None, qty, "market", "ioc"), T0)  # type: ignore[arg-type]
            reference.add(oid, bool(is_buy), None, qty, rest=False)  # type: ignore[arg-type]
        trades += [
            (ev.taker_order_id, ev.maker_order_id, ev.price_ticks, ev.quantity_lots)
            for ev in book.collect_events()
            if isinstance(ev, TradeExecuted)
        ]
    assert trades == reference.trades
    assert book.depth() == reference.depth()
    assert {o.order_id for o in book.resting()} == set(reference.index)
