"""Self-trade prevention: when an account's incoming order meets its own resting order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.unit.domain.trading.support import Step, buy, given, resting, sell, when

# asks: 1 @101 x10 (account 1), 2 @101 x5 (account 2)
BOOK: tuple[Step, ...] = (sell(1, 101, 10, acct=1), sell(2, 101, 5, acct=2))


@dataclass
class Case:
    mode: str
    incoming: Step
    then: list[tuple[Any, ...]]
    left: list[tuple[int, str, int, int]]


CASES = [
    Case(
        "none",
        buy(9, 101, 12, acct=1, self_trade_prevention="none"),
        [("accepted", 9, 0), ("trade", 1, 9, 101, 10), ("trade", 2, 9, 101, 2)],
        [(2, "sell", 101, 3)],
    ),
    Case(
        "cancel_newest",
        buy(9, 101, 12, acct=1, self_trade_prevention="cancel_newest"),
        [("accepted", 9, 0), ("cancelled", 9, 12, "self_trade")],
        [(1, "sell", 101, 10), (2, "sell", 101, 5)],
    ),
    Case(
        "cancel_oldest",
        buy(9, 101, 12, acct=1, self_trade_prevention="cancel_oldest"),
        [
            ("accepted", 9, 0),
            ("cancelled", 1, 10, "self_trade"),
            ("trade", 2, 9, 101, 5),
            ("rested", 9, 101, 7),
        ],
        [(9, "buy", 101, 7)],
    ),
    Case(
        "cancel_both",
        buy(9, 101, 12, acct=1, self_trade_prevention="cancel_both"),
        [
            ("accepted", 9, 0),
            ("cancelled", 1, 10, "self_trade"),
            ("cancelled", 9, 12, "self_trade"),
        ],
        [(2, "sell", 101, 5)],
    ),
    Case(
        "decrement: the smaller resting order is cancelled, the incoming one reduced",
        buy(9, 101, 12, acct=1, self_trade_prevention="decrement"),
        [
            ("accepted", 9, 0),
            ("cancelled", 1, 10, "self_trade"),
            ("reduced", 9, 10, 2, "self_trade"),
            ("trade", 2, 9, 101, 2),
        ],
        [(2, "sell", 101, 3)],
    ),
    Case(
        "decrement: the smaller incoming order is cancelled, the resting one reduced",
        buy(9, 101, 4, acct=1, self_trade_prevention="decrement"),
        [("accepted", 9, 0), ("reduced", 1, 4, 6, "self_trade"), ("cancelled", 9, 4, "self_trade")],
        [(1, "sell", 101, 6), (2, "sell", 101, 5)],
    ),
    Case(
        "decrement: equal sizes cancel both",
        buy(9, 101, 10, acct=1, self_trade_prevention="decrement"),
        [
            ("accepted", 9, 0),
            ("cancelled", 1, 10, "self_trade"),
            ("cancelled", 9, 10, "self_trade"),
        ],
        [(2, "sell", 101, 5)],
    ),
    Case(
        "a budget order under decrement is cancelled as the newest",
        buy(
            9,
            None,
            None,
            acct=1,
            order_type="market",
            time_in_force="ioc",
            quote_quantity=5000,
            self_trade_prevention="decrement",
        ),
        [("accepted", 9, 0), ("cancelled", 9, 0, "self_trade")],
        [(1, "sell", 101, 10), (2, "sell", 101, 5)],
    ),
    Case(
        "a budget order under cancel_oldest skips past its own order",
        buy(
            9,
            None,
            None,
            acct=1,
            order_type="market",
            time_in_force="ioc",
            quote_quantity=303,
            self_trade_prevention="cancel_oldest",
        ),
        [("accepted", 9, 0), ("cancelled", 1, 10, "self_trade"), ("trade", 2, 9, 101, 3)],
        [(2, "sell", 101, 2)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.mode for c in CASES])
def test_each_self_trade_mode(case: Case) -> None:
    book = given(*BOOK)
    assert when(book, case.incoming) == case.then
    assert resting(book) == case.left


def test_prevention_applies_only_when_the_account_meets_itself_after_other_trades() -> None:
    book = given(sell(2, 101, 5, acct=2), sell(1, 101, 10, acct=1))
    events = when(book, buy(9, 101, 12, acct=1, self_trade_prevention="cancel_newest"))
    assert events == [
        ("accepted", 9, 0),
        ("trade", 2, 9, 101, 5),
        ("cancelled", 9, 7, "self_trade"),
    ]


def test_the_instruments_default_mode_applies_when_the_order_names_none() -> None:
    book = given(*BOOK, self_trade_prevention="cancel_oldest")
    events = when(book, buy(9, 101, 12, acct=1))
    assert events[1] == ("cancelled", 1, 10, "self_trade")
    accepted = book.order(9)
    assert accepted is not None and accepted.self_trade_prevention == "cancel_oldest"


def test_a_fok_order_counts_its_own_orders_as_liquidity_only_when_self_trades_are_allowed() -> None:
    kill = given(*BOOK)
    assert when(
        kill, buy(9, 101, 15, acct=1, time_in_force="fok", self_trade_prevention="cancel_newest")
    )[-1] == ("cancelled", 9, 15, "fok_kill")
    fill = given(*BOOK)
    assert when(fill, buy(9, 101, 15, acct=1, time_in_force="fok", self_trade_prevention="none"))[
        -1
    ] == ("trade", 2, 9, 101, 5)
    skip = given(*BOOK, sell(3, 102, 10, acct=3))
    assert when(
        skip, buy(9, 102, 15, acct=1, time_in_force="fok", self_trade_prevention="cancel_oldest")
    ) == [
        ("accepted", 9, 0),
        ("cancelled", 1, 10, "self_trade"),
        ("trade", 2, 9, 101, 5),
        ("trade", 3, 9, 102, 10),
    ]
