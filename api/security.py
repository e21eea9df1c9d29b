"""Bearer-token authentication and role checks, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.keys import KeyStore, Role
from api.problems import Problem

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ll_...`")

OPERATORS = frozenset({Role.OPERATOR, Role.ADMIN})
READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.ADMIN})
REGULATORS = frozenset({Role.REGULATOR, Role.ADMIN})

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ledgerline"'}


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


def require(allowed: frozenset[Role]) -> Callable[..., Awaitable[Role]]:
    """A dependency that admits only tokens whose role is in ``allowed``."""

    async def check(request: Request) -> Role:
        credentials: HTTPAuthorizationCredentials | None = await bearer(request)
        header = f"Bearer {credentials.credentials}" if credentials is not None else None
        return authorize(header, request.app.state.keys, allowed)

    return check
