"""A runtime connection cannot escape its role, whatever SQL it is made to run.

The runtime logs in as a role of its own (not the owner, not a member of it), so there is no
``SET ROLE`` to undo: an SQL injection or a compromised process holding a runtime connection
can neither rewrite the log nor turn off what guards it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api.keys import Role, create_key
from eventstore.store import EventStore, connect_owner
from eventstore.verify import verify_store
from ledgerline.runtime import migrate_all
from replay.log import make_checkpoint
from replay.signing import generate_signing_key, load_signing_key
from tests.integration.ledger_fixtures import run_history

ESCAPES = [
    "SET SESSION AUTHORIZATION postgres",
    "SET ROLE postgres",
    "SET session_replication_role = replica",
    "SET LOCAL session_replication_role = replica",
    "ALTER TABLE ledgerline.events DISABLE TRIGGER ALL",
    "ALTER TABLE ledgerline.commands DISABLE TRIGGER USER",
    "DROP TRIGGER events_append_only ON ledgerline.events",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "CREATE SCHEMA attacker",
    "SELECT password FROM ledgerline_private.runtime_login",
]
REWRITES = [
    f"{verb} {table}"
    for table in (
        "ledgerline.events",
        "ledgerline.commands",
        "ledgerline.checkpoints",
        "ledgerline_api.api_keys",
    )
    for verb in ("TRUNCATE", "DELETE FROM")
] + [
    "UPDATE ledgerline.events SET topic = 'x'",
    "UPDATE ledgerline.commands SET outcome = 'x'",
    "UPDATE ledgerline.checkpoints SET note = 'x'",
    "UPDATE ledgerline_api.api_keys SET role = 'admin'",
    "INSERT INTO ledgerline_api.api_keys (key_id, token_sha256, role)"
    " VALUES ('evil', sha256('x'), 'admin')",
]


@pytest.fixture
def full_store(db_url: str, tmp_path: Path) -> Iterator[EventStore]:
    migrate_all(db_url)
    store = EventStore(db_url, run_migrations=False)
    run_history(store, seed=1, transfers=10)
    key_file = tmp_path / "k.key"
    generate_signing_key(key_file, "test/log")
    make_checkpoint(store.recorder, load_signing_key(key_file))
    with connect_owner(db_url) as conn:
        create_key(conn, Role.ADMIN)
    yield store
    store.close()


def _run_as_runtime(store: EventStore, statement: str) -> str:
    """Run ``statement`` after RESET ROLE on a runtime connection; return how it failed."""
    with store.datastore.get_connection() as conn:
        conn.execute("RESET ROLE")  # nothing to reset: the login itself is the runtime role
        who = conn.execute("SELECT current_user = session_user AS same").fetchone()
        assert who is not None and who["same"]
        try:
            conn.execute(statement.encode())
        except psycopg.Error as exc:
            conn.rollback()
            return type(exc).__name__
    return "ALLOWED"


@pytest.mark.parametrize("statement", ESCAPES + REWRITES)
def test_the_runtime_cannot_rewrite_history_or_disable_its_guards(
    statement: str, full_store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    before = superuser.execute(
        "SELECT (SELECT count(*) FROM ledgerline.events), (SELECT count(*) FROM"
        " ledgerline.commands), (SELECT count(*) FROM ledgerline.checkpoints),"
        " (SELECT count(*) FROM ledgerline_api.api_keys)"
    ).fetchone()
    assert _run_as_runtime(full_store, statement) in {"InsufficientPrivilege", "RaiseException"}
    after = superuser.execute(
        "SELECT (SELECT count(*) FROM ledgerline.events), (SELECT count(*) FROM"
        " ledgerline.commands), (SELECT count(*) FROM ledgerline.checkpoints),"
        " (SELECT count(*) FROM ledgerline_api.api_keys)"
    ).fetchone()
    assert after == before
    assert verify_store(full_store.recorder).ok


def test_granting_itself_more_gives_the_runtime_nothing(full_store: EventStore) -> None:
    with full_store.datastore.get_connection() as conn:
        conn.execute("GRANT UPDATE, DELETE, TRUNCATE ON ledgerline.events TO CURRENT_USER")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE ledgerline.events SET topic = 'x'")
    assert verify_store(full_store.recorder).ok
