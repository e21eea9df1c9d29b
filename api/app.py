"""The FastAPI application: routers, problem+json errors, metrics, OpenAPI."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import problems
from api.fast import FastCommandRoutes
from api.keys import KeyStore
from api.metrics import EXPOSITION_TYPE, Metrics, MetricsMiddleware
from api.openapi import to_openapi_30
from api.problems import Problem, problem_responses
from api.strict import DEFAULT_MAX_BATCH_BODY_BYTES, DEFAULT_MAX_BODY_BYTES, StrictBodyMiddleware
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
    # Innermost first: the hot command routes answered without the framework's layers, then
    # metrics around everything.
    app.add_middleware(FastCommandRoutes, services=services)
    app.add_middleware(MetricsMiddleware, metrics=services.metrics)
    # Outermost: a body refused for its size, type or syntax never reaches a route.
    app.add_middleware(
        StrictBodyMiddleware,
        max_body_bytes=int(services.extra.get("max_body_bytes") or DEFAULT_MAX_BODY_BYTES),
        max_batch_body_bytes=int(
            services.extra.get("max_batch_body_bytes") or DEFAULT_MAX_BATCH_BODY_BYTES
        ),
    )
    metrics_token: str | None = services.extra.get("metrics_token")

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (a bearer token when LEDGERLINE_METRICS_TOKEN is set)",
        response_class=PlainTextResponse,
        responses=problem_responses(401),
    )
    async def metrics(request: Request) -> PlainTextResponse:
        if metrics_token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {metrics_token}".encode()):
                raise Problem(
                    401,
                    "unauthenticated",
                    "/metrics needs 'Authorization: Bearer <LEDGERLINE_METRICS_TOKEN>'",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        m: Metrics = request.app.state.metrics
        refresh = services.extra.get("refresh_metrics")
        if refresh is not None:
            refresh()
        m.refresh_process()
        return PlainTextResponse(m.exposition(), media_type=EXPOSITION_TYPE)

    for router in routers or []:
        app.include_router(router)
    build_openapi = app.openapi
    converted: dict[str, Any] = {}

    def openapi_30() -> dict[str, Any]:
        if not converted:
            converted.update(to_openapi_30(build_openapi()))
        return converted

    app.openapi = openapi_30  # type: ignore[method-assign]
    return app
