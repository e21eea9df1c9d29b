"""Operating projections: how far behind each one is, and rebuilding one while it serves.

Definition
    :func:`status` reports, per known projection, its tracking rows, its watermark (the
    position up to which every source has applied it), the head of the log, the lag in events
    and in seconds, and its recorded failures.

    :func:`rebuild` builds a projection's tables afresh in a scratch schema from the log, with
    the same pure projection code as the live runner, then swaps them in for the live tables
    and moves the projection's tracking to the position they were built to.

Guarantees
    * Queries keep being served from the live tables during the rebuild; only the final swap
      takes locks (the projection's tracking rows, then the live tables), briefly, under a
      ``lock_timeout``; a swap that cannot get them is rolled back and tried again.
    * The swap, the last catch-up of the scratch tables and the tracking update commit in ONE
      transaction, under the tracking rows' locks. A runner whose batch overlaps the swap waits
      on those rows (:mod:`projections.runner` reads them ``FOR UPDATE``), then sees the new
      position and skips what the rebuild covered: no event is lost or applied twice.
    * The rebuilt tables were created by the read models' migrations, so they carry the app
      role's grants and the same index and constraint names as the live ones.

Constraints
    The rebuild runs on an owner connection (``connect_owner``): moving tables between schemas
    needs their owner. A projection in Kafka mode keeps its sources; each is moved to the
    rebuilt position.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from kafka.errors import KafkaError
from psycopg.rows import tuple_row

from eventstore.model import StoredEvent
from eventstore.recorder import HashChainRecorder
from eventstore.schema import migrate
from eventstore.store import EventStore, connect_owner
from projections.kafka_rebuild import KafkaFillError, KafkaSource, fill_from_kafka
from projections.messages import partition_for
from projections.registry import PROJECTIONS, ProjectionSpec, rebuild_into
from projections.relay import relay_positions
from projections.runner import Projection
from readmodels.schema import SCHEMA, all_migrations
from readmodels.tracking import STORE_SOURCE

Mode = Literal["store", "kafka", "none"]
KAFKA_PREFIX = "kafka:"
NS_PER_S = 1_000_000_000


class RebuildError(Exception):
    """A rebuild could not be done; the live read models are unchanged."""


class UnknownProjection(RebuildError):
    """No projection by that name."""


def projection_spec(name: str) -> ProjectionSpec:
    spec = PROJECTIONS.get(name)
    if spec is None:
        raise UnknownProjection(
            f"unknown projection {name!r}; known projections: {', '.join(sorted(PROJECTIONS))}"
        )
    return spec


# ------------------------------------------------------------------ status


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    mode: Mode
    position: int  # the watermark: every source has applied the log up to here
    head: int
    lag_events: int
    lag_seconds: float  # 0.0 when caught up, else the age of the first unapplied event
    sources: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    last_failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": self.lag_seconds,
            "sources": dict(self.sources),
            "failures": self.failures,
            "last_failure": self.last_failure,
        }


def watermark(sources: dict[str, int]) -> tuple[Mode, int]:
    """The store row's position if there is one, else the lowest Kafka partition's, else 0."""
    if STORE_SOURCE in sources:
        return "store", sources[STORE_SOURCE]
    kafka = [p for s, p in sources.items() if s.startswith(KAFKA_PREFIX)]
    if kafka:
        return "kafka", min(kafka)
    return "none", 0


def complete_position(cur: psycopg.Cursor[Any]) -> int:
    """The position every registered projection has applied the log up to: the lowest of
    their watermarks (what read-your-writes, readiness and ``replay --check`` compare with)."""
    cur.execute(
        f"SELECT projection, source, position FROM {SCHEMA}.tracking WHERE projection = ANY(%s)",
        (list(PROJECTIONS),),
    )
    sources: dict[str, dict[str, int]] = {name: {} for name in PROJECTIONS}
    for row in cur.fetchall():
        name, source, position = (
            (row[k] for k in ("projection", "source", "position")) if isinstance(row, dict) else row
        )
        sources[str(name)][str(source)] = int(position)
    return min((watermark(s)[1] for s in sources.values()), default=0)


@dataclass(frozen=True)
class Applied:
    """Which events a live projection has applied, exactly, read from its tracking rows.

    In-process, that is every event up to one position. Through Kafka, each partition is at
    its own position: an event is applied when its stream's partition (the relay's own
    murmur2 of the stream id) has reached it. ``replay --check`` rebuilds exactly this set,
    so it compares like with like while partitions stand at different positions.
    """

    mode: Mode
    store_position: int = 0
    # context -> positions of its topic's partitions, by partition number
    partitions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def upto(self) -> int:
        if self.mode == "kafka":
            return max((max(p) for p in self.partitions.values() if p), default=0)
        return self.store_position

    def __call__(self, event: StoredEvent) -> bool:
        if self.mode != "kafka":
            return event.position <= self.store_position
        positions = self.partitions.get(event.topic.split(".", 1)[0])
        if not positions:
            return False
        return event.position <= positions[partition_for(event.stream_id, len(positions))]


def applied(cur: psycopg.Cursor[Any], name: str) -> Applied:
    sources = _sources(cur, name)
    mode, position = watermark(sources)
    if mode != "kafka":
        return Applied(mode, position)
    by_context: dict[str, dict[int, int]] = {}
    for source, pos in sources.items():
        if source.startswith(KAFKA_PREFIX):
            topic, _, partition = source[len(KAFKA_PREFIX) :].rpartition(":")
            by_context.setdefault(topic.rsplit(".", 1)[-1], {})[int(partition)] = pos
    return Applied(
        "kafka",
        position,
        {
            ctx: [parts.get(p, 0) for p in range(max(parts) + 1)]
            for ctx, parts in by_context.items()
        },
    )


def _sources(cur: psycopg.Cursor[Any], name: str, *, for_update: bool = False) -> dict[str, int]:
    lock = " FOR UPDATE" if for_update else ""
    cur.execute(
        f"SELECT source, position FROM {SCHEMA}.tracking WHERE projection = %s"
        f" ORDER BY source{lock}",
        (name,),
    )
    return {str(source): int(position) for source, position in cur.fetchall()}


def status(
    store_or_recorder: EventStore | HashChainRecorder,
    conn: psycopg.Connection[Any],
    *,
    clock: Callable[[], int] = time.time_ns,
) -> list[ProjectionStatus]:
    """Where every known projection stands against the head of the log."""
    recorder = (
        store_or_recorder.recorder
        if isinstance(store_or_recorder, EventStore)
        else store_or_recorder
    )
    out: list[ProjectionStatus] = []
    for name in sorted(PROJECTIONS):
        with conn.cursor(row_factory=tuple_row) as cur:
            sources = _sources(cur, name)
            cur.execute(
                f"SELECT count(*), (SELECT reason FROM {SCHEMA}.projection_failures"
                "  WHERE projection = %s ORDER BY id DESC LIMIT 1)"
                f" FROM {SCHEMA}.projection_failures WHERE projection = %s",
                (name, name),
            )
            row = cur.fetchone()
        failures, last_failure = (int(row[0]), row[1]) if row else (0, None)
        mode, position = watermark(sources)
        # Read after the tracking rows, so the head is never behind the watermark.
        head = recorder.head().position
        lag_events = max(0, head - position)
        lag_seconds = 0.0
        if lag_events:
            first_unapplied = recorder.read_from(position, 1)
            if first_unapplied:
                age_ns = clock() - first_unapplied[0].recorded_at_ns
                lag_seconds = max(0.0, age_ns / NS_PER_S)
        out.append(
            ProjectionStatus(
                name=name,
                mode=mode,
                position=position,
                head=head,
                lag_events=lag_events,
                lag_seconds=lag_seconds,
                sources=sources,
                failures=failures,
                last_failure=None if last_failure is None else str(last_failure),
            )
        )
    return out


# ------------------------------------------------------------------ rebuild


@dataclass(frozen=True)
class RebuildResult:
    name: str
    mode: Mode  # the tracking mode after the rebuild
    events: int  # events projected into the rebuilt tables
    position: int  # the position the swapped-in tables and the tracking rows are at
    seconds: float
    swap_attempts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "events": self.events,
            "position": self.position,
            "seconds": self.seconds,
            "swap_attempts": self.swap_attempts,
        }


def _catch_up(
    recorder: HashChainRecorder,
    projection: Projection,
    cur: psycopg.Cursor[Any],
    after: int,
    upto: int,
    batch_size: int,
) -> int:
    """Apply the events ``after < position <= upto`` with the runner's own adapter."""
    events = 0
    while after < upto:
        batch = recorder.read_from(after, batch_size, upto)
        if not batch:
            break
        projection.apply(cur, batch)
        events += len(batch)
        after = batch[-1].position
    return events


def rebuild(
    url: str,
    recorder: HashChainRecorder,
    name: str,
    *,
    batch_size: int = 50_000,
    lock_timeout_ms: int = 2000,
    swap_attempts: int = 20,
    kafka: KafkaSource | None = None,
    progress: Callable[[int], None] | None = None,
) -> RebuildResult:
    """Rebuild projection ``name`` into a scratch schema, then swap it in (see the module);
    ``progress(n)`` hears of every batch of ``n`` events read from the store."""
    spec = projection_spec(name)
    started = time.monotonic()
    tag = secrets.token_hex(4)
    scratch = f"rebuild_{tag}"
    # The live tables leave through a schema of their own: the scratch tables' indexes have
    # the same names as theirs, and index names are unique per schema.
    retired = f"rebuild_{tag}_old"
    with connect_owner(url) as conn:
        seeded = False
        try:
            migrate(conn, scratch, all_migrations())
            if kafka is None:
                built = recorder.head().position
                with conn.transaction(), conn.cursor() as cur:
                    events = rebuild_into(
                        recorder, cur, scratch, built, [spec], batch_size, progress=progress
                    )
            else:
                # From Kafka up to what the relay has had acknowledged; the rest from the store.
                built = relay_positions(recorder).get("default", 0)
                try:
                    events = fill_from_kafka(url, spec.create(scratch), scratch, kafka, built)
                except (KafkaFillError, KafkaError) as exc:
                    raise RebuildError(f"rebuilding {name} from Kafka failed: {exc}") from None
            # Catch up once without locks, so the locked step has little left to apply.
            head = recorder.head().position
            with conn.transaction(), conn.cursor() as cur:
                events += _catch_up(recorder, spec.create(scratch), cur, built, head, batch_size)
            built = head
            seeded = _seed_tracking(conn, name)
            for attempt in range(1, swap_attempts + 1):
                try:
                    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                        cur.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                        sources = _sources(cur, name, for_update=True)
                        # Read under the lock: no runner can be past this head now.
                        head = recorder.head().position
                        caught_up = _catch_up(
                            recorder, spec.create(scratch), cur, built, head, batch_size
                        )
                        _swap(cur, list(spec.tables), scratch, retired)
                        mode = _move_tracking(cur, name, sources, head)
                except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected):
                    time.sleep(min(0.05 * attempt, 0.5))
                    continue
                seeded = False
                return RebuildResult(
                    name=name,
                    mode=mode,
                    events=events + caught_up,
                    position=head,
                    seconds=time.monotonic() - started,
                    swap_attempts=attempt,
                )
            raise RebuildError(
                f"could not swap in the rebuilt {name} tables: their locks stayed busy for "
                f"{swap_attempts} attempts of {lock_timeout_ms} ms; the live tables are unchanged"
            )
        finally:
            if seeded:  # the swap never happened: leave tracking as it was
                conn.execute(
                    f"DELETE FROM {SCHEMA}.tracking"
                    " WHERE projection = %s AND source = %s AND position = 0",
                    (name, STORE_SOURCE),
                )
            conn.execute(f'DROP SCHEMA IF EXISTS "{scratch}" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{retired}" CASCADE')


def _seed_tracking(conn: psycopg.Connection[Any], name: str) -> bool:
    """Give a projection without tracking rows a 'store' row at 0 (committed now).

    A runner that finds no row has nothing to lock and would write into the live tables as the
    swap replaces them; with a row it waits for the swap like any other batch.
    """
    cur = conn.execute(
        f"INSERT INTO {SCHEMA}.tracking (projection, source, position)"
        f" SELECT %s, %s, 0 WHERE NOT EXISTS"
        f" (SELECT 1 FROM {SCHEMA}.tracking WHERE projection = %s)"
        " ON CONFLICT (projection, source) DO NOTHING",
        (name, STORE_SOURCE, name),
    )
    return cur.rowcount == 1


def _swap(cur: psycopg.Cursor[Any], tables: Sequence[str], scratch: str, retired: str) -> None:
    live = ", ".join(f"{SCHEMA}.{t}" for t in tables)
    cur.execute(f'CREATE SCHEMA "{retired}"')
    cur.execute(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE")
    for t in tables:
        cur.execute(f'ALTER TABLE {SCHEMA}.{t} SET SCHEMA "{retired}"')
    for t in tables:
        cur.execute(f'ALTER TABLE "{scratch}".{t} SET SCHEMA {SCHEMA}')


def _move_tracking(
    cur: psycopg.Cursor[Any], name: str, sources: dict[str, int], position: int
) -> Mode:
    mode, _ = watermark(sources)
    if mode == "kafka":
        cur.execute(
            f"UPDATE {SCHEMA}.tracking SET position = %s, updated_at = now()"
            " WHERE projection = %s AND source LIKE %s",
            (position, name, KAFKA_PREFIX + "%"),
        )
        return "kafka"
    cur.execute(f"DELETE FROM {SCHEMA}.tracking WHERE projection = %s", (name,))
    cur.execute(
        f"INSERT INTO {SCHEMA}.tracking (projection, source, position) VALUES (%s, %s, %s)",
        (name, STORE_SOURCE, position),
    )
    return "store"
