"""Trading commands and their handlers: the application service of the venue.

Definition
    Instruments are listed, trading accounts linked to ledger accounts, orders placed,
    cancelled, reduced, amended and mass-cancelled, instruments halted, resumed and closed,
    and due 'gtd' orders expired, all through :mod:`domain.trading.venue` on the aggregates of
    the unit of work (the book itself, which changes in place, and for settlement "ledger"
    the ledger's accounts and transfers: one atomic unit of work per command).

Command ids (idempotency keys)
    ``instrument:<id>``, ``trader:<account>:<asset>``, ``order:<order id>`` (so an order id is
    used once across every instrument), and for the commands a client may repeat on purpose
    a key of its own (the API's ``Idempotency-Key`` header, else a fresh UUID):
    ``trading-cancel:<order>:<key>``, ``trading-modify:<order>:<key>``,
    ``trading-cancel-all:<instrument>:<account or all>:<key>``,
    ``trading-status:<instrument>:<action>:<key>``; the expiry sweep uses
    ``trading-expire:<instrument>:<time>``. None of them can collide with the ledger's
    (``account:``, ``transfer:``, ``post:``, ``void:``, ``expire:``, ``linked:``).

Recorded or not
    A rejection by a rule of state (the book's, the ledger's, the funds) is recorded: the
    same command id answers the same forever, and ``order:<id>`` cannot be reused with
    another body (``id_already_failed``). A malformed order (its shape, its decimal strings)
    is answered but not recorded, like the ledger's malformed input, so it can be fixed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.processor import (
    Command,
    Handler,
    Rejection,
    UnitOfWork,
    canonical_json,
)
from domain.aggregate import Aggregate
from domain.ledger import errors as le
from domain.ledger.account import Account
from domain.ledger.account import stream_id as account_stream
from domain.ledger.transfer import Transfer
from domain.ledger.transfer import stream_id as transfer_stream
from domain.trading import errors as e
from domain.trading import venue
from domain.trading.accounts import TradingAccount
from domain.trading.accounts import stream_id as trader_stream
from domain.trading.book import OrderBook, RestingOrder
from domain.trading.book import stream_id as book_stream
from domain.trading.events import (
    HoldOpened,
    InstrumentListed,
    LedgerAccountLinked,
    OrderCancelled,
    OrderExpired,
    TradeExecuted,
    TradingEvent,
    decode_event,
)
from domain.trading.holds import OrderHold
from domain.trading.holds import stream_id as hold_stream
from domain.trading.instrument import Instrument, InstrumentSpec
from domain.trading.orders import NewOrder, parse_order
from eventstore.model import RecordedCommand, StoredEvent

# Ids are any integers here: the domain refuses 0 and 2^128-1 up by name.
Id = Field()


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ListInstrument(_Cmd):
    id: int = Id
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    min_quantity: str = ""
    price_band_bps: int = 0
    reference_price: str = ""
    status: str = "open"
    settlement: str = "none"
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    self_trade_prevention: str = "cancel_newest"
    ledger: int = 0
    base_hold_account_id: int = 0
    quote_hold_account_id: int = 0
    fee_account_id: int = 0

    def spec(self) -> InstrumentSpec:
        fields = self.model_dump()
        return InstrumentSpec(instrument_id=fields.pop("id"), **fields)


class LinkAccount(_Cmd):
    account_id: int = Id
    asset: str
    ledger_account_id: int = Id


class PlaceOrder(_Cmd):
    instrument_id: int = Id
    id: int = Id
    account_id: int = Id
    side: str
    type: str = "limit"
    time_in_force: str = "gtc"
    price: str | None = None
    quantity: str | None = None
    quote_quantity: str | None = None
    post_only: bool = False
    post_only_reprice: bool = False
    self_trade_prevention: str | None = None
    expire_at_ns: int | None = None

    def parse(self, instrument: Instrument) -> NewOrder:
        """The order in ticks and lots; a malformed one raises its named rule."""
        return parse_order(
            instrument,
            order_id=self.id,
            account_id=self.account_id,
            side=self.side,
            order_type=self.type,
            time_in_force=self.time_in_force,
            price=self.price,
            quantity=self.quantity,
            quote_quantity=self.quote_quantity,
            post_only=self.post_only,
            post_only_reprice=self.post_only_reprice,
            self_trade_prevention=self.self_trade_prevention,
            expire_at_ns=self.expire_at_ns,
        )


class CancelOrder(_Cmd):
    instrument_id: int = Id
    order_id: int = Id
    account_id: int = Id
    key: str = Field(min_length=1, max_length=128)


class ModifyOrder(_Cmd):
    """Set the open ``quantity`` (lower: keeps priority; 0: removes; higher: loses it), or
    ``reduce_by``, and/or a new ``price`` (loses priority, may trade)."""

    instrument_id: int = Id
    order_id: int = Id
    account_id: int = Id
    quantity: str | None = None
    reduce_by: str | None = None
    price: str | None = None
    key: str = Field(min_length=1, max_length=128)


class CancelAll(_Cmd):
    instrument_id: int = Id
    account_id: int | None = None
    key: str = Field(min_length=1, max_length=128)


class SetStatus(_Cmd):
    instrument_id: int = Id
    action: Literal["halt", "resume", "close"]
    cancel_orders: bool = False
    key: str = Field(min_length=1, max_length=128)


class ExpireOrders(_Cmd):
    instrument_id: int = Id
    at_ns: int = Field(ge=0)


class NotRecorded(Exception):
    """A malformed request: answered, not recorded, so the id stays usable."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


# ------------------------------------------------------------------ command construction


def list_instrument_command(cmd: ListInstrument) -> Command:
    return Command.create(f"instrument:{cmd.id}", "trading.list_instrument", cmd, cmd.model_dump())


def link_account_command(cmd: LinkAccount) -> Command:
    return Command.create(
        f"trader:{cmd.account_id}:{cmd.asset}", "trading.link_account", cmd, cmd.model_dump()
    )


def place_command(cmd: PlaceOrder) -> Command:
    return Command.create(f"order:{cmd.id}", "trading.place_order", cmd, cmd.model_dump())


def cancel_command(cmd: CancelOrder) -> Command:
    return Command.create(
        f"trading-cancel:{cmd.order_id}:{cmd.key}", "trading.cancel_order", cmd, cmd.model_dump()
    )


def modify_command(cmd: ModifyOrder) -> Command:
    return Command.create(
        f"trading-modify:{cmd.order_id}:{cmd.key}", "trading.modify_order", cmd, cmd.model_dump()
    )


def cancel_all_command(cmd: CancelAll) -> Command:
    who = cmd.account_id if cmd.account_id is not None else "all"
    return Command.create(
        f"trading-cancel-all:{cmd.instrument_id}:{who}:{cmd.key}",
        "trading.cancel_all",
        cmd,
        cmd.model_dump(),
    )


def status_command(cmd: SetStatus) -> Command:
    return Command.create(
        f"trading-status:{cmd.instrument_id}:{cmd.action}:{cmd.key}",
        "trading.set_status",
        cmd,
        cmd.model_dump(),
    )


def expire_command(cmd: ExpireOrders) -> Command:
    return Command.create(
        f"trading-expire:{cmd.instrument_id}:{cmd.at_ns}",
        "trading.expire_orders",
        cmd,
        cmd.model_dump(),
    )


# ------------------------------------------------------------------ views


def instrument_view(book: OrderBook) -> dict[str, Any]:
    instrument = _instrument(book)
    spec = instrument.spec
    return {
        "id": spec.instrument_id,
        "symbol": spec.symbol,
        "base_asset": spec.base_asset,
        "quote_asset": spec.quote_asset,
        "tick_size": spec.tick_size,
        "lot_size": spec.lot_size,
        "min_quantity": instrument.lots_to_quantity(instrument.min_lots),
        "price_band_bps": spec.price_band_bps,
        "reference_price": spec.reference_price or None,
        "status": book.status,
        "settlement": spec.settlement,
        "maker_fee_bps": spec.maker_fee_bps,
        "taker_fee_bps": spec.taker_fee_bps,
        "self_trade_prevention": spec.self_trade_prevention,
        "ledger": spec.ledger or None,
        "base_hold_account_id": spec.base_hold_account_id or None,
        "quote_hold_account_id": spec.quote_hold_account_id or None,
        "fee_account_id": spec.fee_account_id or None,
        "last_price": None
        if book.last_price_ticks is None
        else instrument.ticks_to_price(book.last_price_ticks),
        "sequence": book.version,
    }


def order_view(
    instrument: Instrument,
    order_id: int,
    events: Sequence[TradingEvent],
    rest: RestingOrder | None,
    placed: NewOrder | None = None,
) -> dict[str, Any]:
    """What one command did to one order: its state now and the trades it made as taker."""
    trades = [
        {
            "trade_id": ev.seq,
            "maker_order_id": ev.maker_order_id,
            "price": instrument.ticks_to_price(ev.price_ticks),
            "quantity": instrument.lots_to_quantity(ev.quantity_lots),
        }
        for ev in events
        if isinstance(ev, TradeExecuted) and ev.taker_order_id == order_id
    ]
    filled = sum(
        ev.quantity_lots
        for ev in events
        if isinstance(ev, TradeExecuted) and order_id in (ev.taker_order_id, ev.maker_order_id)
    )
    notional = sum(
        ev.quantity_lots * ev.price_ticks
        for ev in events
        if isinstance(ev, TradeExecuted) and order_id in (ev.taker_order_id, ev.maker_order_id)
    )
    ended = next(
        (
            ev
            for ev in reversed(events)
            if isinstance(ev, OrderCancelled | OrderExpired) and ev.order_id == order_id
        ),
        None,
    )
    if rest is not None:
        status = "partially_filled" if filled and placed is not None else "open"
    elif isinstance(ended, OrderExpired):
        status = "expired"
    elif isinstance(ended, OrderCancelled):
        status = "cancelled"
    else:
        status = "filled"
    view: dict[str, Any] = {
        "id": order_id,
        "instrument_id": instrument.instrument_id,
        "status": status,
        "cancel_reason": ended.reason if isinstance(ended, OrderCancelled) else None,
        "filled_quantity": instrument.lots_to_quantity(filled),
        "filled_quote": instrument.notional_to_quote(notional),
        "open_quantity": instrument.lots_to_quantity(rest.remaining_lots if rest else 0),
        "price": None if rest is None else instrument.ticks_to_price(rest.price_ticks),
        "trades": trades,
    }
    if placed is not None:
        view.update(
            account_id=placed.account_id,
            side=placed.side,
            type=placed.order_type,
            time_in_force=placed.time_in_force,
            quantity=None
            if placed.quantity_lots is None
            else instrument.lots_to_quantity(placed.quantity_lots),
            quote_quantity=None
            if placed.quote_quantity is None
            else instrument.notional_to_quote(placed.quote_quantity),
        )
        if view["price"] is None and placed.price_ticks is not None:
            view["price"] = instrument.ticks_to_price(placed.price_ticks)
    elif rest is not None:
        view.update(account_id=rest.account_id, side=rest.side)
    return view


# ------------------------------------------------------------------ unit of work adapter


class _Source:
    """The venue's ``VenueSource`` over the processor's unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def get_book(self, instrument_id: int) -> OrderBook | None:
        agg = self._uow.get(book_stream(instrument_id))
        return agg if isinstance(agg, OrderBook) else None

    def get_trader(self, account_id: int) -> TradingAccount | None:
        agg = self._uow.get(trader_stream(account_id))
        return agg if isinstance(agg, TradingAccount) else None

    def get_hold(self, order_id: int) -> OrderHold | None:
        agg = self._uow.get(hold_stream(order_id))
        return agg if isinstance(agg, OrderHold) else None

    def get_account(self, account_id: int) -> Account | None:
        agg = self._uow.get(account_stream(account_id))
        return agg if isinstance(agg, Account) else None

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        agg = self._uow.get(transfer_stream(transfer_id))
        return agg if isinstance(agg, Transfer) else None

    def add(self, aggregate: Aggregate) -> None:
        self._uow.add(aggregate)


def _instrument(book: OrderBook) -> Instrument:
    assert book.instrument is not None  # every book's first event lists its instrument
    return book.instrument


def _book(src: _Source, instrument_id: int) -> OrderBook:
    book = src.get_book(instrument_id)
    if book is None:
        raise e.InstrumentNotFound(
            f"instrument {instrument_id} is not listed", instrument_id=instrument_id
        )
    return book


def _decimal_lots(instrument: Instrument, text: str | None, *, zero_ok: bool) -> int | None:
    if text is None:
        return None
    try:
        return (
            instrument.quantity_to_lots_or_zero(text)
            if zero_ok
            else instrument.quantity_to_lots(text)
        )
    except e.TradingRejection as exc:
        raise NotRecorded(exc.to_outcome()) from None


def build_handlers(clock: Callable[[], int]) -> dict[str, Handler]:  # noqa: PLR0915 - one per command
    def list_instrument(uow: UnitOfWork, cmd: ListInstrument) -> dict[str, Any]:
        src = _Source(uow)
        try:
            book = venue.list_instrument(src, cmd.spec(), clock())
        except e.InstrumentExists:
            raise
        except e.TradingRejection as exc:
            if exc.code in {"ledger_account_not_found", "ledger_account_mismatch"}:
                raise
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "listed", "instrument": instrument_view(book)}

    def link_account(uow: UnitOfWork, cmd: LinkAccount) -> dict[str, Any]:
        src = _Source(uow)
        try:
            trader = venue.link_account(
                src, cmd.account_id, cmd.asset, cmd.ledger_account_id, clock()
            )
            status = "linked"
        except e.AccountLinked:
            trader = src.get_trader(cmd.account_id)  # type: ignore[assignment]
            status = "exists"
        except (e.IdMustNotBeZero, e.IdMustNotBeIntMax, e.InvalidAsset) as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": status, "account_id": cmd.account_id, "links": dict(trader.links)}

    def place_order(uow: UnitOfWork, cmd: PlaceOrder) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        instrument = _instrument(book)
        try:
            order = cmd.parse(instrument)
        except e.TradingRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        mark = len(book.uncommitted())
        venue.place(src, book, order, clock())
        events = book.uncommitted()[mark:]
        return {
            "status": "accepted",
            "order": order_view(
                instrument, order.order_id, events, book.order(order.order_id), order
            ),
            "sequence": book.version,
        }

    def cancel_order(uow: UnitOfWork, cmd: CancelOrder) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        before = book.order(cmd.order_id)
        mark = len(book.uncommitted())
        venue.cancel(src, book, cmd.order_id, cmd.account_id, clock())
        view = order_view(_instrument(book), cmd.order_id, book.uncommitted()[mark:], None)
        if before is not None:
            view.update(account_id=before.account_id, side=before.side)
        return {"status": "cancelled", "order": view, "sequence": book.version}

    def modify_order(uow: UnitOfWork, cmd: ModifyOrder) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        instrument = _instrument(book)
        given = [x is not None for x in (cmd.quantity, cmd.reduce_by)]
        if all(given) or (cmd.reduce_by is not None and cmd.price is not None):
            raise NotRecorded(
                e.ReduceNeedsOneQuantity(
                    "give quantity (and/or price), or reduce_by alone", order_id=cmd.order_id
                ).to_outcome()
            )
        quantity = _decimal_lots(instrument, cmd.quantity, zero_ok=True)
        reduce_by = _decimal_lots(instrument, cmd.reduce_by, zero_ok=True)
        price = None
        if cmd.price is not None:
            try:
                price = instrument.price_to_ticks(cmd.price)
            except e.TradingRejection as exc:
                raise NotRecorded(exc.to_outcome()) from None
        now = clock()
        mark = len(book.uncommitted())
        if reduce_by is not None:
            venue.reduce(src, book, cmd.order_id, cmd.account_id, now, reduce_by=reduce_by)
        elif quantity == 0 and price is None:
            venue.reduce(src, book, cmd.order_id, cmd.account_id, now, reduce_to=0)
        else:
            venue.amend(
                src,
                book,
                cmd.order_id,
                cmd.account_id,
                now,
                price_ticks=price,
                quantity_lots=quantity,
            )
        events = book.uncommitted()[mark:]
        rest = book.order(cmd.order_id)
        view = order_view(instrument, cmd.order_id, events, rest)
        view.setdefault("account_id", cmd.account_id)
        return {"status": "modified", "order": view, "sequence": book.version}

    def cancel_all(uow: UnitOfWork, cmd: CancelAll) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        count = venue.cancel_all(src, book, clock(), cmd.account_id)
        return {"status": "cancelled", "cancelled": count, "sequence": book.version}

    def set_status(uow: UnitOfWork, cmd: SetStatus) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        now = clock()
        cancelled = 0
        if cmd.action == "halt":
            cancelled = venue.halt(src, book, now, cmd.cancel_orders)
        elif cmd.action == "resume":
            book.resume(now)
        else:
            cancelled = venue.close(src, book, now)
        return {
            "status": book.status,
            "cancelled": cancelled,
            "instrument": instrument_view(book),
            "sequence": book.version,
        }

    def expire_orders(uow: UnitOfWork, cmd: ExpireOrders) -> dict[str, Any]:
        src = _Source(uow)
        book = _book(src, cmd.instrument_id)
        count = venue.expire(src, book, cmd.at_ns)
        return {"status": "expired", "expired": count, "sequence": book.version}

    return {
        "trading.list_instrument": list_instrument,
        "trading.link_account": link_account,
        "trading.place_order": place_order,
        "trading.cancel_order": cancel_order,
        "trading.modify_order": modify_order,
        "trading.cancel_all": cancel_all,
        "trading.set_status": set_status,
        "trading.expire_orders": expire_orders,
    }


# ------------------------------------------------------------------ codec and context


def encode(event: TradingEvent) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(event.to_payload())


def rebuild(aggregate: Aggregate | None, events: Sequence[StoredEvent]) -> Aggregate | None:
    decoded = [decode_event(s.topic, json.loads(s.payload)) for s in events]
    if aggregate is None and decoded:
        first = decoded[0]
        stream = events[0].stream_id
        if isinstance(first, InstrumentListed):
            aggregate = OrderBook(first.instrument_id)
        elif isinstance(first, LedgerAccountLinked):
            aggregate = TradingAccount(first.account_id)
        elif isinstance(first, HoldOpened):
            aggregate = OrderHold(first.order_id)
        else:
            raise ValueError(f"stream {stream} starts with {first.TOPIC}")
    if aggregate is not None:
        aggregate.replay(decoded)
    return aggregate


def restore(stream_id: str, version: int, state: dict[str, Any]) -> Aggregate:
    """An aggregate of this context from its snapshot (books above all: they are long)."""
    if stream_id.startswith("book:"):
        return OrderBook.from_snapshot(stream_id, version, state)
    if stream_id.startswith("hold:"):
        return OrderHold.from_snapshot(stream_id, version, state)
    if stream_id.startswith("trader:"):
        return TradingAccount.from_snapshot(stream_id, version, state)
    raise ValueError(f"no snapshots for {stream_id}")


def _streams_of(command: Command) -> list[str]:
    body = command.body
    if isinstance(body, ListInstrument):
        return [book_stream(body.id)]
    if isinstance(body, LinkAccount):
        return [trader_stream(body.account_id), account_stream(body.ledger_account_id)]
    # The rest (trader, hold and ledger streams for settlement "ledger") is read lazily.
    return [book_stream(body.instrument_id)]


class IdConflict(Rejection):
    """The id was used before with another body."""

    def __init__(self, code: str, detail: str, **ids: Any) -> None:
        super().__init__(detail, **ids)
        self.code = code


def on_payload_mismatch(known: RecordedCommand, command: Command) -> Rejection:
    ids = {"command_id": command.command_id}
    if not known.accepted:
        return IdConflict(
            "id_already_failed",
            f"{command.command_id} was rejected before; a failed id never succeeds, use a new id",
            **ids,
        )
    return IdConflict(
        "exists_with_different_payload",
        f"{command.command_id} was submitted before with a different body",
        **ids,
    )


def _to_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NotRecorded):
        return exc.outcome
    if isinstance(exc, e.TradingRejection | le.LedgerRejection | Rejection):
        return exc.to_outcome()
    raise exc


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The venue's write side: instruments, books, trading-account links, order holds."""
    return CommandContext(
        name="trading",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=("book:", "trader:", "hold:"),
        encode=encode,
        rebuild=rebuild,
        rejection_types=(e.TradingRejection, le.LedgerRejection, Rejection),
        invalid_types=(NotRecorded,),
        to_outcome=_to_outcome,
        on_payload_mismatch=on_payload_mismatch,
        restore=restore,
    )
