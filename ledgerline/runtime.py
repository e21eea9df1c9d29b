"""The composition root: wires the store, the ledger, the projector and the API together."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg.conninfo import conninfo_to_dict

from api.app import ApiServices, create_app
from api.keys import KeyStore, lookup_sql, migrate_keys, revocations_sql
from api.metrics import Metrics, multiprocess
from api.problems import Problem, problem_responses
from commands.context import build_processor
from commands.ledger import ExpirePendingTransfer, expire_command
from commands.processor import AggregateCache, CommandProcessor
from eventstore.errors import ConfigurationRefused
from eventstore.schema import DEFAULT_SCHEMA, ensure_runtime_login, migrate
from eventstore.store import EventStore, connect_owner
from ledgerline import contexts
from projections.manage import complete_position
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner
from projections.sessions import AdvisoryLock
from readmodels.ledger import due_holds
from readmodels.schema import SCHEMA as RM_SCHEMA
from readmodels.schema import migrate_readmodels
from replay.keys import Keyring
from replay.log import latest_checkpoint, make_checkpoint
from replay.witness import collect_cosignatures

log = logging.getLogger(__name__)

READY_MAX_LAG_EVENTS = 10_000
DUTIES_LOCK_KEY = 0x6475746965  # "duties": the API process that sweeps and checkpoints
METRICS_REFRESH_S = 1.0  # how old a serve worker's in-memory figures in /metrics may be


def migrate_all(url: str, app_url: str | None = None) -> None:
    """Event store, read models and API keys: every schema up to date, the runtime's login in
    place (the one ``app_url`` names, or the database's own), and the Merkle tiles of a store
    written before they existed (a no-op once they are current)."""
    from eventstore.tiles import catch_up

    with connect_owner(url) as conn:
        migrate(conn)
        migrate_readmodels(conn)
        migrate_keys(conn)
        catch_up(conn, DEFAULT_SCHEMA)
        if app_url is None:
            ensure_runtime_login(conn)
        else:
            params = conninfo_to_dict(app_url)
            ensure_runtime_login(
                conn,
                login=str(params.get("user") or ""),
                password=str(params.get("password") or ""),
            )


def require_migrated(app_url: str, *, read_models: bool = True) -> None:
    """A process without the owner's credential, or a command that only reads, checks that a
    store exists and ``migrate`` has brought it up to date (it changes nothing itself).
    ``read_models=False`` checks the event store alone (``verify`` reads nothing else)."""
    from eventstore.schema import LATEST_VERSION, applied_versions
    from readmodels.schema import SCHEMA as READMODELS
    from readmodels.schema import all_migrations

    with connect_owner(app_url) as conn:
        if not applied_versions(conn, "ledgerline"):
            raise ConfigurationRefused(
                "no Ledgerline store in this database (`ledgerline migrate` creates one)"
            )
        stale = [
            schema
            for schema, latest in (
                ("ledgerline", LATEST_VERSION),
                (READMODELS, all_migrations()[-1].version),
            )
            if schema == "ledgerline" or read_models
            if max(applied_versions(conn, schema), default=0) < latest
        ]
    if stale:
        raise ConfigurationRefused(
            f"schema(s) {', '.join(stale)} are not up to date: run `ledgerline migrate` with "
            "the owner's DATABASE_URL first"
        )


@dataclass
class Runtime:
    store: EventStore
    processor: CommandProcessor[Any]
    projector: ProjectionRunner | None
    metrics: Metrics
    app: FastAPI
    clock: Callable[[], int]
    _stop: threading.Event = field(default_factory=threading.Event)
    _duty_lock: threading.Lock = field(default_factory=threading.Lock)
    _duties: AdvisoryLock | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def applied_position(self) -> int:
        """The position every read model has applied (in Kafka mode: the lowest watermark)."""
        if self.projector is not None:
            return self.projector.position
        with self.store.datastore.get_connection() as conn, conn.cursor() as cur:
            return complete_position(cur)

    def wait_for_position(self, position: int, timeout_s: float) -> bool:
        if self.projector is not None:
            return self.projector.wait_for(position, timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.applied_position() < position:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def refresh_metrics(self) -> None:
        """Everything /metrics reports of this process, the head and the lag included."""
        self.refresh_local_metrics()
        head = self.store.recorder.head().position
        self.metrics.head_position.set(head)
        lag = head - self.applied_position()
        for name in PROJECTIONS:
            self.metrics.projection_lag_events.labels(name).set(lag)

    def refresh_local_metrics(self) -> None:
        """This process's command-side figures (its cache and snapshots), from memory."""
        cache = self.processor.cache
        self.metrics.cache_entries.set(len(cache))
        self.metrics.cache_bytes.set(cache.bytes)
        self.metrics.cache_lookups.labels("hit").set(cache.hits)
        self.metrics.cache_lookups.labels("miss").set(cache.misses)
        self.metrics.cache_evictions.set(cache.evictions)
        for event, count in (
            ("written", self.processor.snapshots_written),
            ("loaded", self.processor.snapshots_loaded),
            ("refused", self.processor.snapshots_refused),
        ):
            self.metrics.snapshots.labels(event).set(count)

    def _publish_metrics(self, interval_s: float) -> None:
        """Under ``serve --workers N`` a scrape adds up every worker's last figures, but only
        the worker answering it refreshes its own then: each worker refreshes its in-memory
        figures on a timer too, so the sum is never older than ``interval_s``."""
        while not self._stop.wait(interval_s):
            self.refresh_local_metrics()
            self.metrics.refresh_process()  # a scrape does this itself (api/app.py)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self.projector is not None:
            self.projector.stop()
        if self._duties is not None:
            self._duties.release()
        self.processor.stop()
        self.store.close()

    def submit_due(
        self,
        find: Callable[[Any, int], Sequence[Any]],
        command_of: Callable[[Any], Any],
    ) -> int:
        """One round of a clock-driven duty: ``find(conn, now_ns)`` lists what is due in the
        read models, ``command_of(item)`` makes its idempotent command; submit them all and
        return how many acted (accepted now, not a replay). A duplicate (a read model behind,
        another process leading a moment ago) answers the first outcome: nothing is done
        twice."""
        now = self.clock()
        with self.store.datastore.get_connection() as conn:
            due = find(conn, now)
        futures = [self.processor.submit(command_of(item)) for item in due]
        outcomes = [f.result(30) for f in futures]
        return sum(1 for o in outcomes if o.accepted and not o.replayed)

    def sweep_expired(self) -> int:
        """Submit an expiry for every pending transfer past its deadline; return how many."""
        return self.submit_due(
            lambda conn, now: due_holds(conn, now, limit=1000),
            lambda tid: expire_command(ExpirePendingTransfer(transfer_id=tid)),
        )

    def _leads_duties(self) -> bool:
        """Whether this process runs the scheduled duties (expiry sweeps, checkpoints).

        With the in-process projector, the elected projector does (under ``serve``, whose
        projector is a process of its own, the elected follower); in Kafka mode the API
        processes elect one among themselves with an advisory lock of their own.
        """
        if self.projector is not None:
            return self.projector.is_leader
        with self._duty_lock:
            if self._duties is None:
                self._duties = AdvisoryLock(self.store.recorder, DUTIES_LOCK_KEY)
            return self._duties.try_acquire()

    def _applied_marker(self) -> int | None:
        """How far the read models are applied, when this process knows it without asking the
        database (the in-process projector, told by NOTIFY); None in Kafka mode."""
        return self.projector.position if self.projector is not None else None

    def _checkpointer(
        self,
        key: Ed25519PrivateKey | Keyring,
        interval_s: float,
        every_events: int,
        poll_s: float = 1.0,
    ) -> None:
        """Sign a checkpoint when the log has grown for ``interval_s`` or by ``every_events``
        events, whichever comes first, and have the witnesses cosign it; look at the head
        every ``poll_s`` while the log moves. What was looked at is not looked at again until
        the log moves or the interval runs out: an idle log costs no query, and a log waiting
        for its interval one query when it runs out."""
        signed_at = time.monotonic()
        # The applied marker when the head was last read, and when the answer can change
        # without the log moving (never, when nothing was left to sign).
        looked_at: int | None = None
        recheck_at = math.inf
        while not self._stop.wait(min(poll_s, interval_s)):
            if not self._leads_duties():
                looked_at = None
                continue
            marker = self._applied_marker()
            if marker is not None and marker == looked_at and time.monotonic() < recheck_at:
                continue
            try:
                latest = latest_checkpoint(self.store.recorder)
                grown = self.store.recorder.head().position - (latest.size if latest else 0)
                due = time.monotonic() - signed_at >= interval_s
                if grown >= every_events or (grown > 0 and due):
                    signed = make_checkpoint(self.store.recorder, key)
                    signed_at = time.monotonic()
                    collect_cosignatures(self.store.recorder, signed)
                    grown = -1  # look once more: events may have come while it was signed
                looked_at = marker if grown >= 0 else None
                recheck_at = math.inf if grown == 0 else signed_at + interval_s
            except Exception:  # the next round retries
                looked_at = None
                log.exception("scheduled checkpoint failed")

    def _run_duties(self, tick_s: float, duties: list[contexts.Duty]) -> None:
        """Every context's scheduled duties, each at its own interval, in one thread.

        A duty that can say when its next item comes due (``next_due``) is not run again
        until that time comes or the read models move: an idle process asks the database
        nothing. In Kafka mode (no in-process projector) every duty runs at its interval.
        """
        due = dict.fromkeys((d.name for d in duties), 0.0)
        # Per duty, after a round: the applied marker then and its next due time (or None).
        known: dict[str, tuple[int, int | None]] = {}
        while not self._stop.wait(tick_s):
            if not self._leads_duties():
                known.clear()  # with several workers, one runs the duties
                continue
            now = time.monotonic()
            marker = self._applied_marker()
            for duty in duties:
                if now < due[duty.name]:
                    continue
                last = known.pop(duty.name, None)
                if (
                    last is not None
                    and last[0] == marker
                    and (last[1] is None or self.clock() < last[1])
                ):
                    known[duty.name] = last
                    continue  # nothing new in the read models, nothing has come due
                due[duty.name] = now + duty.interval_s
                try:
                    duty.run(self)
                    if duty.next_due is not None and marker is not None:
                        with self.store.datastore.get_connection() as conn:
                            known[duty.name] = (marker, duty.next_due(conn))
                except Exception:  # the next round retries
                    log.exception("scheduled duty %s failed", duty.name)


def build_runtime(
    url: str | None,
    *,
    app_url: str | None = None,
    in_process_projection: bool = True,
    apply_projections: bool = True,
    clock: Callable[[], int] = time.time_ns,
    sweep_interval_s: float | None = 1.0,
    pool_size: int = 8,
    signing_key: Ed25519PrivateKey | Keyring | None = None,
    checkpoint_interval_s: float | None = 10.0,
    checkpoint_every_events: int = 10_000,
    cache_max_bytes: int = 512 << 20,
    snapshot_every: int = 1000,
    api_options: dict[str, object] | None = None,
) -> Runtime:
    if url is not None:
        migrate_all(url, app_url)
    elif app_url is not None:
        require_migrated(app_url)
    store = EventStore(url, app_url=app_url, pool_size=pool_size, run_migrations=False, clock=clock)
    processor = build_processor(
        store.recorder,
        contexts.command_contexts(clock),
        cache=AggregateCache(max_bytes=cache_max_bytes),
        snapshot_every=snapshot_every,
    ).start()
    projector = (
        ProjectionRunner(
            store.recorder,
            [spec.create(RM_SCHEMA) for spec in PROJECTIONS.values()],
            applies=apply_projections,
        ).start()
        if in_process_projection
        else None
    )

    def lookup(key_id: str) -> tuple[bytes, str] | None:
        with store.datastore.get_connection() as conn:
            row = conn.execute(lookup_sql(), (key_id,)).fetchone()
        return (bytes(row["token_sha256"]), str(row["role"])) if row else None

    def revocations() -> int:
        with store.datastore.get_connection() as conn:
            row = conn.execute(revocations_sql()).fetchone()
        return int(row["n"]) if row else 0

    metrics = Metrics()
    runtime = Runtime(store, processor, projector, metrics, FastAPI(), clock)
    services = ApiServices(
        store=store,
        keys=KeyStore(lookup, revocations=revocations),
        metrics=metrics,
        extra={
            "processor": processor,
            "ledger": processor,
            "wait_for_position": runtime.wait_for_position,
            "applied_position": runtime.applied_position,
            "read_wait_s": 2.0,
            "refresh_metrics": runtime.refresh_metrics,
            **(api_options or {}),
        },
    )
    services.extra["signing_key"] = signing_key
    app = create_app(services, routers=contexts.routers())

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Database reachable, projections caught up",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> JSONResponse:
        """200 when the database answers and the read models are within 10,000 events of the
        head (a readiness probe); 503 with the reason otherwise."""
        try:
            head = store.recorder.head().position
            applied = runtime.applied_position()
        except Exception as exc:
            raise Problem(503, "not_ready", f"database unreachable: {exc}") from None
        lag = head - applied
        metrics.head_position.set(head)
        for name in PROJECTIONS:
            metrics.projection_lag_events.labels(name).set(lag)
        if projector is not None and projector.failure is not None:
            raise Problem(503, "not_ready", f"projection stopped: {projector.failure}")
        if lag > READY_MAX_LAG_EVENTS:
            raise Problem(
                503,
                "not_ready",
                f"projections are {lag} events behind",
                headers={"Retry-After": "1"},
            )
        return JSONResponse(
            {
                "status": "ready",
                "head_position": head,
                "applied_position": applied,
                "lag_events": lag,
            }
        )

    runtime.app = app
    if signing_key is not None and checkpoint_interval_s:
        t = threading.Thread(
            target=runtime._checkpointer,
            args=(signing_key, checkpoint_interval_s, checkpoint_every_events),
            daemon=True,
            name="ledgerline-checkpoints",
        )
        t.start()
        runtime._threads.append(t)
    if multiprocess():
        t = threading.Thread(
            target=runtime._publish_metrics,
            args=(METRICS_REFRESH_S,),
            daemon=True,
            name="ledgerline-metrics",
        )
        t.start()
        runtime._threads.append(t)
    if sweep_interval_s:
        t = threading.Thread(
            target=runtime._run_duties,
            args=(sweep_interval_s, contexts.duties()),
            daemon=True,
            name="ledgerline-duties",
        )
        t.start()
        runtime._threads.append(t)
    return runtime
