"""Schema of the read side: tracking positions, projection failures, and the read models.

Read models live in their own schema (``readmodels``) so they can be dropped and rebuilt, or
moved to another database, without touching the event store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from eventstore.schema import APP_ROLE, Migration, migrate

SCHEMA = "readmodels"

_DML = f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"

BASE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tracking positions and projection failures",
        (
            # One row per projection and source: 'store' for the in-process runner, or
            # 'kafka:<topic>:<partition>' for a Kafka worker. ``position`` is the global
            # position of the last event applied from that source.
            "CREATE TABLE {schema}.tracking ("
            " projection text NOT NULL,"
            " source text NOT NULL DEFAULT 'store',"
            " position bigint NOT NULL CHECK (position >= 0),"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (projection, source))",
            "CREATE TABLE {schema}.projection_failures ("
            " id bigserial PRIMARY KEY,"
            " projection text NOT NULL,"
            " source text NOT NULL,"
            " position bigint,"
            " kafka_offset bigint,"
            " reason text NOT NULL,"
            " failed_at timestamptz NOT NULL DEFAULT now())",
            _DML,
            f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {{schema}} TO {APP_ROLE}",
        ),
    ),
)

# Read-model tables register their migrations here (numbered after the base ones).
_EXTRA: list[Migration] = []


def register(migrations: Sequence[Migration]) -> None:
    for m in migrations:
        if all(existing.version != m.version for existing in _EXTRA):
            _EXTRA.append(m)


def all_migrations() -> tuple[Migration, ...]:
    return tuple(sorted((*BASE_MIGRATIONS, *_EXTRA), key=lambda m: m.version))


def migrate_readmodels(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    return migrate(conn, SCHEMA, all_migrations())


def defer_indexes(cur: psycopg.Cursor[Any], schema: str, tables: Sequence[str]) -> list[str]:
    """Drop the secondary indexes of ``tables`` (not those behind a primary key or a unique
    constraint, which the load relies on) and return the statements that recreate them
    exactly, for a bulk load into empty tables: each index is then built once, sorted,
    instead of row by row."""
    cur.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i"
        " WHERE i.schemaname = %s AND i.tablename = ANY(%s) AND NOT EXISTS ("
        " SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = i.schemaname AND c.conname = i.indexname)"
        " ORDER BY i.indexname",
        (schema, list(tables)),
    )
    found = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall()]
    for name, _ in found:
        cur.execute(
            sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
        )
    return [str(definition) for _, definition in found]


def restore_indexes(cur: psycopg.Cursor[Any], definitions: Sequence[str]) -> None:
    for definition in definitions:
        cur.execute(definition.encode())
