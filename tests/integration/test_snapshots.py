"""Aggregate snapshots: a cold start reads a snapshot and its tail, and nothing depends on them.

A snapshot is keyed by (stream, version, stream hash); a loader uses it only while the chain
still has that hash there. Deleting every snapshot, or planting a false one, changes no
outcome: the first is only slower, the second is refused and reported.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from commands.context import build_processor
from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    PostPendingTransfer,
    account_command,
    build_context,
    post_command,
    transfer_command,
)
from commands.processor import AggregateCache, CommandProcessor, canonical_json
from domain.ledger.account import Account
from domain.ledger.transfer import Transfer
from eventstore.store import EventStore
from tests.conftest import admin_connection


def _commands(seed: int, n: int) -> list[Any]:
    rng = random.Random(seed)
    cmds: list[Any] = [
        account_command(
            CreateAccount(
                id=a, ledger=1, currency="USD", code=1, debits_must_not_exceed_credits=a > 1
            )
        )
        for a in (1, 2, 3)
    ]
    pending: list[int] = []
    for t in range(100, 100 + n):
        debit, credit = rng.sample([1, 2, 3], 2)
        if pending and rng.random() < 0.2:
            cmds.append(post_command(PostPendingTransfer(transfer_id=pending.pop())))
            continue
        hold = rng.random() < 0.2
        cmds.append(
            transfer_command(
                CreateTransfer(
                    id=t,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=f"{rng.randint(1, 900) / 100:.2f}",
                    ledger=1,
                    code=1,
                    pending=hold,
                )
            )
        )
        if hold:
            pending.append(t)
    return cmds


def _processor(store: EventStore, snapshot_every: int) -> CommandProcessor[Any]:
    clock = itertools.count(1_700_000_000_000_000_000, 1_000)
    return build_processor(
        store.recorder, [build_context(lambda: next(clock))], snapshot_every=snapshot_every
    ).start()


def _run(store: EventStore, cmds: list[Any], snapshot_every: int, restarts: int) -> list[Any]:
    """Run ``cmds`` in order, restarting the processor (a cold cache) ``restarts`` times."""
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


def _log(store: EventStore) -> list[tuple[str, int, str, bytes]]:
    return [
        (e.stream_id, e.version, e.topic, e.payload)
        for batch in store.recorder.iter_all(10_000)
        for e in batch
    ]


@pytest.fixture
def second_store(pg_admin_url: str) -> Iterator[EventStore]:
    name = f"snap_{random.randrange(10**9)}"
    with admin_connection(pg_admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with EventStore(make_conninfo(pg_admin_url, dbname=name)) as s:
        yield s
    with admin_connection(pg_admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_same_commands_give_the_same_log_with_snapshots_or_without(
    store: EventStore, second_store: EventStore
) -> None:
    cmds = _commands(seed=7, n=120)
    with_snapshots = _run(store, cmds, snapshot_every=5, restarts=6)
    without = _run(second_store, cmds, snapshot_every=0, restarts=6)
    assert with_snapshots == without
    assert _log(store) == _log(second_store)
    with store.datastore.get_connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM ledgerline.snapshots").fetchone()
    assert row is not None and row["n"] > 10  # snapshots were taken and, on restarts, used


def test_a_cold_processor_loads_the_snapshot_and_only_the_events_after_it(
    store: EventStore,
) -> None:
    _run(store, _commands(seed=3, n=60), snapshot_every=10, restarts=0)
    p = _processor(store, snapshot_every=10)
    try:
        found = store.recorder.prefetch(["account:1"])["account:1"]
        assert found.snapshot is not None
        assert len(found.events) < 10  # the tail after the newest snapshot, not the stream
        out = p.execute(
            transfer_command(
                CreateTransfer(
                    id=9_000,
                    debit_account_id=1,
                    credit_account_id=2,
                    amount="0.01",
                    ledger=1,
                    code=1,
                )
            )
        )
        assert out.accepted
        assert p.snapshots_loaded >= 1
        # The restored account equals the one replayed from every event.
        cached = p.cache.get("account:1")
        events = store.recorder.read_streams(["account:1"])["account:1"]
        full = build_context(lambda: 0).rebuild(None, events)
        assert isinstance(cached, Account) and isinstance(full, Account)
        assert cached.to_snapshot() == full.to_snapshot()
        assert cached.version == full.version
    finally:
        p.stop()


def test_deleting_every_snapshot_changes_no_outcome(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    cmds = _commands(seed=11, n=80)
    first = _run(store, cmds[:60], snapshot_every=4, restarts=2)
    superuser.execute("ALTER TABLE ledgerline.snapshots DISABLE TRIGGER USER")
    superuser.execute("DELETE FROM ledgerline.snapshots")
    superuser.execute("ALTER TABLE ledgerline.snapshots ENABLE TRIGGER USER")
    rest = _run(store, cmds[60:], snapshot_every=4, restarts=2)
    # the same history, replayed on a processor that never had snapshots
    p = build_processor(store.recorder, [build_context(lambda: 0)], snapshot_every=0).start()
    try:
        again = [(o.accepted, o.result) for o in (p.execute(c) for c in cmds)]
    finally:
        p.stop()
    assert again == first + rest  # every command answers its first outcome, unchanged


def test_a_snapshot_the_chain_does_not_confirm_is_ignored_and_reported(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    _run(store, _commands(seed=5, n=40), snapshot_every=0, restarts=0)
    version = store.recorder.read_streams(["account:2"])["account:2"][-1].version
    forged = Account(2).to_snapshot() | {"currency": "USD", "credits_posted": 10**12}
    superuser.execute(
        "INSERT INTO ledgerline.snapshots (stream_id, version, stream_hash, state)"
        " VALUES ('account:2', %s, %s, %s)",
        (version, b"\x07" * 32, canonical_json(forged)),
    )
    p = _processor(store, snapshot_every=0)
    try:
        out = p.execute(
            transfer_command(
                CreateTransfer(
                    id=9_100,
                    debit_account_id=2,
                    credit_account_id=1,
                    amount="0.01",
                    ledger=1,
                    code=1,
                )
            )
        )
        assert p.snapshots_refused == 1
        assert p.snapshots_loaded == 0
        cached = p.cache.get("account:2")
        assert isinstance(cached, Account) and cached.credits_posted < 10**12
        assert out.result.get("code") != "internal_error"
    finally:
        p.stop()


def test_the_cache_keeps_to_its_memory_and_evicts_settled_transfers_first() -> None:
    cache = AggregateCache(max_bytes=10_000)
    accounts = [Account(i) for i in range(5)]
    for a in accounts:
        cache.put(a.id, a)
    settled = []
    for i in range(100):
        t = Transfer(i)
        t.state = "posted"
        settled.append(t)
        cache.put(t.id, t)
    assert cache.bytes <= 10_000
    assert all(a.id in cache for a in accounts)  # the working set stayed
    assert cache.evictions > 0
    assert settled[-1].id in cache and settled[0].id not in cache  # oldest settled went first
    hold = Transfer(500)
    hold.state = "pending"
    cache.put(hold.id, hold)
    for i in range(200, 400):
        t = Transfer(i)
        t.state = "voided"
        cache.put(t.id, t)
    assert hold.id in cache  # an open hold outlives any number of settled transfers
    assert cache.lookup("account:0")[0] and cache.hits == 1
    assert not cache.lookup("account:999")[0] and cache.misses == 1


class _CountingPrefetch:
    """The store as the processor sees it, noting every stream it is asked to prefetch."""

    def __init__(self, store: EventStore) -> None:
        self._recorder = store.recorder
        self.prefetched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)

    def prefetch(self, stream_ids: Any) -> Any:
        self.prefetched += stream_ids
        return self._recorder.prefetch(stream_ids)


def test_transfer_streams_are_read_with_the_batch_not_prefetched(store: EventStore) -> None:
    _run(store, _commands(seed=9, n=0), snapshot_every=0, restarts=0)  # accounts 1, 2, 3
    hold = CreateTransfer(
        id=9_200,
        debit_account_id=1,
        credit_account_id=2,
        amount="4.00",
        ledger=1,
        code=1,
        pending=True,
    )
    _run(store, [transfer_command(hold)], snapshot_every=0, restarts=0)
    counting = _CountingPrefetch(store)
    p = build_processor(counting, [build_context(lambda: 1)], snapshot_every=0).start()
    try:
        # A cold processor: the accounts are prefetched, the new transfer's stream is not, nor
        # is the pending transfer's, which is read whole under the lock and posted correctly.
        created = p.execute(
            transfer_command(
                CreateTransfer(
                    id=9_201,
                    debit_account_id=1,
                    credit_account_id=3,
                    amount="1.00",
                    ledger=1,
                    code=1,
                )
            )
        )
        posted = p.execute(post_command(PostPendingTransfer(transfer_id=9_200)))
        again = p.execute(transfer_command(hold))
    finally:
        p.stop()
    assert created.accepted and posted.accepted
    assert posted.result["transfer"]["amount"] == 400
    assert again.replayed
    assert {"account:1", "account:3"} <= set(counting.prefetched)
    assert not [s for s in counting.prefetched if s.startswith("transfer:")]
    account_1 = store.recorder.read_streams(["account:1"])["account:1"]
    assert build_context(lambda: 0).rebuild(None, account_1).debits_posted == 500
