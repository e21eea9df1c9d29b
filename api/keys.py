"""API keys: random bearer tokens, stored only as SHA-256 digests, each with one role.

A token looks like ``ll_<key id>_<secret>``. The key id locates the row; the digest of the
whole token is compared in constant time. Tokens are printed once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import psycopg

from eventstore.schema import APP_ROLE, Migration, migrate

SCHEMA = "ledgerline_api"


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"
    REGULATOR = "regulator"
    ADMIN = "admin"


MIGRATIONS = (
    Migration(
        1,
        "api keys",
        (
            "CREATE TABLE {schema}.api_keys ("
            " key_id text PRIMARY KEY,"
            " token_sha256 bytea NOT NULL CHECK (octet_length(token_sha256) = 32),"
            " role text NOT NULL CHECK (role IN ('operator', 'auditor', 'regulator', 'admin')),"
            " label text NOT NULL DEFAULT '',"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " revoked_at timestamptz)",
            f"GRANT SELECT ON {{schema}}.api_keys TO {APP_ROLE}",
        ),
    ),
)


def migrate_keys(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    migrate(conn, SCHEMA, MIGRATIONS)


@dataclass(frozen=True)
class NewKey:
    key_id: str
    token: str
    role: Role


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_key(conn: psycopg.Connection[tuple[object, ...]], role: Role, label: str = "") -> NewKey:
    key_id = secrets.token_hex(6)
    token = f"ll_{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(
        f"INSERT INTO {SCHEMA}.api_keys (key_id, token_sha256, role, label)"
        " VALUES (%s, %s, %s, %s)",
        (key_id, digest(token), role.value, label),
    )
    return NewKey(key_id, token, role)


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    role: str
    label: str
    created_at: str
    revoked_at: str | None


def list_keys(conn: psycopg.Connection[tuple[object, ...]]) -> list[KeyInfo]:
    rows = conn.execute(
        f"SELECT key_id, role, label, created_at, revoked_at FROM {SCHEMA}.api_keys"
        " ORDER BY created_at, key_id"
    ).fetchall()
    return [
        KeyInfo(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            None if r[4] is None else str(r[4]),
        )
        for r in rows
    ]


def revoke_key(conn: psycopg.Connection[tuple[object, ...]], key_id: str) -> bool:
    """Revoke a key for good; False if no live key has this id."""
    cur = conn.execute(
        f"UPDATE {SCHEMA}.api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    return cur.rowcount == 1


Lookup = Callable[[str], tuple[bytes, str] | None]


def lookup_sql() -> str:
    """Query for one live key by id: ``(token_sha256, role)``."""
    return (
        f"SELECT token_sha256, role FROM {SCHEMA}.api_keys WHERE key_id = %s AND revoked_at IS NULL"
    )


class KeyStore:
    """Checks bearer tokens, remembering each answer for ``ttl_s`` seconds."""

    def __init__(self, lookup: Lookup, *, ttl_s: float = 30.0) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[Role | None, float]] = {}

    def role_of(self, token: str) -> Role | None:
        if not token.startswith("ll_") or token.count("_") < 2:
            return None
        token_digest = digest(token)
        now = time.monotonic()
        hit = self._cache.get(token_digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        key_id = token.split("_", 2)[1]
        row = self._lookup(key_id)
        role: Role | None = None
        if row is not None and hmac.compare_digest(bytes(row[0]), token_digest):
            role = Role(row[1])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token_digest] = (role, now + self._ttl_s)
        return role
