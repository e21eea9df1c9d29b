"""Dedicated PostgreSQL sessions the followers of the store need: NOTIFY wake-ups and locks.

Both live outside the pool: a LISTEN must stay on one session, and an advisory lock lives
exactly as long as the session that took it. When the database goes away, the followers
(the projection runner, the relay) wait it out the same way: :func:`wait_out_outage`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from eventstore.recorder import HashChainRecorder

OUTAGE_FIRST_DELAY_S = 0.2  # waits between tries while the database is away, doubling
OUTAGE_MAX_DELAY_S = 5.0


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
        self._waiting = False
        # Why the last try_acquire failed when it was not another holder: the database.
        self.unreachable: psycopg.Error | None = None

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
        except psycopg.Error as exc:
            self.release()
            self.unreachable = exc
            return False
        self.unreachable = None
        self._held = bool(row and row[0])
        return self._held

    def wait_acquire(self) -> bool:
        """Block until the lock is ours: the server wakes this session when the holder's
        session ends, so a follower costs nothing while it waits (no polling, no commits).

        False if the session failed or :meth:`cancel` interrupted the wait.
        """
        if self.held:
            return True
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = connect(self._recorder)
            self._waiting = True
            try:
                self._conn.execute("SELECT pg_advisory_lock(%s)", (self._key,))
            finally:
                self._waiting = False
        except psycopg.Error:
            self.release()
            return False
        self._held = True
        return True

    def cancel(self) -> None:
        """Interrupt a :meth:`wait_acquire` in progress (from another thread)."""
        conn = self._conn
        if conn is not None and self._waiting:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=2.0)

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
    on_connect: Callable[[], None] | None = None,
) -> None:
    """Set ``wake`` on every commit NOTIFY until ``stop``; reconnect after errors.

    ``also`` maps more channels to a callback taking the notification's payload (the
    projector's "applied up to" announcements, say). ``wake`` is also set, and ``on_connect``
    called, each time the LISTEN is (re)established: whatever was committed while nobody
    listened is then looked at once, so followers need no timer to cover a missed NOTIFY.
    """
    channel = recorder.channel_name
    others = dict(also or {})
    while not stop.is_set():
        try:
            with connect(recorder) as conn:
                for name in (channel, *others):
                    conn.execute(SQL("LISTEN {}").format(Identifier(name)))
                wake.set()
                if on_connect is not None:
                    on_connect()
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


def wait_out_outage(
    log: logging.Logger, who: str, exc: BaseException, delay_s: float, stop: threading.Event
) -> float | None:
    """A follower of the store found the database away: say so in one line (on the
    caller's ``log``) and wait ``delay_s``. The next wait, doubled up to
    :data:`OUTAGE_MAX_DELAY_S`, or ``None`` when ``stop`` was set meanwhile."""
    log.warning(
        "%s: database unavailable (%s); retrying in %.1f s",
        who,
        " ".join(str(exc).split())[:200],
        delay_s,
    )
    if stop.wait(delay_s):
        return None
    return min(delay_s * 2, OUTAGE_MAX_DELAY_S)
