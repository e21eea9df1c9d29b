"""API keys: random bearer tokens, stored only as SHA-256 digests, each with one role.

Definition
    A token looks like ``ll_<key id>_<secret>``. The key id locates the row; the digest of the
    whole token is compared in constant time. Tokens are shown once, at creation.

Guarantees
    * The runtime login cannot write ``api_keys`` directly: it issues and revokes keys only
      through two ``SECURITY DEFINER`` functions (``issue_key``, ``revoke_key``), so a key's
      digest and role never change after issue, and a revoked key is never un-revoked (a
      trigger refuses it for every role).
    * ``revoke_key`` never revokes the last live admin key (``last_admin_key``): someone must
      be left who can manage keys without the database owner's credential.
    * :class:`KeyStore` remembers answers for ``ttl_s`` seconds but asks the database at most
      once every ``probe_s`` seconds (1 s) whether any key was revoked since, and forgets
      everything when one was: a revoked key is refused at once by the process that revoked
      it (:meth:`KeyStore.invalidate`) and within ``probe_s`` by every other process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row

from eventstore.schema import APP_ROLE, Migration, migrate

SCHEMA = "ledgerline_api"


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"
    REGULATOR = "regulator"
    ADMIN = "admin"


class KeyNotFound(Exception):
    """No key with that id."""


class LastAdminKey(Exception):
    """Revoking this key would leave no live admin key."""


_FUNCTIONS = (
    # Issue: the only way the runtime login adds a row.
    "CREATE FUNCTION {schema}.issue_key(p_key_id text, p_digest bytea, p_role text,"
    " p_label text, p_created_by text) RETURNS timestamptz LANGUAGE sql SECURITY DEFINER"
    " SET search_path = pg_catalog, pg_temp AS $$"
    " INSERT INTO {schema}.api_keys (key_id, token_sha256, role, label, created_by)"
    " VALUES (p_key_id, p_digest, p_role, p_label, p_created_by) RETURNING created_at $$",
    # Revoke: 'revoked', 'already_revoked', 'not_found' or 'last_admin'. Serialised by a
    # transaction-scoped advisory lock, so two admins revoking each other cannot both win.
    "CREATE FUNCTION {schema}.revoke_key(p_key_id text, p_revoked_by text) RETURNS text"
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$"
    " DECLARE k record; live_admins bigint;"
    " BEGIN"
    "  PERFORM pg_advisory_xact_lock(7089432614);"
    "  SELECT role, revoked_at INTO k FROM {schema}.api_keys WHERE key_id = p_key_id;"
    "  IF NOT FOUND THEN RETURN 'not_found'; END IF;"
    "  IF k.revoked_at IS NOT NULL THEN RETURN 'already_revoked'; END IF;"
    "  IF k.role = 'admin' THEN"
    "   SELECT count(*) INTO live_admins FROM {schema}.api_keys"
    "    WHERE role = 'admin' AND revoked_at IS NULL;"
    "   IF live_admins <= 1 THEN RETURN 'last_admin'; END IF;"
    "  END IF;"
    "  UPDATE {schema}.api_keys SET revoked_at = clock_timestamp(), revoked_by = p_revoked_by"
    "   WHERE key_id = p_key_id;"
    "  RETURN 'revoked';"
    " END $$",
    # A key's identity never changes and a revocation is final, for every role.
    "CREATE FUNCTION {schema}.key_changes_only_by_revoking() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " IF OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL"
    "  OR NEW.key_id IS DISTINCT FROM OLD.key_id"
    "  OR NEW.token_sha256 IS DISTINCT FROM OLD.token_sha256"
    "  OR NEW.role IS DISTINCT FROM OLD.role OR NEW.label IS DISTINCT FROM OLD.label"
    "  OR NEW.created_at IS DISTINCT FROM OLD.created_at"
    "  OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN"
    " RAISE EXCEPTION 'ledgerline: an API key may only be revoked, once'"
    " USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER api_keys_revoke_only BEFORE UPDATE ON {schema}.api_keys"
    " FOR EACH ROW EXECUTE FUNCTION {schema}.key_changes_only_by_revoking()",
    "REVOKE ALL ON FUNCTION {schema}.issue_key(text, bytea, text, text, text) FROM PUBLIC",
    "REVOKE ALL ON FUNCTION {schema}.revoke_key(text, text) FROM PUBLIC",
    f"GRANT EXECUTE ON FUNCTION {{schema}}.issue_key(text, bytea, text, text, text) TO {APP_ROLE}",
    f"GRANT EXECUTE ON FUNCTION {{schema}}.revoke_key(text, text) TO {APP_ROLE}",
)

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
    # 2-9 are other contexts' (the AML work's analyst role is 2); the console's start at 10.
    Migration(
        10,
        "key management by admins over HTTP: who issued and revoked, issue and revoke functions",
        (
            "ALTER TABLE {schema}.api_keys ADD COLUMN created_by text, ADD COLUMN revoked_by text",
            *_FUNCTIONS,
        ),
    ),
    Migration(
        11,
        "results of log verifications run from the console",
        (
            "CREATE TABLE {schema}.verify_runs ("
            " run_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
            " started_at timestamptz NOT NULL,"
            " finished_at timestamptz NOT NULL DEFAULT now(),"
            " events_checked bigint NOT NULL CHECK (events_checked >= 0),"
            " streams_checked bigint NOT NULL CHECK (streams_checked >= 0),"
            " head_position bigint NOT NULL CHECK (head_position >= 0),"
            " ok boolean NOT NULL,"
            " first_break text,"
            " requested_by text NOT NULL)",
            f"GRANT SELECT, INSERT ON {{schema}}.verify_runs TO {APP_ROLE}",
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


def create_key(
    conn: psycopg.Connection[Any], role: Role, label: str = "", *, created_by: str | None = None
) -> NewKey:
    """Issue a key (through ``issue_key``, so the runtime login and the owner alike may)."""
    key_id = secrets.token_hex(6)
    token = f"ll_{key_id}_{secrets.token_urlsafe(32)}"
    conn.execute(
        f"SELECT {SCHEMA}.issue_key(%s, %s, %s, %s, %s)",
        (key_id, digest(token), role.value, label, created_by),
    )
    return NewKey(key_id, token, role)


@dataclass(frozen=True)
class KeyInfo:
    """A key as an admin sees it: never its token or digest."""

    key_id: str
    role: str
    label: str
    created_at: dt.datetime
    created_by: str | None
    revoked_at: dt.datetime | None
    revoked_by: str | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None


_KEY_COLUMNS = "key_id, role, label, created_at, created_by, revoked_at, revoked_by"


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyInfo]:
    """Every key, live ones first, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys"
            " ORDER BY revoked_at IS NOT NULL, created_at DESC, key_id"
        )
        return [KeyInfo(**row) for row in cur.fetchall()]


def get_key(conn: psycopg.Connection[Any], key_id: str) -> KeyInfo | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys WHERE key_id = %s", (key_id,))
        row = cur.fetchone()
        return KeyInfo(**row) if row else None


def revoke_key(conn: psycopg.Connection[Any], key_id: str, *, revoked_by: str | None) -> KeyInfo:
    """Revoke a key; revoking a revoked key again changes nothing and answers the same.

    Raises :class:`KeyNotFound` or :class:`LastAdminKey`.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(f"SELECT {SCHEMA}.revoke_key(%s, %s)", (key_id, revoked_by))
        row = cur.fetchone()
    status = str(next(iter(row.values())) if isinstance(row, dict) else row[0]) if row else ""
    if status == "not_found":
        raise KeyNotFound(key_id)
    if status == "last_admin":
        raise LastAdminKey(key_id)
    info = get_key(conn, key_id)
    if info is None:  # pragma: no cover - keys are never deleted by the runtime
        raise KeyNotFound(key_id)
    return info


def revocations_sql() -> str:
    """How many keys have ever been revoked: it only grows, so a change means a revocation."""
    return f"SELECT count(*) AS n FROM {SCHEMA}.api_keys WHERE revoked_at IS NOT NULL"


Lookup = Callable[[str], tuple[bytes, str] | None]


def lookup_sql() -> str:
    """Query for one live key by id: ``(token_sha256, role)``."""
    return (
        f"SELECT token_sha256, role FROM {SCHEMA}.api_keys WHERE key_id = %s AND revoked_at IS NULL"
    )


class KeyStore:
    """Checks bearer tokens, remembering each answer for ``ttl_s`` seconds, and forgetting
    them all as soon as it learns of a revocation (see the module's guarantees)."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        ttl_s: float = 30.0,
        revocations: Callable[[], int] | None = None,
        probe_s: float = 1.0,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._cache: dict[bytes, tuple[Role | None, float]] = {}
        self._revocations = revocations
        self._probe_s = probe_s
        self._next_probe = 0.0
        self._revoked_seen: int | None = None

    def invalidate(self) -> None:
        """Forget every answer (a key was just revoked here)."""
        self._cache.clear()
        self._next_probe = 0.0

    def _probe(self, now: float) -> None:
        if self._revocations is None or now < self._next_probe:
            return
        self._next_probe = now + self._probe_s
        revoked = self._revocations()
        if revoked != self._revoked_seen:
            self._cache.clear()
            self._revoked_seen = revoked

    def role_of(self, token: str) -> Role | None:
        if not token.startswith("ll_") or token.count("_") < 2:
            return None
        token_digest = digest(token)
        now = time.monotonic()
        self._probe(now)
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
