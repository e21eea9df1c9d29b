"""Schema, roles and versioned migrations of the event store.

Definition
    Everything lives in one PostgreSQL schema (``ledgerline`` by default):

    ``events``       one row per event: gapless global position (``notification_id``), stream id
                     and version, topic, payload bytes, commit time, and both hash chains.
    ``commands``     the command log: client command id -> payload digest and first outcome.
    ``chain_head``   one row: the last position, global hash and commit time. Writers lock and
                     advance it in the same transaction as their events.
    ``schema_migrations`` which migrations ran, and when.

Guarantees
    * Migrations are numbered and run once each, in order, under an advisory lock; all pending
      ones run in one transaction, so a failed upgrade leaves the schema as it was. Running
      ``migrate`` again is a no-op.
    * The runtime role (``ledgerline_app``) may INSERT and SELECT events and commands but holds
      no UPDATE, DELETE or TRUNCATE grant on them; row and statement triggers refuse those
      operations for every role, superusers included, unless triggers are disabled.
    * ``(originator_id, originator_version)`` and ``notification_id`` are unique, and so is
      ``prev_global_hash``: two events can never extend the same chain head (no forks).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from eventstore.errors import ConfigurationRefused, SchemaVersionError

APP_ROLE = "ledgerline_app"
DEFAULT_SCHEMA = "ledgerline"
_MIGRATION_LOCK_KEY = 0x6C65646765726C  # "ledgerl": one advisory lock for all migrators


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _append_only(table: str) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {{schema}}.{table} "
        "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {{schema}}.{table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change()",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {{schema}}.{table} FROM PUBLIC",
        f"GRANT SELECT, INSERT ON {{schema}}.{table} TO {APP_ROLE}",
    )


_HASH = "bytea NOT NULL CHECK (octet_length({col}) = 32)"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "event log, command log, chain head, append-only guards",
        (
            "CREATE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ledgerline: % on %.% is refused: the log is append-only', "
            "TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
            "END $$",
            "CREATE TABLE {schema}.events ("
            " originator_id text NOT NULL,"
            " originator_version bigint NOT NULL CHECK (originator_version > 0),"
            " topic text NOT NULL,"
            " state bytea NOT NULL,"
            " notification_id bigint NOT NULL CHECK (notification_id > 0),"
            " recorded_at_ns bigint NOT NULL CHECK (recorded_at_ns > 0),"
            f" prev_stream_hash {_HASH.format(col='prev_stream_hash')},"
            f" stream_hash {_HASH.format(col='stream_hash')},"
            f" prev_global_hash {_HASH.format(col='prev_global_hash')},"
            f" global_hash {_HASH.format(col='global_hash')},"
            " PRIMARY KEY (originator_id, originator_version))"
            " WITH (autovacuum_vacuum_threshold = 100000000,"
            "       autovacuum_vacuum_scale_factor = 0.5,"
            "       autovacuum_analyze_threshold = 1000,"
            "       autovacuum_analyze_scale_factor = 0.01)",
            "CREATE UNIQUE INDEX events_notification_id_idx ON {schema}.events (notification_id)",
            "CREATE UNIQUE INDEX events_prev_global_hash_idx ON {schema}.events (prev_global_hash)",
            "CREATE INDEX events_recorded_at_idx ON {schema}.events (recorded_at_ns)",
            "CREATE TABLE {schema}.commands ("
            " command_id text PRIMARY KEY CHECK (length(command_id) BETWEEN 1 AND 200),"
            " command_type text NOT NULL,"
            " payload bytea NOT NULL,"
            f" payload_digest {_HASH.format(col='payload_digest')},"
            " accepted boolean NOT NULL,"
            " outcome bytea NOT NULL,"
            " first_position bigint,"
            " last_position bigint,"
            " recorded_at_ns bigint NOT NULL,"
            " CHECK ((first_position IS NULL) = (last_position IS NULL)),"
            " CHECK (first_position IS NULL OR first_position <= last_position))",
            "CREATE TABLE {schema}.chain_head ("
            " singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
            " position bigint NOT NULL CHECK (position >= 0),"
            f" global_hash {_HASH.format(col='global_hash')},"
            " recorded_at_ns bigint NOT NULL)",
            "INSERT INTO {schema}.chain_head VALUES (true, 0, '\\x" + "00" * 32 + "'::bytea, 0)",
            # The head only ever moves forward.
            "CREATE FUNCTION {schema}.head_moves_forward() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.position < OLD.position OR NEW.recorded_at_ns < OLD.recorded_at_ns THEN "
            "RAISE EXCEPTION 'ledgerline: the chain head may only move forward' "
            "USING ERRCODE = 'insufficient_privilege'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER chain_head_forward BEFORE UPDATE ON {schema}.chain_head "
            "FOR EACH ROW EXECUTE FUNCTION {schema}.head_moves_forward()",
            "CREATE TRIGGER chain_head_no_delete BEFORE DELETE ON {schema}.chain_head "
            "FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change()",
            "CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON {schema}.chain_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change()",
            "GRANT SELECT, UPDATE ON {schema}.chain_head TO " + APP_ROLE,
            *_append_only("events"),
            *_append_only("commands"),
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        2,
        "notify listeners from the chain head",
        (
            # Listeners learn the new head position in the same commit that moves it.
            "CREATE FUNCTION {schema}.notify_head() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', NEW.position::text); "
            "RETURN NULL; END $$",
            "CREATE TRIGGER chain_head_notify AFTER UPDATE ON {schema}.chain_head "
            "FOR EACH ROW EXECUTE FUNCTION {schema}.notify_head()",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        3,
        "signed checkpoints of the Merkle log",
        (
            "CREATE TABLE {schema}.checkpoints ("
            " tree_size bigint PRIMARY KEY CHECK (tree_size >= 0),"
            f" root {_HASH.format(col='root')},"
            " note text NOT NULL,"
            " key_name text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())",
            *_append_only("checkpoints"),
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        4,
        "the Kafka relay's progress (the outbox position)",
        (
            # One row per relay: the last position published and acknowledged by the broker,
            # and per topic the last position sent to each partition (the ``prev`` link that
            # lets a consumer tell a reordered delivery from a gap). Progress moves, so this
            # table, unlike the log, may be updated by the app role.
            "CREATE TABLE {schema}.relay_progress ("
            " relay text PRIMARY KEY,"
            " position bigint NOT NULL CHECK (position >= 0),"
            " partition_tips jsonb NOT NULL DEFAULT '{}'::jsonb,"
            " updated_at timestamptz NOT NULL DEFAULT now())",
            f"GRANT SELECT, INSERT, UPDATE ON {{schema}}.relay_progress TO {APP_ROLE}",
        ),
    ),
)

MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        5,
        "aggregate snapshots",
        (
            # A snapshot is the state of one stream's aggregate right after a version, keyed
            # by that version and the stream hash of its event: a loader uses it only if the
            # chain still has that hash there. Snapshots are an optimisation: deleting every
            # one changes no outcome. Append-only like the log.
            "CREATE TABLE {schema}.snapshots ("
            " stream_id text NOT NULL,"
            " version bigint NOT NULL CHECK (version > 0),"
            f" stream_hash {_HASH.format(col='stream_hash')},"
            " state bytea NOT NULL,"
            " taken_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (stream_id, version))",
            *_append_only("snapshots"),
        ),
    ),
)

# Versions 10-19: the log as C2SP tiles and its witnesses (see eventstore.tiles, replay.witness).
MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        10,
        "the Merkle tree as C2SP tlog-tiles (full tiles only; partial tiles are derived)",
        (
            "CREATE TABLE {schema}.merkle_tiles ("
            " level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),"
            " idx bigint NOT NULL CHECK (idx >= 0),"
            " hashes bytea NOT NULL CHECK (octet_length(hashes) = 8192),"
            f" root {_HASH.format(col='root')},"
            " PRIMARY KEY (level, idx))",
            *_append_only("merkle_tiles"),
        ),
    ),
    Migration(
        11,
        "witness cosignatures of signed checkpoints",
        (
            # One row per (checkpoint, witness key): the C2SP cosignature line the witness
            # returned, verified before it was stored. Append-only like the checkpoints.
            "CREATE TABLE {schema}.checkpoint_cosignatures ("
            " tree_size bigint NOT NULL REFERENCES {schema}.checkpoints (tree_size),"
            " witness text NOT NULL,"
            " key_id bytea NOT NULL CHECK (octet_length(key_id) = 4),"
            " signature_line text NOT NULL,"
            " received_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (tree_size, witness, key_id))",
            "CREATE INDEX checkpoint_cosignatures_witness_idx"
            " ON {schema}.checkpoint_cosignatures (witness, key_id, tree_size)",
            *_append_only("checkpoint_cosignatures"),
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

# The runtime's own login (one per database): it owns nothing, is no member of the owner, and
# holds exactly the app role's grants. Its password lives in an owner-only table.
PRIVATE_SCHEMA = "ledgerline_private"
_LOGIN_LOCK_KEY = _MIGRATION_LOCK_KEY + 1


def runtime_login_name(database: str) -> str:
    """The runtime login role of ``database`` (role names are per cluster; secrets per db)."""
    return "ledgerline_rt_" + hashlib.sha256(database.encode()).hexdigest()[:16]


def ensure_runtime_login(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    login: str | None = None,
    password: str | None = None,
) -> tuple[str, str]:
    """Create or update the runtime's login role; return its (name, password).

    Without ``login``/``password`` (the usual case), the role is named after the database and
    its password is a random secret made once and kept in ``ledgerline_private``, a schema
    only the owner can read, so every holder of the owner credential finds the same one. With
    them (``LEDGERLINE_APP_DATABASE_URL``), that role gets that password. Either way the role
    can log in, inherits the app role's grants, and nothing more: no superuser, no
    CREATEROLE, no membership of the owner, no ownership of any object.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOGIN_LOCK_KEY,))
        _ensure_role(cur)
        cur.execute("SELECT current_database(), current_user")
        row = cur.fetchone()
        assert row is not None
        database, owner = str(row[0]), str(row[1])
        if login is None:
            login = runtime_login_name(database)
            password = _stored_password(cur, login)
        if password is None:
            raise ConfigurationRefused(f"no password given for the runtime login {login!r}")
        if login == owner:
            raise ConfigurationRefused(
                f"the runtime must not log in as the owner {owner!r}: give it its own role"
            )
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(
            sql.SQL(
                "{} ROLE {} WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE"
                " NOREPLICATION NOBYPASSRLS PASSWORD {}"
            ).format(sql.SQL(verb), sql.Identifier(login), sql.Literal(password))
        )
        cur.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER'), pg_has_role(%s, %s, 'MEMBER')",
            (login, APP_ROLE, login, owner),
        )
        member = cur.fetchone()
        assert member is not None
        if not member[0]:
            cur.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(login))
            )
        if member[1]:
            raise ConfigurationRefused(
                f"role {login!r} is a member of the owner {owner!r}; the runtime must not be"
            )
    return login, password


def _stored_password(cur: psycopg.Cursor[tuple[object, ...]], login: str) -> str:
    private = sql.Identifier(PRIVATE_SCHEMA)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(private))
    cur.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(private))
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.runtime_login ("
            " login text PRIMARY KEY, password text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        ).format(private)
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {}.runtime_login (login, password) VALUES (%s, %s)"
            " ON CONFLICT (login) DO NOTHING"
        ).format(private),
        (login, secrets.token_urlsafe(32)),
    )
    cur.execute(
        sql.SQL("SELECT password FROM {}.runtime_login WHERE login = %s").format(private), (login,)
    )
    row = cur.fetchone()
    assert row is not None
    return str(row[0])


def _ensure_role(cur: psycopg.Cursor[tuple[object, ...]]) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
    if cur.fetchone() is None:
        with contextlib.suppress(psycopg.errors.DuplicateObject):  # a concurrent migrator won
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(APP_ROLE)))
    cur.execute(
        "SELECT pg_has_role(current_user, %s, 'MEMBER'), "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
        (APP_ROLE,),
    )
    row = cur.fetchone()
    if row is not None and not row[0] and not row[1]:
        cur.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.SQL("CURRENT_USER"))
        )


def applied_versions(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.schema_migrations",))
        row = cur.fetchone()
        if row is None or not row[0]:
            return []
        cur.execute(
            sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version").format(
                sql.Identifier(schema)
            )
        )
        return [int(str(r[0])) for r in cur.fetchall()]


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    schema: str = DEFAULT_SCHEMA,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring ``schema`` up to the latest version; return the versions applied now."""
    ident = sql.Identifier(schema)
    applied_now: list[int] = []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        _ensure_role(cur)
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        cur.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, sql.Identifier(APP_ROLE))
        )
        cur.execute(
            sql.SQL("GRANT SELECT ON {}.schema_migrations TO {}").format(
                ident, sql.Identifier(APP_ROLE)
            )
        )
        cur.execute(sql.SQL("SELECT version FROM {}.schema_migrations").format(ident))
        done = {int(str(r[0])) for r in cur.fetchall()}
        newest_known = max((m.version for m in migrations), default=0)
        if done and max(done) > newest_known:
            raise SchemaVersionError(
                f"database schema {schema!r} is at version {max(done)}, newer than this "
                f"Ledgerline (knows up to {newest_known}); upgrade Ledgerline"
            )
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in migration.statements:
                cur.execute(statement.replace("{schema}", f'"{schema}"').encode())
            cur.execute(
                sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(
                    ident
                ),
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now
