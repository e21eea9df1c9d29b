"""Schema lifecycle: migrations run once, roles are set up, unsafe modes are refused."""

from __future__ import annotations

import psycopg
import pytest

from eventstore.errors import ConfigurationRefused, SchemaVersionError
from eventstore.recorder import HashChainRecorder
from eventstore.schema import APP_ROLE, MIGRATIONS, applied_versions, migrate
from eventstore.store import AppRoleDatastore, EventStore


def test_migrations_run_once_and_a_second_run_changes_nothing(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        versions = [m.version for m in MIGRATIONS]
        assert versions == sorted(versions)
        assert migrate(conn) == versions
        assert migrate(conn) == []
        assert applied_versions(conn, "ledgerline") == versions


def test_a_schema_newer_than_the_code_is_refused_with_a_clear_message(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO ledgerline.schema_migrations (version, name) VALUES (999, 'future')"
        )
        with pytest.raises(SchemaVersionError, match="version 999, newer than this Ledgerline"):
            migrate(conn)


def test_runtime_connections_run_as_the_restricted_app_role(store: EventStore) -> None:
    with store.datastore.get_connection() as conn:
        row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    assert row["current_user"] == APP_ROLE


def test_the_lock_skipping_db_functions_mode_is_refused(db_url: str) -> None:
    EventStore(db_url, pool_size=1).close()
    datastore = AppRoleDatastore(db_url, schema="ledgerline", pool_size=1, role=APP_ROLE)
    datastore.enable_db_functions = True
    try:
        with pytest.raises(ConfigurationRefused, match="without the table lock"):
            HashChainRecorder(datastore)
    finally:
        datastore.close()
