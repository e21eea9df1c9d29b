"""The in-process projection runner: store events in, read-model rows out, exactly once.

Definition
    One thread follows the event store in position order (woken by the head's NOTIFY, with a
    polling fallback), hands each batch of events to every projection, and commits the rows
    and each projection's new tracking position in ONE transaction.

Guarantees
    * Exactly-once effect: a batch's rows and its tracking position commit together, and the
      tracking update only succeeds from the position the batch started at.
    * Ignored events still advance the position.
    * A projection that raises stops the runner with the error recorded (``failure``); it is
      never skipped silently.
    * Several processes may run a runner for the same projections (``serve --workers N``):
      a PostgreSQL advisory lock elects one to apply events; the others follow its tracking
      position, so their ``wait_for`` still gives read-your-writes.
    * A runner made with ``applies=False`` only follows (``serve``'s HTTP processes, whose
      projector is a process of its own): it learns each applied position, and a stopped
      leader's failure, from the leader's announcements, and never applies an event. Its
      advisory lock (a key of its own) elects one of the followers to lead the scheduled
      duties instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

import psycopg

from eventstore.errors import is_outage
from eventstore.model import StoredEvent
from eventstore.recorder import HashChainRecorder
from projections.sessions import OUTAGE_FIRST_DELAY_S, AdvisoryLock, listen, wait_out_outage
from readmodels.tracking import (
    TrackingConflict,
    advance_all,
    position_of,
    positions_for_update,
)

log = logging.getLogger(__name__)

FOLLOWERS_KEY = 0x666F6C6C6F77  # "follow": added to the appliers' lock key for the followers'
FAILED = "failed: "  # the leader's announcement of its stop, followed by the reason


class ProjectionStopped(Exception):
    """The process applying the projections stopped on an event it could not apply."""


class Projection(Protocol):
    """Turns events into read-model rows inside the caller's transaction."""

    name: str

    def apply(
        self, cur: psycopg.Cursor[tuple[object, ...]], events: Sequence[StoredEvent]
    ) -> None: ...


class ProjectionRunner:
    def __init__(
        self,
        recorder: HashChainRecorder,
        projections: Sequence[Projection],
        *,
        # At most this many events a transaction. Only a runner that is behind reads that
        # many; there a transaction's fixed costs (some twenty statements) spread over more
        # events: catching up on 90,990 ledger events went from 22,000-26,000 events/s at
        # 2,000 a batch to 24,000-28,000 at 5,000 (three runs each).
        batch_size: int = 5000,
        # NOTIFY wakes it, and every (re)connection of its LISTEN; the timer is a last resort
        # that an idle process should not feel.
        poll_interval_s: float = 300.0,
        coalesce_s: float = 0.02,
        # After this long without new events, projections that keep a cache may save it
        # (``rest``): the AML engine writes its checkpoint there.
        rest_after_s: float = 5.0,
        applies: bool = True,
    ) -> None:
        self._recorder = recorder
        self._datastore = recorder.datastore
        self._projections = list(projections)
        self._names = [p.name for p in self._projections]
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        # After a wake-up, wait this long so that the commits arriving meanwhile share one
        # read-model transaction: under load, fewer and larger batches.
        self._coalesce_s = coalesce_s
        self._rest_after_s = min(rest_after_s, poll_interval_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._applied = threading.Condition()
        self.position = 0
        self.failure: BaseException | None = None
        self.applies = applies
        key = sum(ord(c) for c in ",".join(p.name for p in self._projections)) + 0x70726F6A
        # A follower's lock is not the appliers' one: it elects the duties' leader among the
        # followers, and never takes the projections from the process that applies them.
        self._leadership = AdvisoryLock(recorder, key if applies else key + FOLLOWERS_KEY)
        # The leader announces each applied position on this channel, so followers (the other
        # ``serve`` workers) learn it without asking the database on a timer.
        self.applied_channel = f"{self._datastore.schema}_applied"
        self._thread = threading.Thread(target=self._run, name="ledgerline-projector", daemon=True)
        self._listener = threading.Thread(
            target=self._listen, name="ledgerline-projector-listen", daemon=True
        )

    def start(self) -> ProjectionRunner:
        self.position = self._common_position()
        self._thread.start()
        self._listener.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._leadership.cancel()  # a follower blocked on the lock
            self._thread.join(0.1)
        self._listener.join(timeout_s)
        self._leadership.release()

    @property
    def is_leader(self) -> bool:
        return self._leadership.held

    def wait_for(self, position: int, timeout_s: float) -> bool:
        """Block until ``position`` is applied (True) or ``timeout_s`` passes (False)."""
        deadline = time.monotonic() + timeout_s
        with self._applied:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.failure is not None:
                    return False
                self._applied.wait(remaining)
        return True

    def catch_up(self) -> int:
        """Apply everything committed so far (synchronously); return the new position."""
        while True:
            events = self._recorder.read_from(self.position, self._batch_size)
            if not events:
                return self.position
            try:
                self._apply(events)
            except Exception:
                if len(events) == 1:
                    raise
                # Apply the batch one event at a time: everything before the bad event lands,
                # and the failure names the exact position.
                for event in events:
                    self._apply([event])

    def rest(self) -> None:
        """Nothing new to apply: let each projection that has a ``rest(cur)`` method, and
        says it has something to save (``rest_due()``), save what it keeps in memory (in a
        transaction of its own: an idle process with nothing to save opens none). A failure
        is logged and changes nothing: what a projection saves there is a cache, never a
        read model."""
        for projection in self._projections:
            rest = getattr(projection, "rest", None)
            due = getattr(projection, "rest_due", None)
            if rest is None or due is None or not due():
                continue
            try:
                with (
                    self._datastore.get_connection() as conn,
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    rest(cur)
            except Exception:
                log.exception("projection %s could not save its state at rest", projection.name)

    def _common_position(self) -> int:
        with self._datastore.get_connection() as conn:
            positions = {p.name: position_of(conn, p.name) for p in self._projections}  # type: ignore[arg-type]
        if len(set(positions.values())) > 1:
            # Projections run together; one behind the others (say, a rebuilt one) is caught up
            # on its own first.
            low = min(positions.values())
            log.info("projections at different positions %s; catching up from %d", positions, low)
            return low
        return next(iter(positions.values()), 0)

    def _apply(self, events: Sequence[StoredEvent]) -> None:
        start = self.position
        end = events[-1].position
        with self._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cur:
            # Locked, all in one statement: a rebuild swapping a projection's tables holds its
            # row, so this batch waits for it, then skips whatever the rebuild already covered.
            current = positions_for_update(cur, self._names)  # type: ignore[arg-type]
            moved: dict[str, int] = {}
            for projection in self._projections:
                at = current[projection.name]
                if at >= end:
                    continue  # this one is already past the batch (it was rebuilt ahead)
                todo = [e for e in events if e.position > at] if at > start else events
                projection.apply(cur, todo)  # type: ignore[arg-type]
                moved[projection.name] = at
            advance_all(cur, moved, end)  # type: ignore[arg-type]
            # Delivered at commit: followers learn the position without polling for it.
            cur.execute("SELECT pg_notify(%s, %s)", (self.applied_channel, str(end)))
        with self._applied:
            self.position = end
            self._applied.notify_all()
        log.debug("applied positions %d..%d", start + 1, end)

    def _lead(self) -> None:
        """Wait until this process holds the projectors' lock, following the leader meanwhile.

        The wait is on the server (the lock is granted when the leader's session ends), and a
        follower learns the leader's position from its NOTIFY announcements: an idle follower
        asks the database nothing.
        """
        backoff_s = 0.2
        while not self._stop.is_set():
            self._advance_to(self._common_position())
            if self._leadership.wait_acquire():
                self.position = self._common_position()
                return
            # The session failed (a restart, say) or stop() interrupted the wait.
            if self._stop.wait(backoff_s):
                return
            backoff_s = min(backoff_s * 2, 5.0)

    def _advance_to(self, position: int) -> None:
        with self._applied:
            if position > self.position:
                self.position = position
                self._applied.notify_all()

    def _on_applied(self, payload: str) -> None:
        if self.applies and self.is_leader:
            return  # its own announcement
        if payload.isdigit():
            self.failure = None  # the applier is moving again (restarted, say)
            self._advance_to(int(payload))
        elif payload.startswith(FAILED):
            self.failure = ProjectionStopped(payload[len(FAILED) :])
            with self._applied:
                self._applied.notify_all()

    def _follow(self) -> None:
        """A follower's thread: learn the applied position, then hold (or wait for) the
        followers' lock, which makes this process the duties' leader. The wait is on the
        server, and holding it asks nothing: an idle follower costs the database nothing."""
        backoff_s = 0.2
        while not self._stop.is_set():
            try:
                self._advance_to(self._common_position())
            except Exception:  # its LISTEN's (re)connection asks again
                log.debug("follower could not read the common position", exc_info=True)
            if self._leadership.wait_acquire():
                backoff_s = 0.2
                while self._leadership.held and not self._stop.wait(5.0):
                    pass
                continue
            if self._stop.wait(backoff_s):  # the session failed, or stop() cancelled the wait
                return
            backoff_s = min(backoff_s * 2, 5.0)

    def _run(self) -> None:
        if not self.applies:
            self._follow()
            return
        backoff_s = OUTAGE_FIRST_DELAY_S
        while not self._stop.is_set():
            try:
                if not self._leadership.held:
                    self._lead()
                    continue
                self.catch_up()
                backoff_s = OUTAGE_FIRST_DELAY_S
            except TrackingConflict:
                # Another runner moved the tracking row: this one lost its leadership (its
                # lock's session died, say) without noticing. Nothing of the batch landed.
                log.warning("projection runner: another runner moved on; following it")
                self._drop_leadership()
                continue
            except Exception as exc:
                if not is_outage(exc):
                    self._fail(exc)
                    return
                # The database went away (restart, failover, network): nothing was applied
                # by the failed transaction. Give up the leadership (its session is gone),
                # wait, and take up again from the tracking position.
                self._drop_leadership()
                later = wait_out_outage(log, "projection runner", exc, backoff_s, self._stop)
                if later is None:
                    return
                backoff_s = later
                continue
            except BaseException as exc:  # stop, loudly: never skip an event
                self._fail(exc)
                return
            woke = self._wake.wait(self._rest_after_s)
            if not woke:
                self.rest()
                woke = self._wake.wait(self._poll_interval_s - self._rest_after_s)
            if woke and self._coalesce_s:
                self._stop.wait(self._coalesce_s)
            self._wake.clear()

    def _drop_leadership(self) -> None:
        self._leadership.release()

    def _fail(self, exc: BaseException) -> None:
        log.exception("projection runner stopped at position %d", self.position, exc_info=exc)
        self.failure = exc
        self._record_failure(exc)
        with self._applied:
            self._applied.notify_all()

    def _record_failure(self, exc: BaseException) -> None:
        """Leave a row in ``projection_failures`` naming the event that could not be applied,
        and tell the followers (their readiness reports it)."""
        reason = f"{type(exc).__name__}: {exc}"
        try:
            with self._datastore.get_connection() as conn:
                for projection in self._projections:
                    conn.execute(
                        "INSERT INTO readmodels.projection_failures"
                        " (projection, source, position, reason) VALUES (%s, 'store', %s, %s)",
                        (projection.name, self.position + 1, reason),
                    )
                # A NOTIFY payload holds under 8,000 bytes.
                conn.execute(
                    "SELECT pg_notify(%s, %s)", (self.applied_channel, FAILED + reason[:4000])
                )
        except Exception:  # the log line above already tells the operator
            log.exception("could not record the projection failure")

    def _listen(self) -> None:
        listen(
            self._recorder,
            self._wake,
            self._stop,
            also={self.applied_channel: self._on_applied},
            on_connect=self._on_listening,
        )

    def _on_listening(self) -> None:
        """A follower may have missed announcements while the LISTEN was down: ask once."""
        if not (self.applies and self.is_leader):
            try:
                self._advance_to(self._common_position())
            except Exception:  # the leader's next announcement tells it anyway
                log.debug("follower could not read the common position", exc_info=True)
