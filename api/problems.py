"""RFC 9457 problem details: one stable ``type`` URI per rule, one handler for all of them.

Definition
    Every error response is ``application/problem+json`` with ``type``, ``title``, ``status``,
    ``detail`` and ``code`` (the rule's stable snake_case name), plus the ids involved.
    ``type`` is ``https://ledgerline.dev/problems/<code>`` and never changes for a rule.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_BASE = "https://ledgerline.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


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


async def handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"]) or "body"
    return problem_response(
        Problem(422, "invalid_request", f"{where}: {first['msg']}", errors=errors),
        request.url.path,
    )


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
    return problem_response(
        Problem(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})),
        request.url.path,
    )


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        Problem(500, "internal_error", "an unexpected error occurred; nothing was applied"),
        request.url.path,
    )
