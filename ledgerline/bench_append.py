"""``ledgerline bench append``: group commit and batched appends against their baselines.

All four figures are measured in one run, on one embedded server, each on a fresh database:

* ``plain_eventsourcing_commands_per_s``: a stock ``eventsourcing`` application on its own
  Postgres recorder, one new aggregate (one event) per ``save``, from 32 threads.
* ``ledgerline_commands_per_s``: the same command shape (open a new tally: one event) through
  Ledgerline's command processor (command log, hash chains, group commit), from 32 threads.
* ``raw_copy_events_per_s``: psycopg ``COPY`` of pre-built rows shaped like event rows into a
  table with the event table's columns and indexes, 1,000 rows per transaction.
* ``ledgerline_batched_events_per_s``: Ledgerline appending 1,000-event submissions
  (hashing and chaining included).
* ``cold_start_ms``: a transfer from an account with 100,000 events that no cache holds,
  answered by loading the whole stream, then by loading its snapshot and tail.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from commands.tally import OpenTally, build_processor, open_tally_command
from eventstore.model import NewEvent, Submission
from eventstore.store import EventStore

SUBMITTERS = 32
PAYLOAD_BYTES = 160


def fresh_database(admin_url: str, name: str) -> str:
    """Create (or recreate) database ``name`` next to ``admin_url``; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(admin_url, dbname=name)


def _run_threads(n_threads: int, seconds: float, work: Callable[[int, int], None]) -> float:
    """Run ``work(thread, i)`` in a loop on ``n_threads`` threads for ``seconds``; ops/s."""
    counts = [0] * n_threads
    errors: list[BaseException] = []
    deadline = time.perf_counter() + seconds

    def loop(k: int) -> None:
        i = 0
        try:
            while time.perf_counter() < deadline:
                work(k, i)
                i += 1
        except BaseException as exc:
            errors.append(exc)
        counts[k] = i

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(n_threads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return sum(counts) / elapsed


def plain_eventsourcing(url: str, seconds: float) -> float:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class PlainTally(Aggregate):
        @event("Opened")
        def __init__(self, name: str) -> None:
            self.name = name

    params = conninfo_to_dict(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname")),
        "POSTGRES_HOST": str(params.get("host")),
        "POSTGRES_PORT": str(params.get("port") or 5432),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(SUBMITTERS),
        "POSTGRES_MAX_OVERFLOW": "0",
    }
    app: Application[Any] = Application(env=env)

    def save(k: int, i: int) -> None:
        app.save(PlainTally(name=f"{k}-{i}"))

    try:
        return _run_threads(SUBMITTERS, seconds, save)
    finally:
        app.close()


def ledgerline_commands(url: str, seconds: float) -> tuple[float, float, dict[str, float]]:
    with EventStore(url, pool_size=4) as store:
        processor = build_processor(store.recorder, time.time_ns).start()
        run = uuid.uuid4().hex[:8]
        try:
            rate = _run_threads(
                SUBMITTERS,
                seconds,
                lambda k, i: _must_accept(
                    processor.execute(open_tally_command(OpenTally(tally_id=f"{run}-{k}-{i}")))
                ),
            )
        finally:
            processor.stop()
        mean_batch = processor.commands_committed / max(processor.batches_committed, 1)
        commands = max(processor.commands_committed, 1)
        stages = {**store.recorder.stage_s, **processor.stage_s}
        # The store's decide stage holds the processor's handle and encode stages: show the
        # rest of it (the overlay, the command-log check, bookkeeping) as its own figure.
        stages["decide_other"] = stages.pop("decide") - stages["handle"] - stages["encode"]
        per_command_us = {k: round(v / commands * 1e6, 1) for k, v in stages.items()}
        return rate, mean_batch, per_command_us


def _must_accept(outcome: Any) -> None:
    if not outcome.accepted:
        raise RuntimeError(f"benchmark command rejected: {outcome.result}")


def raw_copy(url: str, events: int) -> float:
    with EventStore(url, pool_size=1) as store, psycopg.connect(url, autocommit=True) as conn:
        schema = store.schema
        conn.execute(f'CREATE TABLE "{schema}".bench_copy (LIKE "{schema}".events INCLUDING ALL)')
        payload = os.urandom(PAYLOAD_BYTES)
        rows = [
            (
                f"stream-{n}",
                1,
                "bench.Event.v1",
                payload,
                n + 1,
                time.time_ns(),
                os.urandom(32),
                os.urandom(32),
                os.urandom(32),
                os.urandom(32),
            )
            for n in range(events)
        ]
        start = time.perf_counter()
        for offset in range(0, events, 1000):
            with conn.transaction(), conn.cursor() as cur:
                copy_sql = (
                    f'COPY "{schema}".bench_copy (originator_id, originator_version, topic, state,'
                    " notification_id, recorded_at_ns, prev_stream_hash, stream_hash,"
                    " prev_global_hash, global_hash) FROM STDIN (FORMAT BINARY)"
                )
                with cur.copy(copy_sql) as copy:
                    copy.set_types(
                        ["text", "int8", "text", "bytea", "int8", "int8"] + ["bytea"] * 4
                    )
                    for row in rows[offset : offset + 1000]:
                        copy.write_row(row)
        return events / (time.perf_counter() - start)


def ledgerline_batched(url: str, events: int) -> float:
    with EventStore(url, pool_size=1) as store:
        payload = os.urandom(PAYLOAD_BYTES)
        run = uuid.uuid4().hex[:8]
        start = time.perf_counter()
        for offset in range(0, events, 1000):
            batch = [
                NewEvent(f"bench-{run}-{n}", 1, "bench.Event.v1", payload)
                for n in range(offset, min(offset + 1000, events))
            ]
            [result] = store.recorder.append(
                [Submission(f"batch-{run}-{offset}", "bench", b"", True, b"{}", batch)]
            )
            if result.__class__.__name__ != "Committed":
                raise RuntimeError(f"batched append failed: {result}")
        return events / (time.perf_counter() - start)


def cold_start(url: str, history: int) -> dict[str, float]:
    """A transfer from an account with ``history`` events that no cache holds: the time to
    answer it, loading the whole stream, then loading a snapshot and its tail."""
    from commands.ledger import (
        CreateAccount,
        CreateTransfer,
        account_command,
        build_ledger_processor,
        transfer_command,
    )
    from commands.ledger import encode as encode_ledger
    from commands.ledger import rebuild as rebuild_ledger
    from commands.processor import canonical_json
    from domain.ledger.events import AmountPosted
    from eventstore.model import Snapshot

    with EventStore(url, pool_size=2) as store:
        setup = build_ledger_processor(store.recorder, time.time_ns).start()
        try:
            for account_id in (1, 2):
                setup.execute(
                    account_command(CreateAccount(id=account_id, ledger=1, currency="USD", code=1))
                )
        finally:
            setup.stop()
        # The long history, written straight to the store in large batches: one credit per
        # event (the command path would take minutes to write 100,000 of them).
        now = time.time_ns()
        for offset in range(1, history, 5000):
            batch = []
            for n in range(offset, min(offset + 5000, history)):
                topic, payload = encode_ledger(
                    AmountPosted(1, 10**9 + n, 1, "USD", "credit", now, 1)
                )
                batch.append(NewEvent("account:1", n + 1, topic, payload))
            store.recorder.append(
                [Submission(f"history-{offset}", "bench", b"", True, b"{}", batch)]
            )

        def timed_transfer(transfer_id: int, snapshot_every: int) -> float:
            p = build_ledger_processor(
                store.recorder, time.time_ns, snapshot_every=snapshot_every
            ).start()
            try:
                command = transfer_command(
                    CreateTransfer(
                        id=transfer_id,
                        debit_account_id=1,
                        credit_account_id=2,
                        amount="0.01",
                        ledger=1,
                        code=1,
                    )
                )
                started = time.perf_counter()
                outcome = p.execute(command, timeout_s=300)
                elapsed = (time.perf_counter() - started) * 1000
            finally:
                p.stop()
            if not outcome.accepted:
                raise RuntimeError(f"cold-start transfer refused: {outcome.result}")
            return elapsed

        without = timed_transfer(1, snapshot_every=0)
        events = store.recorder.read_streams(["account:1"])["account:1"]
        account = rebuild_ledger(None, events)
        assert account is not None
        store.recorder.write_snapshots(
            [Snapshot("account:1", account.version, canonical_json(account.to_snapshot()))]
        )
        with_snapshot = timed_transfer(2, snapshot_every=1000)
    return {"without_snapshot_ms": without, "with_snapshot_ms": with_snapshot}


# Stages in which the decider waits on PostgreSQL rather than working itself.
WAIT_STAGES = ("prefetch", "read", "commit")
DECIDER_OWN_US_TARGET = 50  # the aim for a command's own Python cost


def run(
    admin_url: str, *, events: int, seconds: float, cold_history: int = 100_000
) -> dict[str, Any]:
    plain = plain_eventsourcing(fresh_database(admin_url, "bench_plain"), seconds)
    ours, mean_batch, stage_us = ledgerline_commands(
        fresh_database(admin_url, "bench_ledgerline"), seconds
    )
    copy_rate = raw_copy(fresh_database(admin_url, "bench_copy"), events)
    batched = ledgerline_batched(fresh_database(admin_url, "bench_batched"), events)
    cold = cold_start(fresh_database(admin_url, "bench_cold"), cold_history)
    # The decider's own work on a command: its stages but the round trips it waits on.
    own_us = round(sum(us for name, us in stage_us.items() if name not in WAIT_STAGES), 1)
    return {
        "benchmark": "append",
        "submitters": SUBMITTERS,
        "seconds_per_concurrency_run": seconds,
        "events_per_batch_run": events,
        "payload_bytes": PAYLOAD_BYTES,
        "plain_eventsourcing_commands_per_s": round(plain, 1),
        "ledgerline_commands_per_s": round(ours, 1),
        "ledgerline_mean_commands_per_commit": round(mean_batch, 1),
        "ledgerline_stage_us_per_command": stage_us,
        "ledgerline_decider_own_us_per_command": own_us,
        "stages": "prefetch: uncached streams read before taking the lock (only a batch naming "
        "more than 64 reads them so; fewer are read with it, in read); read: command log "
        "and streams under the lock; handle: the command's rules; "
        "encode: events and result to bytes; decide_other: the rest of deciding; plan: "
        "canonical bytes, hashes and chains; write: rows to column arrays, queued; commit: "
        "the round trip that inserts them and commits; answer: waking the callers (all in the "
        "decider thread, so the stages add up to its busy time); the decider's own work is "
        "every stage but prefetch, read and commit, which wait on PostgreSQL",
        "raw_copy_events_per_s": round(copy_rate, 1),
        "ledgerline_batched_events_per_s": round(batched, 1),
        "group_commit_speedup": round(ours / plain, 2),
        "batched_vs_copy": round(batched / copy_rate, 3),
        "cold_start_history_events": cold_history,
        "cold_start_ms": {
            "without_snapshot": round(cold["without_snapshot_ms"], 1),
            "with_snapshot": round(cold["with_snapshot_ms"], 1),
        },
        "cold_start_speedup": round(cold["without_snapshot_ms"] / cold["with_snapshot_ms"], 1),
        "targets": {
            "group_commit_speedup": 5.0,
            "batched_vs_copy": 0.5,
            "cold_start_ms_with_snapshot": 100,
            "decider_own_us_per_command": DECIDER_OWN_US_TARGET,
        },
        "pass": {
            "group_commit_speedup": ours / plain >= 5.0,
            "batched_vs_copy": batched / copy_rate >= 0.5,
            "cold_start_ms_with_snapshot": cold["with_snapshot_ms"] < 100,
            "decider_own_us_per_command": own_us < DECIDER_OWN_US_TARGET,
        },
        "cpu_count": os.cpu_count(),
    }
