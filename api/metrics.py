"""Prometheus metrics: requests, latencies, command outcomes, projection lag."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        )
        self.cache_entries = Gauge(
            "ledgerline_aggregate_cache_entries",
            "Aggregates held by the command processor's cache",
            registry=self.registry,
        )
        self.cache_bytes = Gauge(
            "ledgerline_aggregate_cache_bytes",
            "Approximate memory held by the command processor's cache (bounded)",
            registry=self.registry,
        )
        self.cache_lookups = Gauge(
            "ledgerline_aggregate_cache_lookups",
            "Cache lookups since start, by result (hit ratio = hit / (hit + miss))",
            ["result"],
            registry=self.registry,
        )
        self.cache_evictions = Gauge(
            "ledgerline_aggregate_cache_evictions",
            "Aggregates evicted from the cache since start (settled transfers first)",
            registry=self.registry,
        )
        self.snapshots = Gauge(
            "ledgerline_snapshots",
            "Aggregate snapshots since start, by what happened (written, loaded, refused: did "
            "not match the chain and were ignored)",
            ["event"],
            registry=self.registry,
        )
        self.head_position = Gauge(
            "ledgerline_event_store_head_position",
            "Position of the last committed event",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task or stream): counts and times every request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            path = str(getattr(route, "path", "unmatched"))
            method = str(scope.get("method", ""))
            self.metrics.latency.labels(path, method).observe(time.perf_counter() - start)
            self.metrics.requests.labels(path, method, str(status)).inc()
