"""Book snapshots: a cold start on a snapshot plus its tail decides exactly as a full replay."""

from __future__ import annotations

import itertools
import random
from typing import Any

from commands import trading as tc
from commands.context import build_processor
from commands.processor import CommandProcessor
from domain.trading.book import OrderBook
from eventstore.store import EventStore
from tests.integration.test_snapshots import _log, second_store  # noqa: F401 - the fixture


def _commands(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    cmds: list[Any] = [
        tc.list_instrument_command(
            tc.ListInstrument(
                id=1,
                symbol="SNAP",
                base_asset="AAA",
                quote_asset="BBB",
                tick_size="1",
                lot_size="1",
            )
        )
    ]
    placed: list[tuple[int, int]] = []
    for oid in range(1, n + 1):
        if placed and rng.random() < 0.25:
            target, account = placed.pop(rng.randrange(len(placed)))
            cmds.append(
                tc.cancel_command(
                    tc.CancelOrder(
                        instrument_id=1, order_id=target, account_id=account, key=f"{oid}"
                    )
                )
            )
            continue
        account = rng.randint(1, 5)
        cmds.append(
            tc.place_command(
                tc.PlaceOrder(
                    instrument_id=1,
                    id=oid,
                    account_id=account,
                    side=rng.choice(["buy", "sell"]),
                    price=str(rng.randint(95, 105)),
                    quantity=str(rng.randint(1, 9)),
                    time_in_force=rng.choice(["gtc", "gtc", "ioc"]),
                )
            )
        )
        placed.append((oid, account))
    return cmds


def _processor(store: EventStore, snapshot_every: int) -> CommandProcessor[Any]:
    clock = itertools.count(1_700_000_000_000_000_000, 1_000)
    return build_processor(
        store.recorder, [tc.build_context(lambda: next(clock))], snapshot_every=snapshot_every
    ).start()


def _run(store: EventStore, cmds: list[Any], snapshot_every: int, restarts: int) -> list[Any]:
    outcomes: list[Any] = []
    chunk = max(1, len(cmds) // (restarts + 1))
    for start in range(0, len(cmds), chunk):
        p = _processor(store, snapshot_every)
        try:
            outcomes += [
                (o.accepted, o.result) for o in (p.execute(c) for c in cmds[start : start + chunk])
            ]
        finally:
            p.stop()
    return outcomes


def test_books_restored_from_snapshots_decide_exactly_as_books_replayed_whole(
    store: EventStore,
    second_store: EventStore,  # noqa: F811
) -> None:
    cmds = _commands(seed=5, n=150)
    with_snapshots = _run(store, cmds, snapshot_every=7, restarts=5)
    without = _run(second_store, cmds, snapshot_every=0, restarts=5)
    assert with_snapshots == without
    assert _log(store) == _log(second_store)
    with store.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM ledgerline.snapshots WHERE stream_id = 'book:1'"
        ).fetchone()
    assert row is not None and row["n"] > 5
    p = _processor(store, snapshot_every=7)
    try:
        found = store.recorder.prefetch(["book:1"])["book:1"]
        assert found.snapshot is not None and len(found.events) < 7
        p.execute(cmds[0])  # a retry of the listing: the batch loads the book, cold
        cached = p.cache.get("book:1")
        full = tc.rebuild(None, store.recorder.read_streams(["book:1"])["book:1"])
        assert isinstance(cached, OrderBook) and isinstance(full, OrderBook)
        assert cached.to_snapshot() == full.to_snapshot() and cached.version == full.version
        assert p.snapshots_loaded >= 1
    finally:
        p.stop()
