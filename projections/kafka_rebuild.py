"""Rebuilding a read model from Kafka: every message of the topic, from the first offset.

Definition
    :func:`fill_from_kafka` reads every partition of the projection's topic from the beginning
    (a plain consumer, no group, so the workers' committed offsets are untouched) and applies
    the messages with the workers' own :class:`KafkaApplier` into a scratch schema, until every
    partition has reached ``upto`` (the relay's acknowledged position: watermarks guarantee
    every partition gets there).

Guarantees
    The same checks as a worker: duplicates skipped, reordering held, a gap or a poison message
    never skipped: the fill fails with the reason (rebuild from the store then).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from psycopg_pool import ConnectionPool

from projections.kafka_worker import Consumed, KafkaApplier, source_of
from projections.runner import Projection

log = logging.getLogger(__name__)


class KafkaFillError(Exception):
    """The topic does not hold what the rebuild needs (a gap, a poison message, no broker)."""


@dataclass(frozen=True)
class KafkaSource:
    bootstrap_servers: str
    topic: str
    stall_timeout_s: float = 30.0  # nothing new arrives (the relay is behind, or down)
    gap_timeout_s: float = 3.0  # nothing new arrives while messages wait behind a gap


def fill_from_kafka(
    url: str, projection: Projection, schema: str, source: KafkaSource, upto: int
) -> int:
    """Apply the topic into ``schema`` until every partition reaches ``upto``; return the
    number of event messages applied or skipped as duplicates."""
    consumer = KafkaConsumer(
        bootstrap_servers=source.bootstrap_servers.split(","),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        bootstrap_timeout_ms=5000,
    )
    pool: ConnectionPool[Any] = ConnectionPool(
        url, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(source.topic) or ())
        if not partitions:
            raise KafkaFillError(f"topic {source.topic} does not exist")
        tps = [TopicPartition(source.topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        applier = KafkaApplier(pool, projection, schema=schema)
        applier.init_tracking(source.topic, len(partitions))
        seen = 0
        last_progress = time.monotonic()
        reached = _lowest(pool, schema, projection.name, source.topic, partitions)
        while reached < upto:
            records = consumer.poll(timeout_ms=200, max_records=5000)
            batch = [Consumed.of_record(r) for rs in records.values() for r in rs]
            if batch:
                applier.handle(batch)
                seen += len(batch)
            for p in partitions:
                failed = applier.failure(source.topic, p)
                if failed is not None:
                    raise KafkaFillError(f"{source.topic} partition {p}: {failed}")
            now_reached = _lowest(pool, schema, projection.name, source.topic, partitions)
            if now_reached > reached or batch:
                last_progress = time.monotonic()
            reached = now_reached
            quiet = time.monotonic() - last_progress
            if quiet > source.stall_timeout_s or (applier.held() and quiet > source.gap_timeout_s):
                raise KafkaFillError(
                    f"{source.topic} stops at position {reached} before {upto}"
                    f"{' (messages held behind a gap)' if applier.held() else ''}: the topic "
                    "no longer holds the whole history; rebuild from the store"
                )
        return seen
    finally:
        consumer.close()
        pool.close()


def _lowest(
    pool: ConnectionPool[Any], schema: str, name: str, topic: str, partitions: list[int]
) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            f"SELECT min(position) FROM {schema}.tracking"
            " WHERE projection = %s AND source = ANY(%s)",
            (name, [source_of(topic, p) for p in partitions]),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
