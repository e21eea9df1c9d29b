"""Reductions keep an order's place, amendments lose it; halts, closes, mass cancels, bands."""

from __future__ import annotations

import pytest

from domain.trading import errors as e
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.support import (
    T0,
    S,
    Step,
    amend,
    buy,
    cancel,
    given,
    reduce,
    resting,
    sell,
    when,
)

ASKS: tuple[Step, ...] = (sell(1, 101, 10, acct=1), sell(2, 101, 10, acct=2))


def test_a_reduction_keeps_the_orders_place_in_its_queue() -> None:
    book = given(*ASKS)
    assert when(book, reduce(1, acct=1, reduce_by=5)) == [("reduced", 1, 5, 5, "user")]
    assert when(book, buy(9, 101, 6, acct=9)) == [
        ("accepted", 9, 0),
        ("trade", 1, 9, 101, 5),
        ("trade", 2, 9, 101, 1),
    ]


def test_reducing_to_a_quantity_leaves_that_much_open() -> None:
    book = given(*ASKS)
    assert when(book, reduce(1, acct=1, reduce_to=3)) == [("reduced", 1, 7, 3, "user")]
    assert resting(book)[0] == (1, "sell", 101, 3)


@pytest.mark.parametrize("step", [reduce(1, acct=1, reduce_to=0), reduce(1, acct=1, reduce_by=25)])
def test_reducing_to_nothing_removes_the_order(step: Step) -> None:
    book = given(*ASKS)
    assert when(book, step) == [("reduced", 1, 10, 0, "user")]
    assert book.order(1) is None
    with pytest.raises(e.OrderNotFound):
        book.cancel(1, 1, T0)


def test_an_amended_price_loses_priority_even_back_at_the_old_price() -> None:
    book = given(*ASKS)
    assert when(book, amend(1, acct=1, price_ticks=102)) == [
        ("amended", 1, 102, 10),
        ("rested", 1, 102, 10),
    ]
    when(book, amend(1, acct=1, price_ticks=101))
    assert [oid for oid, *_ in resting(book)] == [2, 1]


def test_a_larger_quantity_at_the_same_price_goes_to_the_back() -> None:
    book = given(*ASKS)
    assert when(book, amend(1, acct=1, quantity_lots=12)) == [
        ("amended", 1, 101, 12),
        ("rested", 1, 101, 12),
    ]
    assert resting(book) == [(2, "sell", 101, 10), (1, "sell", 101, 12)]


def test_a_smaller_quantity_at_the_same_price_is_a_reduction_that_keeps_the_place() -> None:
    book = given(*ASKS)
    assert when(book, amend(1, acct=1, quantity_lots=4)) == [("reduced", 1, 6, 4, "user")]
    assert resting(book) == [(1, "sell", 101, 4), (2, "sell", 101, 10)]


def test_an_amended_price_that_crosses_trades_at_once_as_an_incoming_order() -> None:
    book = given(*ASKS, buy(3, 99, 15, acct=3))
    assert when(book, amend(3, acct=3, price_ticks=101)) == [
        ("amended", 3, 101, 15),
        ("trade", 1, 3, 101, 10),
        ("trade", 2, 3, 101, 5),
    ]
    assert resting(book) == [(2, "sell", 101, 5)]


def test_an_amended_post_only_order_is_re_priced_when_it_asked_for_that() -> None:
    book = given(*ASKS, buy(3, 99, 5, acct=3, post_only=True, post_only_reprice=True))
    assert when(book, amend(3, acct=3, price_ticks=105)) == [
        ("amended", 3, 100, 5),
        ("rested", 3, 100, 5),
    ]


def test_other_accounts_cannot_touch_an_order_and_learn_nothing_about_it() -> None:
    book = given(*ASKS)
    for step in (
        cancel(1, acct=2),
        reduce(1, acct=2, reduce_by=1),
        amend(1, acct=2, price_ticks=105),
    ):
        with pytest.raises(e.OrderNotFound) as info:
            step(book)
        assert info.value.to_outcome() == {
            "code": "order_not_found",
            "detail": "no open order 1 for this account",
            "order_id": 1,
        }


def test_a_halt_refuses_new_orders_and_amendments_but_allows_cancels_and_reductions() -> None:
    book = given(*ASKS)
    assert when(book, lambda b: b.halt(T0)) == [("halted",)]
    with pytest.raises(e.InstrumentHalted):
        book.place(
            buy_order := NewOrder(9, 9, "buy", 101, 1),
            T0,
        )
    with pytest.raises(e.InstrumentHalted):
        book.amend(1, 1, T0, price_ticks=102)
    assert when(book, reduce(1, acct=1, reduce_by=1)) == [("reduced", 1, 1, 9, "user")]
    assert when(book, cancel(2, acct=2)) == [("cancelled", 2, 10, "user")]
    assert when(book, lambda b: b.resume(T0)) == [("resumed",)]
    assert when(book, lambda b: b.place(buy_order, T0)) == [
        ("accepted", 9, 0),
        ("trade", 1, 9, 101, 1),
    ]


def test_a_halt_may_cancel_every_resting_order_in_the_order_they_rested() -> None:
    book = given(buy(3, 99, 5, acct=3), *ASKS)
    assert when(book, lambda b: b.halt(T0, cancel_orders=True)) == [
        ("halted",),
        ("cancelled", 3, 5, "halt"),
        ("cancelled", 1, 10, "halt"),
        ("cancelled", 2, 10, "halt"),
    ]
    assert resting(book) == []


def test_closing_cancels_everything_and_refuses_everything_after() -> None:
    book = given(*ASKS)
    assert when(book, lambda b: b.close(T0)) == [
        ("cancelled", 1, 10, "close"),
        ("cancelled", 2, 10, "close"),
        ("closed",),
    ]
    with pytest.raises(e.InstrumentClosed):
        book.resume(T0)
    with pytest.raises(e.OrderNotFound):
        book.cancel(1, 1, T0)


def test_mass_cancel_by_account_cancels_only_that_accounts_orders() -> None:
    book = given(*ASKS, sell(3, 102, 1, acct=1), buy(4, 99, 2, acct=2))
    assert when(book, lambda b: b.cancel_all(T0, account_id=1)) == [
        ("cancelled", 1, 10, "mass_cancel"),
        ("cancelled", 3, 1, "mass_cancel"),
    ]
    assert when(book, lambda b: b.cancel_all(T0)) == [
        ("cancelled", 2, 10, "mass_cancel"),
        ("cancelled", 4, 2, "mass_cancel"),
    ]
    assert when(book, lambda b: b.cancel_all(T0)) == []


def test_gtd_orders_expire_at_their_time_in_deadline_then_rest_order() -> None:
    book = given(
        sell(1, 101, 10, time_in_force="gtd", expire_at_ns=T0 + 20 * S),
        sell(2, 102, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S),
        sell(3, 103, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S),
        sell(4, 104, 10),
    )
    assert when(book, lambda b: b.expire(T0 + 10 * S - 1)) == []
    assert when(book, lambda b: b.expire(T0 + 10 * S)) == [("expired", 2, 10), ("expired", 3, 10)]
    assert when(book, lambda b: b.expire(T0 + 30 * S)) == [("expired", 1, 10)]
    assert resting(book) == [(4, "sell", 104, 10)]


def test_an_order_past_its_expiry_never_trades_even_before_the_sweep() -> None:
    book = given(sell(1, 101, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S), sell(2, 102, 10))
    assert when(book, buy(9, 102, 5, acct=9, at=T0 + 10 * S)) == [
        ("expired", 1, 10),
        ("accepted", 9, 0),
        ("trade", 2, 9, 102, 5),
    ]


def test_an_order_past_its_expiry_cannot_be_cancelled_reduced_or_amended() -> None:
    book = given(sell(1, 101, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S))
    for step in (
        cancel(1, at=T0 + 10 * S),
        reduce(1, at=T0 + 10 * S, reduce_by=1),
        amend(1, at=T0 + 10 * S, price_ticks=105),
    ):
        with pytest.raises(e.OrderNotFound):
            step(book)


def test_a_post_only_order_ignores_a_crossing_order_that_is_already_due_to_expire() -> None:
    book = given(sell(1, 101, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S))
    assert when(book, buy(9, 101, 5, acct=9, post_only=True, at=T0 + 10 * S)) == [
        ("expired", 1, 10),
        ("accepted", 9, 5),
    ]


def test_a_reduced_gtd_order_still_expires_and_an_amended_one_expires_once() -> None:
    book = given(
        sell(1, 101, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S),
        sell(2, 105, 10, time_in_force="gtd", expire_at_ns=T0 + 10 * S),
    )
    when(book, reduce(1, reduce_by=4))
    when(book, amend(2, price_ticks=106))
    assert when(book, lambda b: b.expire(T0 + 11 * S)) == [("expired", 1, 6), ("expired", 2, 10)]


def test_the_price_band_follows_the_last_trade() -> None:
    band = {"price_band_bps": 1_000, "reference_price": "1.00"}
    book = given(sell(1, 110, 5), **band)  # the band is 90..110 around the reference 100
    with pytest.raises(e.PriceOutOfBand):
        book.place(
            NewOrder(9, 9, "sell", 111, 1),
            T0,
        )
    when(book, buy(9, 110, 5, acct=9))  # last trade 110: now 99..121
    when(book, sell(10, 121, 1, acct=9))
    with pytest.raises(e.PriceOutOfBand):
        book.place(
            NewOrder(11, 9, "buy", 98, 1),
            T0,
        )


def test_a_market_order_only_trades_within_the_band() -> None:
    book = given(
        sell(1, 101, 5),
        sell(2, 110, 5),  # within 10% of the reference 100 when it rested
        buy(3, 92, 1, acct=3),
        sell(4, 92, 1, acct=4),  # the last trade, 92, moves the band to 82..101
        price_band_bps=1_000,
        reference_price="1.00",
    )
    assert when(book, buy(9, None, 10, acct=9, order_type="market", time_in_force="ioc")) == [
        ("accepted", 9, 0),
        ("trade", 1, 9, 101, 5),
        ("cancelled", 9, 5, "ioc_remainder"),
    ]
