"""Where each projection has got to: one row per projection and source, written with its rows.

Guarantees
    :func:`advance` moves a projection's position for one source from exactly ``expected`` to
    ``new`` and fails otherwise, in the same transaction as the projection's rows: a batch
    applied twice, or by two runners at once, is refused rather than doubled.
    :func:`positions_for_update` and :func:`advance_all` do the same for several projections
    in one statement each (the in-process runner moves all of them with every batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def positions_for_update(
    cur: psycopg.Cursor[tuple[object, ...]],
    projections: Sequence[str],
    source: str = STORE_SOURCE,
) -> dict[str, int]:
    """The positions of ``projections`` for ``source`` (0 without a row), their rows locked
    until the caller's transaction ends; one statement, the rows locked in name order."""
    rows = cur.execute(
        f"SELECT projection, position FROM {SCHEMA}.tracking"
        " WHERE projection = ANY(%s::text[]) AND source = %s ORDER BY projection FOR UPDATE",
        (list(projections), source),
    ).fetchall()
    found = {}
    for row in rows:
        name, value = (row["projection"], row["position"]) if isinstance(row, dict) else row
        found[str(name)] = int(str(value))
    return {name: found.get(name, 0) for name in projections}


def advance_all(
    cur: psycopg.Cursor[tuple[object, ...]],
    expected: Mapping[str, int],
    new: int,
    source: str = STORE_SOURCE,
) -> None:
    """:func:`advance` for every projection in ``expected`` (name -> its position now) to
    ``new``: all of them or, should any have moved, none (:class:`TrackingConflict`)."""
    moving = {name: at for name, at in expected.items() if at > 0}
    for name, at in expected.items():
        if at == 0:  # no row yet: its first batch
            advance(cur, name, at, new, source)
    if not moving:
        return
    cur.execute(
        f"UPDATE {SCHEMA}.tracking AS t SET position = %s, updated_at = now()"
        " FROM unnest(%s::text[], %s::bigint[]) AS v (projection, expected)"
        " WHERE t.projection = v.projection AND t.source = %s AND t.position = v.expected",
        (new, list(moving), list(moving.values()), source),
    )
    if cur.rowcount != len(moving):
        raise TrackingConflict(
            f"projections {sorted(moving)} ({source}) are no longer at positions "
            f"{moving}; batch not applied"
        )
