"""The AML projection over the real store: the same alerts as the engine alone, restartable,
rebuilt bit for bit by replay, and monitoring the ledger's transfers too."""

from __future__ import annotations

import itertools
import json
import pickle
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from commands.aml import accounts_command, batch_command, rates_command
from commands.context import build_processor
from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    PostPendingTransfer,
    account_command,
    post_command,
    transfer_command,
)
from commands.processor import CommandProcessor
from eventstore.schema import migrate
from eventstore.store import EventStore, connect_owner
from ledgerline import aml_offline
from ledgerline.aml_simulate import simulate
from ledgerline.contexts import command_contexts
from ledgerline.runtime import migrate_all
from projections.aml import AmlProjection
from projections.ledger import LedgerProjection
from projections.registry import PROJECTIONS, rebuild_into
from projections.runner import ProjectionRunner
from readmodels import aml as rm
from readmodels.schema import SCHEMA, all_migrations
from replay.replay import replay


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aml-sim")
    simulate(out, seed=3, accounts=2_000, days=60, patterns_per_typology=4)
    return out


@pytest.fixture
def aml_store(db_url: str) -> Iterator[tuple[EventStore, CommandProcessor[Any]]]:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
        try:
            yield store, processor
        finally:
            processor.stop()


def ingest(processor: CommandProcessor[Any], directory: Path, batch: int = 1000) -> None:
    rates = json.loads((directory / "rates.json").read_text())["rates"]
    assert processor.execute(rates_command(rates, "simulated")).accepted
    accounts = [json.loads(line) for line in (directory / "accounts.jsonl").open()]
    for i in range(0, len(accounts), batch):
        assert processor.execute(accounts_command(accounts[i : i + batch])).accepted
    records = [json.loads(line) for line in (directory / "transactions.jsonl").open()]
    futures = [
        processor.submit(batch_command(records[i : i + batch]))
        for i in range(0, len(records), batch)
    ]
    for f in futures:
        outcome = f.result(60)
        assert outcome.accepted
        assert {r["status"] for r in outcome.result["results"]} == {"created"}


def execute_in_batches(processor: CommandProcessor[Any], records: list[Any]) -> None:
    """Monitored transactions, 1,000 to a command, one command at a time."""
    for i in range(0, len(records), 1000):
        processor.execute(batch_command(records[i : i + 1000]))


def project(store: EventStore, *projections: Any) -> ProjectionRunner:
    runner = ProjectionRunner(store.recorder, list(projections) or [AmlProjection()])
    runner.position = 0
    runner.catch_up()
    return runner


def alerts(db_url: str) -> dict[str, dict[str, Any]]:
    with connect_owner(db_url) as conn:
        return {a["alert_id"]: a for a in rm.list_alerts(conn, limit=1_000_000)}


def _comparable(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["typology"], a["subject"], a["rule_version"], a["score"], tuple(a["transaction_ids"]))


def test_the_projection_raises_what_the_engine_alone_raises_and_replay_rebuilds_it(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]], sim: Path
) -> None:
    store, processor = aml_store
    ingest(processor, sim)
    project(store, LedgerProjection(), AmlProjection())
    live = alerts(db_url)
    offline = {a["alert_id"]: a for a in aml_offline.detect(sim)}
    assert live and set(live) == set(offline)
    for alert_id, a in live.items():
        assert _comparable(a) == _comparable(offline[alert_id])
    report = replay(store.recorder, db_url, check=True)
    assert report.ok, report.to_json()


def test_a_restarted_projection_rebuilds_its_windows_from_the_journal(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]], sim: Path
) -> None:
    store, processor = aml_store
    records = [json.loads(line) for line in (sim / "transactions.jsonl").open()]
    rates = json.loads((sim / "rates.json").read_text())["rates"]
    processor.execute(rates_command(rates))
    accounts = [json.loads(line) for line in (sim / "accounts.jsonl").open()]
    processor.execute(accounts_command(accounts))
    half = len(records) // 2
    execute_in_batches(processor, records[:half])
    project(store)  # this projection object is then thrown away (a restart)
    execute_in_batches(processor, records[half:])
    fresh = AmlProjection()
    project(store, fresh)
    assert fresh.warm and fresh.position == store.recorder.head().position
    offline = {a["alert_id"]: _comparable(a) for a in aml_offline.detect(sim)}
    assert {k: _comparable(v) for k, v in alerts(db_url).items()} == offline


def _journal_txns(db_url: str, after: int = 0) -> int:
    with connect_owner(db_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.aml_transactions WHERE position > %s", (after,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _reference_data_and_records(processor: CommandProcessor[Any], sim: Path) -> list[Any]:
    """The simulation's rates and accounts, ingested; its transactions, not yet."""
    processor.execute(rates_command(json.loads((sim / "rates.json").read_text())["rates"]))
    processor.execute(accounts_command([json.loads(x) for x in (sim / "accounts.jsonl").open()]))
    return [json.loads(line) for line in (sim / "transactions.jsonl").open()]


def _warm_up(db_url: str, projection: AmlProjection) -> None:
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        projection.warm_up(cur, projection._progress(cur))


def test_windows_spilled_to_disk_and_a_restart_from_the_checkpoint_raise_what_the_engine_does(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]], sim: Path
) -> None:
    store, processor = aml_store
    records = _reference_data_and_records(processor, sim)
    third = len(records) // 3
    execute_in_batches(processor, records[:third])
    small = {"hot_accounts": 40, "checkpoint_min_txns": 500}
    first = AmlProjection(**small)
    project(store, first)  # then thrown away: a restart
    assert first.engine.accounts.loaded > 0 and first.engine.accounts.evicted > 0
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        checkpoint = rm.read_checkpoint(cur)
    assert checkpoint is not None
    at, _, _, windows = checkpoint
    assert 0 < at <= store.recorder.head().position and windows > 40

    execute_in_batches(processor, records[third:])
    second = AmlProjection(hot_accounts=40, checkpoint_min_txns=10**9)  # none with batches
    _warm_up(db_url, second)  # from the checkpoint: only the journal after it is replayed
    assert second.since_checkpoint == _journal_txns(db_url, after=at) < _journal_txns(db_url)
    runner = project(store, second)
    assert second.warm and second.position == store.recorder.head().position
    assert second.rest_due()
    runner.rest()  # idle: the checkpoint moves up to what the engine has seen
    assert not second.rest_due()  # and an idle runner has nothing more to write
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        assert (rm.read_checkpoint(cur) or (0,))[0] == second.position
    offline = {a["alert_id"]: _comparable(a) for a in aml_offline.detect(sim)}
    assert {k: _comparable(v) for k, v in alerts(db_url).items()} == offline

    # A checkpoint written by other code is not used: the whole journal is replayed.
    with connect_owner(db_url) as conn:
        conn.execute(f"UPDATE {SCHEMA}.aml_checkpoint SET code = 'older code'")
    third_start = AmlProjection(**small)
    _warm_up(db_url, third_start)
    assert third_start.since_checkpoint == _journal_txns(db_url)


def _window(data: bytes) -> bytes:
    """A pickled window in one form (read and pickled again: memo details aside)."""
    return pickle.dumps(pickle.loads(data), pickle.HIGHEST_PROTOCOL)


def _checkpoint_windows(db_url: str) -> dict[str, bytes]:
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        return {a: _window(data) for chunk in rm.checkpoint_windows(cur) for a, data in chunk}


def _checkpoint(db_url: str, projection: AmlProjection, *, commit: bool = True) -> int:
    """Write the projection's checkpoint; the windows' rows it wrote."""
    with connect_owner(db_url) as conn, conn.cursor() as cur, conn.transaction():
        projection.checkpoint(cur)
        row = cur.execute(
            "SELECT n_tup_ins FROM pg_stat_xact_user_tables"
            " WHERE schemaname = %s AND relname = 'aml_checkpoint_windows'",
            (SCHEMA,),
        ).fetchone()
        assert row is not None
        if not commit:
            raise psycopg.Rollback
    return int(row[0])


def _checkpoint_position(db_url: str) -> int:
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        return (rm.read_checkpoint(cur) or (0,))[0]


def test_a_checkpoint_rewrites_only_the_windows_changed_since_the_last_and_misses_none(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]], sim: Path
) -> None:
    store, processor = aml_store
    records = _reference_data_and_records(processor, sim)
    half = len(records) // 2
    execute_in_batches(processor, records[:half])
    projection = AmlProjection(hot_accounts=40, checkpoint_min_txns=10**9)  # only when asked
    runner = project(store, projection)
    windows = len(projection.engine.accounts)
    assert _checkpoint(db_url, projection) == windows > 1_000  # the first: every window

    def more(start: int, count: int) -> int:
        processor.execute(batch_command(records[start : start + count]))
        runner.catch_up()
        return start + count

    at = more(half, 20)
    assert 0 < _checkpoint(db_url, projection) < windows // 10  # the 20 transactions' own
    at, before = more(at, 20), _checkpoint_position(db_url)
    lost = _checkpoint(db_url, projection, commit=False)  # rolled back with its transaction
    assert _checkpoint_position(db_url) == before < projection.position
    at = more(at, 20)
    assert lost <= _checkpoint(db_url, projection) < windows // 10  # writes what it had too
    live = dict(projection.engine.accounts.saved())
    assert _checkpoint_windows(db_url) == {a: _window(data) for a, data in live.items()}
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        assert (rm.read_checkpoint(cur) or (0, "", b"", 0))[::3] == (
            projection.position,
            len(live),
        )

    # Restarted from it, the engine raises what the engine alone does over the whole day.
    execute_in_batches(processor, records[at:])
    restarted = AmlProjection(hot_accounts=40, checkpoint_min_txns=10**9)
    _warm_up(db_url, restarted)
    assert restarted.since_checkpoint == 0  # nothing after the checkpoint to replay
    project(store, restarted)
    offline = {a["alert_id"]: _comparable(a) for a in aml_offline.detect(sim)}
    assert {k: _comparable(v) for k, v in alerts(db_url).items()} == offline


def test_a_checkpoint_that_cannot_be_written_leaves_the_batch_and_its_alerts_committed(
    db_url: str,
    aml_store: tuple[EventStore, CommandProcessor[Any]],
    sim: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, processor = aml_store
    ingest(processor, sim)
    with connect_owner(db_url) as conn:  # the checkpoint's table is gone: every write fails
        conn.execute(f"DROP TABLE {SCHEMA}.aml_checkpoint_windows")
    projection = AmlProjection(hot_accounts=40, checkpoint_min_txns=500)
    project(store, projection)
    assert projection.position == store.recorder.head().position
    assert "could not write the AML engine's checkpoint" in caplog.text
    offline = {a["alert_id"]: _comparable(a) for a in aml_offline.detect(sim)}
    assert {k: _comparable(v) for k, v in alerts(db_url).items()} == offline


def test_ledger_transfers_are_monitored_in_usd_when_posted(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]]
) -> None:
    store, processor = aml_store
    processor.execute(rates_command({"EUR": "1.10"}))
    for account in (1, 2):
        processor.execute(
            account_command(CreateAccount(id=account, ledger=1, currency="EUR", code=1))
        )
    processor.execute(
        transfer_command(
            CreateTransfer(
                id=10, debit_account_id=1, credit_account_id=2, amount="100.00", ledger=1, code=1
            )
        )
    )
    processor.execute(
        transfer_command(
            CreateTransfer(
                id=11,
                debit_account_id=2,
                credit_account_id=1,
                amount="50.00",
                ledger=1,
                code=1,
                pending=True,
            )
        )
    )
    project(store, LedgerProjection(), AmlProjection())
    with connect_owner(db_url) as conn:
        rows = rm.get_transactions(conn, ["ledger:10", "ledger:11"])
    assert [(r["tx_id"], r["src"], r["dst"], r["usd_minor"]) for r in rows] == [
        ("ledger:10", "1", "2", 11_000)
    ]
    processor.execute(post_command(PostPendingTransfer(transfer_id=11, amount="40.00")))
    project(store, LedgerProjection(), AmlProjection())
    with connect_owner(db_url) as conn:
        posted = rm.get_transactions(conn, ["ledger:11"])
        edges = rm.edges_touching(conn, ["1"], 0)
    assert [(r["src"], r["dst"], r["usd_minor"], r["amount_minor"]) for r in posted] == [
        ("2", "1", 4_400, 4_000)
    ]
    assert {(e["src"], e["dst"], e["tx_count"], e["usd_minor"]) for e in edges} == {
        ("1", "2", 1, 11_000),
        ("2", "1", 1, 4_400),
    }


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), cut=st.integers(1, 9))
def test_replay_rebuilds_alerts_and_graph_bit_for_bit_from_any_batching(
    pg_admin_url: str, seed: int, cut: int
) -> None:
    """Random AML streams, projected live in arbitrary slices, equal their replay."""
    name = f"t_aml_replay_{seed}_{cut}_{time.time_ns() % 10**6}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(pg_admin_url, dbname=name)
    try:
        migrate_all(url)
        with EventStore(url, run_migrations=False) as store:
            processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
            rng = random.Random(seed)
            accounts = [f"R{i}" for i in range(8)]
            records = []
            for i in range(120):
                a, b = rng.sample(accounts, 2)
                kind = rng.choice(["transfer"] * 5 + ["cash_deposit"])
                records.append(
                    {
                        "id": f"r{i}",
                        "timestamp": f"2026-0{1 + i // 40}-{1 + (i * 7) % 27:02d}T1{i % 10}:00:00Z",
                        "from_account": "CASH" if kind == "cash_deposit" else a,
                        "to_account": b,
                        "amount": rng.choice(["1500.00", "4000.00", "9500.00", "6000.00"]),
                        "currency": "USD",
                        "channel": "cash" if kind == "cash_deposit" else "wire",
                        "kind": kind,
                    }
                )
            runner = ProjectionRunner(store.recorder, [LedgerProjection(), AmlProjection()])
            runner.position = 0
            step = max(1, len(records) // cut)
            try:
                for i in range(0, len(records), step):
                    processor.execute(batch_command(records[i : i + step]))
                    runner.catch_up()  # a slice at a time, as a live runner would
            finally:
                processor.stop()
            report = replay(store.recorder, url, check=True)
        assert report.ok, report.to_json()
        assert report.digests["aml_alerts"] == report.live_digests["aml_alerts"]
        assert report.digests["aml_edges"] == report.live_digests["aml_edges"]
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _indexes(conn: psycopg.Connection[Any], schema: str) -> list[tuple[str, str, str]]:
    rows = conn.execute(
        "SELECT tablename, indexname, replace(indexdef, %s, '') FROM pg_indexes"
        " WHERE schemaname = %s AND tablename LIKE 'aml%%' ORDER BY tablename, indexname",
        (f"{schema}.", schema),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def test_a_rebuild_leaves_the_same_rows_and_the_indexes_a_migration_makes(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]]
) -> None:
    store, processor = aml_store
    records = [
        {"id": f"t{i}", "timestamp": f"2026-11-02T1{i}:00:00Z", "from_account": f"S{i}",
         "to_account": "H", "amount": "1500.00", "currency": "USD", "channel": "ach",
         "kind": "transfer", "from_country": "US", "to_country": "US"}
        for i in range(6)
    ]  # fmt: skip
    assert processor.execute(batch_command(records)).accepted
    project(store)
    scratch = "aml_rebuild_check"
    with connect_owner(db_url) as conn:
        migrate(conn, scratch, all_migrations())
        with conn.transaction(), conn.cursor() as cur:
            rebuild_into(
                store.recorder, cur, scratch, store.recorder.head().position, [PROJECTIONS["aml"]]
            )
        built, live = _indexes(conn, scratch), _indexes(conn, SCHEMA)
        assert built == live
        assert ("aml_transactions", "aml_transactions_src_idx") in {(t, n) for t, n, _ in built}
        for table in ("aml_transactions", "aml_alerts", "aml_edges"):
            query = f"SELECT count(*) FROM {{}}.{table}"
            assert (
                conn.execute(query.format(scratch)).fetchone()
                == conn.execute(query.format(SCHEMA)).fetchone()
            )
        monitored = conn.execute(f"SELECT count(*) FROM {scratch}.aml_transactions").fetchone()
        assert monitored == (6,)
        conn.execute(f"DROP SCHEMA {scratch} CASCADE")


def test_a_connection_lost_in_the_middle_of_a_batch_leaves_no_trace_in_the_graph(
    db_url: str, aml_store: tuple[EventStore, CommandProcessor[Any]], monkeypatch: Any
) -> None:
    """The engine has taken in a batch when the connection dies before the batch's rows are
    written: the runner retries the batch, and the graph counts each transfer once."""
    store, processor = aml_store
    processor.execute(rates_command({"USD": "1"}))

    def transfer(i: int, a: str, b: str) -> dict[str, Any]:
        return {
            "id": f"k{i}",
            "timestamp": f"2026-03-0{1 + i % 5}T10:00:00Z",
            "from_account": a,
            "to_account": b,
            "amount": "900.00",
            "currency": "USD",
            "channel": "wire",
            "kind": "transfer",
        }

    processor.execute(batch_command([transfer(i, "A", "B") for i in range(3)]))
    runner = project(store, LedgerProjection(), AmlProjection())
    processor.execute(batch_command([transfer(i, "A", "B") for i in range(3, 7)]))

    written = rm.copy_transactions
    lost = []

    def connection_lost(cur: psycopg.Cursor[Any], rows: Any, schema: str) -> None:
        if not lost:  # the server ends this very session, as a restart would
            lost.append(True)
            cur.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        written(cur, rows, schema)

    monkeypatch.setattr(rm, "copy_transactions", connection_lost)
    try:
        runner.catch_up()  # the datastore may retry the batch itself...
    except psycopg.OperationalError:
        runner.catch_up()  # ...or the runner takes it up again, with the same projections
    assert lost
    with connect_owner(db_url) as conn:
        edges = rm.edges_touching(conn, ["A"], 0)
    assert sum(e["tx_count"] for e in edges) == 7
    report = replay(store.recorder, db_url, check=True)
    assert report.ok, report.to_json()


def _tuples_read(conn: psycopg.Connection[Any], table: str) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname = %s",
        (rm.SCHEMA, table),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_journal_of_a_table_without_statistics_is_read_in_one_pass(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The warm-up after a restore or a bulk load, before autovacuum's first analyse: paging
    through the journal by ``position > after ORDER BY position LIMIT n`` made PostgreSQL sort
    every later row for every page (quadratic in the journal). It must read each row about once,
    and still give every input up to the position asked, in position order."""
    migrate_all(db_url)
    table = f"{rm.SCHEMA}.aml_transactions"
    superuser.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    superuser.execute(
        f"INSERT INTO {table} SELECT g * 3, 'tx' || g, g, 'a' || g % 100, 'b' || g % 97, 100,"
        " 100, 'USD', 'wire', 'transfer', 'US', 'US', '', '', 'ledger', '{}'::jsonb"
        " FROM generate_series(1, 30000) g"
    )
    superuser.execute(
        f"INSERT INTO {rm.SCHEMA}.aml_inputs SELECT g * 3 + 1, 'rates', '{{}}'::jsonb"
        " FROM generate_series(0, 30000, 5000) g"
    )
    assert superuser.execute(
        "SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables"
        " WHERE schemaname = %s AND relname = 'aml_transactions'",
        (rm.SCHEMA,),
    ).fetchone() == (True,)
    upto = 3 * 25_000 + 1  # the last input read comes after the last transaction read
    before = _tuples_read(superuser, "aml_transactions")
    with connect_owner(db_url) as conn, conn.cursor() as cur:
        reading = rm.journal(cur, upto, batch=1000)
        seen = [(position, kind) for position, kind, _ in itertools.islice(reading, 1)]
        # Both tables stream through server-side cursors: neither is held whole in memory.
        open_cursors = {r[0] for r in conn.execute("SELECT name FROM pg_cursors").fetchall()}
        assert {"aml_journal_tx", "aml_journal_inputs"} <= open_cursors
        seen += [(position, kind) for position, kind, _ in reading]
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.commit()
    read = _tuples_read(superuser, "aml_transactions") - before
    inputs = [(g * 3 + 1, "rates") for g in range(0, 25_001, 5000)]
    assert seen == sorted([(g * 3, "tx") for g in range(1, 25_001)] + inputs)
    assert read <= 2 * 30_000, read
