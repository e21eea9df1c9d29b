"""The read-model half of replay: projections rebuilt into a scratch schema, and digested.

Definition
    :func:`rebuild_and_digest` rebuilds some projections of the registry into a schema with
    ``projections.registry.rebuild_into`` (the live runner's code), commits, and returns the
    :func:`table_digest` of each of their tables; :func:`rebuild_part` does the same in a
    worker process, with its own connections.

Guarantees
    * The digest of a table is SHA-256 over its rows' PostgreSQL text form in primary-key
      order, computed by PostgreSQL: the same events always give byte-identical digests.
    * Projections own disjoint tables, so which process builds and digests which one changes
      no row and no digest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from eventstore.recorder import HashChainRecorder
from eventstore.store import EventStore, connect_owner
from projections.registry import PROJECTIONS, all_tables, rebuild_into
from replay.log_check import REPLAY_BATCH

if TYPE_CHECKING:
    from projections.manage import Applied

# Every read-model table of every registered projection, with its key columns.
TABLES: dict[str, tuple[str, ...]] = all_tables()


def table_digest(conn: psycopg.Connection[Any], schema: str, table: str) -> str:
    """SHA-256 of every row's text form, in primary-key order, computed by PostgreSQL."""
    keys = ", ".join(TABLES[table])
    row = conn.execute(
        f"SELECT encode(sha256(convert_to(coalesce(string_agg(t::text, E'\\n'"
        f" ORDER BY {keys}), ''), 'UTF8')), 'hex') FROM \"{schema}\".{table} t"
    ).fetchone()
    return str(row[0]) if row else ""


def rebuild_and_digest(
    recorder: HashChainRecorder,
    conn: psycopg.Connection[Any],
    schema: str,
    upto: int,
    names: Sequence[str],
    *,
    batch_size: int = REPLAY_BATCH,
    keep: Mapping[str, Applied] | None = None,
    indexes: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Rebuild the projections ``names`` into ``schema`` up to ``upto``, commit, and return
    the :func:`table_digest` of each of their tables. Projections own disjoint tables, so
    which process builds (and digests) which one changes no row and no digest."""
    with conn.transaction(), conn.cursor() as cur:
        rebuild_into(
            recorder,
            cur,
            schema,
            upto,
            [PROJECTIONS[name] for name in names],
            batch_size=batch_size,
            keep=keep,
            progress=progress,
            indexes=indexes,
        )
    return {
        table: table_digest(conn, schema, table)
        for name in names
        for table in PROJECTIONS[name].tables
    }


def rebuild_part(
    url: str,
    schema: str,
    upto: int,
    names: Sequence[str],
    batch_size: int,
    keep: Mapping[str, Applied] | None,
    indexes: bool = True,
) -> dict[str, str]:
    """:func:`rebuild_and_digest` in a worker process, with its own connections."""
    with (
        EventStore(url, pool_size=2, run_migrations=False) as store,
        connect_owner(url) as conn,
    ):
        return rebuild_and_digest(
            store.recorder,
            conn,
            schema,
            upto,
            names,
            batch_size=batch_size,
            keep=keep,
            indexes=indexes,
        )
