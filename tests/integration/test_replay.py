"""Replay rebuilds the read models bit for bit, at any point in history."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from projections.ledger import LedgerProjection
from projections.runner import ProjectionRunner
from readmodels import ledger as rm
from replay.replay import replay
from tests.integration.ledger_fixtures import append_an_event_the_ledger_cannot_apply, run_history


def project_live(store: EventStore) -> ProjectionRunner:
    runner = ProjectionRunner(store.recorder, [LedgerProjection()])
    runner.position = 0
    runner.catch_up()
    return runner


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), transfers=st.integers(5, 40))
def test_live_read_models_equal_replayed_ones_and_two_replays_are_identical(
    pg_admin_url: str, seed: int, transfers: int
) -> None:
    name = f"t_replay_{seed}_{transfers}_{time.time_ns() % 10**6}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(pg_admin_url, dbname=name)
    try:
        migrate_all(url)
        with EventStore(url, run_migrations=False) as store:
            run_history(store, seed=seed, transfers=transfers)
            project_live(store)
            first = replay(store.recorder, url, check=True)
            second = replay(store.recorder, url, check=True)
        assert first.ok, first.to_json()
        assert first.digests == first.live_digests
        assert first.digests == second.digests
        assert first.merkle_root == second.merkle_root
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replay_check_reports_a_read_model_that_drifted(db_url: str) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=11, transfers=15)
        project_live(store)
        with connect_owner(db_url) as conn:
            conn.execute(
                "UPDATE readmodels.accounts SET credits_posted = credits_posted + 1"
                " WHERE account_id = 3"
            )
        report = replay(store.recorder, db_url, check=True)
    assert not report.ok
    [diff] = [d for d in report.differences if d.count]
    assert (diff.table, diff.different) == ("accounts", ["3"])


def _balances(conn: psycopg.Connection[Any], position: int | None) -> dict[int, tuple[int, ...]]:
    out = {}
    for account_id in range(1, 7):
        a = rm.get_account(conn, account_id, as_of_position=position)
        if a is not None:
            out[account_id] = tuple(a[k] for k in rm.BALANCE_FIELDS)
    return out


def test_balances_and_reports_as_of_n_equal_those_of_a_store_truncated_at_n(
    db_url: str, pg_admin_url: str
) -> None:
    from ledgerline.cli import _reports_at

    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=5, transfers=25)
        n = store.recorder.head().position
        run_history(store, seed=6, transfers=25)
        project_live(store)
        with connect_owner(db_url) as conn:
            as_of = _balances(conn, n)
        _, reports_as_of = _reports_at(db_url, store, n)
        events = [e for b in store.recorder.iter_all(upto_position=n) for e in b]

    name = f"t_trunc_{time.time_ns() % 10**9}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    truncated_url = make_conninfo(pg_admin_url, dbname=name)
    try:
        migrate_all(truncated_url)
        with psycopg.connect(truncated_url, autocommit=True) as conn, conn.cursor() as cur:
            with cur.copy(
                "COPY ledgerline.events (notification_id, originator_id, originator_version,"
                " topic, state, recorded_at_ns, prev_stream_hash, stream_hash, prev_global_hash,"
                " global_hash) FROM STDIN"
            ) as copy:
                for e in events:
                    copy.write_row(
                        (
                            e.position,
                            e.stream_id,
                            e.version,
                            e.topic,
                            e.payload,
                            e.recorded_at_ns,
                            e.prev_stream_hash,
                            e.stream_hash,
                            e.prev_global_hash,
                            e.global_hash,
                        )
                    )
            last = events[-1]
            cur.execute(
                "UPDATE ledgerline.chain_head SET position = %s, global_hash = %s,"
                " recorded_at_ns = %s",
                (last.position, last.global_hash, last.recorded_at_ns),
            )
        with EventStore(truncated_url, run_migrations=False) as truncated:
            project_live(truncated)
            with connect_owner(truncated_url) as conn:
                assert _balances(conn, None) == as_of
            _, reports_truncated = _reports_at(truncated_url, truncated, None)
        for report in ("trial_balance", "large_value", "daily_totals", "statements"):
            assert reports_truncated[report].equals(reports_as_of[report]), report
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_event_the_projection_cannot_apply_stops_the_runner_and_is_recorded(
    db_url: str,
) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=9, transfers=3)
        good_head = append_an_event_the_ledger_cannot_apply(store)
        runner = ProjectionRunner(store.recorder, [LedgerProjection()]).start()
        try:
            assert not runner.wait_for(good_head + 1, timeout_s=5)
            assert runner.failure is not None
            assert runner.position == good_head
        finally:
            runner.stop()
        with connect_owner(db_url) as conn:
            row = conn.execute(
                "SELECT projection, position, reason FROM readmodels.projection_failures"
            ).fetchone()
    assert row is not None
    assert row[0] == "ledger"
    assert row[1] == good_head + 1
    assert "NoSuchEvent" in row[2]


def _indexes(conn: psycopg.Connection[Any], schema: str) -> set[tuple[str, str]]:
    """(name, definition with the schema's name taken out) of every index in ``schema``."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)
    ).fetchall()
    return {(name, definition.replace(f"{schema}.", "")) for name, definition in rows}


def test_a_kept_replay_schema_has_every_index_of_the_live_one_and_the_same_digests(
    db_url: str,
) -> None:
    """Replay loads the big tables without their secondary indexes; the schema it keeps for
    reports gets them back, exactly as the live schema's, and the rows are the same."""
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=5, transfers=30)
        project_live(store)
        dropped = replay(store.recorder, db_url)
        kept = replay(store.recorder, db_url, keep_schema=True)
    assert kept.schema is not None
    try:
        with connect_owner(db_url) as conn:
            live = _indexes(conn, "readmodels")
            rebuilt = _indexes(conn, kept.schema)
    finally:
        with connect_owner(db_url) as conn:
            conn.execute(f'DROP SCHEMA "{kept.schema}" CASCADE')
    assert {name for name, _ in live} >= {
        "account_history_time_idx",
        "transfers_debit_time_idx",
        "aml_transactions_src_idx",
    }
    assert rebuilt == live
    assert dropped.digests == kept.digests
    assert dropped.ok and kept.ok
