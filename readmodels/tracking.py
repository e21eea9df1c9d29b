"""Where each projection has got to: one row per projection, written with its rows.

Guarantees
    :func:`advance` moves a projection's position from exactly ``expected`` to ``new`` and
    fails otherwise, in the same transaction as the projection's rows: a batch applied twice,
    or by two runners at once, is refused rather than doubled.
"""

from __future__ import annotations

import psycopg

from eventstore.errors import EventStoreError

SCHEMA = "readmodels"


class TrackingConflict(EventStoreError):
    """Another runner moved the projection first; this batch was not applied."""


def position_of(conn: psycopg.Connection[tuple[object, ...]], projection: str) -> int:
    row = conn.execute(
        f"SELECT position FROM {SCHEMA}.tracking WHERE projection = %s", (projection,)
    ).fetchone()
    return int(str(row[0])) if row else 0


def advance(
    cur: psycopg.Cursor[tuple[object, ...]], projection: str, expected: int, new: int
) -> None:
    if expected == 0:
        cur.execute(
            f"INSERT INTO {SCHEMA}.tracking (projection, position) VALUES (%s, %s)"
            " ON CONFLICT (projection) DO UPDATE SET position = EXCLUDED.position,"
            " updated_at = now() WHERE tracking.position = 0",
            (projection, new),
        )
    else:
        cur.execute(
            f"UPDATE {SCHEMA}.tracking SET position = %s, updated_at = now()"
            " WHERE projection = %s AND position = %s",
            (new, projection, expected),
        )
    if cur.rowcount != 1:
        raise TrackingConflict(
            f"projection {projection} is no longer at position {expected}; batch not applied"
        )
