"""``ledgerline bench replay``: replay speed against the raw speed of reading the rows.

Generates N events through the application layer once (a ledger of 1,000 accounts with
single-phase and two-phase transfers) in the database ``bench_replay``, reused when it already
holds N events, then measures in one run:

* ``raw_read_events_per_s``: psycopg reading every event row, no decoding;
* ``replay_events_per_s``: ``ledgerline replay``'s work: verify both chains, recompute the
  Merkle root, rebuild the balances read model in a scratch schema.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    PostPendingTransfer,
    account_command,
    build_ledger_processor,
    post_command,
    transfer_command,
)
from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from replay.replay import replay

DATABASE = "bench_replay"
ACCOUNTS = 1000


def _database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return make_conninfo(admin_url, dbname=DATABASE)


def generate(store: EventStore, events: int) -> float:
    """Write transfers until the log holds ``events`` events; return events/s written."""
    start_head = store.recorder.head().position
    if start_head >= events:
        return 0.0
    rng = random.Random(20261124)
    p = build_ledger_processor(store.recorder, time.time_ns).start()
    started = time.perf_counter()
    try:
        if start_head == 0:
            futures = [
                p.submit(account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1)))
                for a in range(1, ACCOUNTS + 1)
            ]
            for f in futures:
                f.result(60)
        next_id = start_head * 10 + 1
        while store.recorder.head().position < events:
            futures = []
            for _ in range(1000):
                a = rng.randrange(1, ACCOUNTS + 1)
                b = rng.randrange(1, ACCOUNTS)
                b = b + 1 if b >= a else b
                pending = rng.random() < 0.1
                cmd = CreateTransfer(
                    id=next_id,
                    debit_account_id=a,
                    credit_account_id=b,
                    amount=f"{rng.randrange(1, 100000) / 100:.2f}",
                    ledger=1,
                    code=1,
                    pending=pending,
                )
                futures.append(p.submit(transfer_command(cmd)))
                if pending:
                    futures.append(p.submit(post_command(PostPendingTransfer(transfer_id=next_id))))
                next_id += 1
            for f in futures:
                f.result(120)
    finally:
        p.stop()
    written = store.recorder.head().position - start_head
    return written / (time.perf_counter() - started)


def raw_read(url: str, upto: int) -> float:
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor(name="raw") as cur:
        cur.itersize = 10_000
        cur.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state,"
            " recorded_at_ns, prev_stream_hash, stream_hash, prev_global_hash,"
            " global_hash FROM ledgerline.events WHERE notification_id <= %s"
            " ORDER BY notification_id",
            (upto,),
        )
        for _ in cur:
            rows += 1
    return rows / (time.perf_counter() - started)


def run(admin_url: str, *, events: int) -> dict[str, Any]:
    url = _database(admin_url)
    migrate_all(url)
    with EventStore(url, run_migrations=False) as store:
        write_rate = generate(store, events)
        upto = min(events, store.recorder.head().position)
        raw = raw_read(url, upto)
        started = time.perf_counter()
        report = replay(store.recorder, url, to_position=upto)
        elapsed = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"replay found a problem: {report.to_json()}")
    rate = report.events / elapsed
    return {
        "benchmark": "replay",
        "events": report.events,
        "generated_events_per_s": round(write_rate, 1) if write_rate else "reused",
        "raw_read_events_per_s": round(raw, 1),
        "replay_events_per_s": round(rate, 1),
        "replay_vs_raw_read": round(rate / raw, 3),
        "replay_seconds": round(elapsed, 2),
        "projected_seconds_for_1m_events": round(1_000_000 / rate, 1),
        "merkle_root": report.merkle_root.hex(),
        "digests": report.digests,
        "targets": {"replay_events_per_s": 70_000, "seconds_for_1m_events": 15},
        "pass": {
            "replay_events_per_s": rate >= 70_000,
            "seconds_for_1m_events": 1_000_000 / rate <= 15,
        },
        "cpu_count": os.cpu_count(),
    }
