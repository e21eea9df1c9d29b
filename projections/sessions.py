"""Dedicated PostgreSQL sessions the followers of the store need: NOTIFY wake-ups and locks.

Both live outside the pool: a LISTEN must stay on one session, and an advisory lock lives
exactly as long as the session that took it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
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


class AdvisoryLock:
    """Leadership by a session-level advisory lock, tried on ONE long-lived session.

    Trying is one cheap statement on a session kept open for it (never a new connection per
    attempt). The lock lives exactly as long as that session: :meth:`held` notices a session
    that died (a restart, a dropped connection), and the next :meth:`try_acquire` reconnects.
    """

    def __init__(self, recorder: HashChainRecorder, key: int) -> None:
        self._recorder = recorder
        self._key = key
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        self._held = False

    @property
    def held(self) -> bool:
        if self._held and (self._conn is None or self._conn.closed or self._conn.broken):
            self._held = False
        return self._held

    def try_acquire(self) -> bool:
        if self.held:
            return True
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self._recorder)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error:
            self.release()
            return False
        self._held = bool(row and row[0])
        return self._held

    def release(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def listen(
    recorder: HashChainRecorder,
    wake: threading.Event,
    stop: threading.Event,
    *,
    also: Mapping[str, Callable[[str], None]] | None = None,
) -> None:
    """Set ``wake`` on every commit NOTIFY until ``stop``; reconnect after errors.

    ``also`` maps more channels to a callback taking the notification's payload (the
    projector's "applied up to" announcements, say).
    """
    channel = recorder.channel_name
    others = dict(also or {})
    while not stop.is_set():
        try:
            with connect(recorder) as conn:
                for name in (channel, *others):
                    conn.execute(SQL("LISTEN {}").format(Identifier(name)))
                while not stop.is_set():
                    for note in conn.notifies(timeout=1.0, stop_after=1):
                        callback = others.get(note.channel)
                        if callback is None:
                            wake.set()
                        else:
                            callback(note.payload)
        except psycopg.Error:
            if stop.wait(1.0):
                return
