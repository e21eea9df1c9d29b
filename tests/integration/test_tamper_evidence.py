"""Tampering with the log directly in SQL, as a superuser with triggers off, is always found."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import psycopg
import pytest

from eventstore import canonical
from eventstore.model import NewEvent, Submission
from eventstore.store import EventStore
from eventstore.verify import ChainBreak, verify_store

Tamper = Callable[[psycopg.Connection[tuple[object, ...]]], None]
T = "ledgerline.events"


def fill(store: EventStore) -> None:
    """Ten events over three streams, in four transactions."""
    r = store.recorder
    streams = ["acct-a", "acct-b", "acct-c"]
    n = 0
    for batch in range(4):
        subs = []
        for _ in range(3 if batch < 3 else 1):
            stream = streams[n % 3]
            version = n // 3 + 1
            subs.append(
                Submission(
                    f"cmd-{n}",
                    "t",
                    b"p",
                    True,
                    b"{}",
                    [NewEvent(stream, version, "t.Ev.v1", f"payload-{n}".encode())],
                )
            )
            n += 1
        r.append(subs)


def as_superuser_without_triggers(conn: psycopg.Connection[tuple[object, ...]], *sql: str) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in sql:
            conn.execute(statement.encode())


def forged_row_after(conn: psycopg.Connection[tuple[object, ...]], position: int) -> None:
    """Append a row that extends the chain correctly, computed by someone who knows the format."""
    prev = conn.execute(
        f"SELECT global_hash FROM {T} WHERE notification_id = %s", (position,)
    ).fetchone()
    assert prev is not None
    prev_global = bytes(prev[0])  # type: ignore[arg-type]
    fields = canonical.EventFields(position + 1, "acct-evil", 1, "t.Ev.v1", 1, b"steal")
    digest = canonical.sha256(canonical.event_bytes(fields))
    s_hash = canonical.stream_hash("acct-evil", 1, canonical.GENESIS, digest)
    g_hash = canonical.global_hash(position + 1, prev_global, digest)
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(
            f"INSERT INTO {T} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                "acct-evil",
                1,
                "t.Ev.v1",
                b"steal",
                position + 1,
                1,
                canonical.GENESIS,
                s_hash,
                prev_global,
                g_hash,
            ),
        )


CASES: dict[str, tuple[Tamper, int, str | None, str]] = {
    "an edited payload": (
        lambda c: as_superuser_without_triggers(
            c, f"UPDATE {T} SET state = 'payload-9999' WHERE notification_id = 5"
        ),
        5,
        "acct-b",
        "does not match the event's contents",
    ),
    "an edited amount of time": (
        lambda c: as_superuser_without_triggers(
            c, f"UPDATE {T} SET recorded_at_ns = recorded_at_ns + 1 WHERE notification_id = 7"
        ),
        7,
        "acct-a",
        "does not match the event's contents",
    ),
    "a deleted row": (
        lambda c: as_superuser_without_triggers(c, f"DELETE FROM {T} WHERE notification_id = 4"),
        4,
        "acct-b",
        "position 4 is missing",
    ),
    "a swapped pair": (
        lambda c: as_superuser_without_triggers(
            c,
            f"UPDATE {T} SET notification_id = 999 WHERE notification_id = 3",
            f"UPDATE {T} SET notification_id = 3 WHERE notification_id = 4",
            f"UPDATE {T} SET notification_id = 4 WHERE notification_id = 999",
        ),
        3,
        "acct-a",
        "does not link to the previous event",
    ),
    "a row inserted in the middle": (
        lambda c: as_superuser_without_triggers(
            c,
            f"UPDATE {T} SET notification_id = notification_id + 1000 WHERE notification_id >= 6",
            f"UPDATE {T} SET notification_id = notification_id - 999 WHERE notification_id > 1000",
            f"INSERT INTO {T} SELECT 'acct-z', 1, topic, state, 6, recorded_at_ns,"
            f" prev_stream_hash, stream_hash, sha256(global_hash), sha256(stream_hash)"
            f" FROM {T} WHERE notification_id = 5",
        ),
        6,
        "acct-z",
        "does not",
    ),
    "a forged row appended after the head": (
        lambda c: forged_row_after(c, 10),
        11,
        None,
        "continues past the recorded chain head",
    ),
    "an edited stream hash": (
        lambda c: as_superuser_without_triggers(
            c, f"UPDATE {T} SET stream_hash = sha256(stream_hash) WHERE notification_id = 2"
        ),
        2,
        "acct-b",
        "stream hash does not match",
    ),
    "an edited global hash": (
        lambda c: as_superuser_without_triggers(
            c, f"UPDATE {T} SET global_hash = sha256(global_hash) WHERE notification_id = 8"
        ),
        8,
        "acct-b",
        "global hash does not match",
    ),
    "the last row deleted": (
        lambda c: as_superuser_without_triggers(c, f"DELETE FROM {T} WHERE notification_id = 10"),
        10,
        None,
        "events were removed",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verify_names_the_first_broken_position_after(
    case: str, store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    fill(store)
    assert verify_store(store.recorder).ok
    tamper, position, stream, reason = CASES[case]
    tamper(superuser)
    report = verify_store(store.recorder)
    assert report.first_break is not None, f"{case} went unnoticed"
    brk: ChainBreak = report.first_break
    assert brk.position == position
    assert brk.stream_id == stream
    assert reason in brk.reason


def test_the_cli_exits_1_and_names_position_and_stream_of_a_tampered_store(
    store: EventStore,
    superuser: psycopg.Connection[tuple[object, ...]],
    db_url: str,
    cli_env: dict[str, str],
) -> None:
    fill(store)
    ok = subprocess.run(
        [sys.executable, "-m", "ledgerline", "verify", "--database-url", db_url],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("verified 10 events in 3 streams")
    CASES["an edited payload"][0](superuser)
    bad = subprocess.run(
        [sys.executable, "-m", "ledgerline", "verify", "--database-url", db_url],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1
    assert "position 5 (stream acct-b)" in bad.stderr


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {T} SET state = 'x'",
        f"DELETE FROM {T}",
        f"TRUNCATE {T}",
        "UPDATE ledgerline.commands SET outcome = 'x'",
        "DELETE FROM ledgerline.commands",
        "UPDATE ledgerline.chain_head SET position = 0",
    ],
)
def test_the_app_role_cannot_rewrite_history(
    statement: str, store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    fill(store)
    with store.datastore.get_connection() as conn, pytest.raises(Exception) as info:
        conn.execute(statement.encode())
    assert "permission denied" in str(info.value) or "ledgerline:" in str(info.value)
    assert verify_store(store.recorder).ok


@pytest.mark.parametrize(
    "statement",
    [f"UPDATE {T} SET state = 'x'", f"DELETE FROM {T}", f"TRUNCATE {T}"],
)
def test_even_a_superuser_is_refused_while_triggers_are_on(
    statement: str, store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    fill(store)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        superuser.execute(statement.encode())
    assert verify_store(store.recorder).ok
