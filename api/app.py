"""The FastAPI application: routers, problem+json errors, metrics, OpenAPI."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
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


API_DESCRIPTION = """Double-entry ledger on a hash-chained, event-sourced store.

**Authentication.** Every route but the operational ones takes an API key:
`Authorization: Bearer ll_...` (use *Authorize* above). Keys carry one role (operator, auditor,
regulator, admin); a route names the roles it admits.

**Ids** are unsigned 128-bit integers. Send them as JSON integers or, from clients whose numbers
are doubles (JavaScript), as canonical decimal strings (`"779005"`); read responses with a
big-integer-aware JSON parser (ids come back as integers).

**Amounts** are decimal strings in major units (`"12.34"`); inside, integer minor units.

**Errors** are RFC 9457 `application/problem+json` with a stable `type`
(`https://ledgerline.dev/problems/<code>`) and the rule's `code`: 400/413/415 the body itself,
422 a request that does not match the schema, 409 a ledger rule or state refused it, 404 the
path's resource, 401/403 the key, 503 retry later (`Retry-After`).

**Read your writes.** Every command answers with the `position` of its last event; pass it as
`?min_position=` to any query to wait (up to 2 s) until the read models include it.
"""


def _operation_id(route: Any) -> str:
    """Stable operation ids: the route function's name (``create_transfer``)."""
    return str(route.name)


def _local_docs(app: FastAPI) -> None:
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from starlette.staticfiles import StaticFiles

    static = Path(__file__).with_name("static")
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Ledgerline API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Ledgerline API",
            redoc_js_url="/static/redoc/redoc.standalone.js",
            redoc_favicon_url="data:,",
            with_google_fonts=False,
        )


def create_app(services: ApiServices, *, routers: list[Any] | None = None) -> FastAPI:
    app = FastAPI(
        title="Ledgerline",
        version="0.1.0",
        description=API_DESCRIPTION,
        docs_url=None,  # served below from vendored assets: the docs work offline
        redoc_url=None,
        generate_unique_id_function=_operation_id,
        # Observability is ours (Prometheus metrics, JSON access logs, request ids): FastAPI's
        # own OpenTelemetry hooks would only ask, on every request, whether a provider exists.
        telemetry={"tracing": False, "metrics": False, "logs": False},
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
        """Always 200 while the process runs (a liveness probe; see `/readyz` for readiness)."""
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (a bearer token when LEDGERLINE_METRICS_TOKEN is set)",
        response_class=PlainTextResponse,
        responses=problem_responses(401),
    )
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus exposition: requests, latencies, command outcomes, projection lag, the
        aggregate cache, snapshots, the head of the log, process CPU and memory."""
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
    _local_docs(app)
    build_openapi = app.openapi
    converted: dict[str, Any] = {}

    def openapi_30() -> dict[str, Any]:
        if not converted:
            converted.update(to_openapi_30(build_openapi()))
        return converted

    app.openapi = openapi_30  # type: ignore[method-assign]
    return app
