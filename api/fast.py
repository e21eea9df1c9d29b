"""The hot command route without the framework's layers: ``POST /v1/transfers``.

Definition
    :class:`FastCommandRoutes` is ASGI middleware that answers ``POST /v1/transfers`` itself
    and hands every other request to the FastAPI application. It does what the FastAPI route
    does, in the same order and with the same code for every rule (``authorize``, the
    ``TransferIn`` model, ``transfer_command``, ``rejection``, ``transfer_out``), without
    routing, dependency injection, a second JSON parse (the strict-body middleware already
    parsed it) or response validation. FastAPI still documents the route.

Guarantees
    Answers are byte for byte those of the FastAPI route (``tests/e2e/test_fast_path.py``
    sends the same requests both ways): statuses, bodies, problem types and headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from api.metrics import note
from api.problems import Problem, problem_response
from api.security import OPERATORS, authorize

_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastCommandRoutes:
    def __init__(self, app: ASGIApp, services: Any) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or scope.get("path") != "/v1/transfers"
            or not self.services.extra.get("fast_paths", True)
        ):
            await self.app(scope, receive, send)
            return
        await self._create_transfer(scope, receive, send)

    async def _create_transfer(self, scope: Scope, receive: Receive, send: Send) -> None:
        from api.ledger_routes import TransferIn, _transfer_cmd, rejection, transfer_out
        from commands.ledger import transfer_command

        # The route's metrics label, as FastAPI's router would have set it.
        scope["route"] = _ROUTE
        path = "/v1/transfers"
        try:
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization")
            authorize(
                authorization.decode("latin-1") if authorization is not None else None,
                self.services.keys,
                OPERATORS,
            )
            parsed = scope.get("ledgerline.json")
            try:
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
                body = TransferIn.model_validate(parsed)
            except (ValidationError, ValueError):
                # A malformed request is rare: let the framework word the 422 exactly as it
                # does for every other route (the body was not consumed here).
                await self.app(scope, receive, send)
                return
            command = transfer_command(_transfer_cmd(body))
            processor = self.services.extra["ledger"]
            outcome = await asyncio.wrap_future(processor.submit(command))
            result = (
                outcome.result.get("status", "accepted")
                if outcome.accepted
                else outcome.result.get("code", "rejected")
            )
            self.services.metrics.commands.labels(command.command_type, result).inc()
            note(command_id=command.command_id, outcome=result, position=outcome.position)
            if not outcome.accepted:
                raise rejection(outcome.result)
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)
            return
        status = 200 if outcome.replayed or outcome.result.get("status") == "exists" else 201
        payload = transfer_out(outcome.result["transfer"], outcome.position or 0)
        data = payload.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(data)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": data})


class _Route:
    path = "/v1/transfers"


_ROUTE = _Route()
