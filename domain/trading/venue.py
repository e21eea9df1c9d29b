"""The venue: order-book commands, and for settlement "ledger" the holds and trades in the ledger.

Definition
    Every trading command goes through here. With settlement ``none`` a command is the book's
    alone. With settlement ``ledger`` it also moves money, in the same unit of work:

    * placing an order reserves what it could spend (:mod:`domain.trading.settlement`) as a
      pending ledger transfer from the trader's account to the venue's hold account
      (:class:`~domain.trading.holds.OrderHold`, slice 0); an order the funds cannot cover is
      refused ``insufficient_funds`` before it reaches the book;
    * each trade posts the matched part of both orders' holds (the buyer's notional plus its
      fee, the seller's base quantity), re-reserves what each still holds as a new slice, and
      moves the assets out of the hold accounts: base to the buyer, notional less the
      seller's fee to the seller, both fees to the venue's fee account;
    * a cancel, an expiry, an IOC/FOK/market remainder or a fill that completes an order
      voids what is left of its hold; a reduction re-reserves exactly the smaller need; an
      amendment re-reserves the new need before the book sees it (it can be refused
      ``insufficient_funds``).

Guarantees
    * The book and the ledger change together or not at all: every rule (the book's, the
      ledger's limits) is checked before the first event of the command.
    * The ledger's trial balance holds at every position; a hold account's posted balance
      returns to zero after every trade; the sum of each currency over all accounts never
      changes (a trade only moves money between accounts).
    * Ledger transfers the venue makes take ids from :func:`venue_transfer_id`: a hash of
      what the transfer is for, deterministic, spread over the whole id space. Before creating
      one the venue looks the id up; if anyone (a client) already took it, it takes the next
      candidate (the same hash with the attempt number), so a venue transfer never collides
      with another and no client can block the venue by taking its ids first. The id chosen
      is recorded in the events, so replay never recomputes it.

Rejections (besides the book's and the ledger's own)
    Listing: ``ledger_account_not_found``, ``ledger_account_mismatch`` for the venue's
    accounts. Placing and amending: ``account_not_linked``, then ``insufficient_funds``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.ledger import errors as le
from domain.ledger import service as ledger
from domain.ledger.account import ID_INT_MAX, Account
from domain.ledger.transfer import Transfer, TransferSpec
from domain.trading import errors as e
from domain.trading import settlement as st
from domain.trading.accounts import TradingAccount
from domain.trading.book import OrderBook
from domain.trading.events import (
    HoldOpened,
    OrderCancelled,
    OrderExpired,
    OrderReduced,
    TradeExecuted,
)
from domain.trading.holds import OrderHold
from domain.trading.instrument import Instrument, InstrumentSpec, check_id, is_asset_code
from domain.trading.orders import NewOrder

# Ledger transfer codes of the venue's transfers.
HOLD_CODE = 7001
BASE_LEG_CODE = 7002
QUOTE_LEG_CODE = 7003
FEE_LEG_CODE = 7004


class VenueSource(Protocol):
    """Where the venue finds aggregates: the processor's unit of work, or a fake in tests."""

    def get_book(self, instrument_id: int) -> OrderBook | None: ...

    def get_trader(self, account_id: int) -> TradingAccount | None: ...

    def get_hold(self, order_id: int) -> OrderHold | None: ...

    def get_account(self, account_id: int) -> Account | None: ...

    def get_transfer(self, transfer_id: int) -> Transfer | None: ...

    def add(self, aggregate: Aggregate) -> None: ...


def venue_transfer_id(*parts: object) -> int:
    """A ledger transfer id for what ``parts`` names: SHA-256 of the parts folded into
    1 .. 2^128-2 (2^128-1 is reserved). ``("hold", order id, slice, attempt)``,
    ``("trade", instrument id, trade seq, leg, attempt)``."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return 1 + int.from_bytes(digest[:16], "big") % (ID_INT_MAX - 1)


def _free_transfer_id(src: VenueSource, *parts: object) -> int:
    """The first candidate id for ``parts`` nobody has used (see the module docstring)."""
    for attempt in range(64):
        transfer_id = venue_transfer_id(*parts, attempt)
        if src.get_transfer(transfer_id) is None:
            return transfer_id
    invariant(False, f"64 candidate transfer ids for {parts} are all taken")
    return 0  # pragma: no cover - unreachable


# ------------------------------------------------------------------ instruments and accounts


def list_instrument(src: VenueSource, spec: InstrumentSpec, now_ns: int) -> OrderBook:
    book = OrderBook.list_instrument(spec, now_ns, src.get_book(spec.instrument_id))
    if spec.settlement == "ledger":
        for account_id, asset in (
            (spec.base_hold_account_id, spec.base_asset),
            (spec.quote_hold_account_id, spec.quote_asset),
            (spec.fee_account_id, spec.quote_asset),
        ):
            _check_ledger_account(src, account_id, asset, spec.ledger)
    src.add(book)
    return book


def link_account(
    src: VenueSource, account_id: int, asset: str, ledger_account_id: int, now_ns: int
) -> TradingAccount:
    """Settle ``asset`` of trading account ``account_id`` through ``ledger_account_id``."""
    ids = {"account_id": account_id}
    check_id(account_id, "the trading account id", **ids)
    check_id(ledger_account_id, "the ledger account id", **ids)
    if not is_asset_code(asset):
        raise e.InvalidAsset(f"asset {asset!r} is not 1-12 of A-Z and 0-9", **ids)
    _check_ledger_account(src, ledger_account_id, asset, None)
    trader = src.get_trader(account_id)
    if trader is None:
        trader = TradingAccount.link_first(account_id, asset, ledger_account_id, now_ns)
        src.add(trader)
    else:
        trader.link(asset, ledger_account_id, now_ns)
    return trader


def _check_ledger_account(
    src: VenueSource, account_id: int, asset: str, ledger_id: int | None
) -> None:
    account = src.get_account(account_id)
    if account is None:
        raise e.LedgerAccountNotFound(
            f"ledger account {account_id} does not exist", ledger_account_id=account_id
        )
    problem = (
        f"is in {account.currency}, not {asset}"
        if account.currency != asset
        else f"is on ledger {account.ledger}, not {ledger_id}"
        if ledger_id is not None and account.ledger != ledger_id
        else "is closed"
        if account.closed
        else "cannot take credits beyond its debits"
        if account.credits_must_not_exceed_debits
        else None
    )
    if problem is not None:
        raise e.LedgerAccountMismatch(
            f"ledger account {account_id} {problem}", ledger_account_id=account_id
        )


# ------------------------------------------------------------------ order commands


def place(src: VenueSource, book: OrderBook, order: NewOrder, now_ns: int) -> None:
    checked = book.check_place(order, now_ns)
    instrument = _instrument(book)
    mark = len(book.uncommitted())
    if instrument.spec.settlement == "ledger":
        _open_hold(src, book, instrument, order, checked, now_ns)
    book.place(order, now_ns, checked)
    if instrument.spec.settlement == "ledger":
        _settle(src, instrument, book, book.uncommitted()[mark:], now_ns, taker=order.order_id)


def cancel(src: VenueSource, book: OrderBook, order_id: int, account_id: int, now_ns: int) -> None:
    mark = len(book.uncommitted())
    book.cancel(order_id, account_id, now_ns)
    settle_since(src, book, mark, now_ns)


def reduce(
    src: VenueSource,
    book: OrderBook,
    order_id: int,
    account_id: int,
    now_ns: int,
    *,
    reduce_by: int | None = None,
    reduce_to: int | None = None,
) -> int:
    mark = len(book.uncommitted())
    left = book.reduce(order_id, account_id, now_ns, reduce_by=reduce_by, reduce_to=reduce_to)
    settle_since(src, book, mark, now_ns)
    return left


def amend(
    src: VenueSource,
    book: OrderBook,
    order_id: int,
    account_id: int,
    now_ns: int,
    *,
    price_ticks: int | None = None,
    quantity_lots: int | None = None,
) -> None:
    checked = book.check_amend(
        order_id, account_id, now_ns, price_ticks=price_ticks, quantity_lots=quantity_lots
    )
    instrument = _instrument(book)
    mark = len(book.uncommitted())
    if instrument.spec.settlement == "ledger":
        # The new need is reserved first: if the funds cannot cover it, nothing has changed.
        rest = book.order(order_id)
        hold = src.get_hold(order_id)
        invariant(rest is not None and hold is not None and hold.open, "a resting order holds")
        assert rest is not None
        assert hold is not None
        need = _need(instrument, rest.side, checked[0], checked[1])
        if need != hold.amount_minor:
            _reslice(src, instrument, hold, need, now_ns, release=True)
    book.amend(order_id, account_id, now_ns, checked=checked)
    if instrument.spec.settlement == "ledger":
        _settle(src, instrument, book, book.uncommitted()[mark:], now_ns, taker=order_id)


def cancel_all(
    src: VenueSource, book: OrderBook, now_ns: int, account_id: int | None = None
) -> int:
    mark = len(book.uncommitted())
    count = book.cancel_all(now_ns, account_id)
    settle_since(src, book, mark, now_ns)
    return count


def expire(src: VenueSource, book: OrderBook, now_ns: int) -> int:
    mark = len(book.uncommitted())
    count = book.expire(now_ns)
    settle_since(src, book, mark, now_ns)
    return count


def halt(src: VenueSource, book: OrderBook, now_ns: int, cancel_orders: bool = False) -> int:
    mark = len(book.uncommitted())
    count = book.halt(now_ns, cancel_orders)
    settle_since(src, book, mark, now_ns)
    return count


def close(src: VenueSource, book: OrderBook, now_ns: int) -> int:
    mark = len(book.uncommitted())
    count = book.close(now_ns)
    settle_since(src, book, mark, now_ns)
    return count


def settle_since(src: VenueSource, book: OrderBook, mark: int, now_ns: int) -> None:
    """Settle the book's events from ``mark`` on (cancels, expiries, mass cancels, halts)."""
    instrument = _instrument(book)
    if instrument.spec.settlement == "ledger":
        _settle(src, instrument, book, book.uncommitted()[mark:], now_ns, taker=None)


# ------------------------------------------------------------------ holds


def _instrument(book: OrderBook) -> Instrument:
    invariant(book.instrument is not None, f"{book.id} lists no instrument")
    assert book.instrument is not None  # for the type checker
    return book.instrument


def _need(instrument: Instrument, side: str, price_ticks: int, lots: int) -> int:
    """What a resting order of ``lots`` at ``price_ticks`` must hold."""
    if side == "buy":
        return st.buy_hold_minor(instrument, price_ticks, lots)
    return st.sell_hold_minor(instrument, lots)


def _open_hold(
    src: VenueSource,
    book: OrderBook,
    instrument: Instrument,
    order: NewOrder,
    checked: tuple[str, int | None],
    now_ns: int,
) -> None:
    spec = instrument.spec
    trader = src.get_trader(order.account_id)
    accounts = {
        asset: trader.ledger_account(asset) if trader is not None else None
        for asset in (spec.base_asset, spec.quote_asset)
    }
    for asset, linked in accounts.items():
        if linked is None:
            raise e.AccountNotLinked(
                f"trading account {order.account_id} has no ledger account for {asset}",
                account_id=order.account_id,
                asset=asset,
            )
    base_account, quote_account = accounts[spec.base_asset] or 0, accounts[spec.quote_asset] or 0
    stp, price = checked
    if order.side == "sell":
        amount = st.sell_hold_minor(instrument, order.quantity_lots or 0)
        currency, debit, credit = spec.base_asset, base_account, spec.base_hold_account_id
    else:
        if order.quantity_lots is None:
            amount = st.budget_hold_minor(instrument, order.quote_quantity or 0)
        elif price is None:  # a market buy: exactly what it will fill, found by the same walk
            _, notional = book.simulate(
                "buy",
                book.market_limit("buy"),
                order.quantity_lots,
                None,
                order.account_id,
                stp,
                now_ns,
            )
            amount = st.taker_hold_minor(instrument, notional)
        else:
            amount = st.buy_hold_minor(instrument, price, order.quantity_lots)
        currency, debit, credit = spec.quote_asset, quote_account, spec.quote_hold_account_id
    if amount <= 0:
        return  # nothing can fill (a market order on an empty side): nothing to hold
    transfer_id = _free_transfer_id(src, "hold", order.order_id, 0)
    _reserve(src, spec.ledger, transfer_id, debit, credit, amount, now_ns, order.order_id)
    src.add(
        OrderHold.opened(
            HoldOpened(
                1,
                now_ns,
                order.order_id,
                spec.instrument_id,
                order.account_id,
                order.side,
                currency,
                debit,
                credit,
                base_account,
                quote_account,
                transfer_id,
                amount,
            )
        )
    )


def _reserve(
    src: VenueSource,
    ledger_id: int,
    transfer_id: int,
    debit: int,
    credit: int,
    amount: int,
    now_ns: int,
    order_id: int,
) -> None:
    try:
        ledger.create_transfer(
            src,
            TransferSpec(transfer_id, debit, credit, amount, ledger_id, HOLD_CODE, pending=True),
            now_ns,
        )
    except le.ExceedsCredits:
        raise e.InsufficientFunds(
            f"ledger account {debit} cannot cover a hold of {amount} minor units",
            order_id=order_id,
            ledger_account_id=debit,
            hold_minor=amount,
        ) from None


def _reslice(
    src: VenueSource,
    instrument: Instrument,
    hold: OrderHold,
    amount: int,
    now_ns: int,
    *,
    release: bool,
) -> None:
    """Void (``release``) the current slice and reserve ``amount`` as the next one."""
    if release and hold.amount_minor:
        ledger.void_pending_transfer(src, hold.transfer_id, now_ns)
    if amount <= 0:
        hold.close(0, "consumed", now_ns)
        return
    transfer_id = _free_transfer_id(src, "hold", hold.order_id, hold.slice + 1)
    _reserve(
        src,
        instrument.spec.ledger,
        transfer_id,
        hold.debit_account_id,
        hold.hold_account_id,
        amount,
        now_ns,
        hold.order_id,
    )
    hold.reslice(transfer_id, amount, now_ns)


def _close(src: VenueSource, hold: OrderHold | None, reason: str, now_ns: int) -> None:
    if hold is None or not hold.open:
        return
    released = hold.amount_minor
    if released:
        ledger.void_pending_transfer(src, hold.transfer_id, now_ns)
    hold.close(released, reason, now_ns)


def _consume(
    src: VenueSource, instrument: Instrument, hold: OrderHold | None, amount: int, now_ns: int
) -> None:
    """Post ``amount`` of the order's current slice; what is left becomes the next slice."""
    invariant(
        hold is not None and hold.open and 0 < amount <= hold.amount_minor,
        f"a fill is covered by its order's hold ({amount} of {hold and hold.amount_minor})",
    )
    assert hold is not None  # for the type checker
    left = hold.amount_minor - amount
    ledger.post_pending_transfer(src, hold.transfer_id, amount, now_ns)
    if left:
        _reslice(src, instrument, hold, left, now_ns, release=False)
    else:
        hold.close(0, "consumed", now_ns)


# ------------------------------------------------------------------ settling the book's events


def _settle(
    src: VenueSource,
    instrument: Instrument,
    book: OrderBook,
    events: Sequence[Any],
    now_ns: int,
    *,
    taker: int | None,
) -> None:
    for ev in events:
        if isinstance(ev, TradeExecuted):
            _settle_trade(src, instrument, ev, now_ns)
        elif isinstance(ev, OrderCancelled | OrderExpired):
            reason = ev.reason if isinstance(ev, OrderCancelled) else "expired"
            _close(src, src.get_hold(ev.order_id), reason, now_ns)
        elif isinstance(ev, OrderReduced) and ev.rested:
            hold = src.get_hold(ev.order_id)
            if not ev.remaining_lots:
                _close(src, hold, ev.reason, now_ns)
            elif hold is not None and hold.open:
                need = _need(instrument, ev.side, ev.price_ticks or 0, ev.remaining_lots)
                if need < hold.amount_minor:
                    _reslice(src, instrument, hold, need, now_ns, release=True)
    if taker is not None and book.order(taker) is None:
        _close(src, src.get_hold(taker), "done", now_ns)  # an incoming order that did not rest


def _settle_trade(src: VenueSource, instrument: Instrument, ev: TradeExecuted, now_ns: int) -> None:
    spec = instrument.spec
    buyer, seller = (
        (ev.taker_order_id, ev.maker_order_id)
        if ev.aggressor_side == "buy"
        else (ev.maker_order_id, ev.taker_order_id)
    )
    amounts = st.trade_amounts(instrument, ev.price_ticks, ev.quantity_lots, ev.aggressor_side)
    buyer_hold, seller_hold = src.get_hold(buyer), src.get_hold(seller)
    _consume(src, instrument, buyer_hold, amounts.quote_minor + amounts.buyer_fee_minor, now_ns)
    _consume(src, instrument, seller_hold, amounts.base_minor, now_ns)
    assert buyer_hold is not None
    assert seller_hold is not None
    legs = (
        (
            "base",
            spec.base_hold_account_id,
            buyer_hold.base_account_id,
            amounts.base_minor,
            BASE_LEG_CODE,
        ),
        (
            "quote",
            spec.quote_hold_account_id,
            seller_hold.quote_account_id,
            amounts.quote_minor - amounts.seller_fee_minor,
            QUOTE_LEG_CODE,
        ),
        ("fee", spec.quote_hold_account_id, spec.fee_account_id, amounts.fees_minor, FEE_LEG_CODE),
    )
    for leg, debit, credit, amount, code in legs:
        if amount > 0:
            transfer_id = _free_transfer_id(src, "trade", spec.instrument_id, ev.seq, leg)
            ledger.create_transfer(
                src,
                TransferSpec(transfer_id, debit, credit, amount, spec.ledger, code),
                now_ns,
            )
    if not ev.maker_remaining_lots:
        _close(src, src.get_hold(ev.maker_order_id), "filled", now_ns)
