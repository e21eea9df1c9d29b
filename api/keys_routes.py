"""API keys over HTTP, for admins: list, issue (the token is shown once), revoke.

Definition
    ``GET /v1/keys``                    every key (never a token or its digest)
    ``POST /v1/keys``                   issue a key: ``{"role": ..., "label": ...}``; the answer
                                        carries the token, which is never shown again
    ``POST /v1/keys/{key_id}/revoke``   revoke a key

Guarantees
    * A revocation is refused by this process at once and by every other process within a
      second (:class:`api.keys.KeyStore`).
    * Revoking a revoked key again answers the same key and changes nothing.
    * Revoking the last live admin key is refused (409 ``last_admin_key``).
    * Who issued or revoked a key (the admin's key id) is recorded beside it.

Rejections (in this order)
    401/403 as every route; 404 ``key_not_found``; 409 ``last_admin_key``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.keys import (
    KeyInfo,
    KeyNotFound,
    LastAdminKey,
    Role,
    create_key,
    get_key,
    list_keys,
    revoke_key,
)
from api.problems import Problem, problem_responses
from api.security import Caller, require_caller
from domain.invariant import invariant

ADMINS = frozenset({Role.ADMIN})
KEY_ID_PATTERN = r"^[0-9a-f]{12}$"

router = APIRouter(prefix="/v1", tags=["keys"])
Admin = Depends(require_caller(ADMINS))


class KeyOut(BaseModel):
    key_id: str = Field(description="the public part of the token `ll_<key_id>_<secret>`")
    role: str
    label: str
    live: bool
    created_at: dt.datetime
    created_by: str | None = Field(description="key id of the admin who issued it, if issued")
    revoked_at: dt.datetime | None
    revoked_by: str | None = Field(description="key id of the admin who revoked it")


class KeyList(BaseModel):
    keys: list[KeyOut]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Role
    label: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class NewKeyOut(BaseModel):
    key: KeyOut
    token: str = Field(description="the bearer token; shown only in this answer")


def key_out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        key_id=info.key_id,
        role=info.role,
        label=info.label,
        live=info.live,
        created_at=info.created_at,
        created_by=info.created_by,
        revoked_at=info.revoked_at,
        revoked_by=info.revoked_by,
    )


def _with_conn(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with request.app.state.services.store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


def _issue(conn: Any, role: Role, label: str, created_by: str) -> tuple[KeyInfo, str]:
    new = create_key(conn, role, label, created_by=created_by)
    info = get_key(conn, new.key_id)
    invariant(info is not None, f"key {new.key_id} was issued but cannot be read back")
    assert info is not None
    return info, new.token


@router.get(
    "/keys",
    response_model=KeyList,
    responses=problem_responses(401, 403, 503),
    summary="Every API key (admin role)",
)
async def list_api_keys(request: Request, _: Caller = Admin) -> KeyList:
    """Every API key with its role, label, who issued it and when, and whether and by whom it
    was revoked; live keys first. Tokens and their digests are never shown."""
    infos = await asyncio.to_thread(_with_conn, request, list_keys)
    return KeyList(keys=[key_out(i) for i in infos])


@router.post(
    "/keys",
    status_code=201,
    response_model=NewKeyOut,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
    summary="Issue an API key (admin role); the token is shown only in this answer",
)
async def issue_api_key(body: KeyIn, request: Request, caller: Caller = Admin) -> NewKeyOut:
    """Issue a key with one role. The answer carries the bearer token, which is stored only as
    a SHA-256 digest and never shown again; the issuing admin's key id is recorded."""
    info, token = await asyncio.to_thread(
        _with_conn, request, _issue, body.role, body.label, caller.key_id
    )
    return NewKeyOut(key=key_out(info), token=token)


async def revoke(request: Request, key_id: str, caller: Caller) -> KeyInfo:
    """Revoke ``key_id`` on behalf of ``caller`` and forget cached answers at once."""
    try:
        info: KeyInfo = await asyncio.to_thread(
            _with_conn, request, revoke_key, key_id, revoked_by=caller.key_id
        )
    except KeyNotFound:
        raise Problem(404, "key_not_found", f"no API key with id {key_id}", key_id=key_id) from None
    except LastAdminKey:
        raise Problem(
            409,
            "last_admin_key",
            f"key {key_id} is the last live admin key; issue another admin key first",
            key_id=key_id,
        ) from None
    request.app.state.keys.invalidate()
    return info


@router.post(
    "/keys/{key_id}/revoke",
    response_model=KeyOut,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
    summary="Revoke an API key (admin role); refused at once, everywhere within a second",
)
async def revoke_api_key(
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN)],
    request: Request,
    caller: Caller = Admin,
) -> KeyOut:
    """Revoke a key for good: this process refuses it at once, every other within a second.
    Revoking a revoked key again answers the same key; the last live admin key cannot be
    revoked (409 ``last_admin_key``)."""
    return key_out(await revoke(request, key_id, caller))
