"""Trades settle into the ledger: holds at placement, both holds posted per fill, fees, voids."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.ledger import service
from domain.ledger.transfer import TransferSpec
from domain.trading import errors as e
from domain.trading import venue
from domain.trading.holds import OrderHold
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.venue_support import (
    ALICE,
    BOB,
    SPEC,
    T0,
    available,
    balances,
    book_of,
    funded_venue,
    place,
    totals_by_currency,
)


def hold(src: object, order_id: int) -> OrderHold:
    agg = src.committed[f"hold:{order_id}"]  # type: ignore[attr-defined]
    assert isinstance(agg, OrderHold)
    return agg


def test_a_resting_sell_holds_its_euros_and_a_buy_its_dollars_plus_the_higher_fee() -> None:
    src = funded_venue()
    place(src, 1, BOB, "sell", 110, 1000)  # 1,000 EUR at 1.10
    assert balances(src, 21)[0] == 100_000  # pending debit: 1,000.00 EUR
    assert balances(src, 90)[2] == 100_000  # the venue's EUR hold, pending credit
    place(src, 2, ALICE, "buy", 105, 100)  # rests: 105 x 100 = 105.00 USD + 20 bps
    assert balances(src, 10)[0] == 10_500 + 21
    assert hold(src, 2).amount_minor == 10_521 and hold(src, 2).open


def test_a_trade_posts_both_holds_moves_the_assets_and_charges_maker_and_taker_fees() -> None:
    src = funded_venue()
    place(src, 1, BOB, "sell", 110, 1000)
    place(src, 2, ALICE, "buy", 112, 400)  # takes 400 at 110: 440.00 USD
    # alice (taker, 20 bps) paid 440.00 + 0.88; her unused hold (at 1.12) was released
    assert available(src, 10) == 200_000 - 44_088 and balances(src, 10)[0] == 0
    assert available(src, 11) == 500_000 + 40_000
    # bob (maker, 10 bps) received 440.00 - 0.44 and still holds the 600 EUR he offers
    assert available(src, 20) == 200_000 + 43_956
    assert balances(src, 21) == (60_000, 40_000, 0, 500_000)
    assert balances(src, 92)[3] == 88 + 44
    # the venue's hold accounts end every trade with nothing posted
    for hold_account in (90, 91):
        _, debits_posted, _, credits_posted = balances(src, hold_account)
        assert debits_posted == credits_posted
    assert hold(src, 1).slice == 1 and hold(src, 1).amount_minor == 60_000
    assert not hold(src, 2).open
    for dp, dpo, cp, cpo in totals_by_currency(src).values():
        assert (dp, dpo) == (cp, cpo)


def test_an_order_the_funds_cannot_cover_is_refused_before_it_reaches_the_book() -> None:
    src = funded_venue()
    with pytest.raises(e.InsufficientFunds) as info:
        place(src, 1, ALICE, "buy", 110, 2000)  # 2,200.00 USD and fees > 2,000.00
    assert info.value.to_outcome()["ledger_account_id"] == 10
    assert book_of(src).open_orders() == 0 and balances(src, 10)[0] == 0
    assert "hold:1" not in src.committed


def test_cancels_expiries_and_remainders_release_what_is_left() -> None:
    src = funded_venue()
    place(src, 1, BOB, "sell", 110, 1000)
    src.run(lambda s: venue.cancel(s, book_of(s), 1, BOB, T0))
    assert balances(src, 21)[0] == 0 and not hold(src, 1).open
    place(src, 2, BOB, "sell", 110, 100)
    place(src, 3, ALICE, "buy", 110, 300, time_in_force="ioc")  # 100 trade, 200 cancelled
    assert balances(src, 10)[0] == 0 and not hold(src, 3).open
    place(src, 4, ALICE, "buy", 120, 50, time_in_force="fok")  # nothing to buy: killed
    assert balances(src, 10)[0] == 0 and not hold(src, 4).open
    place(src, 5, BOB, "sell", 130, 10, time_in_force="gtd", expire_at_ns=T0 + 5)
    assert src.run(lambda s: venue.expire(s, book_of(s), T0 + 5)) == 1
    assert balances(src, 21)[0] == 0 and not hold(src, 5).open


def test_a_reduction_re_reserves_exactly_the_smaller_need() -> None:
    src = funded_venue()
    place(src, 1, ALICE, "buy", 100, 500)  # 500.00 USD + 1.00 fee
    assert hold(src, 1).amount_minor == 50_100
    src.run(lambda s: venue.reduce(s, book_of(s), 1, ALICE, T0, reduce_to=200))
    assert hold(src, 1).amount_minor == 20_040 and balances(src, 10)[0] == 20_040


def test_an_amendment_reserves_its_new_need_first_and_may_be_refused_for_it() -> None:
    src = funded_venue()
    place(src, 1, ALICE, "buy", 100, 500)
    with pytest.raises(e.InsufficientFunds):
        src.run(lambda s: venue.amend(s, book_of(s), 1, ALICE, T0, quantity_lots=2500))
    assert hold(src, 1).amount_minor == 50_100 and book_of(src).order(1).remaining_lots == 500  # type: ignore[union-attr]
    src.run(lambda s: venue.amend(s, book_of(s), 1, ALICE, T0, price_ticks=101, quantity_lots=600))
    assert hold(src, 1).amount_minor == 60_600 + 121 and balances(src, 10)[0] == 60_721


def test_a_market_buy_holds_exactly_what_it_will_fill() -> None:
    src = funded_venue()
    place(src, 1, BOB, "sell", 110, 100)
    place(src, 2, BOB, "sell", 111, 100)
    captured: list[int] = []
    original = venue._reserve

    def spy(*args: object, **kw: object) -> None:
        captured.append(args[5])  # type: ignore[arg-type]
        original(*args, **kw)  # type: ignore[arg-type]

    venue._reserve = spy  # type: ignore[assignment]
    try:
        place(src, 3, ALICE, "buy", None, 150, order_type="market", time_in_force="ioc")
    finally:
        venue._reserve = original
    notional = 110 * 100 + 111 * 50
    assert captured[0] == notional + notional * 20 // 10_000
    assert available(src, 10) == 200_000 - (11_000 + 22) - (5_550 + 11)


def test_an_account_without_ledger_links_cannot_trade_a_ledger_instrument() -> None:
    src = funded_venue()
    with pytest.raises(e.AccountNotLinked):
        place(src, 1, 999, "buy", 100, 1)


def test_self_trade_prevention_releases_both_holds_it_cancels() -> None:
    src = funded_venue()
    src.run(lambda s: venue.link_account(s, ALICE + 1, "USD", 10, T0))
    place(src, 1, BOB, "sell", 110, 100)
    place(src, 2, BOB, "buy", 110, 50, self_trade_prevention="cancel_both")
    assert not hold(src, 1).open and not hold(src, 2).open
    assert balances(src, 21)[0] == 0 and balances(src, 20)[0] == 0


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"base_hold_account_id": 77}, "ledger_account_not_found"),
        ({"base_hold_account_id": 91}, "ledger_account_mismatch"),  # a USD account for EUR
        ({"ledger": 2}, "ledger_account_mismatch"),
    ],
)
def test_listing_checks_the_venues_ledger_accounts(changes: dict[str, int], code: str) -> None:
    src = funded_venue()
    with pytest.raises(e.TradingRejection) as info:
        src.run(lambda s: venue.list_instrument(s, replace(SPEC, instrument_id=8, **changes), T0))
    assert info.value.code == code


def test_links_are_checked_and_permanent() -> None:
    src = funded_venue()
    with pytest.raises(e.LedgerAccountMismatch):
        src.run(lambda s: venue.link_account(s, 300, "EUR", 10, T0))  # a USD account
    with pytest.raises(e.LedgerAccountNotFound):
        src.run(lambda s: venue.link_account(s, 300, "EUR", 55, T0))
    with pytest.raises(e.AccountLinked):
        src.run(lambda s: venue.link_account(s, ALICE, "USD", 10, T0))
    with pytest.raises(e.AssetAlreadyLinked):
        src.run(lambda s: venue.link_account(s, ALICE, "USD", 20, T0))


def test_venue_transfer_ids_are_deterministic_and_step_past_ids_a_client_took() -> None:
    ids = {venue.venue_transfer_id("hold", order, n, 0) for order in range(200) for n in range(5)}
    assert len(ids) == 1000 and all(1 <= i <= 2**128 - 2 for i in ids)
    src = funded_venue()
    taken = venue.venue_transfer_id("hold", 1, 0, 0)
    src.run(lambda s: service.create_transfer(s, TransferSpec(taken, 1, 10, 1, 1, 1), T0))
    place(src, 1, ALICE, "buy", 100, 5)
    assert hold(src, 1).transfer_id == venue.venue_transfer_id("hold", 1, 0, 1)
    assert balances(src, 10)[0] == 500 + 1


def test_a_plain_new_order_needs_no_ledger_on_a_settlement_none_instrument() -> None:
    src = funded_venue()
    src.run(
        lambda s: venue.list_instrument(
            s,
            replace(
                SPEC,
                instrument_id=9,
                settlement="none",
                ledger=0,
                base_hold_account_id=0,
                quote_hold_account_id=0,
                fee_account_id=0,
            ),
            T0,
        )
    )
    src.run(lambda s: venue.place(s, s.get_book(9), NewOrder(1, 5, "buy", 100, 5), T0))  # type: ignore[arg-type]
    assert "hold:1" not in src.committed
