"""The FastAPI application: routers, problem+json errors, metrics, OpenAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import problems
from api.keys import KeyStore
from api.metrics import Metrics, MetricsMiddleware
from api.problems import Problem
from eventstore.store import EventStore


@dataclass
class ApiServices:
    """What the routers need; built by the composition root."""

    store: EventStore
    keys: KeyStore
    metrics: Metrics
    extra: dict[str, Any]


def create_app(services: ApiServices, *, routers: list[Any] | None = None) -> FastAPI:
    app = FastAPI(
        title="Ledgerline",
        version="0.1.0",
        description=(
            "Double-entry ledger on a hash-chained, event-sourced store. Every error is "
            "RFC 9457 problem+json with a stable `type` per rule and the rule's `code`."
        ),
    )
    app.state.services = services
    app.state.keys = services.keys
    app.state.metrics = services.metrics
    app.add_exception_handler(Problem, problems.handle_problem)
    app.add_exception_handler(RequestValidationError, problems.handle_validation)
    app.add_exception_handler(StarletteHTTPException, problems.handle_http)
    app.add_exception_handler(Exception, problems.handle_unexpected)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def metrics(request: Request) -> PlainTextResponse:
        m: Metrics = request.app.state.metrics
        refresh = services.extra.get("refresh_metrics")
        if refresh is not None:
            refresh()
        return PlainTextResponse(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers or []:
        app.include_router(router)
    return app
