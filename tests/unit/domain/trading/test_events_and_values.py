"""Events are immutable JSON-safe facts; prices, quantities and fees are exact integers."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from domain.trading import errors as e
from domain.trading import settlement as st
from domain.trading.book import OrderBook
from domain.trading.events import (
    EVENT_TYPES,
    OrderAccepted,
    OrderCancelled,
    OrderRested,
    TradeExecuted,
    UnknownEventType,
    decode_event,
    new_order_accepted,
    new_order_cancelled,
    new_order_rested,
    new_trade_executed,
)
from domain.trading.instrument import Instrument, InstrumentSpec, format_units, parse_decimal
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.support import SPEC, T0, buy, given, rebuilt, sell

EUR_USD = Instrument.validate(
    InstrumentSpec(
        7,
        "EUR/USD",
        "EUR",
        "USD",
        "0.0001",
        "100",
        settlement="ledger",
        maker_fee_bps=2,
        taker_fee_bps=5,
        ledger=1,
        base_hold_account_id=91,
        quote_hold_account_id=92,
        fee_account_id=93,
    )
)


def test_events_are_frozen_and_the_fast_builders_make_equal_objects() -> None:
    order = NewOrder(1, 2, "buy", 100, 5)
    pairs = [
        (OrderAccepted(1, T0, order, "none", 5), new_order_accepted(1, T0, order, "none", 5)),
        (OrderRested(2, T0, 1, "buy", 100, 5), new_order_rested(2, T0, 1, "buy", 100, 5)),
        (
            TradeExecuted(3, T0, 1, 2, 3, 4, 100, 5, 0, "sell"),
            new_trade_executed(3, T0, 1, 2, 3, 4, 100, 5, 0, "sell"),
        ),
        (
            OrderCancelled(4, T0, 1, "buy", None, 5, "user", False),
            new_order_cancelled(4, T0, 1, "buy", None, 5, "user", False, None),
        ),
    ]
    for slow, fast in pairs:
        assert type(fast) is type(slow) and fast == slow and hash(fast) == hash(slow)
        assert repr(fast) == repr(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.seq = 9  # type: ignore[misc]
        assert copy.deepcopy(fast) is fast and pickle.loads(pickle.dumps(fast)) == fast
        assert dataclasses.replace(fast, seq=99).seq == 99


def test_every_event_of_a_busy_book_round_trips_through_json_without_floats() -> None:
    book = given(sell(1, 101, 10), sell(2, 102, 5, time_in_force="gtd", expire_at_ns=T0 + 5))
    events = []
    for step in (
        buy(3, 101, 12, acct=9),
        lambda b: b.reduce(2, 1, T0, reduce_by=1),
        lambda b: b.amend(3, 9, T0, quantity_lots=4),
        lambda b: b.halt(T0 + 9, cancel_orders=True),
        lambda b: b.resume(T0 + 9),
        lambda b: b.close(T0 + 9),
    ):
        step(book)
        events.extend(book.collect_events())
    seen = {type(x).__name__ for x in events}
    assert {
        "OrderAccepted",
        "TradeExecuted",
        "OrderReduced",
        "OrderExpired",
        "InstrumentClosed",
    } <= seen
    for event in events:
        text = json.dumps(event.to_payload(), sort_keys=True)
        assert (
            "." not in "".join(ch for ch in text if not ch.isalpha()).replace('"', "")
            or "0." not in text
        )
        back = decode_event(event.TOPIC, json.loads(text))
        assert back == event
        assert not any(isinstance(v, float) for v in json.loads(text).values())
    assert set(EVENT_TYPES) == {cls.TOPIC for cls in EVENT_TYPES.values()}
    assert all(t.startswith("trading.") and t.endswith(".v1") for t in EVENT_TYPES)


def test_an_unknown_topic_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType):
        decode_event("trading.Nope.v1", {})


def test_folding_the_events_rebuilds_the_same_book() -> None:
    book = OrderBook.list_instrument(SPEC, T0)
    for step in (sell(1, 101, 10), buy(2, 99, 3), buy(3, 101, 4, acct=9)):
        step(book)
    events = book.collect_events()
    assert len(events) == 5
    assert rebuilt(1, events).to_snapshot() == book.to_snapshot()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", (0, 0)),
        ("12.50", (1250, 2)),
        ("-3.1", (-31, 1)),
        ("1e3", None),
        ("1.", None),
        (".5", None),
        ("01", None),
        ("+1", None),
        (" 1", None),
        ("1" * 41, None),
    ],
)
def test_decimal_strings_parse_exactly_or_not_at_all(
    text: str, value: tuple[int, int] | None
) -> None:
    assert parse_decimal(text) == value


def test_prices_quantities_and_budgets_convert_to_whole_ticks_and_lots() -> None:
    assert EUR_USD.price_to_ticks("1.0834") == 10834
    assert EUR_USD.price_to_ticks("1.08340000") == 10834
    assert EUR_USD.quantity_to_lots("2500") == 25
    assert EUR_USD.ticks_to_price(10834) == "1.0834"
    assert EUR_USD.lots_to_quantity(25) == "2500"
    with pytest.raises(e.PriceNotOnTick):
        EUR_USD.price_to_ticks("1.08345")
    with pytest.raises(e.QuantityNotOnLot):
        EUR_USD.quantity_to_lots("150")
    # one notional unit is 0.0001 x 100 = 0.01 USD: a budget rounds down to whole cents
    assert EUR_USD.quote_to_notional("1000.009") == 100_000
    assert EUR_USD.notional_to_quote(100_000) == "1000.0000"
    assert format_units(-5, 2) == "-0.05"


def test_a_trade_moves_base_from_seller_and_quote_from_buyer_with_fees_rounded_down() -> None:
    # 25 lots (2,500 EUR) at 1.0834 = 2,708.50 USD
    # taker 5 bps = 1.354 -> 1.35; maker 2 bps = 0.5417 -> 0.54
    amounts = st.trade_amounts(EUR_USD, 10834, 25, aggressor_side="buy")
    assert amounts == st.TradeAmounts(
        base_minor=250_000, quote_minor=270_850, buyer_fee_minor=135, seller_fee_minor=54
    )
    flipped = st.trade_amounts(EUR_USD, 10834, 25, aggressor_side="sell")
    assert (flipped.buyer_fee_minor, flipped.seller_fee_minor) == (54, 135)
    assert amounts.fees_minor == 189


def test_holds_cover_every_way_an_order_can_fill() -> None:
    hold = st.buy_hold_minor(EUR_USD, 10834, 25)
    assert hold == 270_850 + 135
    # any split of the fills at or below the limit costs no more than the hold
    for fills in ([(10834, 25)], [(10833, 1)] * 25, [(10834, 12), (10800, 13)]):
        cost = 0
        for price, lots in fills:
            amounts = st.trade_amounts(EUR_USD, price, lots, aggressor_side="buy")
            cost += amounts.quote_minor + amounts.buyer_fee_minor
        assert cost <= hold
    assert st.budget_hold_minor(EUR_USD, 100_000) == 100_000 + 50
    assert st.sell_hold_minor(EUR_USD, 25) == 250_000
    assert st.fee_minor(999, 10_000) == 999 and st.fee_minor(1999, 5) == 0


def test_history_decodes_without_todays_order_rules() -> None:
    # an order some future rule would refuse still reads back, as it was recorded
    payload = OrderAccepted(9, T0, NewOrder(1, 2, "buy", 100, 5), "none", 5).to_payload()
    payload["order"]["side"] = "short"
    event = decode_event(OrderAccepted.TOPIC, payload)
    assert isinstance(event, OrderAccepted) and event.order.side == "short"
    with pytest.raises(e.InvalidSide):
        NewOrder(1, 2, "short", 100, 5)
