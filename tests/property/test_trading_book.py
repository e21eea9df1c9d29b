"""Any stream of orders keeps the book's promises: priority, conservation, types, replay."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.trading.book import OrderBook
from domain.trading.events import OrderAccepted, OrderRested, TradeExecuted
from tests.property.trading_streams import STREAMS, NaiveBook, apply
from tests.unit.domain.trading.support import encoded, rebuilt, resting

FAST = settings(max_examples=120, deadline=None)


@FAST
@given(STREAMS)
def test_every_trade_respects_price_time_priority_and_levels_hold_exactly_their_orders(
    stream: list[tuple[object, ...]],
) -> None:
    model = NaiveBook()
    run = apply(stream)
    for batch in run.per_command[1:]:
        for ev in batch:
            model.apply(ev)  # checks each trade against the model's best opposite order
    assert model.resting() == resting(run.book)


@FAST
@given(STREAMS)
def test_quantity_is_conserved_for_every_order(stream: list[tuple[object, ...]]) -> None:
    run = apply(stream)
    model = NaiveBook()
    for ev in run.events[1:]:
        model.apply(ev)
    for oid, order in run.orders.items():
        if order is None or oid not in model.sides:
            continue  # refused
        rest = run.book.order(oid)
        open_lots = rest.remaining_lots if rest is not None else 0
        if order.quantity_lots is not None:
            assert model.asked[oid] == model.filled[oid] + model.gone[oid] + open_lots, oid
        else:
            assert model.spent[oid] <= (order.quote_quantity or 0)
            assert open_lots == 0


@FAST
@given(STREAMS)
def test_ioc_fok_and_market_orders_never_rest_fok_is_all_or_nothing_post_only_never_takes(
    stream: list[tuple[object, ...]],
) -> None:
    run = apply(stream)
    accepted = {ev.order.order_id: ev.order for ev in run.events if isinstance(ev, OrderAccepted)}
    rested = {ev.order_id for ev in run.events if isinstance(ev, OrderRested)}
    rested |= {
        ev.order.order_id for ev in run.events if isinstance(ev, OrderAccepted) and ev.rested_lots
    }
    takers: dict[int, int] = {}
    for ev in run.events:
        if isinstance(ev, TradeExecuted):
            takers[ev.taker_order_id] = takers.get(ev.taker_order_id, 0) + ev.quantity_lots
    for oid, order in accepted.items():
        if order.time_in_force in ("ioc", "fok"):
            assert oid not in rested and run.book.order(oid) is None
        if order.time_in_force == "fok":
            assert takers.get(oid, 0) in (0, order.quantity_lots)
        if order.post_only:
            assert oid not in takers


@FAST
@given(STREAMS)
def test_the_same_commands_give_byte_identical_events_and_the_events_rebuild_the_book(
    stream: list[tuple[object, ...]],
) -> None:
    first, second = apply(stream), apply(stream)
    assert encoded(first.events) == encoded(second.events)
    assert rebuilt(1, first.events).to_snapshot() == first.book.to_snapshot()


@FAST
@given(STREAMS, st.data())
def test_a_snapshot_plus_the_tail_equals_the_full_replay(
    stream: list[tuple[object, ...]], data: st.DataObject
) -> None:
    run = apply(stream)
    cut = data.draw(st.integers(1, len(run.per_command)))
    head = [ev for batch in run.per_command[:cut] for ev in batch]
    tail = [ev for batch in run.per_command[cut:] for ev in batch]
    at_cut = rebuilt(1, head)
    state = json.loads(json.dumps(at_cut.to_snapshot(), sort_keys=True))  # JSON-safe
    restored = OrderBook.from_snapshot("book:1", at_cut.version, state)
    assert restored.to_snapshot() == at_cut.to_snapshot()
    restored.replay(tail)
    restored.check_integrity()
    assert restored.version == run.book.version
    assert restored.to_snapshot() == run.book.to_snapshot()
    # and the restored book decides the next command exactly as the live one
    assert json.dumps(restored.to_snapshot(), sort_keys=True) == json.dumps(
        run.book.to_snapshot(), sort_keys=True
    )
