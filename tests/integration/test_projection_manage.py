"""Projection status and rebuild: lag is reported, and a rebuild swaps in identical tables."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from commands.ledger import CreateTransfer, build_ledger_processor, transfer_command
from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from projections.ledger import LedgerProjection
from projections.manage import UnknownProjection, rebuild, status
from projections.runner import ProjectionRunner
from readmodels import ledger as rm
from replay.replay import replay, schema_digests
from tests.e2e.test_cli import assert_one_line_error, run
from tests.integration.ledger_fixtures import run_history


@pytest.fixture
def ledger_store(db_url: str) -> Iterator[EventStore]:
    migrate_all(db_url)
    with EventStore(db_url, pool_size=8, run_migrations=False) as store:
        yield store


def digests(url: str) -> dict[str, str]:
    with connect_owner(url) as conn:
        return schema_digests(conn)


def tracking(url: str) -> dict[str, int]:
    with connect_owner(url) as conn:
        rows = conn.execute(
            "SELECT source, position FROM readmodels.tracking WHERE projection = 'ledger'"
        ).fetchall()
    return {str(s): int(p) for s, p in rows}


def leftover_schemas(url: str) -> list[str]:
    with connect_owner(url) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild%'"
        ).fetchall()
    return [str(r[0]) for r in rows]


def ledger_of(items: Any) -> Any:
    """The ledger's entry among every registered projection's."""
    return next(i for i in items if (i["name"] if isinstance(i, dict) else i.name) == "ledger")


def project_live(store: EventStore) -> ProjectionRunner:
    runner = ProjectionRunner(store.recorder, [LedgerProjection()])
    runner.catch_up()
    return runner


def test_status_shows_the_lag_while_no_runner_applies_and_none_once_caught_up(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=1, transfers=10)
    head = ledger_store.recorder.head().position
    with connect_owner(db_url) as conn:
        behind = ledger_of(status(ledger_store, conn))
        assert (behind.name, behind.mode, behind.position) == ("ledger", "none", 0)
        assert (behind.head, behind.lag_events) == (head, head)
        assert behind.lag_seconds > 0.0
        assert (behind.failures, behind.last_failure, behind.sources) == (0, None, {})

        project_live(ledger_store)
        conn.execute(
            "INSERT INTO readmodels.projection_failures (projection, source, position, reason)"
            " VALUES ('ledger', 'store', 1, 'first'), ('ledger', 'store', 2, 'second')"
        )
        caught_up = ledger_of(status(ledger_store.recorder, conn))
    assert (caught_up.mode, caught_up.position, caught_up.head) == ("store", head, head)
    assert (caught_up.lag_events, caught_up.lag_seconds) == (0, 0.0)
    assert caught_up.sources == {"store": head}
    assert (caught_up.failures, caught_up.last_failure) == (2, "second")
    assert caught_up.to_json()["sources"] == {"store": head}


def test_a_rebuild_equals_a_fresh_replay_and_the_incrementally_built_tables(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=2, transfers=40)
    project_live(ledger_store)
    incremental = digests(db_url)
    head = ledger_store.recorder.head().position

    result = rebuild(db_url, ledger_store.recorder, "ledger", batch_size=17)

    assert (result.name, result.mode, result.position, result.events) == (
        "ledger",
        "store",
        head,
        head,
    )
    assert digests(db_url) == incremental == replay(ledger_store.recorder, db_url).digests
    assert tracking(db_url) == {"store": head}
    assert leftover_schemas(db_url) == []


def test_the_app_role_reads_and_writes_the_swapped_in_tables(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=3, transfers=10)
    rebuild(db_url, ledger_store.recorder, "ledger")
    with ledger_store.datastore.get_connection() as conn:
        row = conn.execute(
            "SELECT pg_has_role(current_user, 'ledgerline_app', 'MEMBER') AS app,"
            " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS super"
        ).fetchone()
        assert row is not None and row["app"] and not row["super"]
        assert rm.get_account(conn, 1) is not None
    # The runner (as the app role) upserts and copies into the rebuilt tables.
    run_history(ledger_store, seed=4, transfers=10)
    runner = project_live(ledger_store)
    assert runner.position == ledger_store.recorder.head().position
    assert digests(db_url) == replay(ledger_store.recorder, db_url).digests


def test_a_runner_behind_a_rebuild_skips_what_the_rebuild_covered(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=5, transfers=10)
    runner = project_live(ledger_store)
    run_history(ledger_store, seed=6, transfers=10)
    rebuilt = rebuild(db_url, ledger_store.recorder, "ledger")
    assert runner.position < rebuilt.position
    run_history(ledger_store, seed=7, transfers=10)

    runner.catch_up()

    head = ledger_store.recorder.head().position
    assert runner.position == head and tracking(db_url) == {"store": head}
    assert digests(db_url) == replay(ledger_store.recorder, db_url).digests


class Traffic:
    """Transfers written and an account read in a loop, each on its own thread, until stopped."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.stop = threading.Event()
        self.written = 0
        self.reads = 0
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._write, daemon=True),
            threading.Thread(target=self._read, daemon=True),
        ]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _write(self) -> None:
        p = build_ledger_processor(self.store.recorder, time.time_ns).start()
        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                out: Any = p.execute(
                    transfer_command(
                        CreateTransfer(
                            id=10**9 + n,
                            debit_account_id=1 + n % 2,
                            credit_account_id=3 + n % 4,
                            amount="1.25",
                            ledger=1,
                            code=1,
                        )
                    )
                )
                assert out.accepted, out
                self.written += 1
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            p.stop()

    def _read(self) -> None:
        try:
            while not self.stop.is_set():
                with self.store.datastore.get_connection() as conn:
                    assert rm.get_account(conn, 3) is not None
                    rm.account_transfers(conn, 3, before_position=None, limit=5)
                self.reads += 1
        except BaseException as exc:
            self.errors.append(exc)

    def wait_for_writes(self, count: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        target = self.written + count
        while self.written < target:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, "the writer stalled"
            time.sleep(0.01)


def test_a_rebuild_under_live_writes_and_reads_loses_and_doubles_nothing(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=8, transfers=150)
    runner = ProjectionRunner(ledger_store.recorder, [LedgerProjection()], coalesce_s=0).start()
    try:
        assert runner.wait_for(ledger_store.recorder.head().position, 30)
        with Traffic(ledger_store) as traffic:
            traffic.wait_for_writes(20)
            reads_before = traffic.reads
            result = rebuild(db_url, ledger_store.recorder, "ledger", batch_size=50)
            reads_during = traffic.reads - reads_before
            traffic.wait_for_writes(20)  # and the runner applies these on the new tables
        assert not traffic.errors, traffic.errors
        assert reads_during > 0
        head = ledger_store.recorder.head().position
        assert head > result.position
        assert runner.wait_for(head, 30), runner.failure
    finally:
        runner.stop()
    assert runner.failure is None
    assert tracking(db_url) == {"store": head}
    fresh = replay(ledger_store.recorder, db_url, check=True)
    assert fresh.upto_position == head
    assert fresh.ok, fresh.to_json()
    assert digests(db_url) == fresh.digests
    assert leftover_schemas(db_url) == []


def test_a_rebuild_in_kafka_mode_moves_every_partition_to_the_head(
    ledger_store: EventStore, db_url: str
) -> None:
    run_history(ledger_store, seed=9, transfers=10)
    with connect_owner(db_url) as conn:
        conn.execute(
            "INSERT INTO readmodels.tracking (projection, source, position)"
            " VALUES ('ledger', 'kafka:t:0', 7), ('ledger', 'kafka:t:1', 4)"
        )
        before = ledger_of(status(ledger_store, conn))
    head = ledger_store.recorder.head().position
    assert (before.mode, before.position, before.lag_events) == ("kafka", 4, head - 4)
    assert before.sources == {"kafka:t:0": 7, "kafka:t:1": 4}

    result = rebuild(db_url, ledger_store.recorder, "ledger")

    assert (result.mode, result.position) == ("kafka", head)
    assert tracking(db_url) == {"kafka:t:0": head, "kafka:t:1": head}
    with connect_owner(db_url) as conn:
        after = ledger_of(status(ledger_store, conn))
    assert (after.mode, after.position, after.lag_events, after.lag_seconds) == (
        "kafka",
        head,
        0,
        0.0,
    )
    assert digests(db_url) == replay(ledger_store.recorder, db_url).digests


def test_rebuilding_an_unknown_projection_names_the_known_ones(
    ledger_store: EventStore, db_url: str
) -> None:
    with pytest.raises(UnknownProjection, match=r"'nosuch'.*ledger"):
        rebuild(db_url, ledger_store.recorder, "nosuch")
    assert leftover_schemas(db_url) == []


def test_the_projections_commands_report_lag_and_rebuild(
    ledger_store: EventStore, db_url: str, cli_env: dict[str, str]
) -> None:
    run_history(ledger_store, seed=10, transfers=10)
    head = ledger_store.recorder.head().position

    shown = run("projections", "status", "--json", "--database-url", db_url, env=cli_env)
    assert shown.returncode == 0, shown.stderr
    before = ledger_of(json.loads(shown.stdout))
    assert (before["name"], before["mode"], before["lag_events"]) == ("ledger", "none", head)

    rebuilt = run("projections", "rebuild", "ledger", "--database-url", db_url, env=cli_env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"position {head}" in rebuilt.stdout

    table = run("projections", "status", "--database-url", db_url, env=cli_env)
    assert table.returncode == 0, table.stderr
    header, *lines = table.stdout.splitlines()
    line = next(x for x in lines if x.split()[0] == "ledger")
    assert header.split()[:2] == ["projection", "mode"]
    assert line.split()[:5] == ["ledger", "store", str(head), str(head), "0"]

    unknown = run("projections", "rebuild", "nosuch", "--database-url", db_url, env=cli_env)
    assert_one_line_error(unknown, "nosuch", "ledger")
    assert unknown.returncode == 2
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM readmodels.accounts").fetchone() == (6,)
