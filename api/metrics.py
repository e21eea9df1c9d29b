"""Prometheus metrics: requests, latencies, command outcomes, projection lag."""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process is one of several serving one API (``serve --workers N``): its
    metrics then go to files the scrape adds up across the live workers."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        if not multiprocess():
            from prometheus_client import PlatformCollector, ProcessCollector

            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "ledgerline_http_requests_total",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledgerline_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.commands = Counter(
            "ledgerline_command_outcomes_total",
            "Command outcomes by command type and result code",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.projection_lag_events = Gauge(
            "ledgerline_projection_lag_events",
            "Events committed to the store but not yet applied to the read model",
            ["projection"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.cache_entries = Gauge(
            "ledgerline_aggregate_cache_entries",
            "Aggregates held by the command processors' caches (all workers)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_bytes = Gauge(
            "ledgerline_aggregate_cache_bytes",
            "Approximate memory held by the command processors' caches (bounded per worker)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_lookups = Gauge(
            "ledgerline_aggregate_cache_lookups",
            "Cache lookups since start, by result (hit ratio = hit / (hit + miss))",
            ["result"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_evictions = Gauge(
            "ledgerline_aggregate_cache_evictions",
            "Aggregates evicted from the cache since start (settled transfers first)",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.snapshots = Gauge(
            "ledgerline_snapshots",
            "Aggregate snapshots since start, by what happened (written, loaded, refused: did "
            "not match the chain and were ignored)",
            ["event"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.head_position = Gauge(
            "ledgerline_event_store_head_position",
            "Position of the last committed event",
            registry=self.registry,
            multiprocess_mode="max",
        )
        if multiprocess():
            # Each worker's own CPU and memory (ProcessCollector cannot see the others).
            self.process_cpu = Gauge(
                "ledgerline_process_cpu_seconds",
                "CPU seconds a serve worker process has used",
                registry=self.registry,
                multiprocess_mode="all",
            )
            self.process_rss = Gauge(
                "ledgerline_process_resident_memory_bytes",
                "Resident memory of a serve worker process",
                registry=self.registry,
                multiprocess_mode="all",
            )

    def refresh_process(self) -> None:
        if multiprocess():
            import resource

            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.process_cpu.set(usage.ru_utime + usage.ru_stime)
            with open("/proc/self/statm") as statm:
                pages = int(statm.read().split()[1])
            self.process_rss.set(pages * os.sysconf("SC_PAGE_SIZE"))

    def exposition(self) -> bytes:
        """Every metric, added up across the live workers in ``serve --workers N``."""
        if multiprocess():
            from prometheus_client import multiprocess as mp

            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


EXPOSITION_TYPE = CONTENT_TYPE_LATEST


# What a request did, for its access-log line: the command it submitted and the outcome.
request_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "ledgerline_request", default=None
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids: 32 hex digits, a random prefix per process and a counter (unique across the
# workers of ``serve`` and its restarts without reading the system's entropy per request).
_ID_PREFIX = secrets.token_hex(10)
_ID_COUNTER = itertools.count(secrets.randbelow(1 << 40))


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFF:012x}"


access_log = logging.getLogger("ledgerline.access")


def note(**fields: Any) -> None:
    """Add ``fields`` to the current request's access-log line (no-op outside a request)."""
    current = request_context.get()
    if current is not None:
        current.update(fields)


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or stream): counts and times every request,
    gives it a request id (the caller's ``X-Request-Id`` if well formed) and writes its access
    log line: request id, method, route, status, latency, and the command and its outcome."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode(
            "latin-1"
        )
        request_id = given if _REQUEST_ID.match(given) else _new_request_id()
        context: dict[str, Any] = {}
        token = request_context.set(context)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            request_context.reset(token)
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = str(getattr(route, "path", "unmatched"))
            method = str(scope.get("method", ""))
            self.metrics.latency.labels(path, method).observe(elapsed)
            self.metrics.requests.labels(path, method, str(status)).inc()
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    method,
                    scope.get("path", ""),
                    status,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": path,
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 2),
                        **context,
                    },
                )
