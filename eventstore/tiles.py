"""The log's RFC 9162 Merkle tree, stored in PostgreSQL as C2SP tlog-tiles.

Definition
    Following c2sp.org/tlog-tiles, tile ``L/N`` is the sequence of the 256 Merkle tree hashes
    ``MTH(D[(256 N + i) * 256**L : (256 N + i + 1) * 256**L])`` for ``i`` in 0..255: at
    level 0 the leaf hashes ``SHA-256(0x00 || event_bytes)`` of positions ``256 N + 1`` to
    ``256 N + 256``, and at level ``L >= 1`` the roots of the full tiles ``(L - 1)/(256 N + i)``.

    ``<schema>.merkle_tiles`` holds one row per FULL tile: ``(level, idx, hashes, root)``,
    ``hashes`` being the 8,192 concatenated bytes and ``root`` the tile's own Merkle root
    (which is hash ``idx % 256`` of tile ``(level + 1)/(idx // 256)``). The rightmost, partial
    tile of each level is never stored: it is derived when read, at level 0 from the at most
    255 newest events and at level ``L >= 1`` from the ``root`` column of the full tiles of
    level ``L - 1``. So a row, once written, is final, and nothing is ever updated.

    :class:`TileBuilder` is the incremental side: the hashes of the partial tile of every
    level (at most 255 per level). Appending a leaf costs one hash amortised; a tile that
    fills up is emitted as a :class:`FullTile` (255 hashes to compute its root) and its root
    carried one level up.

Guarantees
    * The recorder inserts every full tile in the same transaction as the event that completes
      it (see ``eventstore.recorder``): at every commit the stored tiles are exactly those the
      events imply, so checkpoints and proofs never wait for a follower.
    * ``load_builder`` rebuilds the builder of any size from at most 255 event rows and at
      most 255 roots per level: O(log n) rows, whatever the length of the log.
    * ``catch_up`` inserts the tiles an older store (written before tiles existed) lacks, in
      batches of its own transactions, outside the writers' lock.

Constraints
    Tiles are append-only like the events: the app role may SELECT and INSERT, triggers refuse
    UPDATE, DELETE and TRUNCATE (migration 10 in ``eventstore.schema``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import tuple_row

from domain.invariant import invariant
from eventstore.binary_arrays import columns, unnest
from eventstore.canonical import encode_event, merkle_leaf_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes per full tile
HASH_LEN = 32
FULL_TILE_BYTES = TILE_WIDTH * HASH_LEN
MAX_LEVEL = 63  # the spec's bound; a bigint position never needs more than 8 levels

_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256


leaf_hash_of = merkle_leaf_hash  # RFC 9162 leaf hash of an event's canonical bytes


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect binary tree over ``hashes`` (a power of two of them)."""
    level = list(hashes)
    invariant(len(level) > 0 and len(level) & (len(level) - 1) == 0, "a power of two of hashes")
    sha = _sha256
    while len(level) > 1:
        level = [
            sha(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=True)
        ]
    return level[0]


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile ``level/index`` holds in a tree of ``size`` leaves (0..256)."""
    entries = size >> (TILE_HEIGHT * level)  # complete nodes at height 8 * level
    return max(0, min(TILE_WIDTH, entries - index * TILE_WIDTH))


def split_hashes(data: bytes) -> list[bytes]:
    invariant(len(data) % HASH_LEN == 0, "tile data is a whole number of hashes")
    return [data[i : i + HASH_LEN] for i in range(0, len(data), HASH_LEN)]


@dataclass(frozen=True, slots=True)
class FullTile:
    """A tile that has just become full: final, and written once."""

    level: int
    index: int
    hashes: bytes  # 256 concatenated hashes
    root: bytes


class TileBuilder:
    """The partial tile of every level of a tree of ``size`` leaves; appends emit full tiles.

    Definition
        ``levels[L]`` holds the ``tile_width(size, L, size >> 8 (L + 1))`` hashes of the
        rightmost tile of level ``L`` (never 256: a tile that fills up is emitted and emptied).
    Guarantees
        ``copy()`` shares no mutable state with the original, so a writer can prepare the state
        after a batch and keep the old one if the transaction fails.
    """

    __slots__ = ("levels", "size")

    def __init__(self, size: int = 0, levels: Sequence[Sequence[bytes]] = ()) -> None:
        self.size = size
        self.levels: list[list[bytes]] = [list(row) for row in levels]
        for level, row in enumerate(self.levels):
            invariant(
                len(row) == tile_width(size, level, size >> (TILE_HEIGHT * (level + 1))),
                "each level holds the partial tile of the size",
            )

    def copy(self) -> TileBuilder:
        clone = TileBuilder.__new__(TileBuilder)
        clone.size = self.size
        clone.levels = [list(row) for row in self.levels]
        return clone

    def append(self, leaf: bytes, out: list[FullTile]) -> None:
        """Add one leaf hash; every tile it completes is appended to ``out``."""
        self.extend((leaf,), out)

    def extend(self, leaves: Iterable[bytes], out: list[FullTile]) -> None:
        """Add leaf hashes in order; every tile they complete is appended to ``out``.

        Level 0 is filled a slice at a time (no per-leaf Python work beyond the hashing of
        completed tiles), then each completed tile's root is carried up.
        """
        pending = leaves if isinstance(leaves, (list, tuple)) else list(leaves)
        levels = self.levels
        if pending and not levels:
            levels.append([])
        taken = 0
        while taken < len(pending):
            row = levels[0]
            chunk = pending[taken : taken + TILE_WIDTH - len(row)]
            row.extend(chunk)
            taken += len(chunk)
            self.size += len(chunk)
            if len(row) == TILE_WIDTH:
                self._carry(0, self.size - 1, out)

    def _carry(self, level: int, last_leaf: int, out: list[FullTile]) -> None:
        """Level ``level`` just filled up at leaf ``last_leaf``: emit it, carry its root up."""
        levels = self.levels
        while True:
            row = levels[level]
            root = perfect_root(row)
            index = last_leaf >> (TILE_HEIGHT * (level + 1))
            out.append(FullTile(level, index, b"".join(row), root))
            levels[level] = []
            level += 1
            if level == len(levels):
                levels.append([])
            levels[level].append(root)
            if len(levels[level]) < TILE_WIDTH:
                return


# ------------------------------------------------------------------ storage


class TilesNotCurrent(Exception):
    """The stored tiles do not reach the size asked for (an upgraded store not yet caught up)."""


def _t(schema: str) -> str:
    return f'"{schema}".merkle_tiles'


def insert_tiles(cur: Cursor[Any], schema: str, tiles: Sequence[FullTile]) -> None:
    """Insert full tiles, one array per column in binary (the bytes are sent as they are, not
    as escaped text), by a plain INSERT that can share the writer's pipeline. A tile already
    stored makes the statement fail."""
    if not tiles:
        return
    rows = [(t.level, t.index, t.hashes, t.root) for t in tiles]
    cur.execute(
        f"INSERT INTO {_t(schema)} (level, idx, hashes, root)"
        f" SELECT l::int2, i, h, r FROM {unnest(4)} AS t(l, i, h, r)",
        columns(rows, ["int8", "int8", "bytea", "bytea"]),
    )


def event_leaves(cur: Cursor[Any], schema: str, after: int, upto: int) -> list[bytes]:
    """Leaf hashes of the events ``after < position <= upto``, in position order."""
    if upto <= after:
        return []
    cur.execute(
        "SELECT notification_id, originator_id, originator_version, topic, recorded_at_ns, state"
        f' FROM "{schema}".events WHERE notification_id > %s AND notification_id <= %s'
        " ORDER BY notification_id",
        (after, upto),
    )
    rows = cur.fetchall()
    if len(rows) != upto - after:
        raise TilesNotCurrent(f"events {after + 1}..{upto} are not all in the log")
    return [leaf_hash_of(encode_event(r[0], r[1], r[2], r[3], r[4], bytes(r[5]))) for r in rows]


def tile_roots(
    cur: Cursor[Any], schema: str, ranges: Sequence[tuple[int, int, int]]
) -> dict[int, list[bytes]]:
    """For each ``(level, first, count)``, the roots of full tiles ``level/first..first+count-1``.

    Raises :class:`TilesNotCurrent` if one of them is not stored.
    """
    wanted = [r for r in ranges if r[2] > 0]
    out: dict[int, list[bytes]] = {level: [] for level, _, _ in wanted}
    if not wanted:
        return out
    cur.execute(
        f"SELECT t.level, t.root FROM unnest(%s::int2[], %s::int8[], %s::int8[]) AS r(level, lo, n)"
        f" JOIN {_t(schema)} t ON t.level = r.level AND t.idx >= r.lo AND t.idx < r.lo + r.n"
        " ORDER BY t.level, t.idx",
        ([r[0] for r in wanted], [r[1] for r in wanted], [r[2] for r in wanted]),
    )
    for level, root in cur.fetchall():
        out[int(level)].append(bytes(root))
    for level, first, count in wanted:
        if len(out[level]) != count:
            raise TilesNotCurrent(f"tiles {level}/{first}..{first + count - 1} are not all stored")
    return out


def load_builder(cur: Cursor[Any], schema: str, size: int) -> TileBuilder:
    """The builder of a tree of ``size`` leaves, from the stored tiles and the newest events.

    Raises :class:`TilesNotCurrent` if a full tile below ``size`` is missing.
    """
    ranges: list[tuple[int, int, int]] = []
    level = 1
    while size >> (TILE_HEIGHT * level):
        index = size >> (TILE_HEIGHT * (level + 1))
        ranges.append((level - 1, index * TILE_WIDTH, tile_width(size, level, index)))
        level += 1
    roots = tile_roots(cur, schema, ranges)
    base = size - size % TILE_WIDTH
    levels: list[list[bytes]] = [event_leaves(cur, schema, base, size)] if size else []
    for below, _, count in ranges:
        levels.append(roots.get(below, []) if count else [])
    return TileBuilder(size, levels)


def stored_leaf_coverage(cur: Cursor[Any], schema: str) -> int:
    """How many leaves the stored level-0 tiles cover (a multiple of 256)."""
    cur.execute(f"SELECT coalesce(max(idx) + 1, 0) FROM {_t(schema)} WHERE level = 0")
    row = cur.fetchone()
    return int(row[0]) * TILE_WIDTH if row else 0


def _insert_missing(cur: Cursor[Any], schema: str, tiles: Sequence[FullTile]) -> int:
    if not tiles:
        return 0
    cur.execute(
        f"INSERT INTO {_t(schema)} (level, idx, hashes, root)"
        " SELECT * FROM unnest(%s::int2[], %s::int8[], %s::bytea[], %s::bytea[])"
        " ON CONFLICT (level, idx) DO NOTHING",
        (
            [t.level for t in tiles],
            [t.index for t in tiles],
            [t.hashes for t in tiles],
            [t.root for t in tiles],
        ),
    )
    return max(cur.rowcount, 0)


def builder_at(
    cur: Cursor[Any],
    schema: str,
    size: int,
    *,
    batch_size: int = 50_000,
    commit: Callable[[], AbstractContextManager[Any]] | None = None,
) -> tuple[TileBuilder, int]:
    """The builder of a tree of ``size`` leaves, first inserting the full tiles below ``size``
    that are missing; returns it and how many tiles were inserted.

    Usually the tiles are current and this is :func:`load_builder`. Otherwise the events from
    the end of the stored level-0 tiles (or from the start, if the stored tiles are damaged)
    are hashed in batches of ``batch_size``; ``commit`` (a transaction factory) makes each
    batch its own transaction.
    """
    try:
        return load_builder(cur, schema, size), 0
    except TilesNotCurrent:
        pass
    start = stored_leaf_coverage(cur, schema)
    builder = TileBuilder()
    if start <= size:
        try:
            builder = load_builder(cur, schema, start)
        except TilesNotCurrent:
            start = 0
    else:
        start = 0
    inserted = 0
    after = start
    while after < size:
        upto = min(size, after + batch_size)
        out: list[FullTile] = []
        builder.extend(event_leaves(cur, schema, after, upto), out)
        with commit() if commit is not None else nullcontext():
            inserted += _insert_missing(cur, schema, out)
        after = upto
    return builder, inserted


def catch_up(conn: Connection[Any], schema: str, *, batch_size: int = 50_000) -> int:
    """Insert every full tile the committed events imply but the table lacks; return how many.

    For a store written before tiles existed (or with tile maintenance turned off). Runs in
    batches, each its own transaction, without the writers' lock: full tiles cover committed,
    immutable events, and a writer only ever inserts tiles its own batch completes.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(f'SELECT position FROM "{schema}".chain_head')
        row = cur.fetchone()
        head = int(row[0]) if row else 0
        _, inserted = builder_at(cur, schema, head, batch_size=batch_size, commit=conn.transaction)
    return inserted


def read_tiles(
    cur: Cursor[Any], schema: str, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    """Stored full tiles by ``(level, index)``: ``(hashes, root)``; missing keys are absent."""
    if not keys:
        return {}
    cur.execute(
        "SELECT t.level, t.idx, t.hashes, t.root FROM unnest(%s::int2[], %s::int8[])"
        f" AS k(level, idx) JOIN {_t(schema)} t USING (level, idx)",
        ([k[0] for k in keys], [k[1] for k in keys]),
    )
    return {(int(r[0]), int(r[1])): (bytes(r[2]), bytes(r[3])) for r in cur.fetchall()}


def stored_tile_counts(cur: Cursor[Any], schema: str) -> dict[int, tuple[int, int]]:
    """Per level: (number of stored tiles, highest index + 1)."""
    cur.execute(f"SELECT level, count(*), max(idx) + 1 FROM {_t(schema)} GROUP BY level")
    return {int(r[0]): (int(r[1]), int(r[2])) for r in cur.fetchall()}


def iter_tile_keys(size: int) -> Iterator[tuple[int, int]]:
    """Every full tile a tree of ``size`` leaves has, level by level."""
    level = 0
    while size >> (TILE_HEIGHT * (level + 1)):
        for index in range(size >> (TILE_HEIGHT * (level + 1))):
            yield level, index
        level += 1
