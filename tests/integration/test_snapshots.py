"""Aggregate snapshots: a cold start reads a snapshot and its tail, and nothing depends on them.

A snapshot is keyed by (stream, version, stream hash); a loader uses it only while the chain
still has that hash there. Deleting every snapshot, or planting a false one, changes no
outcome: the first is only slower, the second is refused and reported.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from commands.context import build_processor
from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    CreateTransfers,
    PostPendingTransfer,
    account_command,
    build_context,
    post_command,
    transfer_command,
    transfers_command,
)
from commands.processor import (
    COLD_STREAMS_UNDER_LOCK,
    AggregateCache,
    CommandProcessor,
    canonical_json,
)
from domain.ledger.account import Account
from domain.ledger.transfer import Transfer
from eventstore.model import BatchView
from eventstore.store import EventStore
from eventstore.verify import verify_store
from tests.conftest import admin_connection, wait_for_a_lock_wait


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


def _transfer(transfer_id: int, debit: int, credit: int, amount: str) -> Any:
    return transfer_command(
        CreateTransfer(
            id=transfer_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            ledger=1,
            code=1,
        )
    )


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
        out = p.execute(_transfer(9_000, 1, 2, "0.01"))
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


def test_a_full_cache_evicting_a_stream_the_batch_has_read_does_not_fail_the_batch(
    store: EventStore,
) -> None:
    """At its memory cap, the cache evicts settled transfers first, even ones the batch being
    decided has just read (``after``, or a transfer whose id comes again): those are read again
    under the lock, and the batch is decided as with room to spare."""
    clock = itertools.count(1_700_000_000_000_000_000, 1_000)
    p = build_processor(store.recorder, [build_context(lambda: next(clock))], snapshot_every=0)
    p.start()
    try:
        for a in (1, 2):
            assert p.execute(
                account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
            ).accepted
        assert p.execute(_transfer(10, 1, 2, "1.00")).accepted
    finally:
        p.stop()
    tight = CommandProcessor(
        store.recorder,
        [build_context(lambda: next(clock))],
        snapshot_every=0,
        cache=AggregateCache(max_bytes=4_000),  # a few aggregates: the batch overflows it
    ).start()

    def batch(first: int, count: int, *, after: str = "", again: int = 0) -> Any:
        transfers = [
            CreateTransfer(
                id=i, debit_account_id=1, credit_account_id=2, amount="0.01", ledger=1, code=1
            )
            for i in range(first, first + count)
        ]
        if again:  # an id already used, with the same fields: it exists
            transfers.append(
                CreateTransfer(
                    id=again,
                    debit_account_id=1,
                    credit_account_id=2,
                    amount="1.00",
                    ledger=1,
                    code=1,
                )
            )
        return transfers_command(CreateTransfers(transfers=tuple(transfers), after=after))

    try:
        assert tight.execute(batch(100, 5)).accepted  # the cache now holds transfer:10 no more
        out = tight.execute(batch(200, 60, after="transfer:104", again=10))
        assert out.accepted, out.result
        assert [r["status"] for r in out.result["results"]] == ["created"] * 60 + ["exists"]
        assert tight.cache.evictions > 0
    finally:
        tight.stop()


class _CountingPrefetch:
    """The store as the processor sees it, noting every stream it is asked to prefetch."""

    def __init__(self, store: EventStore) -> None:
        self._recorder = store.recorder
        self.prefetched: list[str] = []
        self.prefetched_under_lock: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)

    def prefetch(self, stream_ids: Any) -> Any:
        self.prefetched += stream_ids
        return self._recorder.prefetch(stream_ids)

    def transact(self, *args: Any, prefetch: Any = (), **kwargs: Any) -> Any:
        self.prefetched_under_lock += prefetch
        *rest, decide = args
        return self._recorder.transact(*rest, self._counting(decide), prefetch=prefetch, **kwargs)

    def _counting(self, decide: Any) -> Any:
        """``decide``, with the view's ``join`` noting the streams it reads from snapshots."""

        def counted(view: BatchView) -> Any:
            join = view.join
            if join is None:
                return decide(view)

            def counting_join(ids: Any, since: Any, cold: Any) -> Any:
                self.prefetched_under_lock += cold
                return join(ids, since, cold)

            return decide(dataclasses.replace(view, join=counting_join))

        return counted


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
        # A cold processor: the accounts are read from their snapshots (the batch's few with
        # it, under the lock), the new transfer's stream is not, nor is the pending transfer's,
        # which is read whole under the lock and posted correctly.
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
    assert {"account:1", "account:3"} <= set(counting.prefetched_under_lock)
    assert "account:2" in counting.prefetched  # named by the pending transfer, found late
    everything = counting.prefetched + counting.prefetched_under_lock
    assert not [s for s in everything if s.startswith("transfer:")]
    account_1 = store.recorder.read_streams(["account:1"])["account:1"]
    assert build_context(lambda: 0).rebuild(None, account_1).debits_posted == 500


def test_a_stream_whose_snapshot_is_its_tip_chains_on_from_it_when_read_under_the_lock(
    store: EventStore,
) -> None:
    # Account 1's newest event is the one its snapshot was taken at: read under the lock, that
    # event (not only the events after it) gives the stream's tip, so the next event links to
    # it rather than to the genesis hash.
    p = _processor(store, snapshot_every=1)
    try:
        opened = p.execute(account_command(CreateAccount(id=1, ledger=1, currency="USD", code=1)))
        assert opened.accepted
        for _ in range(50):  # the snapshot writer is a thread of its own
            if p.snapshots_written:
                break
            time.sleep(0.05)
    finally:
        p.stop()
    assert p.snapshots_written == 1
    counting = _CountingPrefetch(store)
    cold = build_processor(counting, [build_context(lambda: 1)], snapshot_every=0).start()
    try:
        _open_second = cold.execute(
            account_command(CreateAccount(id=2, ledger=1, currency="USD", code=1))
        )
        moved = cold.execute(
            transfer_command(
                CreateTransfer(
                    id=7, debit_account_id=1, credit_account_id=2, amount="3.00", ledger=1, code=1
                )
            )
        )
    finally:
        cold.stop()
    assert moved.accepted, moved.result
    assert cold.snapshots_loaded >= 1
    assert "account:1" in counting.prefetched_under_lock
    assert verify_store(store.recorder).ok
    account_1 = store.recorder.read_streams(["account:1"])["account:1"]
    assert [e.version for e in account_1] == [1, 2]
    assert account_1[1].prev_stream_hash == account_1[0].stream_hash


def test_a_batch_with_many_cold_streams_reads_them_before_taking_the_lock(
    store: EventStore,
) -> None:
    accounts = COLD_STREAMS_UNDER_LOCK + 1
    _run(
        store,
        [
            account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
            for a in range(1, accounts + 1)
        ],
        snapshot_every=0,
        restarts=0,
    )
    counting = _CountingPrefetch(store)
    cold = build_processor(counting, [build_context(lambda: 1)], snapshot_every=0).start()
    transfers = [
        transfer_command(
            CreateTransfer(
                id=1_000 + a,
                debit_account_id=a,
                credit_account_id=a + 1,
                amount="1.00",
                ledger=1,
                code=1,
            )
        )
        for a in range(1, accounts)
    ]
    try:
        outcomes = cold.submit_all(transfers).result(30)
    finally:
        cold.stop()
    assert all(o.accepted for o in outcomes)
    # One batch naming more cold streams than the lock may wait for: all read before it.
    assert {f"account:{a}" for a in range(1, accounts + 1)} <= set(counting.prefetched)
    assert counting.prefetched_under_lock == []
    assert verify_store(store.recorder).ok


def test_a_command_joining_a_waiting_batch_reads_a_cold_stream_from_its_snapshot_in_it(
    store: EventStore,
) -> None:
    # Another processor opens accounts 1 to 3 and moves money from 1 to 2, snapshotting every
    # event; this one has never read them.
    warm = _processor(store, snapshot_every=1)
    try:
        for a in (1, 2, 3):
            assert warm.execute(
                account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
            ).accepted
        for t in (1, 2):
            assert warm.execute(_transfer(t, 1, 2, "2.00")).accepted
        for _ in range(100):  # the snapshot writer is a thread of its own
            if warm.snapshots_written >= 5:
                break
            time.sleep(0.05)
    finally:
        warm.stop()
    counting = _CountingPrefetch(store)
    cold = build_processor(counting, [build_context(lambda: 1)], snapshot_every=0).start()
    schema = store.datastore.schema
    try:
        batches = cold.batches_committed
        with store.datastore.get_connection() as conn, conn.transaction():
            # Another writer holds the lock: the decider takes the first command and waits.
            conn.execute(f'SELECT position FROM "{schema}".chain_head FOR UPDATE')
            first = cold.submit(
                account_command(CreateAccount(id=9, ledger=1, currency="USD", code=1))
            )
            wait_for_a_lock_wait(store)
            late = cold.submit(_transfer(3, 2, 3, "1.50"))
        opened, moved = first.result(10), late.result(10)
    finally:
        cold.stop()
    assert opened.accepted and moved.accepted, moved.result
    assert cold.batches_committed == batches + 1  # the late transfer joined the waiting batch
    # Its accounts were read under the lock, from their snapshots, not before it.
    assert {"account:2", "account:3"} <= set(counting.prefetched_under_lock)
    assert not {"account:2", "account:3"} & set(counting.prefetched)
    assert cold.snapshots_loaded >= 2
    assert verify_store(store.recorder).ok
    account_2 = store.recorder.read_streams(["account:2"])["account:2"]
    rebuilt = build_context(lambda: 0).rebuild(None, account_2)
    assert (rebuilt.credits_posted, rebuilt.debits_posted) == (400, 150)
    assert account_2[-1].prev_stream_hash == account_2[-2].stream_hash
