"""RFC 9457 problem details: one stable ``type`` URI per rule, one handler for all of them.

Definition
    Every error response is ``application/problem+json`` with ``type``, ``title``, ``status``,
    ``detail`` and ``code`` (the rule's stable snake_case name), plus the ids involved.
    ``type`` is ``https://ledgerline.dev/problems/<code>`` and never changes for a rule.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://ledgerline.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


# Rules the request schema states itself; a request breaking one is a 422 with this code
# instead of the generic ``invalid_request``.
SCHEMA_RULE_CODES = frozenset({"unknown_currency", "flags_are_mutually_exclusive"})


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


class Problem(Exception):
    """An error to send as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": problem_type(self.code),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        body.update({k: v for k, v in self.extra.items() if v is not None})
        return body


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


async def handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request.url.path)


def validation_problem(raw_errors: Sequence[Mapping[str, Any]]) -> Problem:
    """The 422 for a request that does not match its schema (FastAPI's or a model's)."""
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in raw_errors
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or "body"
    # A rule the schema states (an ISO currency, exclusive flags) keeps its own name.
    types = [str(e.get("type", "")) for e in raw_errors]
    code = next((t for t in types if t in SCHEMA_RULE_CODES), "invalid_request")
    return Problem(422, code, f"{where}: {first['msg']}", errors=errors)


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_problem(exc.errors()), request.url.path)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


async def handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; a path served by
        # several routes (GET, PATCH and DELETE /v1/orders/{id}) allows all their methods.
        headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
    return problem_response(
        Problem(exc.status_code, code, str(exc.detail), headers=headers), request.url.path
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    path = request.url.path

    def walk(routes: Any) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)  # an included router
            if inner is not None:
                walk(inner.routes)
                continue
            regex = getattr(route, "path_regex", None)
            allowed = getattr(route, "methods", None)  # a Mount (static files) has none
            if regex is not None and allowed and regex.match(path):
                methods.update(allowed)

    walk(request.app.routes)
    return sorted(methods)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    from eventstore.errors import is_outage

    if is_outage(exc):
        log.warning("database unavailable while serving %s: %s", request.url.path, exc)
        return problem_response(
            Problem(
                503,
                "database_unavailable",
                "the database is unavailable; a command may or may not have been committed: "
                "retry it with the same id (retries are idempotent)",
                headers={"Retry-After": "1"},
            ),
            request.url.path,
        )
    log.error("internal error serving %s", request.url.path, exc_info=exc)
    return problem_response(
        Problem(500, "internal_error", "an unexpected error occurred; nothing was applied"),
        request.url.path,
    )


# ------------------------------------------------------------------ OpenAPI

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri", "description": PROBLEM_BASE + "<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "the rule's stable snake_case name"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}

_MEANING = {
    400: "the body is not UTF-8 JSON",
    401: "no API key, or an unknown or revoked one",
    403: "the key's role may not do this",
    404: "the resource named in the path does not exist",
    409: "a ledger rule or the ledger's state refused the command (the `code` names the rule)",
    413: "the body is larger than this route accepts",
    415: "the body is not `application/json`",
    422: "the request does not match this operation's schema (or a key appears twice)",
    503: "the read model has not caught up (retry after `Retry-After`), or the server is not ready",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, each with the problem schema."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": f"RFC 9457 problem: {_MEANING[status]}",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
        }
        if status == 503:
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[status] = entry
    return out


# Every command route: auth, body checks, schema, rules, read-model waits.
COMMAND_ERRORS = problem_responses(400, 401, 403, 409, 413, 415, 422, 503)
# Every query route: auth, parameters, unknown resources, read-model waits.
QUERY_ERRORS = problem_responses(401, 403, 404, 422, 503)
