"""Schema lifecycle: migrations run once, roles are set up, unsafe modes are refused."""

from __future__ import annotations

import psycopg
import pytest

from eventstore.errors import ConfigurationRefused, SchemaVersionError
from eventstore.recorder import HashChainRecorder
from eventstore.schema import (
    APP_ROLE,
    MIGRATIONS,
    applied_versions,
    migrate,
    runtime_login_name,
)
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


def test_runtime_connections_log_in_as_their_own_role_which_holds_only_the_app_grants(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    with store.datastore.get_connection() as conn:
        row = conn.execute("SELECT current_user, session_user, current_database()").fetchone()
    assert row is not None
    login = row["session_user"]
    assert row["current_user"] == login == runtime_login_name(row["current_database"])
    flags = superuser.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin,"
        " pg_has_role(rolname, %s, 'MEMBER'), pg_has_role(rolname, 'postgres', 'MEMBER'),"
        " (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
        " FROM pg_roles r WHERE rolname = %s",
        (APP_ROLE, login),
    ).fetchone()
    assert flags == (False, False, False, False, True, True, False, 0)


def test_the_lock_skipping_db_functions_mode_is_refused(db_url: str) -> None:
    EventStore(db_url, pool_size=1).close()
    datastore = AppRoleDatastore(db_url, schema="ledgerline", pool_size=1, role=APP_ROLE)
    datastore.enable_db_functions = True
    try:
        with pytest.raises(ConfigurationRefused, match="without the table lock"):
            HashChainRecorder(datastore)
    finally:
        datastore.close()
