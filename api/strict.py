"""Strict input at the edge: the body is checked before any route sees it.

Definition
    :class:`StrictBodyMiddleware` wraps the whole application. For every HTTP request that
    carries a body it enforces, in this order:

    1. **Size** (413 ``payload_too_large``): at most ``max_body_bytes`` (1 MiB by default), or
       ``max_batch_body_bytes`` on batch routes (paths ending in ``-batches``, and
       ``BULK_PREFIXES``: whole sanctions lists, bank statements). A declared
       ``Content-Length`` over the limit is refused before a byte is read; a body that streams
       past it is refused as soon as it does.
    2. **Media type** (415 ``unsupported_media_type``): ``application/json``, optionally with
       ``charset=utf-8`` and nothing else.
    3. **Encoding and syntax** (400 ``invalid_json``): UTF-8 without a byte-order mark, and
       one JSON document; ``NaN`` and ``Infinity`` are not JSON.
    4. **Duplicate keys** (422 ``duplicate_key``): an object that names a key twice is refused
       rather than silently keeping one of the values.

    The console's HTML forms (paths under ``/console/``) post
    ``application/x-www-form-urlencoded`` bodies instead: rule 1 applies to them, rule 2 asks
    for that media type, and the console parses the fields itself.

Guarantees
    A request refused here never reaches a route, so it changes nothing. A body that passes is
    handed on byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import Problem, problem_response

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB
# Bulk data that is not a batch of commands: a whole sanctions list (OFAC's SDN.CSV is MBs), a
# bank statement to reconcile (a month of a busy nostro account).
BULK_PREFIXES = ("/v1/aml/sanctions-lists/", "/v1/reconciliations")
DEFAULT_MAX_BATCH_BODY_BYTES = 16 << 20  # a batch at its documented maximum, with room
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_PATH_PREFIX = "/console/"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_no_constant)


def parse_strict_json(body: bytes) -> Any:
    """Parse a request body under the rules above; raise :class:`Problem` on any breach."""
    if body.startswith(b"\xef\xbb\xbf"):
        raise Problem(400, "invalid_json", "the body starts with a byte-order mark; send UTF-8")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            400, "invalid_json", f"the body is not UTF-8 (byte {exc.start} is invalid)"
        ) from None
    try:
        return _DECODER.decode(text)
    except DuplicateKey as exc:
        raise Problem(422, "duplicate_key", str(exc), key=exc.key) from None
    except json.JSONDecodeError as exc:
        raise Problem(
            400,
            "invalid_json",
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except ValueError as exc:
        raise Problem(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _media_type_ok(value: str) -> bool:
    parts = [p.strip() for p in value.split(";")]
    if parts[0].lower() != "application/json":
        return False
    for param in parts[1:]:
        name, _, arg = param.partition("=")
        if name.strip().lower() != "charset" or arg.strip().strip('"').lower() != "utf-8":
            return False
    return True


class StrictBodyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_batch_body_bytes: int = DEFAULT_MAX_BATCH_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_body_bytes = max_batch_body_bytes

    def limit_for(self, path: str) -> int:
        bulk = path.endswith("-batches") or path.startswith(BULK_PREFIXES)
        return self.max_batch_body_bytes if bulk else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.limit_for(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, _too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, _too_large(limit))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body and path.startswith(FORM_PATH_PREFIX):
            media = headers.get("content-type", "")
            if media.split(";")[0].strip().lower() != FORM_MEDIA_TYPE:
                await self._refuse(
                    scope,
                    receive,
                    send,
                    Problem(
                        415,
                        "unsupported_media_type",
                        f"the console's forms send '{FORM_MEDIA_TYPE}'",
                    ),
                )
                return
        elif body:
            media = headers.get("content-type")
            if media is None or not _media_type_ok(media):
                await self._refuse(
                    scope,
                    receive,
                    send,
                    Problem(
                        415,
                        "unsupported_media_type",
                        "send the body as 'Content-Type: application/json' (UTF-8)",
                    ),
                )
                return
            try:
                scope["ledgerline.json"] = parse_strict_json(body)
            except Problem as problem:
                await self._refuse(scope, receive, send, problem)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
        await problem_response(problem, str(scope.get("path", "")))(scope, receive, send)


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "payload_too_large",
        f"the body is larger than this route accepts ({limit} bytes)",
        max_body_bytes=limit,
    )
