"""Where each projection has got to: one row per projection and source, written with its rows.

Guarantees
    :func:`advance` moves a projection's position for one source from exactly ``expected`` to
    ``new`` and fails otherwise, in the same transaction as the projection's rows: a batch
    applied twice, or by two runners at once, is refused rather than doubled.
"""

from __future__ import annotations

import psycopg

from readmodels.schema import SCHEMA

STORE_SOURCE = "store"


class TrackingConflict(Exception):
    """Another runner moved the projection first; this batch was not applied."""


def position_of(
    conn: psycopg.Connection[tuple[object, ...]] | psycopg.Cursor[tuple[object, ...]],
    projection: str,
    source: str = STORE_SOURCE,
    *,
    for_update: bool = False,
    schema: str = SCHEMA,
) -> int:
    """The position of ``projection`` for ``source`` (0 without a row).

    ``for_update`` locks the row until the caller's transaction ends, so a runner and a
    rebuild that both move this projection take turns, and each sees the other's result.
    """
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute(
        f"SELECT position FROM {schema}.tracking WHERE projection = %s AND source = %s{lock}",
        (projection, source),
    ).fetchone()
    if row is None:
        return 0
    value = row["position"] if isinstance(row, dict) else row[0]
    return int(str(value))


def advance(
    cur: psycopg.Cursor[tuple[object, ...]],
    projection: str,
    expected: int,
    new: int,
    source: str = STORE_SOURCE,
) -> None:
    if expected == 0:
        cur.execute(
            f"INSERT INTO {SCHEMA}.tracking (projection, source, position) VALUES (%s, %s, %s)"
            " ON CONFLICT (projection, source) DO UPDATE SET position = EXCLUDED.position,"
            " updated_at = now() WHERE tracking.position = 0",
            (projection, source, new),
        )
    else:
        cur.execute(
            f"UPDATE {SCHEMA}.tracking SET position = %s, updated_at = now()"
            " WHERE projection = %s AND source = %s AND position = %s",
            (new, projection, source, expected),
        )
    if cur.rowcount != 1:
        raise TrackingConflict(
            f"projection {projection} ({source}) is no longer at position {expected}; "
            "batch not applied"
        )
