"""A funded two-trader EUR/USD venue that settles into a fake ledger."""

from __future__ import annotations

from typing import Any

from domain.ledger import service as ledger
from domain.ledger.account import Account, AccountSpec
from domain.ledger.transfer import TransferSpec
from domain.trading import venue
from domain.trading.book import OrderBook
from domain.trading.instrument import InstrumentSpec
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.fake_venue import FakeVenue

T0 = 1_700_000_000_000_000_000
ALICE, BOB = 100, 200
# ledger accounts: banks 1 (USD), 2 (EUR); alice 10 (USD), 11 (EUR); bob 20 (USD), 21 (EUR);
# the venue's EUR hold 90, USD hold 91, USD fees 92
LEDGER_ACCOUNTS = {
    1: "USD", 2: "EUR", 10: "USD", 11: "EUR", 20: "USD", 21: "EUR", 90: "EUR", 91: "USD", 92: "USD"
}  # fmt: skip
SPEC = InstrumentSpec(
    instrument_id=7,
    symbol="EUR/USD",
    base_asset="EUR",
    quote_asset="USD",
    tick_size="0.01",  # a price in cents per euro
    lot_size="1",  # whole euros: one lot is 100 EUR minor units, one tick x lot 1 US cent
    settlement="ledger",
    maker_fee_bps=10,
    taker_fee_bps=20,
    self_trade_prevention="cancel_newest",
    ledger=1,
    base_hold_account_id=90,
    quote_hold_account_id=91,
    fee_account_id=92,
)


def funded_venue(usd_cents: int = 200_000, eur_cents: int = 500_000) -> FakeVenue:
    """Alice holds ``usd_cents`` and Bob ``eur_cents``; both linked; the instrument listed."""
    src = FakeVenue()
    for account_id, currency in LEDGER_ACCOUNTS.items():
        limited = account_id not in (1, 2)  # everyone but the banks: no overdraft
        ledger.open_account(src, AccountSpec(account_id, 1, currency, 1, limited), T0)
    src.commit()
    for tid, (debit, credit, amount) in enumerate(
        [(1, 10, usd_cents), (2, 11, eur_cents), (1, 20, usd_cents), (2, 21, eur_cents)], start=1
    ):
        ledger.create_transfer(src, TransferSpec(tid, debit, credit, amount, 1, 1), T0)
    src.commit()
    for trader, usd, eur in ((ALICE, 10, 11), (BOB, 20, 21)):
        src.run(lambda s, t=trader, a=usd: venue.link_account(s, t, "USD", a, T0))
        src.run(lambda s, t=trader, a=eur: venue.link_account(s, t, "EUR", a, T0))
    src.run(lambda s: venue.list_instrument(s, SPEC, T0))
    return src


def book_of(src: FakeVenue) -> OrderBook:
    book = src.committed["book:7"]
    assert isinstance(book, OrderBook)
    return book


def place(
    src: FakeVenue, oid: int, trader: int, side: str, price: int | None, lots: int | None, **kw: Any
) -> None:
    order = NewOrder(oid, trader, side, price, lots, **kw)
    src.run(lambda s: venue.place(s, s.get_book(7), order, T0))  # type: ignore[arg-type]


def balances(src: FakeVenue, account_id: int) -> tuple[int, int, int, int]:
    """(debits_pending, debits_posted, credits_pending, credits_posted)."""
    acc = src.committed[f"account:{account_id}"]
    assert isinstance(acc, Account)
    return acc.debits_pending, acc.debits_posted, acc.credits_pending, acc.credits_posted


def available(src: FakeVenue, account_id: int) -> int:
    dp, dpo, _, cpo = balances(src, account_id)
    return cpo - dpo - dp


def totals_by_currency(src: FakeVenue) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = {}
    for agg in src.committed.values():
        if isinstance(agg, Account):
            s = sums.setdefault(agg.currency, [0, 0, 0, 0])
            for i, v in enumerate(
                (agg.debits_pending, agg.debits_posted, agg.credits_pending, agg.credits_posted)
            ):
                s[i] += v
    return sums
