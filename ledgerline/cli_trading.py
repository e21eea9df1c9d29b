"""``ledgerline trading``: instruments and orders from the command line, on the store itself.

The commands run through the same command processor as the API (in this process, on the
same store; a running server is not needed and is not disturbed: decisions are made under the
store's writers' lock, so both may write at once). Reads come from the books' own events, so
they are exact even when no projection runs.

    ledgerline trading instruments create --id 1 --symbol EUR/USD --base EUR --quote USD \\
        --tick-size 0.0001 --lot-size 1000 [--settlement ledger --ledger 1 ...]
    ledgerline trading instruments show 1
    ledgerline trading instruments halt|resume 1 [--cancel-orders]
    ledgerline trading orders place --instrument 1 --id 7 --account 42 --side buy \\
        --price 1.0850 --quantity 5000 [--type market --time-in-force ioc ...]
    ledgerline trading orders cancel --id 7 --account 42
    ledgerline trading orders show 7

Each prints one JSON object; a rejection prints ``ledgerline: error: <code>: <detail>`` and
exits 1.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledgerline.cli_common import EXIT_BROKEN, Parser, add_db_options, settings_from_args
from ledgerline.errors import LedgerlineError


class Rejected(LedgerlineError):
    exit_code = EXIT_BROKEN


@contextmanager
def _processor(args: argparse.Namespace) -> Iterator[Any]:
    from commands.context import build_processor
    from eventstore.store import EventStore
    from ledgerline import contexts
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with EventStore(url, pool_size=2, run_migrations=False) as store:
            processor = build_processor(store.recorder, contexts.command_contexts(time.time_ns))
            processor.start()
            try:
                yield processor, store
            finally:
                processor.stop()


def _run(args: argparse.Namespace, command: Any) -> dict[str, Any]:
    with _processor(args) as (processor, _):
        outcome = processor.execute(command)
    if not outcome.accepted:
        result = outcome.result
        raise Rejected(f"{result.get('code')}: {result.get('detail')}")
    return {**outcome.result, "position": outcome.position}


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2, default=str))
    return 0


def _book(args: argparse.Namespace, instrument_id: int) -> Any:
    from commands import trading as tc

    with _processor(args) as (_, store):
        events = store.recorder.read_streams([f"book:{instrument_id}"])[f"book:{instrument_id}"]
    if not events:
        raise Rejected(f"instrument_not_found: instrument {instrument_id} is not listed")
    return tc.rebuild(None, events), events


def cmd_instruments_create(args: argparse.Namespace) -> int:
    from commands import trading as tc

    fields = {
        "id": args.id,
        "symbol": args.symbol,
        "base_asset": args.base,
        "quote_asset": args.quote,
        "tick_size": args.tick_size,
        "lot_size": args.lot_size,
        "min_quantity": args.min_quantity or "",
        "price_band_bps": args.price_band_bps,
        "reference_price": args.reference_price or "",
        "settlement": args.settlement,
        "maker_fee_bps": args.maker_fee_bps,
        "taker_fee_bps": args.taker_fee_bps,
        "self_trade_prevention": args.self_trade_prevention,
        "ledger": args.ledger or 0,
        "base_hold_account_id": args.base_hold_account or 0,
        "quote_hold_account_id": args.quote_hold_account or 0,
        "fee_account_id": args.fee_account or 0,
    }
    return _print(_run(args, tc.list_instrument_command(tc.ListInstrument(**fields))))


def cmd_instruments_show(args: argparse.Namespace) -> int:
    from commands import trading as tc

    book, _ = _book(args, args.id)
    view = tc.instrument_view(book)
    bids, asks = book.depth(args.depth)
    inst = book.instrument
    view["bids"] = [[inst.ticks_to_price(p), inst.lots_to_quantity(q), n] for p, q, n in bids]
    view["asks"] = [[inst.ticks_to_price(p), inst.lots_to_quantity(q), n] for p, q, n in asks]
    return _print(view)


def cmd_instruments_status(args: argparse.Namespace) -> int:
    from commands import trading as tc

    cmd = tc.SetStatus(
        instrument_id=args.id,
        action=args.action,
        cancel_orders=getattr(args, "cancel_orders", False),
        key=uuid.uuid4().hex,
    )
    return _print(_run(args, tc.status_command(cmd)))


def cmd_orders_place(args: argparse.Namespace) -> int:
    from commands import trading as tc

    cmd = tc.PlaceOrder(
        instrument_id=args.instrument,
        id=args.id,
        account_id=args.account,
        side=args.side,
        type=args.type,
        time_in_force=args.time_in_force,
        price=args.price,
        quantity=args.quantity,
        quote_quantity=args.quote_quantity,
        post_only=args.post_only,
        self_trade_prevention=args.self_trade_prevention,
    )
    return _print(_run(args, tc.place_command(cmd)))


def _instrument_of_order(args: argparse.Namespace, order_id: int) -> int:
    with _processor(args) as (_, store):
        found = store.recorder.find_commands([f"order:{order_id}"]).get(f"order:{order_id}")
    if found is None or not found.accepted:
        raise Rejected(f"order_not_found: no order {order_id} was placed")
    return int(json.loads(found.payload)["instrument_id"])


def cmd_orders_cancel(args: argparse.Namespace) -> int:
    from commands import trading as tc

    cmd = tc.CancelOrder(
        instrument_id=_instrument_of_order(args, args.id),
        order_id=args.id,
        account_id=args.account,
        key=uuid.uuid4().hex,
    )
    return _print(_run(args, tc.cancel_command(cmd)))


def cmd_orders_show(args: argparse.Namespace) -> int:
    """The order as the book's own events tell it (exact without any projection)."""
    from commands import trading as tc
    from domain.trading.events import OrderAccepted, decode_event

    instrument_id = _instrument_of_order(args, args.id)
    book, stored = _book(args, instrument_id)
    events = [decode_event(e.topic, json.loads(e.payload)) for e in stored]
    placed = next(
        ev.order for ev in events if isinstance(ev, OrderAccepted) and ev.order.order_id == args.id
    )
    view = tc.order_view(book.instrument, args.id, events, book.order(args.id), placed)
    view["trades"] = view["trades"][-50:]
    return _print(view)


def register(sub: Any) -> None:  # noqa: PLR0915 - one flat list of commands
    """Add ``ledgerline trading ...`` to the command line."""
    p = sub.add_parser("trading", help="instruments and orders of the trading venue")
    groups = p.add_subparsers(dest="trading_command", required=True, parser_class=Parser)

    inst = groups.add_parser("instruments", help="list, show, halt and resume instruments")
    isub = inst.add_subparsers(dest="instruments_command", required=True, parser_class=Parser)
    k = isub.add_parser("create", help="list an instrument")
    k.add_argument("--id", type=int, required=True)
    k.add_argument("--symbol", required=True)
    k.add_argument("--base", required=True, help="base asset (what is bought and sold)")
    k.add_argument("--quote", required=True, help="quote asset (what prices are in)")
    k.add_argument("--tick-size", required=True)
    k.add_argument("--lot-size", required=True)
    k.add_argument("--min-quantity")
    k.add_argument("--price-band-bps", type=int, default=0)
    k.add_argument("--reference-price")
    k.add_argument("--settlement", choices=["none", "ledger"], default="none")
    k.add_argument("--maker-fee-bps", type=int, default=0)
    k.add_argument("--taker-fee-bps", type=int, default=0)
    k.add_argument("--self-trade-prevention", default="cancel_newest")
    k.add_argument("--ledger", type=int)
    k.add_argument("--base-hold-account", type=int)
    k.add_argument("--quote-hold-account", type=int)
    k.add_argument("--fee-account", type=int)
    add_db_options(k)
    k.set_defaults(func=cmd_instruments_create)
    k = isub.add_parser("show", help="an instrument and its book, from its events")
    k.add_argument("id", type=int)
    k.add_argument("--depth", type=int, default=10)
    add_db_options(k)
    k.set_defaults(func=cmd_instruments_show)
    for action in ("halt", "resume"):
        k = isub.add_parser(action, help=f"{action} trading")
        k.add_argument("id", type=int)
        if action == "halt":
            k.add_argument("--cancel-orders", action="store_true")
        add_db_options(k)
        k.set_defaults(func=cmd_instruments_status, action=action)

    orders = groups.add_parser("orders", help="place, cancel and show orders")
    osub = orders.add_subparsers(dest="orders_command", required=True, parser_class=Parser)
    k = osub.add_parser("place", help="place an order")
    k.add_argument("--instrument", type=int, required=True)
    k.add_argument("--id", type=int, required=True)
    k.add_argument("--account", type=int, required=True)
    k.add_argument("--side", required=True)
    k.add_argument("--type", default="limit")
    k.add_argument("--time-in-force", default="gtc")
    k.add_argument("--price")
    k.add_argument("--quantity")
    k.add_argument("--quote-quantity")
    k.add_argument("--post-only", action="store_true")
    k.add_argument("--self-trade-prevention")
    add_db_options(k)
    k.set_defaults(func=cmd_orders_place)
    k = osub.add_parser("cancel", help="cancel an order")
    k.add_argument("--id", type=int, required=True)
    k.add_argument("--account", type=int, required=True)
    add_db_options(k)
    k.set_defaults(func=cmd_orders_cancel)
    k = osub.add_parser("show", help="an order's state, from its book's events")
    k.add_argument("id", type=int)
    add_db_options(k)
    k.set_defaults(func=cmd_orders_show)
