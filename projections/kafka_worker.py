"""Projection workers fed from Kafka: the same projections as the in-process runner.

Definition
    :class:`KafkaApplier` turns a batch of consumed messages into read-model rows and
    per-partition tracking positions (source ``kafka:<topic>:<partition>``) in ONE
    PostgreSQL transaction. :func:`build_app` wraps it in a faust-streaming app: each fetch's
    messages are decoded and handed over at once, a task per topic applies them batch by
    batch (a batch being what arrived while the last one was applied), and each message is
    acknowledged only once its effect (or its being a duplicate) is committed.

    Per partition, with ``t`` its tracking position, messages are taken in offset order:
    ``position <= t``: already applied (a redelivery or a relay resend): skipped;
    ``prev <= t``: next in this partition: applied (a watermark only moves ``t``);
    otherwise an earlier message of this partition has not arrived (a reordered delivery):
    held, unacknowledged, until it does.

    An **ordered** projection (``ordered = True``, one whose results depend on the order of
    events across streams, such as monitoring) is not handed events partition by partition.
    The worker passes what it consumes to ``projection.receive(cur, events)`` (which keeps
    them, in the same transaction as the partition's position), and then, holding the
    projection's ``kafka:ordered`` tracking row (``FOR UPDATE SKIP LOCKED``: one transaction
    at a time, whichever partitions it owns), calls ``projection.advance(cur, applied, frontier)``:
    apply what was kept in ``(applied, frontier]``, where ``frontier`` is the lowest position
    over all the projection's partitions (watermarks keep idle ones current), so every event
    up to it has been received. The ``kafka:ordered`` row is the position the projection is
    complete up to (and, being the lowest of its Kafka rows, what ``min_position`` waits on).
    A batch that found the row held looks again once it has committed, waiting for the row in
    a transaction of its own: the holder may have read the frontier before this batch's
    partitions moved, and once the stream goes idle nothing else would advance it.

Guarantees
    * Exactly-once effect without Kafka transactions: the tracking row is locked
      (``FOR UPDATE``) and moved in the transaction that writes the rows, so a redelivered
      message, a second worker after a rebalance, or a worker restarted after SIGKILL never
      applies an event twice; an unacknowledged message is redelivered, so none is lost.
    * A poison message (undecodable, wrong hash, unknown event type, event from another
      context) stops its partition at that offset, with a row in
      ``readmodels.projection_failures``; the other partitions go on. It is never skipped.
    * ``min(position)`` over a topic's partitions is the global position the read model is
      complete up to (watermarks keep idle partitions current).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from projections.messages import Message, PoisonMessage, context_of, decode
from projections.runner import Projection
from readmodels.schema import SCHEMA as RM_SCHEMA
from readmodels.tracking import STORE_SOURCE, position_of

log = logging.getLogger(__name__)

Token = object  # whatever the transport acknowledges with (a Faust event in production)
ORDERED_SOURCE = "kafka:ordered"  # an ordered projection's applied position


def source_of(topic: str, partition: int) -> str:
    return f"kafka:{topic}:{partition}"


@dataclass(slots=True)
class Consumed:
    """One consumed message: its transport token, where it came from, and what it holds."""

    token: Token
    topic: str
    partition: int
    offset: int
    message: Message | None = None
    poison: str | None = None  # why it could not be decoded

    @classmethod
    def of(
        cls,
        token: Token,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        headers: Any,
    ) -> Consumed:
        try:
            return cls(
                token, topic, partition, offset, decode(topic, partition, offset, value, headers)
            )
        except PoisonMessage as exc:
            return cls(token, topic, partition, offset, poison=str(exc))

    @classmethod
    def of_record(cls, record: Any) -> Consumed:
        """A consumed Kafka record (Faust's or kafka-python's), its own token."""
        return cls.of(
            record, record.topic, record.partition, record.offset, record.value, record.headers
        )


@dataclass
class _Partition:
    held: dict[int, Consumed] = field(default_factory=dict)  # offset -> message held back
    failed: str | None = None


class KafkaApplier:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        projection: Projection,
        *,
        schema: str = RM_SCHEMA,
    ) -> None:
        self._pool = pool
        self.projection = projection
        self._schema = schema
        self._parts: dict[tuple[str, int], _Partition] = {}
        self._ordered = bool(getattr(projection, "ordered", False))
        self.applied_events = 0  # since start, for the worker's /metrics

    @contextmanager
    def _transaction(self) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Cursor[Any]]]:
        """One read-model transaction and its cursor. Tuple rows on every path: projections
        are always handed the same kind of cursor (the careful path once had dict rows)."""
        with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            yield conn, cur

    # ------------------------------------------------------------------ set-up

    def init_tracking(self, topic: str | Mapping[str, int], partitions: int = 0) -> None:
        """One tracking row per partition of every topic (``{topic: partitions}``, or one
        topic and its partition count). A projection the in-process runner maintained so far
        continues from its position: every partition of every topic starts there."""
        layout = {topic: partitions} if isinstance(topic, str) else dict(topic)
        name = self.projection.name
        with self._transaction() as (_, cur):
            cur.execute(
                f"SELECT position FROM {self._schema}.tracking WHERE projection = %s FOR UPDATE",
                (name,),
            )
            row = cur.execute(
                f"DELETE FROM {self._schema}.tracking WHERE projection = %s AND source = %s"
                " RETURNING position",
                (name, STORE_SOURCE),
            ).fetchone()
            start = int(str(row[0])) if row is not None else 0
            cur.executemany(
                f"INSERT INTO {self._schema}.tracking (projection, source, position)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (name, source_of(t, p), start)
                    for t, count in sorted(layout.items())
                    for p in range(count)
                ]
                + ([(name, ORDERED_SOURCE, start)] if self._ordered else []),
            )
            if row is not None:
                log.info(
                    "projection %s moves from the in-process runner to Kafka at %d", name, start
                )

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions this worker no longer owns: drop what it held back (never acked, so the
        next owner receives those messages again)."""
        for tp in partitions:
            self._parts.pop(tp, None)

    def stopped_partitions(self) -> int:
        return sum(1 for p in self._parts.values() if p.failed is not None)

    def failure(self, topic: str, partition: int) -> str | None:
        part = self._parts.get((topic, partition))
        return part.failed if part else None

    def held(self) -> int:
        return sum(len(p.held) for p in self._parts.values())

    # ------------------------------------------------------------------ one batch

    def handle(self, batch: Sequence[Consumed]) -> list[Token]:
        """Apply a batch; return the tokens that may be acknowledged now."""
        pending: dict[tuple[str, int], dict[int, Consumed]] = {}
        for item in batch:
            tp = (item.topic, item.partition)
            part = self._parts.get(tp)
            if part is not None and part.failed is not None:
                continue  # stopped: nothing more is applied or acknowledged
            if tp not in pending:
                pending[tp] = dict(part.held) if part is not None else {}
            pending[tp][item.offset] = item
        if not pending:
            return []
        # An applier serves every topic of its projection, each topic's task calling it from
        # its own thread: what one batch found is kept in locals, never on the instance.
        fast = self._fast(pending)
        results, sequenced = fast if fast is not None else self._careful(pending)
        if not sequenced:
            self._catch_up_ordered()
        acks: list[Token] = []
        for tp, (tokens, held, failed) in results.items():
            part = self._parts.setdefault(tp, _Partition())
            part.held, part.failed = held, failed
            acks.extend(tokens)
            if held:
                log.warning(
                    "%s partition %d: holding %d message(s) from offset %d until an earlier "
                    "one arrives",
                    tp[0],
                    tp[1],
                    len(held),
                    min(held),
                )
            if failed is not None:
                log.error(
                    "projection %s stopped on %s partition %d: %s",
                    self.projection.name,
                    tp[0],
                    tp[1],
                    failed,
                )
        return acks

    def _fast(
        self, pending: dict[tuple[str, int], dict[int, Consumed]]
    ) -> tuple[_Results, bool] | None:
        """The common case in one statement per step: every partition's events in ONE
        projection call. ``None`` (nothing written) when a partition needs the careful path:
        a poison message, a missing tracking row, or a projection error to pin down."""
        sources = {source_of(*tp): tp for tp in pending}
        try:
            with self._transaction() as (_, cur):
                rows = cur.execute(
                    f"SELECT source, position FROM {self._schema}.tracking"
                    " WHERE projection = %s AND source = ANY(%s) FOR UPDATE",
                    (self.projection.name, list(sources)),
                ).fetchall()
                positions = {sources[str(source)]: int(str(pos)) for source, pos in rows}
                if len(positions) != len(sources):
                    return None
                plans = {tp: _plan(tp[0], items, positions[tp]) for tp, items in pending.items()}
                if any(plan.stop is not None for plan in plans.values()):
                    return None
                events = [
                    item.message.event
                    for plan in plans.values()
                    for item, _ in plan.steps
                    if item.message is not None and item.message.event is not None
                ]
                events.sort(key=lambda e: e.position)  # each stream's order is kept
                if events:
                    self._take(cur, events)
                    self.applied_events += len(events)
                moved = [
                    (plan.steps[-1][1], self.projection.name, source_of(*tp))
                    for tp, plan in plans.items()
                    if plan.steps
                ]
                if moved:
                    cur.executemany(
                        f"UPDATE {self._schema}.tracking SET position = %s, updated_at = now()"
                        " WHERE projection = %s AND source = %s",
                        moved,
                    )
                sequenced = self._sequence(cur) if self._ordered else True
        except psycopg.OperationalError:
            raise  # the database is away: the caller retries the batch
        except Exception:
            log.debug("batch failed as a whole; applying it partition by partition", exc_info=True)
            return None
        return {
            tp: (plan.acks + [item.token for item, _ in plan.steps], plan.held, None)
            for tp, plan in plans.items()
        }, sequenced

    def _careful(
        self, pending: dict[tuple[str, int], dict[int, Consumed]]
    ) -> tuple[_Results, bool]:
        """Partition by partition, each in a savepoint, event by event when one fails: every
        event before a failure lands, and the failure names its message."""
        results: _Results = {}
        with self._transaction() as (conn, cur):
            for tp, items in pending.items():
                with conn.transaction():
                    tokens, held, stop = self._apply_partition(cur, tp, items)
                if stop is not None:
                    self._record_failure(cur, tp, *stop)
                results[tp] = (tokens, held, stop[1] if stop else None)
            sequenced = self._advance(conn, cur, wait=False) if self._ordered else True
        return results, sequenced

    def _advance(
        self, conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], *, wait: bool
    ) -> bool:
        """Sequence an ordered projection in a savepoint; a failure is recorded, named, and
        the projection stays behind until its cause is fixed. False: the row was locked."""
        try:
            with conn.transaction():
                return self._sequence(cur, wait=wait)
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            log.exception("ordered projection %s could not advance", self.projection.name)
            cur.execute(
                f"INSERT INTO {self._schema}.projection_failures"
                " (projection, source, reason) VALUES (%s, %s, %s)",
                (self.projection.name, ORDERED_SOURCE, f"{type(exc).__name__}: {exc}"),
            )
            return True

    def _catch_up_ordered(self) -> None:
        """Another transaction held the ``kafka:ordered`` row while this batch moved its
        partitions, and may have taken its frontier before this batch committed: without a
        second look, the projection would stay behind those partitions until the next batch
        (forever, once the stream goes idle). So, in a transaction of its own that holds no
        other lock (no deadlock with a batch or a rebuild), wait for the row and advance."""
        with self._transaction() as (conn, cur):
            self._advance(conn, cur, wait=True)

    def _take(self, cur: psycopg.Cursor[Any], events: Sequence[Any]) -> None:
        """Hand consumed events to the projection: applied now, or kept (ordered)."""
        if self._ordered:
            self.projection.receive(cur, events)  # type: ignore[attr-defined]
        else:
            self.projection.apply(cur, events)

    def _sequence(self, cur: psycopg.Cursor[Any], *, wait: bool = False) -> bool:
        """An ordered projection: apply what every partition has reached, in position order
        (one transaction at a time). Without ``wait``, a row another transaction holds is
        skipped, and False returned: the caller looks again once its own batch is committed
        (:meth:`_catch_up_ordered`)."""
        name = self.projection.name
        row = cur.execute(
            f"SELECT position FROM {self._schema}.tracking"
            " WHERE projection = %s AND source = %s FOR UPDATE" + ("" if wait else " SKIP LOCKED"),
            (name, ORDERED_SOURCE),
        ).fetchone()
        if row is None:
            return wait  # locked by another (or, waiting, no such row: nothing to sequence)
        applied = int(str(row[0]))
        found = cur.execute(
            f"SELECT min(position) FROM {self._schema}.tracking"
            " WHERE projection = %s AND source LIKE 'kafka:%%' AND source <> %s",
            (name, ORDERED_SOURCE),
        ).fetchone()
        frontier = int(str(found[0])) if found is not None and found[0] is not None else applied
        if frontier <= applied:
            return True
        self.projection.advance(cur, applied, frontier)  # type: ignore[attr-defined]
        cur.execute(
            f"UPDATE {self._schema}.tracking SET position = %s, updated_at = now()"
            " WHERE projection = %s AND source = %s",
            (frontier, name, ORDERED_SOURCE),
        )
        return True

    def _apply_partition(
        self, cur: psycopg.Cursor[Any], tp: tuple[str, int], pending: dict[int, Consumed]
    ) -> tuple[list[Token], dict[int, Consumed], tuple[Consumed, str] | None]:
        """Everything of one partition that can be applied now, in partition order.

        Returns the tokens to acknowledge, the messages held back, and the poison message
        (with the reason) the partition stopped on, if any.
        """
        topic, partition = tp
        source = source_of(topic, partition)
        start = self._lock_position(cur, source)
        plan = _plan(topic, pending, start)
        applied, failed = self._apply_steps(cur, plan.steps)
        stop = failed or plan.stop
        position = applied[-1][1] if applied else start
        acks = plan.acks + [item.token for item, _ in applied]
        held = plan.held if stop is None else {}
        cur.execute(
            f"UPDATE {self._schema}.tracking SET position = %s, updated_at = now()"
            " WHERE projection = %s AND source = %s",
            (position, self.projection.name, source),
        )
        return acks, held, stop

    def _apply_steps(
        self, cur: psycopg.Cursor[Any], steps: list[tuple[Consumed, int]]
    ) -> tuple[list[tuple[Consumed, int]], tuple[Consumed, str] | None]:
        """Apply the steps' events in one call; if that fails, one by one, so everything
        before the event that cannot be applied lands and the failure names it."""
        events = [s[0].message.event for s in steps if s[0].message is not None]
        todo = [e for e in events if e is not None]
        if not todo:
            return steps, None
        try:
            with cur.connection.transaction():
                self._take(cur, todo)
            self.applied_events += len(todo)
            return steps, None
        except Exception:
            log.debug("batch failed; applying one by one", exc_info=True)
        applied: list[tuple[Consumed, int]] = []
        for item, after in steps:
            event = item.message.event if item.message is not None else None
            if event is not None:
                try:
                    with cur.connection.transaction():
                        self._take(cur, [event])
                except Exception as exc:
                    return applied, (item, f"{type(exc).__name__}: {exc}")
                self.applied_events += 1
            applied.append((item, after))
        return applied, None

    def _lock_position(self, cur: psycopg.Cursor[Any], source: str) -> int:
        name = self.projection.name
        cur.execute(
            f"INSERT INTO {self._schema}.tracking (projection, source, position)"
            " VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
            (name, source),
        )
        return position_of(cur, name, source, for_update=True, schema=self._schema)

    def _record_failure(
        self, cur: psycopg.Cursor[Any], tp: tuple[str, int], item: Consumed, reason: str
    ) -> None:
        position = item.message.position if item.message is not None else None
        cur.execute(
            f"INSERT INTO {self._schema}.projection_failures"
            " (projection, source, position, kafka_offset, reason)"
            " SELECT %s, %s, %s, %s, %s WHERE NOT EXISTS ("
            f" SELECT 1 FROM {self._schema}.projection_failures"
            " WHERE projection = %s AND source = %s AND kafka_offset = %s)",
            (
                self.projection.name,
                source_of(*tp),
                position,
                item.offset,
                reason,
                self.projection.name,
                source_of(*tp),
                item.offset,
            ),
        )


_Results = dict[tuple[str, int], tuple[list[Token], dict[int, Consumed], str | None]]


@dataclass
class _Plan:
    """What one partition's pending messages amount to, given its tracking position."""

    acks: list[Token] = field(default_factory=list)  # duplicates: acknowledge, apply nothing
    steps: list[tuple[Consumed, int]] = field(default_factory=list)  # apply, position after
    held: dict[int, Consumed] = field(default_factory=dict)  # wait for an earlier message
    stop: tuple[Consumed, str] | None = None  # the poison message and why


def _plan(topic: str, pending: dict[int, Consumed], position: int) -> _Plan:
    """Take messages in offset order: skip what is applied, apply what is next (``prev``
    already applied), hold the rest until what they follow arrives; stop at poison."""
    plan = _Plan()
    order = sorted(pending.values(), key=lambda c: c.offset)
    progress = True
    while progress and plan.stop is None:
        progress = False
        waiting: list[Consumed] = []
        for item in order:
            msg = item.message
            if msg is None:
                if waiting:  # a poison message behind a gap: the gap comes first
                    waiting.append(item)
                    continue
                plan.stop = (item, item.poison or "undecodable message")
                break
            if msg.position <= position:
                plan.acks.append(item.token)  # a duplicate of something already applied
            elif msg.prev <= position:
                if msg.event is not None and context_of(msg.event.topic) != _context(topic):
                    plan.stop = (item, f"event type {msg.event.topic} does not belong on {topic}")
                    break
                plan.steps.append((item, msg.position))
                position = msg.position
                progress = True
            else:
                waiting.append(item)
        order = waiting
    if plan.stop is None:
        plan.held = {item.offset: item for item in order}
    return plan


def _context(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


# ---------------------------------------------------------------------- the Faust app


@dataclass
class WorkerConfig:
    bootstrap_servers: str
    group_id: str = "ledgerline-projections"
    topics: tuple[str, ...] = ("ledgerline.ledger",)
    data_dir: Path = Path(".ledgerline")
    session_timeout_s: float = 10.0
    # The most messages one batch takes. A batch is whatever arrived while the previous one
    # was applied: one message when quiet (no added lag), large batches under load (one
    # transaction and one projection call each); consumption pauses at this many waiting.
    batch_max: int = 5000
    # Faust 0.15 asks the broker to hold an empty fetch for 1.5 s; a broker that does not
    # answer early when data arrives (Tansu, measured: p50 350 ms) then adds that much lag.
    fetch_max_wait_ms: int = 50
    extra: dict[str, Any] = field(default_factory=dict)


def build_app(config: WorkerConfig, appliers: Mapping[str, Sequence[KafkaApplier]]) -> Any:
    """A faust-streaming app: Faust keeps the group, the assignment, rebalances and offset
    commits; each fetch's messages go at once to their topic's :class:`Batcher`, and a task
    per topic applies what waits there with the topic's appliers (one per projection)."""
    import faust

    _set_fetch_max_wait(config.fetch_max_wait_ms)
    datadir = config.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "broker": ";".join(f"kafka://{s}" for s in config.bootstrap_servers.split(",")),
        "store": "memory://",
        "web_enabled": False,
        "datadir": str(datadir),
        "processing_guarantee": "at_least_once",
        "broker_session_timeout": config.session_timeout_s,
        "broker_heartbeat_interval": max(0.5, config.session_timeout_s / 6),
        "broker_rebalance_timeout": config.session_timeout_s,
        "consumer_auto_offset_reset": "earliest",
        "topic_allow_declare": False,  # the relay (or `worker` at start) creates the topics
        "broker_commit_interval": 1.0,
        # A rebalance (or a stop) must not wait for every delivered message to be acked: a
        # message held behind a gap is acked only once the gap fills, so waiting would freeze
        # the whole group (no partition moves, nothing is fetched) for as long as the gap
        # lasts. Not waiting is safe here: every write is fenced by its tracking row, so the
        # next owner skips what an in-flight batch applied and applies what it did not.
        "stream_wait_empty": False,
    }
    settings.update(config.extra)
    app = faust.App(config.group_id, **settings)
    gates: dict[str, AckGate] = {}
    waiting: dict[str, Batcher] = {}
    for topic_name in config.topics:
        topic_appliers = list(appliers[topic_name])
        gate = gates[topic_name] = AckGate(len(topic_appliers))
        batcher = waiting[topic_name] = Batcher(config.batch_max)
        # Registered with the conductor, so the consumer subscribes to it and commits the
        # offsets of what is acknowledged on it.
        app.topics.add(app.topic(topic_name, key_serializer="raw", value_serializer="raw"))
        app.task(_applying(app, topic_name, topic_appliers, gate, batcher))

    async def deliver(messages: list[Any]) -> None:
        # Decoded as they arrive, on the event loop, while the appliers' threads apply the
        # previous batch (waiting on PostgreSQL much of the time): a batch taken is ready.
        by_topic: dict[str, list[Consumed]] = {}
        for message in messages:
            by_topic.setdefault(message.topic, []).append(Consumed.of_record(message))
        for topic, delivered in by_topic.items():
            await waiting[topic].add(delivered)

    transport: Any = app.transport  # the app creates its consumer from it when it starts
    transport.Consumer = _bulk_consumer(deliver)

    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        lost = [(tp.topic, tp.partition) for tp in revoked]
        for topic_appliers in appliers.values():
            for applier in topic_appliers:
                applier.forget(lost)
        for topic, gate in gates.items():
            partitions = [p for t, p in lost if t == topic]
            gate.forget(partitions)
            waiting[topic].forget(partitions)

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        owned = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned))
        log.info("assigned partitions %s", owned or "(none)")

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    return app


class AckGate:
    """Acknowledge a message only once every applier of its topic is done with it.

    Each applier (one per projection on the topic) says which messages it applied or found
    already applied; a message it holds back (reordered) or stopped on (poison) it does not
    name. Kafka's offset must not move past a message some projection still needs.
    """

    def __init__(self, appliers: int) -> None:
        self._appliers = appliers
        self._done: dict[tuple[int, int], tuple[Token, set[int]]] = {}

    def done(self, applier: int, tokens: Iterable[Token]) -> list[Token]:
        """Record ``applier``'s finished messages; return the tokens everyone has finished."""
        if self._appliers == 1:
            return list(tokens)
        ready: list[Token] = []
        for token in tokens:
            key = _message_key(token)
            _, finished = self._done.get(key, (token, set()))
            finished.add(applier)
            if len(finished) >= self._appliers:
                self._done.pop(key, None)
                ready.append(token)
            else:
                self._done[key] = (token, finished)  # the newest delivery's token
        return ready

    def forget(self, partitions: Iterable[int]) -> None:
        lost = set(partitions)
        for key in [k for k in self._done if k[0] in lost]:
            del self._done[key]


def _message_key(token: Token) -> tuple[int, int]:
    partition, offset = getattr(token, "partition", None), getattr(token, "offset", None)
    if partition is None or offset is None:  # not a Kafka message: its own identity
        return (-1, id(token))
    return (int(partition), int(offset))


def _set_fetch_max_wait(ms: int) -> None:
    """Give Faust's consumers our fetch wait (Faust 0.15.3 hard-codes 1500 ms)."""
    from faust.transport.drivers import aiokafka as driver

    thread_class: Any = driver.AIOKafkaConsumerThread
    original = getattr(thread_class, "_ledgerline_original", None)
    if original is None:
        original = thread_class._create_worker_consumer
        thread_class._ledgerline_original = original

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start() for its Fetcher
        return consumer

    thread_class._create_worker_consumer = create_worker_consumer


class Batcher:
    """A topic's messages consumed while its previous batch is being applied, taken as the
    next batch.

    The consumer adds each fetch's messages (decoded, :class:`Consumed`); the topic's
    applying task takes everything waiting (up to ``batch_max``) the moment it is free.
    Consuming and decoding thus overlap applying, and the batch size follows the load with no
    timer: a quiet stream's message is applied at once, and under load a batch holds what
    arrived during the last one. With ``batch_max`` or more waiting, consumption pauses until
    a batch is taken, so memory stays bounded and the rest stays at the broker.
    """

    def __init__(self, batch_max: int) -> None:
        self._max = max(1, batch_max)
        self._waiting: list[Any] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._failed: BaseException | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    async def add(self, messages: Sequence[Any]) -> None:
        if self._failed is not None:
            raise self._failed
        self._waiting.extend(messages)
        self._arrived.set()
        while len(self._waiting) >= self._max and self._failed is None:
            self._room.clear()
            await self._room.wait()
        if self._failed is not None:
            raise self._failed

    async def take(self) -> list[Any]:
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
        self._room.set()
        return batch

    def fail(self, exc: BaseException) -> None:
        """The applying task died: consumption stops with its error."""
        self._failed = exc
        self._room.set()

    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked partitions: their waiting messages go (never acknowledged, so the next
        owner receives them)."""
        lost = set(partitions)
        if lost:
            self._waiting = [m for m in self._waiting if int(m.partition) not in lost]
            self._room.set()


def _applying(
    app: Any, name: str, appliers: Sequence[KafkaApplier], gate: AckGate, batcher: Batcher
) -> Callable[[], Awaitable[None]]:
    """The task applying one topic's batches: its projections side by side, each in its own
    transaction (their round trips overlap); a message is acknowledged once all are done."""

    async def apply_batches() -> None:
        try:
            while True:
                batch = await batcher.take()
                results = await asyncio.gather(
                    *(_handle_with_retry(applier.handle, batch) for applier in appliers)
                )
                consumer = app.consumer
                for index, finished in enumerate(results):
                    for message in gate.done(index, finished):
                        consumer.ack(message)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.error("applying %s stopped", name, exc_info=exc)
            batcher.fail(exc)
            raise

    apply_batches.__name__ = f"apply_{name.replace('.', '_').replace('-', '_')}"
    return apply_batches


def _bulk_consumer(deliver: Callable[[list[Any]], Awaitable[None]]) -> type:
    """Faust's aiokafka consumer, handing each fetch's messages to ``deliver`` at once.

    Faust itself takes a message at a time through a race of two tasks, its conductor, an
    event and a stream: about 115 µs of CPU per message here, which capped a worker applying
    nothing at 8,700 messages/s (measured). This keeps the rest of Faust (the group, the
    assignment, flow stopped during a rebalance, gap tracking and commits of acknowledged
    offsets) and replaces that loop, :meth:`Consumer._drain_messages`, with the same checks
    per message and one delivery per fetch.
    """
    from faust.transport.consumer import CONSUMER_FETCHING
    from faust.transport.drivers.aiokafka import Consumer

    class BulkConsumer(Consumer):
        async def _drain_messages(self, fetcher: Any) -> None:
            consumer_stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
            read_offset = self._read_offset
            acks_enabled_for = self.app.topics.acks_enabled_for
            try:
                while not (consumer_stopped() or fetcher_stopped()):
                    self.diag.set_flag(CONSUMER_FETCHING)
                    fetched: list[Any] = []
                    async for tp, message in self.getmany(timeout=1.0):
                        offset, last = message.offset, read_offset[tp]
                        if last is not None and offset < last:
                            continue  # read already (a seek went back): as Faust drops it
                        if last and offset - last > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, last + 1, offset)  # committable past it
                        fetched.append(message)
                        read_offset[tp] = offset
                    self.diag.unset_flag(CONSUMER_FETCHING)
                    if fetched:
                        await deliver(fetched)
                    if self._commit_every is not None and self._n_acked >= self._commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await asyncio.sleep(0)
            except self.consumer_stopped_errors:
                if not self.transport.app.should_stop:
                    raise
            except asyncio.CancelledError:
                if not self.transport.app.should_stop:
                    raise
            finally:
                self.diag.unset_flag(CONSUMER_FETCHING)

    return BulkConsumer


async def _handle_with_retry(
    handle: Callable[[Sequence[Consumed]], list[Token]], batch: list[Consumed]
) -> list[Token]:
    """The database being away is not a reason to lose the batch: retry it with backoff."""
    delay = 0.2
    while True:
        try:
            return await asyncio.to_thread(handle, batch)
        except psycopg.Error as exc:
            log.warning("read-model write failed (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
