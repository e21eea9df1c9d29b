"""Bearer-token authentication and role checks, as FastAPI dependencies.

Definition
    A request is authenticated by ``Authorization: Bearer <API key>``. A ``GET`` or ``HEAD``
    request without that header may instead carry the console's session cookie
    (:data:`CONSOLE_COOKIE`, set by ``/console/login``: HttpOnly, SameSite=Strict, Secure over
    https), so the console's pages can download exports and fetch proofs from ``/v1`` without
    JavaScript ever seeing the key.

Guarantees
    The cookie never authorises a method that changes anything: ``POST`` and the like need
    the header (the console's own forms post to ``/console`` routes that check a CSRF token
    and the request's origin). A cookie-borne request the browser marks as cross-site
    (``Sec-Fetch-Site: cross-site``) is refused as if it carried no key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.keys import KeyStore, Role
from api.problems import Problem

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ll_...`")

_BEARER = Depends(bearer)  # declared, so the OpenAPI document names the scheme (Authorize)

OPERATORS = frozenset({Role.OPERATOR, Role.ADMIN})
READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.ADMIN})
REGULATORS = frozenset({Role.REGULATOR, Role.ADMIN})

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledgerline"'}
CONSOLE_COOKIE = "ledgerline_console"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def cookie_token(request: Request) -> str | None:
    """The console session's API key, when this request may be authenticated by it."""
    if request.method not in SAFE_METHODS:
        return None
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        return None
    return request.cookies.get(CONSOLE_COOKIE) or None


def key_id_of(token: str) -> str:
    """The key id part of a token ``ll_<key id>_<secret>`` (``unknown`` if malformed)."""
    return token.split("_", 2)[1] if token.count("_") >= 2 else "unknown"


def authorize(authorization: str | None, keys: KeyStore, allowed: frozenset[Role]) -> Role:
    """The role of the bearer token in an ``Authorization`` header, if ``allowed``; else the
    problem to answer (401 without a usable token, 403 for a role that may not)."""
    scheme, _, token = (authorization or "").partition(" ")
    if not (scheme and token) or scheme.lower() != "bearer":
        raise Problem(
            401,
            "unauthenticated",
            "send an API key as 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    role = keys.role_of(token)
    if role is None:
        raise Problem(401, "invalid_token", "the API key is unknown or revoked", headers=_CHALLENGE)
    if role not in allowed:
        raise Problem(
            403,
            "forbidden",
            f"role '{role.value}' may not do this; needs one of "
            f"{', '.join(sorted(r.value for r in allowed))}",
        )
    return role


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's role and its id (recorded beside what an admin changes)."""

    role: Role
    key_id: str


def _header(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The credential to check: the bearer header, else (GET/HEAD only) the console cookie."""
    if credentials is not None:
        return f"Bearer {credentials.credentials}"
    if "authorization" in request.headers:
        return request.headers["authorization"]  # malformed: authorize() names the problem
    token = cookie_token(request)
    return f"Bearer {token}" if token else None


def require_caller(allowed: frozenset[Role]) -> Callable[..., Awaitable[Caller]]:
    """Like :func:`require`, answering the caller's role and key id."""

    async def check(
        request: Request, credentials: HTTPAuthorizationCredentials | None = _BEARER
    ) -> Caller:
        header = _header(request, credentials)
        role = authorize(header, request.app.state.keys, allowed)
        return Caller(role, key_id_of((header or "").partition(" ")[2]))

    return check


def require(allowed: frozenset[Role]) -> Callable[..., Awaitable[Role]]:
    """A dependency that admits only tokens whose role is in ``allowed``."""

    async def check(
        request: Request, credentials: HTTPAuthorizationCredentials | None = _BEARER
    ) -> Role:
        return authorize(_header(request, credentials), request.app.state.keys, allowed)

    return check
