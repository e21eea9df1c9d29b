"""``ledgerline relay`` and ``ledgerline worker``: the Kafka side of the read path.

Environment variables (besides ``DATABASE_URL`` and ``KAFKA_BOOTSTRAP_SERVERS``)
    ``LEDGERLINE_KAFKA_TOPIC_PREFIX``   topic name prefix (``ledgerline.``)
    ``LEDGERLINE_KAFKA_PARTITIONS``     partitions of each topic the relay creates (8)
    ``LEDGERLINE_KAFKA_REPLICATION``    replication factor of those topics (1)
    ``LEDGERLINE_KAFKA_SESSION_TIMEOUT_S``  consumer-group session timeout of workers (10)
    ``LEDGERLINE_WORKER_GROUP``         the workers' consumer group (``ledgerline-projections``)
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerline.errors import LedgerlineError

if TYPE_CHECKING:
    from ledgerline.database import DatabaseUrls

ENV_TOPIC_PREFIX = "LEDGERLINE_KAFKA_TOPIC_PREFIX"
ENV_PARTITIONS = "LEDGERLINE_KAFKA_PARTITIONS"
ENV_REPLICATION = "LEDGERLINE_KAFKA_REPLICATION"
ENV_SESSION_TIMEOUT = "LEDGERLINE_KAFKA_SESSION_TIMEOUT_S"
ENV_WORKER_GROUP = "LEDGERLINE_WORKER_GROUP"
STREAMING_VARIABLES = (
    ENV_TOPIC_PREFIX,
    ENV_PARTITIONS,
    ENV_REPLICATION,
    ENV_SESSION_TIMEOUT,
    ENV_WORKER_GROUP,
)

log = logging.getLogger("ledgerline.streaming")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic_prefix: str = "ledgerline."
    partitions: int = 8
    replication_factor: int = 1
    session_timeout_s: float = 10.0
    worker_group: str = "ledgerline-projections"


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise LedgerlineError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise LedgerlineError(f"{name} must be at least {minimum:g}")
    return value


def kafka_settings(bootstrap: str | None, env: Mapping[str, str] | None = None) -> KafkaSettings:
    if not bootstrap:
        raise LedgerlineError(
            "no Kafka configured: set KAFKA_BOOTSTRAP_SERVERS (or kafka_bootstrap_servers in "
            "the config file)"
        )
    env = os.environ if env is None else env
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=env.get(ENV_TOPIC_PREFIX) or "ledgerline.",
        partitions=int(_number(env, ENV_PARTITIONS, 8, minimum=1)),
        replication_factor=int(_number(env, ENV_REPLICATION, 1, minimum=1)),
        session_timeout_s=_number(env, ENV_SESSION_TIMEOUT, 10.0, minimum=1.0),
        worker_group=env.get(ENV_WORKER_GROUP) or "ledgerline-projections",
    )


def _stop_on_signals(stop: Any) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def _open_store(urls: DatabaseUrls, pool_size: int) -> Any:
    """The store over the runtime's login, migrating first when the owner's URL is at hand."""
    from eventstore.store import EventStore
    from ledgerline.runtime import migrate_all, require_migrated

    if urls.owner is not None:
        migrate_all(urls.owner, urls.app)
    elif urls.app is not None:
        require_migrated(urls.app)
    return EventStore(urls.owner, app_url=urls.app, pool_size=pool_size, run_migrations=False)


ENV_METRICS_PORT = "LEDGERLINE_METRICS_PORT"


def serve_metrics(gauges: Mapping[str, tuple[str, Callable[[], float]]]) -> None:
    """Expose ``name -> (help, read)`` gauges on ``/metrics`` at ``LEDGERLINE_METRICS_PORT``
    (with the process's own CPU and memory), when it is set."""
    port = os.environ.get(ENV_METRICS_PORT)
    if not port:
        return
    from prometheus_client import (
        CollectorRegistry,
        Gauge,
        PlatformCollector,
        ProcessCollector,
        start_http_server,
    )

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    for name, (text, read) in gauges.items():
        Gauge(name, text, registry=registry).set_function(read)
    try:
        start_http_server(int(port), registry=registry)
    except (OSError, ValueError) as exc:
        raise LedgerlineError(f"{ENV_METRICS_PORT}={port}: cannot serve metrics: {exc}") from None
    log.info("metrics on http://0.0.0.0:%s/metrics", port)


def run_relay(urls: DatabaseUrls, kafka: KafkaSettings) -> int:
    from projections.registry import contexts
    from projections.relay import Relay, RelayConfig, TopicLayoutChanged

    with _open_store(urls, 2) as store:
        relay = Relay(
            store.recorder,
            RelayConfig(
                bootstrap_servers=kafka.bootstrap_servers,
                topic_prefix=kafka.topic_prefix,
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                contexts=contexts(),
            ),
        )
        _stop_on_signals(relay.stop)

        def behind() -> float:
            return float(store.recorder.head().position - relay.position)

        serve_metrics(
            {
                "ledgerline_relay_position": (
                    "the last position published and acknowledged",
                    lambda: float(relay.position),
                ),
                "ledgerline_relay_published_events": (
                    "events published since start",
                    lambda: float(relay.published),
                ),
                "ledgerline_relay_lag_events": ("events committed, not yet published", behind),
            }
        )
        print(f"ledgerline: relay publishing to {kafka.bootstrap_servers}", flush=True)
        try:
            relay.run()
        except TopicLayoutChanged as exc:
            raise LedgerlineError(str(exc)) from None
    return 0


def prepare_topics(
    kafka: KafkaSettings, topics: list[str], stop: threading.Event
) -> dict[str, int]:
    """Wait for the broker (with backoff), create missing topics; return their partitions."""
    from kafka import KafkaAdminClient, KafkaConsumer

    from projections.relay import ensure_topics, with_backoff

    def connect() -> KafkaAdminClient:
        return KafkaAdminClient(
            bootstrap_servers=kafka.bootstrap_servers.split(","), bootstrap_timeout_ms=5000
        )

    admin = with_backoff(connect, f"connecting to Kafka at {kafka.bootstrap_servers}", stop)
    try:
        ensure_topics(admin, topics, kafka.partitions, kafka.replication_factor)
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers.split(","))
    try:
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        consumer.close()


def run_worker(
    urls: DatabaseUrls, kafka: KafkaSettings, data_dir: Path, *, loglevel: str = "info"
) -> int:
    # uvloop under Faust, as under serve's uvicorn: chosen before anything makes a loop.
    import mode.loop

    mode.loop.use("uvloop")
    import faust

    from projections.kafka_worker import KafkaApplier, WorkerConfig, build_app
    from projections.registry import PROJECTIONS
    from projections.relay import RelayStopped
    from readmodels.schema import SCHEMA as RM_SCHEMA

    topics_of = {
        spec.name: [f"{kafka.topic_prefix}{c}" for c in spec.contexts]
        for spec in PROJECTIONS.values()
    }
    topics = sorted({t for ts in topics_of.values() for t in ts})
    stop = threading.Event()
    _stop_on_signals(stop.set)
    try:
        partitions = prepare_topics(kafka, topics, stop)
    except RelayStopped:
        return 0
    # A connection for each projection of the busiest topic applying side by side, each
    # other topic's task, and an ordered projection's catch-up.
    with _open_store(urls, 8) as store:
        appliers: dict[str, list[KafkaApplier]] = {t: [] for t in topics}
        for spec in PROJECTIONS.values():
            applier = KafkaApplier(store.datastore.pool, spec.create(RM_SCHEMA))
            applier.init_tracking({t: partitions[t] for t in topics_of[spec.name]})
            for t in topics_of[spec.name]:
                appliers[t].append(applier)
        every = [a for topic_appliers in appliers.values() for a in topic_appliers]
        serve_metrics(
            {
                "ledgerline_worker_applied_events": (
                    "events this worker applied to the read models since start",
                    lambda: float(sum(a.applied_events for a in set(every))),
                ),
                "ledgerline_worker_held_messages": (
                    "messages held back until an earlier one of their partition arrives",
                    lambda: float(sum(a.held() for a in set(every))),
                ),
                "ledgerline_worker_stopped_partitions": (
                    "partitions stopped on a poison message (projection_failures has why)",
                    lambda: float(sum(a.stopped_partitions() for a in set(every))),
                ),
            }
        )
        app = build_app(
            WorkerConfig(
                bootstrap_servers=kafka.bootstrap_servers,
                group_id=kafka.worker_group,
                topics=tuple(topics),
                data_dir=data_dir,
                session_timeout_s=kafka.session_timeout_s,
            ),
            appliers,
        )
        print(
            f"ledgerline: worker in group {kafka.worker_group} projecting {', '.join(topics)} "
            f"({', '.join(str(partitions[t]) for t in topics)} partitions)",
            flush=True,
        )
        worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0
