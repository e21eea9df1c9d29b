"""Every named rejection, in its documented order; a rejected command changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from domain.trading import errors as e
from domain.trading.book import (
    AMEND_ORDER_ORDER,
    CANCEL_ORDER_ORDER,
    PLACE_ORDER_ORDER,
    REDUCE_ORDER_ORDER,
    OrderBook,
)
from domain.trading.instrument import LIST_INSTRUMENT_ORDER, InstrumentSpec
from tests.unit.domain.trading.support import (
    SPEC,
    T0,
    S,
    Step,
    amend,
    buy,
    cancel,
    given,
    order,
    reduce,
    sell,
)

BOOK: tuple[Step, ...] = (sell(1, 101, 10, acct=1), buy(2, 99, 10, acct=2))
HALTED = (*BOOK, lambda b: b.halt(T0))
CLOSED = (*BOOK, lambda b: b.close(T0))


def place(**kw: Any) -> Step:
    fields = {"oid": 10, "side": "buy", "price": 100, "qty": 5, "acct": 3, **kw}
    return lambda b: b.place(
        order(
            fields.pop("oid"),
            fields.pop("side"),
            fields.pop("price"),
            fields.pop("qty"),
            fields.pop("acct"),
            **fields,
        ),
        T0,
    )


def parse(**kw: Any) -> Step:
    fields = {
        "order_id": 10,
        "account_id": 3,
        "side": "buy",
        "price": "1.00",
        "quantity": "5",
        **kw,
    }
    return lambda b: b.parse_order(**fields)


@dataclass
class Case:
    rule: str
    given: tuple[Step, ...]
    when: Step
    spec: dict[str, Any] | None = None


PLACE = [
    Case("id_must_not_be_zero", BOOK, place(oid=0)),
    Case("id_must_not_be_zero", BOOK, place(acct=-1)),
    Case("id_must_not_be_int_max", BOOK, place(oid=2**128 - 1)),
    Case("id_must_not_be_int_max", BOOK, place(acct=2**128)),
    Case("invalid_side", BOOK, place(side="hold")),
    Case("invalid_order_type", BOOK, place(order_type="stop")),
    Case("invalid_time_in_force", BOOK, place(time_in_force="day")),
    Case("invalid_self_trade_prevention", BOOK, place(self_trade_prevention="expire_maker")),
    Case("market_order_cannot_rest", BOOK, place(order_type="market", price=None)),
    Case("price_required", BOOK, place(price=None)),
    Case("price_not_allowed", BOOK, place(order_type="market", time_in_force="ioc")),
    Case("quantity_required", BOOK, place(qty=None)),
    Case("quantity_required", BOOK, place(qty=None, time_in_force="fok", quote_quantity=500)),
    Case("quote_quantity_not_allowed", BOOK, place(quote_quantity=500)),
    Case("quote_quantity_not_allowed", BOOK, place(time_in_force="ioc", quote_quantity=500)),
    Case(
        "quote_quantity_not_allowed",
        BOOK,
        place(side="sell", qty=None, time_in_force="ioc", quote_quantity=500),
    ),
    Case("post_only_not_allowed", BOOK, place(time_in_force="ioc", post_only=True)),
    Case("post_only_not_allowed", BOOK, place(post_only_reprice=True)),
    Case("expire_at_required", BOOK, place(time_in_force="gtd")),
    Case("expire_at_not_allowed", BOOK, place(expire_at_ns=T0 + S)),
    Case("invalid_price", BOOK, parse(price="1e2")),
    Case("invalid_price", BOOK, parse(price=" 1.00")),
    Case("price_must_be_positive", BOOK, place(price=0)),
    Case("price_must_be_positive", BOOK, parse(price="-1.00")),
    Case("price_not_on_tick", BOOK, parse(price="1.005")),
    Case("invalid_quantity", BOOK, parse(quantity="five")),
    Case("quantity_must_be_positive", BOOK, place(qty=0)),
    Case("quantity_must_be_positive", BOOK, parse(quantity="-3")),
    Case("quantity_not_on_lot", BOOK, parse(quantity="2.5")),
    Case(
        "invalid_quote_quantity",
        BOOK,
        parse(
            price=None,
            quantity=None,
            order_type="market",
            time_in_force="ioc",
            quote_quantity="lots",
        ),
    ),
    Case(
        "quote_quantity_must_be_positive",
        BOOK,
        place(price=None, qty=None, order_type="market", time_in_force="ioc", quote_quantity=0),
    ),
    Case(
        "quote_quantity_must_be_positive",
        BOOK,
        parse(
            price=None,
            quantity=None,
            order_type="market",
            time_in_force="ioc",
            quote_quantity="0.001",
        ),
    ),
    Case("quantity_below_minimum", BOOK, place(qty=4), {"min_quantity": "5"}),
    Case("expire_at_in_past", BOOK, place(time_in_force="gtd", expire_at_ns=T0)),
    Case("instrument_closed", CLOSED, place()),
    Case("instrument_halted", HALTED, place()),
    Case("duplicate_order_id", BOOK, place(oid=1)),
    Case(
        "price_out_of_band",
        BOOK,
        place(price=106),
        {"price_band_bps": 500, "reference_price": "1.00"},
    ),
    Case(
        "price_out_of_band",
        BOOK,
        place(price=94),
        {"price_band_bps": 500, "reference_price": "1.00"},
    ),
    Case("post_only_would_take", BOOK, place(price=101, post_only=True)),
    Case("post_only_would_take", BOOK, place(side="sell", price=99, post_only=True)),
]
CANCEL = [
    Case("id_must_not_be_zero", BOOK, cancel(0, acct=1)),
    Case("id_must_not_be_int_max", BOOK, cancel(2**128 - 1, acct=1)),
    Case("order_not_found", BOOK, cancel(77, acct=1)),
    Case("order_not_found", BOOK, cancel(1, acct=2)),  # another account's order
]
REDUCE = [
    Case("id_must_not_be_zero", BOOK, reduce(1, acct=0, reduce_by=1)),
    Case("id_must_not_be_int_max", BOOK, reduce(1, acct=2**128 - 1, reduce_by=1)),
    Case("reduce_needs_one_quantity", BOOK, reduce(1, acct=1)),
    Case("reduce_needs_one_quantity", BOOK, reduce(1, acct=1, reduce_by=1, reduce_to=2)),
    Case("quantity_must_be_positive", BOOK, reduce(1, acct=1, reduce_by=0)),
    Case("quantity_must_be_positive", BOOK, reduce(1, acct=1, reduce_to=-1)),
    Case("order_not_found", BOOK, reduce(1, acct=2, reduce_by=1)),
    Case("reduce_must_decrease", BOOK, reduce(1, acct=1, reduce_to=10)),
]
AMEND = [
    Case("id_must_not_be_zero", BOOK, amend(0, acct=1, price_ticks=102)),
    Case("id_must_not_be_int_max", BOOK, amend(2**128 - 1, acct=1, price_ticks=102)),
    Case("amend_requires_change", BOOK, amend(1, acct=1)),
    Case("price_must_be_positive", BOOK, amend(1, acct=1, price_ticks=0)),
    Case("quantity_must_be_positive", BOOK, amend(1, acct=1, quantity_lots=0)),
    Case("quantity_below_minimum", BOOK, amend(1, acct=1, quantity_lots=4), {"min_quantity": "5"}),
    Case("order_not_found", BOOK, amend(1, acct=2, price_ticks=102)),
    Case("instrument_halted", HALTED, amend(1, acct=1, price_ticks=102)),
    Case("amend_requires_change", BOOK, amend(1, acct=1, price_ticks=101, quantity_lots=10)),
    Case(
        "price_out_of_band",
        BOOK,
        amend(1, acct=1, price_ticks=110),
        {"price_band_bps": 500, "reference_price": "1.00"},
    ),
    Case(
        "post_only_would_take",
        (sell(1, 103, 10, post_only=True), buy(2, 99, 10, acct=2)),
        amend(1, acct=1, price_ticks=99),
    ),
]
INSTRUMENT = [
    Case("instrument_closed", CLOSED, lambda b: b.halt(T0)),
    Case("instrument_halted", HALTED, lambda b: b.halt(T0)),
    Case("instrument_closed", CLOSED, lambda b: b.resume(T0)),
    Case("instrument_not_halted", BOOK, lambda b: b.resume(T0)),
    Case("instrument_closed", CLOSED, lambda b: b.close(T0)),
    Case("id_must_not_be_zero", BOOK, lambda b: b.cancel_all(T0, account_id=0)),
]


def run_case(case: Case) -> str:
    book = given(*case.given, **(case.spec or {}))
    before = (book.version, book.to_snapshot())
    with pytest.raises(e.TradingRejection) as info:
        case.when(book)
    assert (book.version, book.to_snapshot()) == before, "a rejection changed the book"
    assert book.collect_events() == []
    return info.value.code


ALL = PLACE + CANCEL + REDUCE + AMEND + INSTRUMENT


@pytest.mark.parametrize("case", ALL, ids=[f"{c.rule}-{i}" for i, c in enumerate(ALL)])
def test_each_rule_is_refused_by_name_and_changes_nothing(case: Case) -> None:
    assert run_case(case) == case.rule


@pytest.mark.parametrize(
    ("cases", "documented"),
    [
        (PLACE, PLACE_ORDER_ORDER),
        (CANCEL, CANCEL_ORDER_ORDER),
        (REDUCE, REDUCE_ORDER_ORDER),
        (AMEND, AMEND_ORDER_ORDER),
    ],
    ids=["place", "cancel", "reduce", "amend"],
)
def test_the_tables_list_every_rule_in_the_documented_order(
    cases: list[Case], documented: tuple[str, ...]
) -> None:
    seen: list[str] = []
    for case in cases:
        if not seen or seen[-1] != case.rule:
            seen.append(case.rule)
    # amend_requires_change is checked twice (nothing given; the same values), see the order
    expected = [c for c in documented if c not in {"account_not_linked", "insufficient_funds"}]
    if documented is AMEND_ORDER_ORDER:
        expected.insert(expected.index("price_out_of_band"), "amend_requires_change")
    assert seen == expected


PRECEDENCE = [
    ("id_must_not_be_zero", place(oid=0, side="hold")),
    ("invalid_side", place(side="hold", order_type="stop")),
    ("market_order_cannot_rest", place(order_type="market", price=100)),
    ("price_not_allowed", parse(order_type="market", time_in_force="ioc", price="bad")),
    ("quantity_required", place(qty=None, quote_quantity=5)),
    ("expire_at_not_allowed", place(expire_at_ns=1, price=0)),
    ("price_must_be_positive", place(price=0, qty=0)),
    ("invalid_price", parse(price="x", quantity="y")),
    ("price_not_on_tick", parse(price="1.001", quantity="0.5")),
    (
        "quantity_not_on_lot",
        parse(
            quantity="0.5", order_type="market", price=None, time_in_force="fok", quote_quantity="x"
        ),
    ),
    ("quantity_below_minimum", place(qty=1, time_in_force="gtd", expire_at_ns=T0)),
    ("expire_at_in_past", place(oid=1, time_in_force="gtd", expire_at_ns=T0)),
    ("duplicate_order_id", place(oid=1, price=200)),
    ("price_out_of_band", place(price=200, post_only=True)),
]


@pytest.mark.parametrize(("rule", "step"), PRECEDENCE, ids=[r for r, _ in PRECEDENCE])
def test_an_order_breaking_two_rules_is_refused_by_the_earlier(rule: str, step: Step) -> None:
    case = Case(
        rule, BOOK, step, {"min_quantity": "2", "price_band_bps": 500, "reference_price": "1.00"}
    )
    assert run_case(case) == rule


def test_a_halted_instrument_refuses_before_a_duplicate_id() -> None:
    assert run_case(Case("instrument_halted", HALTED, place(oid=1))) == "instrument_halted"


VENUE = {"ledger": 1, "base_hold_account_id": 91, "quote_hold_account_id": 92, "fee_account_id": 93}
INSTRUMENT_CASES = [
    ("id_must_not_be_zero", {"instrument_id": 0}),
    ("id_must_not_be_int_max", {"instrument_id": 2**128 - 1}),
    ("invalid_symbol", {"symbol": "eur usd"}),
    ("invalid_asset", {"base_asset": "eur"}),
    ("assets_must_be_different", {"quote_asset": "AAA"}),
    ("invalid_tick_size", {"tick_size": "0"}),
    ("invalid_tick_size", {"tick_size": "-0.01"}),
    ("invalid_lot_size", {"lot_size": "1e3"}),
    ("invalid_min_quantity", {"lot_size": "10", "min_quantity": "15"}),
    ("invalid_price_band", {"price_band_bps": 10_001}),
    ("invalid_reference_price", {"reference_price": "1.005"}),
    ("invalid_fee", {"taker_fee_bps": -1}),
    ("invalid_self_trade_prevention", {"self_trade_prevention": "expire_taker"}),
    ("invalid_settlement_mode", {"settlement": "dvp"}),
    ("invalid_status", {"status": "closed"}),
    ("invalid_settlement_accounts", {"settlement": "ledger"}),
    ("invalid_settlement_accounts", {"fee_account_id": 93}),
    ("asset_not_a_currency", {"settlement": "ledger", **VENUE}),
    (
        "tick_value_not_integral",
        {
            "settlement": "ledger",
            **VENUE,
            "base_asset": "EUR",
            "quote_asset": "USD",
            "tick_size": "0.0001",
            "lot_size": "1",
        },
    ),
    (
        "lot_not_integral",
        {
            "settlement": "ledger",
            **VENUE,
            "base_asset": "EUR",
            "quote_asset": "USD",
            "tick_size": "10",
            "lot_size": "0.001",
        },
    ),
]


@pytest.mark.parametrize(
    ("rule", "changes"), INSTRUMENT_CASES, ids=[r for r, _ in INSTRUMENT_CASES]
)
def test_each_instrument_rule_is_refused_by_name(rule: str, changes: dict[str, Any]) -> None:
    with pytest.raises(e.TradingRejection) as info:
        OrderBook.list_instrument(replace(SPEC, **changes), T0)
    assert info.value.code == rule


def test_instrument_rules_are_listed_in_their_documented_order() -> None:
    seen: list[str] = []
    for rule, _ in INSTRUMENT_CASES:
        if not seen or seen[-1] != rule:
            seen.append(rule)
    assert seen == [r for r in LIST_INSTRUMENT_ORDER if r != "instrument_exists"]


def test_listing_an_instrument_twice_is_refused() -> None:
    book = OrderBook.list_instrument(SPEC, T0)
    with pytest.raises(e.InstrumentExists):
        OrderBook.list_instrument(SPEC, T0, existing=book)


def test_every_named_rule_has_a_case_or_belongs_to_the_application() -> None:
    covered = {c.rule for c in ALL} | {r for r, _ in INSTRUMENT_CASES} | {"instrument_exists"}
    application = {
        "insufficient_funds",
        "instrument_not_found",
        "ledger_account_not_found",
        "ledger_account_mismatch",
        "account_not_linked",
        "asset_already_linked",
        "exists",
    }
    assert {r.code for r in e.ALL_RULES} <= covered | application


def test_a_ledger_instrument_gets_its_minor_unit_values() -> None:
    book = OrderBook.list_instrument(
        InstrumentSpec(7, "EUR/USD", "EUR", "USD", "0.0001", "100", settlement="ledger", **VENUE),
        T0,
    )
    assert book.instrument is not None
    assert (book.instrument.tick_value_minor, book.instrument.lot_minor) == (1, 10_000)
