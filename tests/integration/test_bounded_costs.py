"""The costs that used to grow with the log: the expiry sweep reads an index of due holds, and a
rebuild holds a bounded number of rows yet writes exactly what an unbounded one writes."""

from __future__ import annotations

import json
import time

import psycopg

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    account_command,
    build_ledger_processor,
    transfer_command,
)
from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from projections.ledger import Rebuild
from readmodels.ledger import DUE_HOLDS_SQL, due_holds
from readmodels.schema import all_migrations
from replay.replay import TABLES, table_digest
from tests.integration.ledger_fixtures import run_history
from tests.integration.test_replay import project_live


def _holds(store: EventStore, clock: list[int]) -> dict[int, int]:
    """Pending transfers with various timeouts, written at the clock's times."""
    processor = build_ledger_processor(store.recorder, lambda: clock[0]).start()
    timeouts: dict[int, int] = {}
    try:
        for a in (1, 2):
            processor.execute(
                account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
            )
        for n in range(40):
            timeout = 10 + (n * 7919) % 50
            transfer = CreateTransfer(
                id=100 + n, debit_account_id=1, credit_account_id=2, amount="1.00", ledger=1,
                code=1, pending=True, timeout_s=timeout,
            )  # fmt: skip
            assert processor.execute(transfer_command(transfer)).accepted
            timeouts[100 + n] = clock[0] + timeout * 1_000_000_000
        for n in range(30):  # posted transfers are never due
            transfer = CreateTransfer(
                id=500 + n, debit_account_id=1, credit_account_id=2, amount="1.00", ledger=1,
                code=1,
            )  # fmt: skip
            assert processor.execute(transfer_command(transfer)).accepted
    finally:
        processor.stop()
    return timeouts


def test_the_sweep_finds_exactly_the_due_holds_oldest_deadline_first(db_url: str) -> None:
    migrate_all(db_url)
    clock = [time.time_ns()]
    with EventStore(db_url, run_migrations=False, clock=lambda: clock[0]) as store:
        deadlines = _holds(store, clock)
        project_live(store)
    now = clock[0] + 30 * 1_000_000_000
    with connect_owner(db_url) as conn:
        due = due_holds(conn, now)
        assert due == sorted(
            (t for t, d in deadlines.items() if d <= now), key=lambda t: (deadlines[t], t)
        )
        assert 0 < len(due) < 40
        assert due_holds(conn, now, limit=3) == due[:3]


def test_the_sweep_reads_the_due_holds_index_not_the_transfers(db_url: str) -> None:
    migrate_all(db_url)
    now = time.time_ns()
    with connect_owner(db_url) as conn:
        # 50,000 settled transfers and 20 holds, 5 of them due: the shape of a real ledger.
        conn.execute(
            "INSERT INTO readmodels.transfers SELECT g, 1, 2, 100, 100, 1, 'USD', 1, g %% 2500 = 0,"
            " 60, CASE WHEN g %% 2500 = 0 THEN 'pending' ELSE 'posted' END, g, %s, g,"
            " CASE WHEN g %% 2500 = 0 THEN %s::bigint + (g / 2500 - 5)::bigint * 1000000000 END"
            " FROM generate_series(1, 50000) g",
            (now, now),
        )
        conn.execute("ANALYZE readmodels.transfers")
        row = conn.execute(
            "EXPLAIN (FORMAT JSON) " + DUE_HOLDS_SQL.format(schema="readmodels"), (now, 1000)
        ).fetchone()
        assert due_holds(conn, now) == [2500 * k for k in range(1, 6)]
    assert row is not None
    plan = json.dumps(row[0])
    assert "transfers_due_holds_idx" in plan
    assert "Seq Scan" not in plan


def _rebuild(
    db_url: str, store: EventStore, schema: str, max_rows: int, batch: int
) -> dict[str, str]:
    with connect_owner(db_url) as conn:
        from eventstore.schema import migrate

        migrate(conn, schema, all_migrations())
        with conn.transaction(), conn.cursor() as cur:
            rebuilder = Rebuild(cur, schema, max_rows=max_rows)
            for events in store.recorder.iter_all(batch):
                rebuilder.feed(events)
            rebuilder.finish()
        return {t: table_digest(conn, schema, t) for t in TABLES}


def test_a_rebuild_holding_three_rows_writes_what_an_unbounded_one_writes(db_url: str) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=21, transfers=40)
        project_live(store)
        bounded = _rebuild(db_url, store, "rebuild_bounded", max_rows=3, batch=7)
        unbounded = _rebuild(db_url, store, "rebuild_unbounded", max_rows=10**9, batch=5000)
    with psycopg.connect(db_url) as conn:
        live = {t: table_digest(conn, "readmodels", t) for t in TABLES}
    assert bounded == unbounded == live
