"""Dedicated PostgreSQL sessions the followers of the store need: NOTIFY wake-ups and locks.

Both live outside the pool: a LISTEN must stay on one session, and an advisory lock lives
exactly as long as the session that took it.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from eventstore.recorder import HashChainRecorder


def connect(recorder: HashChainRecorder) -> psycopg.Connection[tuple[Any, ...]]:
    """A new autocommit session with the store's credentials and role, tuple rows."""
    base = recorder.datastore.pool.kwargs
    kwargs: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    kwargs.update(row_factory=tuple_row, autocommit=True)
    return psycopg.connect(**kwargs)


def try_lock(recorder: HashChainRecorder, key: int) -> psycopg.Connection[tuple[Any, ...]] | None:
    """The session holding advisory lock ``key``, or ``None`` if another session holds it."""
    conn = connect(recorder)
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if row is not None and row[0]:
        return conn  # keep it open: the lock lives with this session
    conn.close()
    return None


def listen(recorder: HashChainRecorder, wake: threading.Event, stop: threading.Event) -> None:
    """Set ``wake`` on every commit NOTIFY until ``stop``; reconnect after errors."""
    channel = recorder.channel_name
    while not stop.is_set():
        try:
            with connect(recorder) as conn:
                conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
                while not stop.is_set():
                    for _ in conn.notifies(timeout=0.5, stop_after=1):
                        wake.set()
        except psycopg.Error:
            if stop.wait(1.0):
                return
