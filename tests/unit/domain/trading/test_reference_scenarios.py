"""Scenarios of exchange-core's order-book tests (OrderBookBaseTest), on our semantics.

exchange-core's book: asks 1 @81600 x100, 2 @81599 x50, 3 @81599 x25, 8 @201000 x28,
9 @201000 x32, 10 @200954 x10; bids 4 @81593 x40, 5 @81590 x20, 6 @81590 x1, 7 @81200 x20,
11 @10000 x12, 12 @10000 x1, 13 @9136 x2; all of one user. Its "move" is our amend of the
price (the order loses its place and may trade), its "reduce" our reduce_by. Where the two
engines differ by design the test says so.
"""

from __future__ import annotations

import pytest

from domain.trading import errors as e
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.support import (
    T0,
    Step,
    amend,
    buy,
    cancel,
    given,
    reduce,
    sell,
    when,
)

U1, U2 = 412, 413
BOOK: tuple[Step, ...] = (
    sell(1, 81600, 100, acct=U1),
    sell(2, 81599, 50, acct=U1),
    sell(3, 81599, 25, acct=U1),
    sell(8, 201000, 28, acct=U1),
    sell(9, 201000, 32, acct=U1),
    sell(10, 200954, 10, acct=U1),
    buy(4, 81593, 40, acct=U1),
    buy(5, 81590, 20, acct=U1),
    buy(6, 81590, 1, acct=U1),
    buy(7, 81200, 20, acct=U1),
    buy(11, 10000, 12, acct=U1),
    buy(12, 10000, 1, acct=U1),
    buy(13, 9136, 2, acct=U1),
)
BIDS = [(81593, 40, 1), (81590, 21, 2), (81200, 20, 1), (10000, 13, 2), (9136, 2, 1)]
ASKS = [(81599, 75, 2), (81600, 100, 1), (200954, 10, 1), (201000, 60, 2)]


def test_the_book_shows_its_levels() -> None:
    assert given(*BOOK).depth() == (BIDS, ASKS)


def test_gtc_orders_that_do_not_cross_join_their_levels() -> None:
    book = given(*BOOK)
    when(book, sell(93, 81598, 1, acct=U1))
    when(book, buy(94, 81594, 9_000_000_000, acct=U1))
    when(book, sell(95, 130000, 13_000_000_000, acct=U1))
    when(book, buy(96, 1000, 4, acct=U1))
    bids, asks = book.depth()
    assert bids == [(81594, 9_000_000_000, 1), *BIDS, (1000, 4, 1)]
    assert asks == [(81598, 1, 1), *ASKS[:2], (130000, 13_000_000_000, 1), *ASKS[2:]]


def test_a_duplicate_id_of_a_live_order_is_refused() -> None:
    # exchange-core matches and then drops the remainder; we refuse it up front
    with pytest.raises(e.DuplicateOrderId):
        given(*BOOK).place(
            NewOrder(1, U1, "sell", 81600, 100),
            T0,
        )


def test_cancelling_removes_the_order_and_an_emptied_level() -> None:
    book = given(*BOOK)
    assert when(book, cancel(5, acct=U1)) == [("cancelled", 5, 20, "user")]
    assert book.depth()[0][1] == (81590, 1, 1)
    assert when(book, cancel(2, acct=U1)) == [("cancelled", 2, 50, "user")]
    assert when(book, cancel(3, acct=U1)) == [("cancelled", 3, 25, "user")]
    assert book.depth()[1][0] == (81600, 100, 1)


def test_reducing_a_bid_and_reducing_an_ask_past_its_size() -> None:
    book = given(*BOOK)
    assert when(book, reduce(5, acct=U1, reduce_by=3)) == [("reduced", 5, 3, 17, "user")]
    assert book.depth()[0][1] == (81590, 18, 2)
    assert when(book, reduce(1, acct=U1, reduce_by=300)) == [("reduced", 1, 100, 0, "user")]
    assert [p for p, *_ in book.depth()[1]] == [81599, 200954, 201000]


@pytest.mark.parametrize(
    "step",
    [
        cancel(5291, acct=U1),
        cancel(3, acct=U2),
        amend(2, acct=U2, price_ticks=100),
        amend(2433, acct=U1, price_ticks=300),
        reduce(3, acct=U2, reduce_by=1),
    ],
    ids=["unknown cancel", "other's cancel", "other's move", "unknown move", "other's reduce"],
)
def test_unknown_and_other_users_orders_answer_order_not_found(step: Step) -> None:
    book = given(*BOOK)
    with pytest.raises(e.OrderNotFound):
        step(book)
    assert book.depth() == (BIDS, ASKS)


@pytest.mark.parametrize("size", [0, -1, -(2**63)])
def test_reducing_by_zero_or_a_negative_size_is_refused(size: int) -> None:
    with pytest.raises(e.QuantityMustBePositive):
        given(*BOOK).reduce(4, U1, T0, reduce_by=size)


def test_moving_an_order_into_an_existing_level_puts_it_at_the_back() -> None:
    book = given(*BOOK)
    assert when(book, amend(7, acct=U1, price_ticks=81590)) == [
        ("amended", 7, 81590, 20),
        ("rested", 7, 81590, 20),
    ]
    assert book.depth()[0][:3] == [(81593, 40, 1), (81590, 41, 3), (10000, 13, 2)]
    assert [o.order_id for o in book.resting("buy")][1:4] == [5, 6, 7]


def test_moving_an_order_to_a_new_level() -> None:
    book = given(*BOOK)
    when(book, amend(7, acct=U1, price_ticks=81594))
    assert book.depth()[0][:2] == [(81594, 20, 1), (81593, 40, 1)]


@pytest.mark.parametrize(
    ("size", "trades", "best_bids"),
    [
        (10, [("trade", 4, 123, 81593, 10)], [(81593, 30, 1), (81590, 21, 2)]),
        (40, [("trade", 4, 123, 81593, 40)], [(81590, 21, 2), (81200, 20, 1)]),
        (
            41,
            [("trade", 4, 123, 81593, 40), ("trade", 5, 123, 81590, 1)],
            [(81590, 20, 2), (81200, 20, 1)],
        ),
    ],
    ids=["partial best bid", "full best bid", "two orders"],
)
def test_an_ioc_sell_matches_the_best_bids(
    size: int, trades: list[tuple[object, ...]], best_bids: list[tuple[int, int, int]]
) -> None:
    book = given(*BOOK)
    assert when(book, sell(123, 1, size, acct=U2, time_in_force="ioc")) == [
        ("accepted", 123, 0),
        *trades,
    ]
    assert book.depth()[0][:2] == best_bids
    assert (book.order(4) is None) == (size >= 40)


def test_an_ioc_buy_takes_all_liquidity_within_its_limit() -> None:
    book = given(*BOOK)
    assert when(book, buy(123, 81600, 175, acct=U2, time_in_force="ioc")) == [
        ("accepted", 123, 0),
        ("trade", 2, 123, 81599, 50),
        ("trade", 3, 123, 81599, 25),
        ("trade", 1, 123, 81600, 100),
    ]
    assert book.depth()[1] == ASKS[2:]


def test_an_ioc_buy_larger_than_the_book_cancels_its_remainder() -> None:
    book = given(*BOOK)
    events = when(book, buy(123, 400000, 270, acct=U2, time_in_force="ioc"))
    assert len([x for x in events if x[0] == "trade"]) == 6
    assert events[-1] == ("cancelled", 123, 25, "ioc_remainder")
    assert book.depth()[1] == []


BUY_180 = 81599 * 75 + 81600 * 100 + 200954 * 5
SELL_60 = 81593 * 40 + 81590 * 20


@pytest.mark.parametrize(
    ("side", "size", "budget", "fills"),
    [
        ("buy", 180, BUY_180 - 1, None),
        ("buy", 180, BUY_180, [(2, 81599, 50), (3, 81599, 25), (1, 81600, 100), (10, 200954, 5)]),
        (
            "buy",
            176,
            81599 * 75 + 81600 * 100 + 200954 + 1,
            [(2, 81599, 50), (3, 81599, 25), (1, 81600, 100), (10, 200954, 1)],
        ),
        ("sell", 60, SELL_60 + 1, None),
        ("sell", 60, SELL_60, [(4, 81593, 40), (5, 81590, 20)]),
        ("sell", 61, 81593 * 40 + 81590 * 21 - 1, [(4, 81593, 40), (5, 81590, 20), (6, 81590, 1)]),
    ],
    ids=[
        "bid out of budget",
        "bid exact budget",
        "bid extra budget",
        "ask below expectation",
        "ask exact",
        "ask extra",
    ],
)
def test_fok_budget_orders_fill_whole_within_their_budget_or_not_at_all(
    side: str, size: int, budget: int, fills: list[tuple[int, int, int]] | None
) -> None:
    book = given(*BOOK)
    place = buy if side == "buy" else sell
    events = when(
        book,
        place(
            123,
            None,
            size,
            acct=U2,
            order_type="market",
            time_in_force="fok",
            quote_quantity=budget,
        ),
    )
    if fills is None:
        assert events == [("accepted", 123, 0), ("cancelled", 123, size, "fok_kill")]
        assert book.depth() == (BIDS, ASKS)
    else:
        assert events == [("accepted", 123, 0)] + [("trade", m, 123, p, q) for m, p, q in fills]


def test_a_marketable_gtc_order_fills_then_rests_its_remainder() -> None:
    book = given(*BOOK)
    assert when(book, buy(123, 81599, 1, acct=U2)) == [
        ("accepted", 123, 0),
        ("trade", 2, 123, 81599, 1),
    ]
    assert book.depth()[1][0] == (81599, 74, 2)
    book = given(*BOOK)
    assert when(book, buy(123, 81599, 77, acct=U2)) == [
        ("accepted", 123, 0),
        ("trade", 2, 123, 81599, 50),
        ("trade", 3, 123, 81599, 25),
        ("rested", 123, 81599, 2),
    ]
    assert book.depth()[0][0] == (81599, 2, 1)
    book = given(*BOOK)
    events = when(book, buy(123, 220000, 1000, acct=U2))
    assert [x for x in events if x[0] == "trade"] == [
        ("trade", 2, 123, 81599, 50),
        ("trade", 3, 123, 81599, 25),
        ("trade", 1, 123, 81600, 100),
        ("trade", 10, 123, 200954, 10),
        ("trade", 8, 123, 201000, 28),
        ("trade", 9, 123, 201000, 32),
    ]
    assert events[-1] == ("rested", 123, 220000, 755)


def test_moving_an_order_into_the_other_side_trades_it_as_marketable() -> None:
    book = given(*BOOK, buy(83, 81200, 20, acct=U2))
    assert book.depth()[0][2] == (81200, 40, 2)
    assert when(book, amend(83, acct=U2, price_ticks=81602)) == [
        ("amended", 83, 81602, 20),
        ("trade", 2, 83, 81599, 20),
    ]
    assert book.depth()[0][2] == (81200, 20, 1) and book.depth()[1][0] == (81599, 55, 2)
    book = given(*BOOK, buy(83, 81594, 246, acct=U2))
    events = when(book, amend(83, acct=U2, price_ticks=201000))
    assert len([x for x in events if x[0] == "trade"]) == 6
    assert events[-1] == ("rested", 83, 201000, 1)
    assert book.depth()[1] == []
