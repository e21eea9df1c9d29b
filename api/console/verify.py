"""Log verification on demand, from the console, with its results kept in the database.

Definition
    :class:`VerifyRunner` runs :func:`eventstore.verify.verify_store` (every event's hashes
    and chain links, and the chain head) in a background thread of the serving process and
    records the outcome in ``ledgerline_api.verify_runs`` (append-only for the runtime login:
    INSERT and SELECT only). The overview shows the newest recorded run.

Guarantees
    * At most one verification runs per process at a time; asking again while one runs
      changes nothing. The request that starts it returns at once.
    * A run that fails to complete (the database went away) is recorded as not ok, with the
      reason, never silently dropped.

Constraints
    A run reads the whole log (in batches): its cost grows with the log, so it is started by
    a person, never on a timer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Any

from psycopg.rows import dict_row

from api.keys import SCHEMA
from eventstore.store import EventStore
from eventstore.verify import verify_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyRun:
    started_at: dt.datetime
    finished_at: dt.datetime
    events_checked: int
    streams_checked: int
    head_position: int
    ok: bool
    first_break: str | None
    requested_by: str


def record_run(conn: Any, run: VerifyRun) -> None:
    conn.execute(
        f"INSERT INTO {SCHEMA}.verify_runs (started_at, finished_at, events_checked,"
        " streams_checked, head_position, ok, first_break, requested_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            run.started_at,
            run.finished_at,
            run.events_checked,
            run.streams_checked,
            run.head_position,
            run.ok,
            run.first_break,
            run.requested_by,
        ),
    )


def latest_run(conn: Any) -> VerifyRun | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT started_at, finished_at, events_checked, streams_checked, head_position,"
            f" ok, first_break, requested_by FROM {SCHEMA}.verify_runs"
            " ORDER BY finished_at DESC LIMIT 1"
        )
        row = cur.fetchone()
    return VerifyRun(**row) if row else None


class VerifyRunner:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._running_since: dt.datetime | None = None

    @property
    def running_since(self) -> dt.datetime | None:
        return self._running_since

    def start(self, requested_by: str) -> bool:
        """Start a run in the background; False if one is already running here."""
        with self._lock:
            if self._running_since is not None:
                return False
            self._running_since = dt.datetime.now(dt.UTC)
        threading.Thread(
            target=self._run, args=(requested_by,), daemon=True, name="ledgerline-verify"
        ).start()
        return True

    def run_now(self, requested_by: str) -> VerifyRun:
        """Run in the calling thread (tests, and the background thread)."""
        started = dt.datetime.now(dt.UTC)
        try:
            report = verify_store(self._store.recorder)
            run = VerifyRun(
                started_at=started,
                finished_at=dt.datetime.now(dt.UTC),
                events_checked=report.events_checked,
                streams_checked=report.streams_checked,
                head_position=report.head_position,
                ok=report.ok,
                first_break=None if report.first_break is None else str(report.first_break),
                requested_by=requested_by,
            )
        except Exception as exc:
            log.exception("verification failed to complete")
            run = VerifyRun(
                started, dt.datetime.now(dt.UTC), 0, 0, 0, False, f"did not complete: {exc}",
                requested_by,
            )  # fmt: skip
        with self._store.datastore.get_connection() as conn:
            record_run(conn, run)
        return run

    def _run(self, requested_by: str) -> None:
        try:
            self.run_now(requested_by)
        except Exception:
            log.exception("could not record a verification run")
        finally:
            with self._lock:
                self._running_since = None
