"""The relay: committed events, in position order, from the event store to Kafka.

Definition
    One relay process holds an advisory lock (others wait as hot standbys), reads committed
    events after its saved position, publishes each to its context's topic (see
    :mod:`projections.messages`) with kafka-python, waits for the broker to acknowledge the
    whole batch, and only then saves the new position and the per-partition ``prev`` tips in
    ``relay_progress``. It wakes on the store's NOTIFY, and polls as a fallback.

Guarantees
    * At least once, never a gap: progress is saved only after every message of the batch
      was acknowledged (acks=all, idempotent producer, so a partition keeps send order).
      After a crash the relay resends from the saved position; the resent messages carry the
      same positions and ``prev`` links, so workers recognise and skip them.
    * Watermarks: after a batch (at most every ``watermark_interval_s`` under load, always
      once caught up) every partition of every known topic gets a watermark at the relay's
      position, so idle partitions do not hold back a reader's ``min_position``.
    * A broker that is down at start or goes away later is retried with capped exponential
      backoff and one log line per attempt; the relay does not exit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, TopicAlreadyExistsError
from psycopg.sql import SQL, Composed, Identifier

from eventstore.errors import is_outage
from eventstore.recorder import HashChainRecorder
from projections.messages import (
    DEFAULT_TOPIC_PREFIX,
    event_message,
    partition_for,
    topic_for,
    watermark_headers,
)
from projections.sessions import (
    OUTAGE_FIRST_DELAY_S,
    AdvisoryLock,
    listen,
    wait_out_outage,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_PARTITIONS = 8
DEFAULT_CONTEXTS = ("ledger",)
_RELAY_LOCK_KEY = 0x72656C6179  # "relay"


class RelayStopped(Exception):
    """The relay was asked to stop while it waited (for the broker, or for the lock)."""


class TopicLayoutChanged(KafkaError):  # type: ignore[misc]
    """A topic's partition count differs from what the relay recorded: keys would move."""


def with_backoff(
    attempt: Callable[[], T],
    what: str,
    stop: threading.Event,
    *,
    first_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
) -> T:
    """Run ``attempt`` until it succeeds, logging each failure and waiting longer each time."""
    delay = first_delay_s
    while True:
        try:
            return attempt()
        except TopicLayoutChanged:
            raise
        except KafkaError as exc:
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
        if stop.wait(delay):
            raise RelayStopped(what)
        delay = min(delay * 2, max_delay_s)


@dataclass
class RelayConfig:
    bootstrap_servers: str
    name: str = "default"
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    partitions: int = DEFAULT_PARTITIONS
    replication_factor: int = 1
    contexts: tuple[str, ...] = DEFAULT_CONTEXTS
    batch_size: int = 5000
    poll_interval_s: float = 0.5
    coalesce_s: float = 0.01
    watermark_interval_s: float = 0.05
    bootstrap_timeout_s: float = 5.0
    producer: dict[str, Any] = field(default_factory=dict)


def ensure_topics(
    admin: KafkaAdminClient, topics: list[str], partitions: int, replication_factor: int
) -> None:
    """Create the topics that do not exist yet (with ``partitions`` each)."""
    existing = set(admin.list_topics())
    missing = [t for t in topics if t not in existing]
    if not missing:
        return
    with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
        admin.create_topics(
            {
                t: {"num_partitions": partitions, "replication_factor": replication_factor}
                for t in missing
            },
            wait_for_metadata=True,
        )
    log.info("created topics %s with %d partitions", ", ".join(missing), partitions)


class Relay:
    def __init__(self, recorder: HashChainRecorder, config: RelayConfig) -> None:
        self._recorder = recorder
        self._datastore = recorder.datastore
        self._table = _progress_table(recorder)
        self.config = config
        self.position = 0
        self._tips: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._producer: KafkaProducer | None = None
        self._admin: KafkaAdminClient | None = None
        self._leadership = AdvisoryLock(recorder, _RELAY_LOCK_KEY + sum(map(ord, self.config.name)))
        self._watermark_due = False
        self._last_watermark = 0.0
        self.published = 0

    # ------------------------------------------------------------------ life cycle

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        """Publish until :meth:`stop`; a standby waits for the lock first."""
        listener = threading.Thread(
            target=self._listen, name="ledgerline-relay-listen", daemon=True
        )
        listener.start()
        try:
            self._take_lock()
            self._connect()
            self._load_progress()
            log.info("relay %s publishing from position %d", self.config.name, self.position)
            outage_backoff_s = OUTAGE_FIRST_DELAY_S
            while not self._stop.is_set():
                try:
                    if not self._leadership.held:
                        # Back from a database outage: the lock went with its session, and
                        # another relay may have published meanwhile. Resume from what is saved.
                        self._take_lock()
                        self._load_progress()
                        log.info(
                            "relay %s publishing again from position %d",
                            self.config.name,
                            self.position,
                        )
                    sent = self.publish_once()
                    outage_backoff_s = OUTAGE_FIRST_DELAY_S
                except KafkaError as exc:
                    log.warning(
                        "publishing failed (%s: %s); resending from position %d",
                        type(exc).__name__,
                        exc,
                        self.position,
                    )
                    self._reset_producer()
                    continue
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    # The database went away (a restart, a failover): what was sent but not
                    # saved is sent again from the saved position, which consumers expect.
                    self._leadership.release()
                    later = wait_out_outage(
                        log, f"relay {self.config.name}", exc, outage_backoff_s, self._stop
                    )
                    if later is None:
                        break
                    outage_backoff_s = later
                    continue
                if sent:
                    continue
                if self._wake.wait(self.config.poll_interval_s) and self.config.coalesce_s:
                    self._stop.wait(self.config.coalesce_s)
                self._wake.clear()
        except RelayStopped:
            pass
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        self._leadership.release()

    # ------------------------------------------------------------------ one round

    def publish_once(self) -> int:
        """Publish the next batch (if any) and the due watermarks; return events published."""
        producer = self._require_producer()
        events = self._recorder.read_from(self.position, self.config.batch_size)
        futures = []
        tips = {t: list(v) for t, v in self._tips.items()}
        for event in events:
            topic = topic_for(event.topic, self.config.topic_prefix)
            partitions = self._partitions(topic, tips)
            p = partition_for(event.stream_id, len(partitions))
            key, value, headers = event_message(event, partitions[p])
            futures.append(producer.send(topic, value, key, headers, p))
            partitions[p] = event.position
        position = events[-1].position if events else self.position
        now = time.monotonic()
        # Watermarks once the relay is idle (the round after its last batch found nothing),
        # and every watermark_interval_s while it is busy: not after every batch, which
        # would send as many watermarks as events under a steady load.
        due = self._watermark_due and (
            not events or now - self._last_watermark >= self.config.watermark_interval_s
        )
        if events:
            self._watermark_due = True
        if due:
            for topic, partitions in tips.items():
                for p, prev in enumerate(partitions):
                    futures.append(
                        producer.send(topic, b"", None, watermark_headers(position, prev), p)
                    )
            self._watermark_due = False
            self._last_watermark = now
        if not futures:
            return 0
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=0)  # raises the broker's error for a message that was not written
        if events:
            self._save_progress(position, tips)
            self.position, self._tips = position, tips
            self.published += len(events)
        return len(events)

    def _partitions(self, topic: str, tips: dict[str, list[int]]) -> list[int]:
        known = tips.get(topic)
        if known is None:
            count = self._ensure_topic(topic)
            known = tips[topic] = [0] * count
        return known

    def _ensure_topic(self, topic: str) -> int:
        admin = self._admin
        producer = self._require_producer()
        if admin is not None:
            ensure_topics(admin, [topic], self.config.partitions, self.config.replication_factor)
        partitions = producer.partitions_for(topic)
        if not partitions:
            raise KafkaError(f"topic {topic} has no partitions yet")
        return len(partitions)

    # ------------------------------------------------------------------ Postgres side

    def _load_progress(self) -> None:
        with self._datastore.get_connection() as conn:
            row = conn.execute(
                SQL("SELECT position, partition_tips FROM {} WHERE relay = %s").format(self._table),
                (self.config.name,),
            ).fetchone()
        if row is None:
            self.position, self._tips = 0, {}
        else:
            tips = row["partition_tips"]
            self.position = int(row["position"])
            self._tips = {str(t): [int(x) for x in v] for t, v in dict(tips).items()}
        topics = sorted(
            {*self._tips, *(f"{self.config.topic_prefix}{c}" for c in self.config.contexts)}
        )
        for topic in topics:
            count = self._ensure_topic(topic)
            known = self._tips.get(topic)
            if known is not None and len(known) != count:
                raise TopicLayoutChanged(
                    f"topic {topic} has {count} partitions but the relay published to "
                    f"{len(known)}: streams would change partition; recreate the topic with "
                    f"{len(known)} partitions or rebuild the read models"
                )
            self._tips.setdefault(topic, [0] * count)
        # Watermark the topics at once, so readers start from the relay's position.
        self._watermark_due = True

    def _save_progress(self, position: int, tips: dict[str, list[int]]) -> None:
        with self._datastore.get_connection() as conn:
            conn.execute(
                SQL(
                    "INSERT INTO {} (relay, position, partition_tips) VALUES (%s, %s, %s)"
                    " ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position,"
                    " partition_tips = EXCLUDED.partition_tips, updated_at = now()"
                ).format(self._table),
                (self.config.name, position, json.dumps(tips)),
            )

    def _take_lock(self) -> None:
        standing_by = False
        outage_backoff_s = OUTAGE_FIRST_DELAY_S
        while not self._stop.is_set():
            if self._leadership.try_acquire():
                return
            down = self._leadership.unreachable
            if down is not None:
                # The database, not another relay, keeps the lock from us: wait it out as
                # the publishing loop does (same message, same doubling waits).
                later = wait_out_outage(
                    log, f"relay {self.config.name}", down, outage_backoff_s, self._stop
                )
                if later is None:
                    break
                outage_backoff_s, standing_by = later, False
                continue
            outage_backoff_s = OUTAGE_FIRST_DELAY_S
            if not standing_by:
                log.info("relay %s: another relay is publishing; standing by", self.config.name)
                standing_by = True
            self._stop.wait(1.0)
        raise RelayStopped("lock")

    def _listen(self) -> None:
        listen(self._recorder, self._wake, self._stop)

    # ------------------------------------------------------------------ Kafka side

    def _connect(self) -> None:
        servers = self.config.bootstrap_servers.split(",")
        timeout_ms = int(self.config.bootstrap_timeout_s * 1000)
        self._admin = with_backoff(
            lambda: KafkaAdminClient(
                bootstrap_servers=servers,
                client_id=f"ledgerline-relay-{self.config.name}",
                bootstrap_timeout_ms=timeout_ms,
            ),
            f"connecting to Kafka at {self.config.bootstrap_servers}",
            self._stop,
        )
        self._require_producer()

    def _new_producer(self) -> KafkaProducer:
        settings: dict[str, Any] = {
            "bootstrap_servers": self.config.bootstrap_servers.split(","),
            "client_id": f"ledgerline-relay-{self.config.name}",
            "acks": "all",
            "enable_idempotence": True,  # with <= 5 in flight, a partition keeps send order
            "max_in_flight_requests_per_connection": 5,
            "linger_ms": 1,
            "batch_size": 256 * 1024,
            "bootstrap_timeout_ms": int(self.config.bootstrap_timeout_s * 1000),
        }
        settings.update(self.config.producer)
        return KafkaProducer(**settings)

    def _require_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = with_backoff(self._new_producer, "starting the producer", self._stop)
        return self._producer

    def _reset_producer(self) -> None:
        """After a failed batch: a fresh producer, and resend from the saved progress."""
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except KafkaError:
                log.debug("closing the failed producer", exc_info=True)
            self._producer = None
        self._stop.wait(1.0)
        try:
            self._load_progress()
        except KafkaError as exc:
            log.warning("reloading progress failed (%s); will retry", exc)


def _progress_table(recorder: HashChainRecorder) -> Composed:
    return SQL("{}.relay_progress").format(Identifier(recorder.datastore.schema))


def relay_positions(recorder: HashChainRecorder) -> dict[str, int]:
    """Each relay's saved position (what it has published and had acknowledged)."""
    table = _progress_table(recorder)
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(SQL("SELECT relay, position FROM {} ORDER BY relay").format(table))
        return {str(r["relay"]): int(r["position"]) for r in rows.fetchall()}
