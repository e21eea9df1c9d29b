"""The costs that used to grow with the log: the expiry sweep reads an index of due holds, and a
rebuild holds a bounded number of rows yet writes exactly what an unbounded one writes."""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    account_command,
    build_ledger_processor,
    transfer_command,
)
from eventstore.model import NewEvent, Submission
from eventstore.store import EventStore, connect_owner
from eventstore.verify import verify_store
from ledgerline.runtime import migrate_all
from projections.ledger import Rebuild
from readmodels.ledger import DUE_HOLDS_SQL, due_holds
from readmodels.schema import all_migrations
from replay.replay import TABLES, table_digest
from tests.integration.ledger_fixtures import run_history
from tests.integration.test_replay import project_live
from tests.integration.test_tamper_evidence import as_superuser_without_triggers, fill


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


def _rows_per_node(plan: dict[str, Any]) -> list[int]:
    """Every plan node's actual row count (over all its loops)."""
    own = [int(plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1))]
    return own + [n for child in plan.get("Plans", []) for n in _rows_per_node(child)]


def test_reading_a_log_the_planner_has_no_statistics_for_touches_each_batchs_rows_only(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    """Right after a bulk load (an import, a restored backup, a new replica) PostgreSQL has
    no statistics of the log yet and guesses that a range holds 0.5% of it. Reading the log
    from the start in batches (replay, verify, rebuilds, exports) must still touch only each
    batch's own rows, not gather and sort every later row for every batch."""
    superuser.execute("ALTER TABLE ledgerline.events SET (autovacuum_enabled = false)")
    recorder = store.recorder
    for start in range(0, 20_000, 1000):
        recorder.append(
            [
                Submission(
                    f"c{n}", "t", b"p", True, b"{}", [NewEvent(f"s{n}", 1, "t.Ev.v1", b"{}")]
                )
                for n in range(start, start + 1000)
            ]
        )
    assert superuser.execute(
        "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables"
        " WHERE schemaname = 'ledgerline' AND relname = 'events'"
    ).fetchone() == (True,)
    seen: list[tuple[Any, list[int]]] = []
    build = recorder._read_query

    def recording(after: int, upto: int | None, limit: int) -> tuple[Any, list[int]]:
        query, params = build(after, upto, limit)
        seen.append((query, params))
        return query, params

    recorder._read_query = recording  # type: ignore[method-assign]
    batch = 500
    positions = [e.position for b in recorder.iter_all(batch) for e in b]
    assert positions == list(range(1, 20_001))
    head = recorder.head().position
    assert [e.position for e in recorder.read_from(1000, 7, head)] == list(range(1001, 1008))
    assert len(seen) >= 20_000 // batch
    for query, params in seen:
        row = superuser.execute(
            b"EXPLAIN (ANALYZE, FORMAT JSON) " + query.as_bytes(superuser), params
        ).fetchone()
        assert row is not None
        touched = max(_rows_per_node(row[0][0]["Plan"]))  # type: ignore[index]
        assert touched <= params[-1], (params, touched)


def test_bounded_reads_return_exactly_what_a_log_with_a_hole_holds(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A damaged log (rows deleted behind the store's back) is read as it is: every row there
    is, in order, none invented and none skipped, so the verifier can name the hole."""
    fill(store)  # positions 1..10
    as_superuser_without_triggers(
        superuser, "DELETE FROM ledgerline.events WHERE notification_id BETWEEN 4 AND 6"
    )
    r = store.recorder

    def read(after: int, limit: int, upto: int | None = None) -> list[int]:
        return [e.position for e in r.read_from(after, limit, upto)]

    assert read(0, 5, 10) == [1, 2, 3, 7, 8]
    assert read(0, 3, 10) == [1, 2, 3]
    assert read(3, 2, 10) == [7, 8]
    assert read(3, 2, 6) == []
    assert read(0, 100) == [1, 2, 3, 7, 8, 9, 10]
    assert [e.position for b in r.iter_all(2) for e in b] == [1, 2, 3, 7, 8, 9, 10]
    assert [e.position for b in r.iter_all(2, upto_position=8) for e in b] == [1, 2, 3, 7, 8]
    assert r.last_position() == 10
    report = verify_store(r)
    assert report.first_break is not None and report.first_break.position == 4
