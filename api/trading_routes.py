"""HTTP routes of the trading venue: instruments, orders, batches, depth, tape, candles, feed.

Prices and quantities are decimal strings on the wire (whole ticks and lots inside); ids are
JSON integers or canonical decimal strings. Commands answer with the order's state and
``position`` (the last event the command wrote); queries read the read models and take
``min_position`` for read-your-writes, like the ledger's.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import fields as dc_fields
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.ledger_routes import parse_as_of, wait_for_position
from api.problems import COMMAND_ERRORS, QUERY_ERRORS, Problem, problem_responses
from api.security import OPERATORS, READERS, require
from api.types import Id128, IdParam, PageLimit, Position, StrictFlag
from commands import trading as tc
from domain.trading import errors as e
from domain.trading.instrument import Instrument, InstrumentSpec
from readmodels import trading as rt

Id = Id128
RFC3339 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
Decimal = Annotated[str, Field(max_length=48, description='a plain decimal string, "12.34"')]

# ------------------------------------------------------------------ models


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstrumentIn(_In):
    id: Id
    symbol: str = Field(max_length=32)
    base_asset: str = Field(max_length=12)
    quote_asset: str = Field(max_length=12)
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal | None = None
    price_band_bps: int = Field(default=0, ge=0, le=10_000)
    reference_price: Decimal | None = None
    status: Literal["open", "halted"] = "open"
    settlement: Literal["none", "ledger"] = "none"
    maker_fee_bps: int = Field(default=0, ge=0, le=10_000)
    taker_fee_bps: int = Field(default=0, ge=0, le=10_000)
    self_trade_prevention: str = "cancel_newest"
    ledger: int | None = Field(default=None, ge=1, le=2**32 - 1)
    base_hold_account_id: Id | None = None
    quote_hold_account_id: Id | None = None
    fee_account_id: Id | None = None


class InstrumentOut(BaseModel):
    id: int
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    min_quantity: str
    price_band_bps: int
    reference_price: str | None
    status: str
    settlement: str
    maker_fee_bps: int
    taker_fee_bps: int
    self_trade_prevention: str
    ledger: int | None
    base_hold_account_id: int | None
    quote_hold_account_id: int | None
    fee_account_id: int | None
    last_price: str | None
    sequence: int
    position: int


class StatusIn(_In):
    cancel_orders: StrictFlag = Field(False, description="halt: cancel every resting order too")


class LinkIn(_In):
    ledger_account_id: Id


class LinkOut(BaseModel):
    account_id: int
    links: dict[str, int]
    position: int


class OrderIn(_In):
    id: Id
    instrument_id: Id
    account_id: Id
    side: str
    type: str = "limit"
    time_in_force: str = "gtc"
    price: Decimal | None = None
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    post_only: StrictFlag = False
    post_only_reprice: StrictFlag = False
    self_trade_prevention: str | None = None
    expire_at: str | None = Field(
        None,
        pattern=RFC3339,
        description="RFC 3339 time with a UTC offset; 'gtd' orders only",
        examples=["2030-01-31T23:59:59Z"],
    )

    def command(self) -> tc.PlaceOrder:
        return tc.PlaceOrder(
            instrument_id=self.instrument_id,
            id=self.id,
            account_id=self.account_id,
            side=self.side,
            type=self.type,
            time_in_force=self.time_in_force,
            price=self.price,
            quantity=self.quantity,
            quote_quantity=self.quote_quantity,
            post_only=self.post_only,
            post_only_reprice=self.post_only_reprice,
            self_trade_prevention=self.self_trade_prevention,
            expire_at_ns=_expire_at(self.expire_at),
        )


class TradeOut(BaseModel):
    trade_id: int
    maker_order_id: int
    price: str
    quantity: str


class OrderOut(BaseModel):
    id: int
    instrument_id: int
    account_id: int | None = None
    side: str | None = None
    type: str | None = None
    time_in_force: str | None = None
    status: str
    cancel_reason: str | None = None
    price: str | None = None
    quantity: str | None = None
    quote_quantity: str | None = None
    filled_quantity: str
    filled_quote: str
    open_quantity: str
    trades: list[TradeOut] = Field(default_factory=list, description="made by this command")
    sequence: int | None = None
    position: int


class ModifyIn(_In):
    account_id: Id
    quantity: Decimal | None = Field(None, description="the new open quantity")
    reduce_by: Decimal | None = None
    price: Decimal | None = None


class BatchIn(_In):
    orders: list[OrderIn] = Field(min_length=1, max_length=10_000)


class BatchItem(BaseModel):
    index: int
    id: int
    status: str = Field(description='"accepted" or a rejection code')
    order: OrderOut | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]
    position: int | None


class CancelAllIn(_In):
    instrument_id: Id | None = None


class CancelAllOut(BaseModel):
    account_id: int
    cancelled: int
    instruments: list[int]
    position: int | None


class BookOut(BaseModel):
    instrument_id: int
    bids: list[tuple[str, str, int]] = Field(
        description="[price, quantity, order count], best first"
    )
    asks: list[tuple[str, str, int]]
    sequence: int
    position: int


class TapeItem(BaseModel):
    trade_id: int
    price: str
    quantity: str
    aggressor_side: str
    maker_order_id: int
    taker_order_id: int
    at: str
    position: int


class TapePage(BaseModel):
    items: list[TapeItem]
    next_cursor: str | None


class OrderRowOut(BaseModel):
    id: int
    instrument_id: int
    account_id: int
    side: str
    type: str
    time_in_force: str
    status: str
    cancel_reason: str | None
    price: str | None
    quantity: str | None
    quote_quantity: str | None
    filled_quantity: str
    filled_quote: str
    open_quantity: str
    cancelled_quantity: str
    post_only: bool
    self_trade_prevention: str
    expire_at_ns: int | None
    sequence: int
    position: int


class OrdersPage(BaseModel):
    items: list[OrderRowOut]
    next_cursor: str | None


class Candle(BaseModel):
    start: str
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int


class CandlesOut(BaseModel):
    instrument_id: int
    interval: str
    candles: list[Candle]


# ------------------------------------------------------------------ helpers


# As the ledger's: a request its schema allows is never answered 400 or 422. What the venue
# refuses after reading it is a rule or a conflict with the book's state: 409 with the rule's
# code. Only the command's own target named in the path answers 404.
def rejection(result: dict[str, Any], path_target: frozenset[str] = frozenset()) -> Problem:
    code = str(result.get("code", "rejected"))
    extra = {k: v for k, v in result.items() if k not in {"code", "detail"}}
    status = 404 if code in path_target else 409
    return Problem(status, code, str(result.get("detail", code)), **extra)


ORDER_TARGET = frozenset({"order_not_found"})
INSTRUMENT_TARGET = frozenset({"instrument_not_found"})


def _expire_at(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_as_of(value)
    except Problem:  # the pattern passed, the date does not exist (February 30th)
        raise Problem(409, "invalid_expire_at", f"expire_at {value!r} is not a time") from None


def _services(request: Request) -> Any:
    return request.app.state.services


async def _run(request: Request, command: Any) -> Any:
    services = _services(request)
    outcome = await asyncio.wrap_future(services.extra["processor"].submit(command))
    services.metrics.commands.labels(
        command.command_type,
        outcome.result.get("status", "accepted")
        if outcome.accepted
        else outcome.result.get("code", "rejected"),
    ).inc()
    return outcome


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with _services(request).store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


def _cache(request: Request) -> dict[int, Instrument]:
    """This app's instruments by id: tick and lot sizes never change once listed."""
    state = request.app.state
    if not hasattr(state, "trading_instruments"):
        state.trading_instruments = {}
    cache: dict[int, Instrument] = state.trading_instruments
    return cache


def _instrument_of(request: Request, row: dict[str, Any]) -> Instrument:
    cache = _cache(request)
    found = cache.get(int(row["instrument_id"]))
    if found is None:
        names = {f.name for f in dc_fields(InstrumentSpec)}
        spec = InstrumentSpec(**{k: v for k, v in row.items() if k in names})
        found = cache.setdefault(spec.instrument_id, Instrument.validate(spec))
    return found


async def _instrument(
    request: Request, instrument_id: int, *, settle: bool = False
) -> Instrument | None:
    """The instrument from the read model; ``settle``: wait for the head first if missing."""
    cache = _cache(request)
    if instrument_id in cache:
        return cache[instrument_id]
    row = await asyncio.to_thread(_read, request, rt.get_instrument, instrument_id)
    if row is None and settle:
        head = (await asyncio.to_thread(_services(request).store.recorder.head)).position
        await asyncio.to_thread(
            _services(request).extra["wait_for_position"],
            head,
            _services(request).extra.get("read_wait_s", 2.0),
        )
        row = await asyncio.to_thread(_read, request, rt.get_instrument, instrument_id)
    return None if row is None else _instrument_of(request, row)


def _key(idempotency_key: str | None) -> str:
    return idempotency_key or uuid.uuid4().hex


def _order_out(view: dict[str, Any], sequence: int | None, position: int) -> OrderOut:
    return OrderOut(**{**view, "sequence": sequence, "position": position})


async def _order_instrument(request: Request, order_id: int) -> int:
    """Which instrument an order was placed on: its placement, from the command log."""
    recorder = _services(request).store.recorder
    found = (await asyncio.to_thread(recorder.find_commands, [f"order:{order_id}"])).get(
        f"order:{order_id}"
    )
    if found is None or not found.accepted:
        raise Problem(
            404, "order_not_found", f"no open order {order_id} for this account", order_id=order_id
        )
    return int(json.loads(found.payload)["instrument_id"])


def _row_out(row: dict[str, Any], instrument: Instrument) -> OrderRowOut:
    lots, px = instrument.lots_to_quantity, instrument.ticks_to_price
    price = row["rest_price_ticks"] if row["rest_price_ticks"] is not None else row["price_ticks"]
    return OrderRowOut(
        id=row["order_id"],
        instrument_id=row["instrument_id"],
        account_id=row["account_id"],
        side=row["side"],
        type=row["order_type"],
        time_in_force=row["time_in_force"],
        status=row["status"],
        cancel_reason=row["cancel_reason"],
        price=None if price is None else px(price),
        quantity=None if row["quantity_lots"] is None else lots(row["quantity_lots"]),
        quote_quantity=None
        if row["quote_quantity"] is None
        else instrument.notional_to_quote(row["quote_quantity"]),
        filled_quantity=lots(row["filled_lots"]),
        filled_quote=instrument.notional_to_quote(row["filled_notional"]),
        open_quantity=lots(row["open_lots"]),
        cancelled_quantity=lots(row["cancelled_lots"]),
        post_only=row["post_only"],
        self_trade_prevention=row["self_trade_prevention"],
        expire_at_ns=row["expire_at_ns"],
        sequence=row["last_sequence"],
        position=row["last_position"],
    )


def _iso(ns: int) -> str:
    import datetime as dt

    return (
        dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
        .replace(microsecond=(ns // 1000) % 1_000_000)
        .isoformat()
        .replace("+00:00", "Z")
    )


# ------------------------------------------------------------------ routes: commands

COMMANDS = COMMAND_ERRORS
PATH_COMMANDS = {**COMMAND_ERRORS, **problem_responses(404)}
QUERY_RESPONSES = QUERY_ERRORS


def _created(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "description": "a retry with the same body: the first outcome"},
        **COMMANDS,
    }


router = APIRouter(prefix="/v1", tags=["trading"])
Operator = Depends(require(OPERATORS))
Reader = Depends(require(READERS))
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        description="repeat a request safely: the same key answers the first outcome",
    ),
]


def _instrument_out(view: dict[str, Any], position: int) -> InstrumentOut:
    return InstrumentOut(**{**view, "position": position})


@router.post(
    "/instruments",
    status_code=201,
    response_model=InstrumentOut,
    responses=_created(InstrumentOut),
    summary="List an instrument (open one order book)",
)
async def list_instrument(
    body: InstrumentIn, request: Request, response: Response, _: Any = Operator
) -> InstrumentOut:
    """Lists a new instrument and opens its order book: symbol, base and quote assets, tick and lot
    sizes, and its settlement mode (`none`: matching only; `ledger`: every trade settles
    into the ledger). Retrying the same instrument answers 200 with the first outcome.
    """
    fields = body.model_dump()
    for name in ("min_quantity", "reference_price"):
        fields[name] = fields[name] or ""
    for name in ("ledger", "base_hold_account_id", "quote_hold_account_id", "fee_account_id"):
        fields[name] = fields[name] or 0
    outcome = await _run(request, tc.list_instrument_command(tc.ListInstrument(**fields)))
    if not outcome.accepted:
        raise rejection(outcome.result)
    response.status_code = 200 if outcome.replayed else 201
    return _instrument_out(outcome.result["instrument"], outcome.position or 0)


@router.get(
    "/instruments/{instrument_id}",
    response_model=InstrumentOut,
    responses=QUERY_RESPONSES,
    summary="An instrument: its specification, status and last price",
)
async def get_instrument(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> InstrumentOut:
    """Returns the instrument's specification, its status (open, halted, closed) and its last trade
    price, as of at least `min_position`.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rt.get_instrument, instrument_id)
    if row is None:
        raise Problem(
            404,
            "instrument_not_found",
            f"instrument {instrument_id} is not listed",
            instrument_id=instrument_id,
        )
    return instrument_out(request, row)


def instrument_out(request: Request, row: dict[str, Any]) -> InstrumentOut:
    """An instrument's read-model row as the API answers it (prices and sizes as decimals)."""
    instrument = _instrument_of(request, row)
    return InstrumentOut(
        id=row["instrument_id"],
        symbol=row["symbol"],
        base_asset=row["base_asset"],
        quote_asset=row["quote_asset"],
        tick_size=row["tick_size"],
        lot_size=row["lot_size"],
        min_quantity=instrument.lots_to_quantity(instrument.min_lots),
        price_band_bps=row["price_band_bps"],
        reference_price=row["reference_price"] or None,
        status=row["status"],
        settlement=row["settlement"],
        maker_fee_bps=row["maker_fee_bps"],
        taker_fee_bps=row["taker_fee_bps"],
        self_trade_prevention=row["self_trade_prevention"],
        ledger=row["ledger"] or None,
        base_hold_account_id=row["base_hold_account_id"] or None,
        quote_hold_account_id=row["quote_hold_account_id"] or None,
        fee_account_id=row["fee_account_id"] or None,
        last_price=None
        if row["last_price_ticks"] is None
        else instrument.ticks_to_price(row["last_price_ticks"]),
        sequence=row["sequence"],
        position=row["last_position"],
    )


async def _set_status(
    request: Request,
    instrument_id: int,
    action: Literal["halt", "resume", "close"],
    cancel: bool,
    key: str | None,
) -> InstrumentOut:
    cmd = tc.SetStatus(
        instrument_id=instrument_id, action=action, cancel_orders=cancel, key=_key(key)
    )
    outcome = await _run(request, tc.status_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result, INSTRUMENT_TARGET)
    return _instrument_out(outcome.result["instrument"], outcome.position or 0)


@router.post(
    "/instruments/{instrument_id}/halt",
    response_model=InstrumentOut,
    responses=PATH_COMMANDS,
    summary="Halt trading (new orders and amendments refused; cancels and reductions work)",
)
async def halt(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    body: StatusIn | None = None,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> InstrumentOut:
    """Halts trading on the instrument: new orders and amendments are refused with a named rule,
    while cancels and reductions still work. With `cancel_orders` every resting order is
    cancelled too. An `Idempotency-Key` makes a retry answer the first outcome.
    """
    cancel = body.cancel_orders if body else False
    return await _set_status(request, instrument_id, "halt", cancel, idempotency_key)


@router.post(
    "/instruments/{instrument_id}/resume",
    response_model=InstrumentOut,
    responses=PATH_COMMANDS,
    summary="Resume trading on a halted instrument",
)
async def resume(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> InstrumentOut:
    """Resumes trading on a halted instrument; resting orders keep their priority."""
    return await _set_status(request, instrument_id, "resume", False, idempotency_key)


@router.post(
    "/instruments/{instrument_id}/close",
    response_model=InstrumentOut,
    responses=PATH_COMMANDS,
    summary="Close an instrument for good (every resting order is cancelled)",
)
async def close(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> InstrumentOut:
    """Closes the instrument for good: every resting order is cancelled (their holds released) and
    no order is accepted afterwards.
    """
    return await _set_status(request, instrument_id, "close", True, idempotency_key)


@router.put(
    "/trading-accounts/{account_id}/ledger-accounts/{asset}",
    response_model=LinkOut,
    responses=COMMANDS,
    summary="Settle a trading account's asset through a ledger account (for good)",
)
async def link_account(
    account_id: Annotated[IdParam, Path()],
    asset: Annotated[str, Path(max_length=12)],
    body: LinkIn,
    request: Request,
    _: Any = Operator,
) -> LinkOut:
    """Names the ledger account through which a trading account settles one asset. A link is made
    once and never changes; orders of an instrument that settles into the ledger need links
    for both of its assets.
    """
    cmd = tc.LinkAccount(
        account_id=account_id, asset=asset, ledger_account_id=body.ledger_account_id
    )
    outcome = await _run(request, tc.link_account_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result)
    return LinkOut(
        account_id=account_id, links=outcome.result["links"], position=outcome.position or 0
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderOut,
    responses=_created(OrderOut),
    summary="Place an order: its state and the trades it made",
)
async def place_order(
    body: OrderIn, request: Request, response: Response, _: Any = Operator
) -> OrderOut:
    """Places an order (limit, market, IOC, FOK, post-only, GTC or GTD, with a self-trade
    prevention mode) and answers its state and the trades it made at once. A rule it breaks
    is a 409 with a stable code; a retry with the same order id answers 200 with the first
    outcome.
    """
    outcome = await _run(request, tc.place_command(body.command()))
    if not outcome.accepted:
        raise rejection(outcome.result)
    response.status_code = 200 if outcome.replayed else 201
    return _order_out(outcome.result["order"], outcome.result["sequence"], outcome.position or 0)


@router.delete(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses=PATH_COMMANDS,
    summary="Cancel an order",
)
async def cancel_order(
    order_id: Annotated[IdParam, Path()],
    account_id: Annotated[IdParam, Query()],
    request: Request,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> OrderOut:
    """Cancels the rest of an open order of the given account; its hold on the account's funds is
    released.
    """
    instrument_id = await _order_instrument(request, order_id)
    cmd = tc.CancelOrder(
        instrument_id=instrument_id,
        order_id=order_id,
        account_id=account_id,
        key=_key(idempotency_key),
    )
    outcome = await _run(request, tc.cancel_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result, ORDER_TARGET)
    return _order_out(outcome.result["order"], outcome.result["sequence"], outcome.position or 0)


@router.patch(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses=PATH_COMMANDS,
    summary="Reduce (keeps priority) or amend price / raise quantity (loses it, may trade)",
)
async def modify_order(
    order_id: Annotated[IdParam, Path()],
    body: ModifyIn,
    request: Request,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> OrderOut:
    """Reduces an order's quantity (`reduce_by`, keeping its time priority) or amends its price or
    raises its quantity (losing priority; the amended order may trade at once).
    """
    if body.quantity is None and body.reduce_by is None and body.price is None:
        raise Problem(
            409, "amend_requires_change", "give quantity, reduce_by or price", order_id=order_id
        )
    instrument_id = await _order_instrument(request, order_id)
    cmd = tc.ModifyOrder(
        instrument_id=instrument_id,
        order_id=order_id,
        account_id=body.account_id,
        quantity=body.quantity,
        reduce_by=body.reduce_by,
        price=body.price,
        key=_key(idempotency_key),
    )
    outcome = await _run(request, tc.modify_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result, ORDER_TARGET)
    return _order_out(outcome.result["order"], outcome.result["sequence"], outcome.position or 0)


@router.post(
    "/order-batches",
    status_code=201,
    response_model=BatchOut,
    responses=COMMANDS,
    summary="Place many orders; every item is checked first, then each is decided on its own",
)
async def place_batch(body: BatchIn, request: Request, _: Any = Operator) -> BatchOut:
    # Nothing is submitted unless every item is well formed against its instrument.
    """Places many orders: every item is checked for shape first (one bad item refuses the batch
    and changes nothing), then each order is decided on its own in order, with its own
    outcome.
    """
    errors: list[dict[str, Any]] = []
    seen: set[int] = set()
    commands: list[tc.PlaceOrder] = []
    for index, item in enumerate(body.orders):
        try:
            if item.id in seen:
                raise e.DuplicateOrderId(f"order id {item.id} appears twice in the batch")
            seen.add(item.id)
            cmd = item.command()
            instrument = await _instrument(request, item.instrument_id, settle=True)
            if instrument is None:
                raise e.InstrumentNotFound(f"instrument {item.instrument_id} is not listed")
            cmd.parse(instrument)
        except e.TradingRejection as exc:
            errors.append({"index": index, "id": item.id, "code": exc.code, "detail": exc.detail})
            continue
        except Problem as exc:
            errors.append({"index": index, "id": item.id, "code": exc.code, "detail": exc.detail})
            continue
        commands.append(cmd)
    if errors:
        first = errors[0]
        raise Problem(
            409,
            "invalid_batch",
            f"{len(errors)} of {len(body.orders)} orders are invalid (the first: item "
            f"{first['index']}, {first['code']}: {first['detail']}); no order was placed",
            errors=errors[:100],
            invalid=len(errors),
        )
    processor = _services(request).extra["processor"]
    futures = [processor.submit(tc.place_command(c)) for c in commands]
    outcomes = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    items: list[BatchItem] = []
    for index, (cmd, o) in enumerate(zip(commands, outcomes, strict=True)):
        if o.accepted:
            items.append(
                BatchItem(
                    index=index,
                    id=cmd.id,
                    status="accepted",
                    order=_order_out(o.result["order"], o.result["sequence"], o.position or 0),
                )
            )
        else:
            items.append(
                BatchItem(
                    index=index,
                    id=cmd.id,
                    status=o.result["code"],
                    problem=rejection(o.result).body(),
                )
            )
    positions = [o.position for o in outcomes if o.position]
    return BatchOut(results=items, position=max(positions) if positions else None)


@router.post(
    "/accounts/{account_id}/orders/cancel-all",
    response_model=CancelAllOut,
    responses=COMMANDS,
    summary="Cancel every resting order of an account (on one instrument, or on all)",
)
async def cancel_all(
    account_id: Annotated[IdParam, Path()],
    request: Request,
    body: CancelAllIn | None = None,
    idempotency_key: IdempotencyKey = None,
    _: Any = Operator,
) -> CancelAllOut:
    """Cancels every resting order of an account, on one instrument or on all of them, and answers
    how many were cancelled.
    """
    services = _services(request)
    if body is not None and body.instrument_id is not None:
        instruments = [body.instrument_id]
    else:
        # The read model names the books to visit; it is brought up to the head first.
        head = (await asyncio.to_thread(services.store.recorder.head)).position
        await asyncio.to_thread(
            services.extra["wait_for_position"], head, services.extra.get("read_wait_s", 2.0)
        )
        instruments = await asyncio.to_thread(
            _read, request, rt.instruments_with_open_orders, account_id
        )
    key = _key(idempotency_key)
    outcomes = [
        await _run(
            request,
            tc.cancel_all_command(tc.CancelAll(instrument_id=i, account_id=account_id, key=key)),
        )
        for i in instruments
    ]
    for o in outcomes:
        if not o.accepted:
            raise rejection(o.result)
    positions = [o.position for o in outcomes if o.position]
    return CancelAllOut(
        account_id=account_id,
        cancelled=sum(o.result["cancelled"] for o in outcomes),
        instruments=instruments,
        position=max(positions) if positions else None,
    )


# ------------------------------------------------------------------ routes: queries


async def _known(request: Request, instrument_id: int) -> Instrument:
    found = await _instrument(request, instrument_id)
    if found is None:
        raise Problem(
            404,
            "instrument_not_found",
            f"instrument {instrument_id} is not listed",
            instrument_id=instrument_id,
        )
    return found


async def _listed(request: Request, instrument_id: int) -> tuple[dict[str, Any], Instrument]:
    row = await asyncio.to_thread(_read, request, rt.get_instrument, instrument_id)
    if row is None:
        raise Problem(
            404,
            "instrument_not_found",
            f"instrument {instrument_id} is not listed",
            instrument_id=instrument_id,
        )
    return row, _instrument_of(request, row)


@router.get(
    "/instruments/{instrument_id}/book",
    response_model=BookOut,
    responses=QUERY_RESPONSES,
    summary="Depth of book: the best N levels of each side",
)
async def book(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    depth: Annotated[PageLimit, Query()] = 10,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> BookOut:
    """Returns the best `depth` price levels of each side of the book (price, quantity, number of
    orders) with the book's sequence, read from one snapshot.
    """
    await wait_for_position(request, min_position)

    def read(conn: Any) -> Any:
        with conn.transaction():  # the levels and the sequence from one snapshot
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = rt.get_instrument(conn, instrument_id)
            return row, (rt.depth(conn, instrument_id, depth) if row else ([], []))

    row, (bids, asks) = await asyncio.to_thread(_read, request, read)
    if row is None:
        raise Problem(
            404,
            "instrument_not_found",
            f"instrument {instrument_id} is not listed",
            instrument_id=instrument_id,
        )
    instrument = _instrument_of(request, row)

    def levels(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
        return [
            (
                instrument.ticks_to_price(r["price_ticks"]),
                instrument.lots_to_quantity(r["quantity_lots"]),
                r["order_count"],
            )
            for r in rows
        ]

    return BookOut(
        instrument_id=instrument_id,
        bids=levels(bids),
        asks=levels(asks),
        sequence=row["sequence"],
        position=row["last_position"],
    )


@router.get(
    "/instruments/{instrument_id}/trades",
    response_model=TapePage,
    responses=QUERY_RESPONSES,
    summary="The trade tape, newest first",
)
async def trades(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    limit: Annotated[PageLimit, Query()] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> TapePage:
    """Returns the instrument's trade tape newest first, keyset-paginated by sequence (`cursor`
    from `next_cursor`).
    """
    await wait_for_position(request, min_position)
    instrument = await _known(request, instrument_id)
    rows = await asyncio.to_thread(
        _read,
        request,
        rt.trades,
        instrument_id,
        before_sequence=int(cursor) if cursor else None,
        limit=limit + 1,
    )
    items = [
        TapeItem(
            trade_id=r["sequence"],
            price=instrument.ticks_to_price(r["price_ticks"]),
            quantity=instrument.lots_to_quantity(r["quantity_lots"]),
            aggressor_side=r["aggressor_side"],
            maker_order_id=r["maker_order_id"],
            taker_order_id=r["taker_order_id"],
            at=_iso(r["at_ns"]),
            position=r["position"],
        )
        for r in rows[:limit]
    ]
    return TapePage(
        items=items, next_cursor=str(rows[limit - 1]["sequence"]) if len(rows) > limit else None
    )


@router.get(
    "/orders/{order_id}",
    response_model=OrderRowOut,
    responses=QUERY_RESPONSES,
    summary="An order's state",
)
async def get_order(
    order_id: Annotated[IdParam, Path()],
    request: Request,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> OrderRowOut:
    """Returns one order: its specification, filled and open quantity, status and the times of its
    changes.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rt.get_order, order_id)
    if row is None:
        raise Problem(404, "order_not_found", f"order {order_id} does not exist", order_id=order_id)
    return _row_out(row, await _known(request, row["instrument_id"]))


@router.get(
    "/accounts/{account_id}/orders",
    response_model=OrdersPage,
    responses=QUERY_RESPONSES,
    summary="An account's orders (status=open: resting ones)",
)
async def account_orders(
    account_id: Annotated[IdParam, Path()],
    request: Request,
    status: Annotated[
        Literal["open", "partially_filled", "filled", "cancelled", "expired"] | None, Query()
    ] = None,
    limit: Annotated[PageLimit, Query()] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,39}$")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> OrdersPage:
    """Lists an account's orders, optionally only those in one status (`open` for the resting
    ones), paginated by order id.
    """
    await wait_for_position(request, min_position)
    rows = await asyncio.to_thread(
        _read,
        request,
        rt.account_orders,
        account_id,
        status=status,
        after_order_id=int(cursor) if cursor else None,
        limit=limit + 1,
    )
    items = []
    for r in rows[:limit]:
        items.append(_row_out(r, await _known(request, r["instrument_id"])))
    return OrdersPage(
        items=items, next_cursor=str(rows[limit - 1]["order_id"]) if len(rows) > limit else None
    )


INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}


@router.get(
    "/instruments/{instrument_id}/candles",
    response_model=CandlesOut,
    responses=QUERY_RESPONSES,
    summary="OHLCV candles, oldest first",
)
async def candles(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    interval: Annotated[Literal["1m", "5m", "15m", "1h", "4h", "1d"], Query()] = "1m",
    from_: Annotated[str | None, Query(alias="from", description="RFC 3339")] = None,
    to: Annotated[str | None, Query(description="RFC 3339, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> CandlesOut:
    """Returns OHLCV candles of the instrument's trades for an interval (1m to 1d) between `from`
    and `to`, oldest first; prices and volumes in the instrument's units.
    """
    await wait_for_position(request, min_position)
    instrument = await _known(request, instrument_id)
    rows = await asyncio.to_thread(
        _read,
        request,
        rt.candles,
        instrument_id,
        interval_ns=INTERVALS[interval] * 1_000_000_000,
        from_ns=parse_as_of(from_) if from_ else None,
        to_ns=parse_as_of(to) if to else None,
        limit=limit,
    )
    px, lots = instrument.ticks_to_price, instrument.lots_to_quantity
    return CandlesOut(
        instrument_id=instrument_id,
        interval=interval,
        candles=[
            Candle(
                start=_iso(r["start_ns"]),
                open=px(r["open_ticks"]),
                high=px(r["high_ticks"]),
                low=px(r["low_ticks"]),
                close=px(r["close_ticks"]),
                volume=lots(r["volume_lots"]),
                quote_volume=instrument.notional_to_quote(r["notional"]),
                trades=r["trades"],
            )
            for r in rows
        ],
    )


@router.get(
    "/instruments/{instrument_id}/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **QUERY_RESPONSES},
    summary="Server-sent events: book level updates and trades, resumable from a sequence",
)
async def stream(
    instrument_id: Annotated[IdParam, Path()],
    request: Request,
    since: Annotated[Position | None, Query(description="resume after this sequence")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    max_events: Annotated[int | None, Query(ge=1, description="close after this many")] = None,
    idle_timeout_s: Annotated[float | None, Query(ge=0, le=3600)] = None,
    accept: Annotated[str | None, Header()] = None,
    _: Any = Reader,
) -> StreamingResponse:
    """Each event's ``id`` is its book sequence: reconnect with ``Last-Event-ID`` (or
    ``since``) and the feed resumes after it. Without either, the first event is a
    ``snapshot`` of the whole book at its sequence, then the updates after it.

    The feed stays open while the client asks for ``text/event-stream`` (as ``EventSource``
    does); a request that does not gets what is there now and the end of the response, so a
    plain HTTP client never hangs. ``idle_timeout_s`` closes a quiet feed earlier."""
    if idle_timeout_s is None and "text/event-stream" not in (accept or ""):
        idle_timeout_s = 0.0
    row, instrument = await _listed(request, instrument_id)
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise Problem(422, "invalid_last_event_id", "Last-Event-ID is a book sequence")
        since = int(last_event_id)
    px, lots = instrument.ticks_to_price, instrument.lots_to_quantity

    def sse(event: str, seq: int, data: dict[str, Any]) -> bytes:
        return f"id: {seq}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()

    async def feed() -> AsyncIterator[bytes]:
        sent = 0
        after = since
        if after is None:
            snap_row, (bids, asks) = await asyncio.to_thread(
                _read, request, _snapshot, instrument_id
            )
            after = snap_row["sequence"]
            yield sse(
                "snapshot",
                after,
                {
                    "sequence": after,
                    "bids": [
                        [px(b["price_ticks"]), lots(b["quantity_lots"]), b["order_count"]]
                        for b in bids
                    ],
                    "asks": [
                        [px(a["price_ticks"]), lots(a["quantity_lots"]), a["order_count"]]
                        for a in asks
                    ],
                },
            )
            sent += 1
        idle = 0.0
        while max_events is None or sent < max_events:
            if await request.is_disconnected():
                return
            levels, tape = await asyncio.to_thread(_read, request, _updates, instrument_id, after)
            if not levels and not tape:
                if idle_timeout_s is not None and idle >= idle_timeout_s:
                    return
                await asyncio.sleep(0.1)
                idle += 0.1
                continue
            idle = 0.0
            # A page cut inside one sequence is finished on the next read.
            cutoff = min(
                levels[-1]["sequence"] - 1 if len(levels) == _PAGE else 2**62,
                tape[-1]["sequence"] - 1 if len(tape) == _PAGE else 2**62,
            )
            merged: list[tuple[str, int, dict[str, Any]]] = sorted(
                [("level", r["sequence"], r) for r in levels if r["sequence"] <= cutoff]
                + [("trade", r["sequence"], r) for r in tape if r["sequence"] <= cutoff],
                key=lambda x: (x[1], x[0] == "level"),
            )
            for kind, seq, r in merged:
                if kind == "trade":
                    data = {
                        "trade_id": seq,
                        "price": px(r["price_ticks"]),
                        "quantity": lots(r["quantity_lots"]),
                        "aggressor_side": r["aggressor_side"],
                        "at": _iso(r["at_ns"]),
                    }
                else:
                    data = {
                        "sequence": seq,
                        "side": r["side"],
                        "price": px(r["price_ticks"]),
                        "quantity": lots(r["quantity_lots"]),
                        "order_count": r["order_count"],
                    }
                yield sse(kind, seq, data)
                sent += 1
                after = max(after, seq)
                if max_events is not None and sent >= max_events:
                    return

    del row
    return StreamingResponse(
        feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


_PAGE = 500


def _updates(conn: Any, instrument_id: int, after: int) -> Any:
    with conn.transaction():  # level updates and trades from one snapshot
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return rt.updates_since(conn, instrument_id, after, _PAGE)


def _snapshot(conn: Any, instrument_id: int) -> tuple[dict[str, Any] | None, Any]:
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = rt.get_instrument(conn, instrument_id)
        return row, rt.depth(conn, instrument_id, 1000)
