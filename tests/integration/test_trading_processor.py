"""Trading through the real command processor and event store: books, holds, replays."""

from __future__ import annotations

import time
from typing import Any

import pytest

from commands import ledger as lc
from commands import trading as tc
from commands.context import build_processor
from commands.processor import CommandProcessor
from domain.ledger.account import Account
from domain.trading.book import OrderBook
from eventstore.store import EventStore
from ledgerline.contexts import command_contexts


@pytest.fixture
def processor(store: EventStore) -> Any:
    p = build_processor(store.recorder, command_contexts(time.time_ns)).start()
    yield p
    p.stop()


def listed(p: CommandProcessor[Any], instrument_id: int = 1, **kw: Any) -> dict[str, Any]:
    fields = {
        "symbol": "EUR/USD",
        "base_asset": "EUR",
        "quote_asset": "USD",
        "tick_size": "0.01",
        "lot_size": "1",
        **kw,
    }
    outcome = p.execute(tc.list_instrument_command(tc.ListInstrument(id=instrument_id, **fields)))
    assert outcome.accepted, outcome.result
    return outcome.result


def order(
    p: CommandProcessor[Any],
    oid: int,
    account: int,
    side: str,
    price: str | None,
    qty: str | None,
    **kw: Any,
) -> Any:
    return p.execute(
        tc.place_command(
            tc.PlaceOrder(
                instrument_id=kw.pop("instrument_id", 1),
                id=oid,
                account_id=account,
                side=side,
                price=price,
                quantity=qty,
                **kw,
            )
        )
    )


def test_orders_match_through_the_processor_and_the_book_reloads_from_the_store(
    store: EventStore, processor: CommandProcessor[Any]
) -> None:
    listed(processor)
    assert order(processor, 1, 7, "sell", "1.10", "5").accepted
    out = order(processor, 2, 8, "buy", "1.12", "8")
    assert out.accepted
    assert out.result["order"]["status"] == "partially_filled"
    assert out.result["order"]["trades"] == [
        {"trade_id": 4, "maker_order_id": 1, "price": "1.10", "quantity": "5"}
    ]
    assert out.result["order"]["open_quantity"] == "3"
    # the same id with another body is refused by name; the same body answers the same
    again = order(processor, 2, 8, "buy", "1.12", "8")
    assert again.replayed and again.result == out.result
    conflict = order(processor, 2, 8, "buy", "1.13", "8")
    assert conflict.result["code"] == "exists_with_different_payload"
    # a rejection by state is recorded: the id answers the same forever
    dup = order(processor, 3, 8, "sell", "0.5", "1", time_in_force="gtd", expire_at_ns=1)
    assert dup.result["code"] == "expire_at_in_past"
    halted = processor.execute(
        tc.status_command(tc.SetStatus(instrument_id=1, action="halt", key="h1"))
    )
    assert halted.accepted and halted.result["status"] == "halted"
    refused = order(processor, 4, 8, "buy", "1.00", "1")
    assert refused.result["code"] == "instrument_halted"
    assert order(processor, 4, 8, "buy", "1.00", "1").replayed
    # a malformed order is answered but not recorded: the id stays usable
    bad = order(processor, 5, 8, "buy", "1.001", "1")
    assert bad.result["code"] == "price_not_on_tick" and not bad.replayed
    live = processor.cache.get("book:1")
    fresh = tc.rebuild(None, store.recorder.read_streams(["book:1"])["book:1"])
    assert isinstance(live, OrderBook) and isinstance(fresh, OrderBook)
    assert fresh.to_snapshot() == live.to_snapshot() and fresh.version == live.version


def test_a_ledger_instrument_holds_funds_and_settles_trades_atomically(
    store: EventStore, processor: CommandProcessor[Any]
) -> None:
    p = processor
    for account_id, currency, limited in [
        (1, "USD", False), (2, "EUR", False), (10, "USD", True), (11, "EUR", True),
        (20, "USD", True), (21, "EUR", True), (90, "EUR", True), (91, "USD", True),
        (92, "USD", True),
    ]:  # fmt: skip
        assert p.execute(
            lc.account_command(
                lc.CreateAccount(
                    id=account_id,
                    ledger=1,
                    currency=currency,
                    code=1,
                    debits_must_not_exceed_credits=limited,
                )
            )
        ).accepted
    for tid, (debit, credit, amount) in enumerate(
        [(1, 10, "2000.00"), (2, 21, "5000.00")], start=1
    ):
        assert p.execute(
            lc.transfer_command(
                lc.CreateTransfer(
                    id=tid,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    ledger=1,
                    code=1,
                )
            )
        ).accepted
    for trader, usd, eur in ((100, 10, 11), (200, 20, 21)):
        for asset, ledger_account in (("USD", usd), ("EUR", eur)):
            assert p.execute(
                tc.link_account_command(
                    tc.LinkAccount(account_id=trader, asset=asset, ledger_account_id=ledger_account)
                )
            ).accepted
    listed(
        p,
        7,
        settlement="ledger",
        ledger=1,
        base_hold_account_id=90,
        quote_hold_account_id=91,
        fee_account_id=92,
        maker_fee_bps=10,
        taker_fee_bps=20,
    )
    assert order(p, 1, 200, "sell", "1.10", "1000", instrument_id=7).accepted
    out = order(p, 2, 100, "buy", "1.12", "400", instrument_id=7)
    assert out.accepted and out.result["order"]["status"] == "filled"
    poor = order(p, 3, 100, "buy", "1.12", "4000", instrument_id=7)
    assert poor.result["code"] == "insufficient_funds"
    accounts = store.recorder.read_streams([f"account:{a}" for a in (10, 11, 20, 21, 92)])
    balances = {}
    for stream, events in accounts.items():
        acc = lc.rebuild(None, events)
        assert isinstance(acc, Account)
        balances[stream] = acc.credits_posted - acc.debits_posted - acc.debits_pending
    assert balances == {
        "account:10": 200_000 - 44_088,
        "account:11": 40_000,
        "account:20": 43_956,
        "account:21": 500_000 - 100_000,
        "account:92": 132,
    }


def random_stream(
    p: CommandProcessor[Any], seed: int, orders: int = 300, instrument_id: int = 1
) -> None:
    """A seeded mix of limits near the touch, cancels, reductions, amendments, market and IOC."""
    import random

    rng = random.Random(seed)
    live: list[tuple[int, int]] = []
    oid = seed * 100_000
    for n in range(orders):
        roll = rng.random()
        if roll < 0.25 and live:
            target, account = live.pop(rng.randrange(len(live)))
            key = f"k{n}"
            if roll < 0.12:
                p.execute(
                    tc.cancel_command(
                        tc.CancelOrder(
                            instrument_id=instrument_id,
                            order_id=target,
                            account_id=account,
                            key=key,
                        )
                    )
                )
            elif roll < 0.18:
                p.execute(
                    tc.modify_command(
                        tc.ModifyOrder(
                            instrument_id=instrument_id,
                            order_id=target,
                            account_id=account,
                            quantity=str(rng.randint(0, 9)),
                            key=key,
                        )
                    )
                )
            else:
                p.execute(
                    tc.modify_command(
                        tc.ModifyOrder(
                            instrument_id=instrument_id,
                            order_id=target,
                            account_id=account,
                            price=f"1.{rng.randint(0, 20):02d}",
                            key=key,
                        )
                    )
                )
            continue
        oid += 1
        account = rng.randint(1, 6)
        side = rng.choice(["buy", "sell"])
        kind = rng.choice(["gtc", "gtc", "gtc", "gtd", "ioc", "market", "fok"])
        fields: dict[str, Any] = {
            "self_trade_prevention": rng.choice(["none", "cancel_newest", "decrement"])
        }
        if kind == "market":
            fields.update(type="market", time_in_force="ioc")
            price = None
        else:
            fields["time_in_force"] = kind
            price = f"1.{rng.randint(0, 20):02d}"
        if kind == "gtd":
            fields["expire_at_ns"] = time.time_ns() + rng.choice([1, 10**12])
        out = order(
            p,
            oid,
            account,
            side,
            price,
            str(rng.randint(1, 9)),
            instrument_id=instrument_id,
            **fields,
        )
        assert out.accepted or "code" in out.result
        if out.accepted and out.result["order"]["status"] in ("open", "partially_filled"):
            live.append((oid, account))


def test_the_read_models_follow_the_books_and_replay_rebuilds_them_identically(
    db_url: str, store: EventStore, processor: CommandProcessor[Any]
) -> None:
    from ledgerline.runtime import migrate_all
    from projections.registry import PROJECTIONS
    from projections.runner import ProjectionRunner
    from readmodels import trading as rt
    from replay.replay import replay

    migrate_all(db_url)
    listed(processor, 1)
    listed(processor, 2, symbol="GBP/USD", base_asset="GBP")
    random_stream(processor, seed=3, orders=160, instrument_id=1)
    random_stream(processor, seed=4, orders=90, instrument_id=2)
    processor.execute(tc.expire_command(tc.ExpireOrders(instrument_id=1, at_ns=time.time_ns())))
    runner = ProjectionRunner(
        store.recorder, [spec.create("readmodels") for spec in PROJECTIONS.values()]
    )
    runner.position = 0
    runner.catch_up()
    with store.datastore.get_connection() as conn:
        for instrument_id in (1, 2):
            book = processor.cache.get(f"book:{instrument_id}")
            assert isinstance(book, OrderBook)
            bids, asks = rt.depth(conn, instrument_id, 1000)
            assert (
                [(r["price_ticks"], r["quantity_lots"], r["order_count"]) for r in bids],
                [(r["price_ticks"], r["quantity_lots"], r["order_count"]) for r in asks],
            ) == book.depth()
            row = rt.get_instrument(conn, instrument_id)
            assert row is not None and row["sequence"] == book.version
            open_orders = conn.execute(
                "SELECT order_id, open_lots FROM readmodels.orders WHERE instrument_id = %s"
                " AND status IN ('open', 'partially_filled') ORDER BY order_id",
                (instrument_id,),
            ).fetchall()
            assert [(int(r["order_id"]), int(r["open_lots"])) for r in open_orders] == sorted(
                (o.order_id, o.remaining_lots) for o in book.resting()
            )
        broken = conn.execute(
            "SELECT order_id FROM readmodels.orders WHERE quantity_lots IS NOT NULL"
            " AND quantity_lots <> filled_lots + open_lots + cancelled_lots"
        ).fetchall()
        assert broken == []
        trades = conn.execute("SELECT count(*) AS n FROM readmodels.trades").fetchone()
        assert trades is not None and trades["n"] > 20
    report = replay(store.recorder, db_url, check=True)
    assert report.ok, report.to_json()
    assert {"orders", "book_levels", "trades", "candles", "order_events"} <= set(report.digests)
