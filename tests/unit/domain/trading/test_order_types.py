"""Given a book, when an order of each type arrives, then exactly these events happen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.domain.trading.support import (
    T0,
    S,
    Step,
    buy,
    given,
    resting,
    sell,
    when,
)

# asks: 1 @101 x10, 2 @101 x5, 3 @103 x20; bids: 4 @99 x10, 5 @98 x5, 6 @98 x7
BOOK: tuple[Step, ...] = (
    sell(1, 101, 10, acct=1),
    sell(2, 101, 5, acct=2),
    sell(3, 103, 20, acct=1),
    buy(4, 99, 10, acct=2),
    buy(5, 98, 5, acct=1),
    buy(6, 98, 7, acct=2),
)
ASK_NOTIONAL_15_AT_101 = 101 * 15


@dataclass
class Case:
    rule: str
    when: Step
    then: list[tuple[Any, ...]]


CASES = [
    Case(
        "a limit buy below the best ask rests at once",
        buy(10, 100, 3, acct=9),
        [("accepted", 10, 3)],
    ),
    Case(
        "a crossing limit buy trades at the makers' price in time order, then rests",
        buy(10, 101, 20, acct=9),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("rested", 10, 101, 5),
        ],
    ),
    Case(
        "a limit buy walks up the levels to its limit and is filled in full",
        buy(10, 103, 30, acct=9),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("trade", 3, 10, 103, 15),
        ],
    ),
    Case(
        "the trade price is the resting order's, not the aggressor's limit",
        buy(10, 110, 4, acct=9),
        [("accepted", 10, 0), ("trade", 1, 10, 101, 4)],
    ),
    Case(
        "a crossing limit sell trades with the best bids, best first",
        sell(10, 98, 12, acct=9),
        [("accepted", 10, 0), ("trade", 4, 10, 99, 10), ("trade", 5, 10, 98, 2)],
    ),
    Case(
        "an ioc order trades what it can and cancels the rest",
        buy(10, 101, 20, acct=9, time_in_force="ioc"),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("cancelled", 10, 5, "ioc_remainder"),
        ],
    ),
    Case(
        "an ioc order with nothing within its limit is cancelled whole",
        buy(10, 100, 5, acct=9, time_in_force="ioc"),
        [("accepted", 10, 0), ("cancelled", 10, 5, "ioc_remainder")],
    ),
    Case(
        "a fok order that can fill in full does",
        buy(10, 103, 35, acct=9, time_in_force="fok"),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("trade", 3, 10, 103, 20),
        ],
    ),
    Case(
        "a fok order one lot short of the book is killed and trades nothing",
        buy(10, 103, 36, acct=9, time_in_force="fok"),
        [("accepted", 10, 0), ("cancelled", 10, 36, "fok_kill")],
    ),
    Case(
        "a fok order counts only liquidity within its limit",
        buy(10, 101, 16, acct=9, time_in_force="fok"),
        [("accepted", 10, 0), ("cancelled", 10, 16, "fok_kill")],
    ),
    Case(
        "a fok buy with a budget fills when the whole cost is within it",
        buy(
            10,
            None,
            20,
            acct=9,
            order_type="market",
            time_in_force="fok",
            quote_quantity=101 * 15 + 103 * 5,
        ),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("trade", 3, 10, 103, 5),
        ],
    ),
    Case(
        "a fok buy with a budget one unit short is killed",
        buy(
            10,
            None,
            20,
            acct=9,
            order_type="market",
            time_in_force="fok",
            quote_quantity=101 * 15 + 103 * 5 - 1,
        ),
        [("accepted", 10, 0), ("cancelled", 10, 20, "fok_kill")],
    ),
    Case(
        "a fok sell with expected proceeds fills when they are reached",
        sell(
            10,
            None,
            15,
            acct=9,
            order_type="market",
            time_in_force="fok",
            quote_quantity=99 * 10 + 98 * 5,
        ),
        [("accepted", 10, 0), ("trade", 4, 10, 99, 10), ("trade", 5, 10, 98, 5)],
    ),
    Case(
        "a fok sell whose proceeds would fall one unit short is killed",
        sell(10, 97, 15, acct=9, time_in_force="fok", quote_quantity=99 * 10 + 98 * 5 + 1),
        [("accepted", 10, 0), ("cancelled", 10, 15, "fok_kill")],
    ),
    Case(
        "a market buy by quantity takes the best asks",
        buy(10, None, 12, acct=9, order_type="market", time_in_force="ioc"),
        [("accepted", 10, 0), ("trade", 1, 10, 101, 10), ("trade", 2, 10, 101, 2)],
    ),
    Case(
        "a market buy larger than the book empties it and cancels the rest",
        buy(10, None, 40, acct=9, order_type="market", time_in_force="ioc"),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("trade", 3, 10, 103, 20),
            ("cancelled", 10, 5, "ioc_remainder"),
        ],
    ),
    Case(
        "a market sell by quantity takes the best bids",
        sell(10, None, 12, acct=9, order_type="market", time_in_force="ioc"),
        [("accepted", 10, 0), ("trade", 4, 10, 99, 10), ("trade", 5, 10, 98, 2)],
    ),
    Case(
        "a market buy with a quote budget buys whole lots until one more lot is unaffordable",
        buy(
            10,
            None,
            None,
            acct=9,
            order_type="market",
            time_in_force="ioc",
            quote_quantity=ASK_NOTIONAL_15_AT_101 + 102,
        ),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
        ],
    ),
    Case(
        "a market budget that outlasts the book is cancelled with what is unspent",
        buy(
            10, None, None, acct=9, order_type="market", time_in_force="ioc", quote_quantity=10_000
        ),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("trade", 3, 10, 103, 20),
            ("cancelled", 10, 0, "ioc_remainder"),
        ],
    ),
    Case(
        "a market budget that cannot buy one lot is cancelled untouched",
        buy(10, None, None, acct=9, order_type="market", time_in_force="ioc", quote_quantity=100),
        [("accepted", 10, 0), ("cancelled", 10, 0, "ioc_remainder")],
    ),
    Case(
        "an ioc limit buy with a budget stops at its limit price",
        buy(10, 101, None, acct=9, time_in_force="ioc", quote_quantity=10_000),
        [
            ("accepted", 10, 0),
            ("trade", 1, 10, 101, 10),
            ("trade", 2, 10, 101, 5),
            ("cancelled", 10, 0, "ioc_remainder"),
        ],
    ),
    Case(
        "a post-only order that would not trade rests",
        buy(10, 100, 3, acct=9, post_only=True),
        [("accepted", 10, 3)],
    ),
    Case(
        "a post-only buy that would trade is re-priced one tick under the best ask when asked to",
        buy(10, 102, 3, acct=9, post_only=True, post_only_reprice=True),
        [("accepted", 10, 0), ("rested", 10, 100, 3)],
    ),
    Case(
        "a post-only sell that would trade is re-priced one tick over the best bid when asked to",
        sell(10, 95, 3, acct=9, post_only=True, post_only_reprice=True),
        [("accepted", 10, 0), ("rested", 10, 100, 3)],
    ),
    Case(
        "a gtd order rests like a gtc order until its time",
        sell(10, 102, 4, acct=9, time_in_force="gtd", expire_at_ns=T0 + 60 * S),
        [("accepted", 10, 4)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_each_order_type_makes_exactly_its_events(case: Case) -> None:
    book = given(*BOOK)
    assert when(book, case.when) == case.then


def test_a_partly_filled_order_rests_its_remainder_at_its_own_price() -> None:
    book = given(*BOOK)
    when(book, buy(10, 102, 20, acct=9))
    assert book.best_bid() == 102 and book.best_ask() == 103
    rest = book.order(10)
    assert rest is not None and (rest.price_ticks, rest.remaining_lots) == (102, 5)


def test_ioc_fok_and_market_orders_never_rest() -> None:
    book = given(*BOOK)
    before = resting(book)
    for step in (
        buy(10, 100, 5, acct=9, time_in_force="ioc"),
        buy(11, 100, 5, acct=9, time_in_force="fok"),
        buy(12, None, 50, acct=9, order_type="market", time_in_force="ioc"),
        sell(13, None, 50, acct=9, order_type="market", time_in_force="ioc"),
    ):
        when(book, step)
    ids = {oid for oid, *_ in resting(book)}
    assert ids.isdisjoint({10, 11, 12, 13})
    assert before != resting(book)  # the market orders did trade


def test_a_killed_fok_order_leaves_the_book_as_it_was() -> None:
    book = given(*BOOK)
    before = (resting(book), book.depth())
    when(book, buy(10, 103, 36, acct=9, time_in_force="fok"))
    assert (resting(book), book.depth()) == before


def test_depth_shows_levels_best_first_with_open_lots_and_order_counts() -> None:
    book = given(*BOOK)
    bids, asks = book.depth()
    assert bids == [(99, 10, 1), (98, 12, 2)]
    assert asks == [(101, 15, 2), (103, 20, 1)]
    assert book.depth(1) == ([(99, 10, 1)], [(101, 15, 2)])
