"""Prometheus metrics: requests, latencies, command outcomes, projection lag."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match


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
        self.head_position = Gauge(
            "ledgerline_event_store_head_position",
            "Position of the last committed event",
            registry=self.registry,
        )


def route_of(request: Request) -> str:
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unknown"))
    return "unmatched"


def middleware(
    metrics: Metrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = route_of(request)
        metrics.latency.labels(route, request.method).observe(time.perf_counter() - start)
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        return response

    return observe
