"""Roots, proofs and the C2SP tile resources, read from the tiles stored in PostgreSQL.

Definition
    :class:`TiledTree` is a :class:`~replay.merkle.ProvingTree` of a fixed ``size`` whose
    full-subtree hashes come from C2SP tiles (``eventstore.tiles``): the hash of the subtree
    of ``2**h`` leaves at ``start`` is ``2**(h % 8)`` consecutive hashes of the tile of level
    ``h // 8`` folded together. A tile is read at most once per tree (one request), full
    tiles from the table, the partial rightmost tile of a level derived from the newest
    events (level 0) or from the roots of the full tiles one level down.

    :class:`TileSource` is where tiles come from; :class:`StoreTiles` reads the event store,
    :class:`MemoryTiles` a list of leaf hashes (tests, and the differential checks).

    The HTTP resources of c2sp.org/tlog-tiles: :func:`tile_data` (``tile/<L>/<N>[.p/<W>]``,
    the concatenated hashes) and :func:`entry_bundle` (``tile/entries/<N>[.p/<W>]``, each
    event's canonical ``evt/v1`` bytes prefixed with their length as a big-endian uint16).

Guarantees
    * Roots and proofs equal :class:`~replay.merkle.MerkleTree`'s byte for byte (same
      algorithms over the same subtree hashes).
    * A root, an inclusion proof or a consistency proof reads O(log n) tiles (at most a few
      per level, 8 levels for 2**63 leaves) and hashes at most 255 hashes per tile read.
    * Nothing here holds more than the tiles of one request.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from psycopg.rows import tuple_row

from eventstore.canonical import encode_event
from eventstore.recorder import HashChainRecorder
from eventstore.tiles import (
    HASH_LEN,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileBuilder,
    event_leaves,
    perfect_root,
    read_tiles,
    split_hashes,
    tile_roots,
    tile_width,
)
from replay.merkle import ProvingTree

T = TypeVar("T")
MAX_ENTRY_BYTES = 0xFFFF  # entry bundles prefix each entry with a uint16 length
_U16 = struct.Struct(">H")


class TileNotFound(LookupError):
    """The tile or entry bundle does not exist for the log's current size."""


class EntryTooLarge(ValueError):
    """An event's canonical bytes exceed 65,535 bytes: no entry bundle can carry them."""


TileKey = tuple[int, int]  # (level, index)


class TileSource(Protocol):
    """Where a tree's tiles come from: ``tiles`` answers ``(level, index, width)`` requests,
    full tiles (width 256) from storage, partial ones from the level below."""

    def tiles(self, wanted: Sequence[tuple[int, int, int]]) -> dict[TileKey, list[bytes]]: ...


def _one_by_one(source: Any, wanted: Sequence[tuple[int, int, int]]) -> dict[TileKey, list[bytes]]:
    found: dict[TileKey, list[bytes]] = {}
    for level, index, width in wanted:
        if width == TILE_WIDTH:
            found[level, index] = source.full_tile(level, index)
        elif level == 0:
            found[level, index] = source.leaves(index * TILE_WIDTH, index * TILE_WIDTH + width)
        else:
            found[level, index] = source.roots(level - 1, index * TILE_WIDTH, width)
    return found


class StoreTiles:
    """Tiles from the event store's ``merkle_tiles`` table and, for level 0's partial tile,
    its events. :meth:`tiles` answers any set of requests on one pooled connection with at
    most three queries (full tiles, roots for partial tiles, events for level 0's partial)."""

    def __init__(self, recorder: HashChainRecorder) -> None:
        self._recorder = recorder
        self._schema = recorder.datastore.schema

    def tiles(self, wanted: Sequence[tuple[int, int, int]]) -> dict[TileKey, list[bytes]]:
        full = [(lv, i) for lv, i, w in wanted if w == TILE_WIDTH]
        ranges = [(lv - 1, i * TILE_WIDTH, w) for lv, i, w in wanted if w < TILE_WIDTH and lv]
        edges = [(i, w) for lv, i, w in wanted if w < TILE_WIDTH and not lv]
        found: dict[TileKey, list[bytes]] = {}
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            if full:
                stored = read_tiles(cur, self._schema, full)
                for key in full:
                    if key not in stored:
                        raise TileNotFound(f"tile {key[0]}/{key[1]} is not stored")
                    found[key] = split_hashes(stored[key][0])
            if ranges:
                roots = tile_roots(cur, self._schema, ranges)
                for below, first, _ in ranges:
                    found[below + 1, first // TILE_WIDTH] = roots[below]
            for index, width in edges:
                found[0, index] = event_leaves(
                    cur, self._schema, index * TILE_WIDTH, index * TILE_WIDTH + width
                )
        return found

    def full_tile(self, level: int, index: int) -> list[bytes]:
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            found = read_tiles(cur, self._schema, [(level, index)])
        if (level, index) not in found:
            raise TileNotFound(f"tile {level}/{index} is not stored")
        return split_hashes(found[level, index][0])

    def roots(self, level: int, first: int, count: int) -> list[bytes]:
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            return tile_roots(cur, self._schema, [(level, first, count)]).get(level, [])

    def leaves(self, after: int, upto: int) -> list[bytes]:
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            return event_leaves(cur, self._schema, after, upto)


class MemoryTiles:
    """Tiles built in memory from leaf hashes, with the same builder the recorder uses."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = list(leaves)
        builder = TileBuilder()
        out: list[Any] = []
        builder.extend(self._leaves, out)
        self._full = {(t.level, t.index): (split_hashes(t.hashes), t.root) for t in out}

    def tiles(self, wanted: Sequence[tuple[int, int, int]]) -> dict[TileKey, list[bytes]]:
        return _one_by_one(self, wanted)

    def full_tile(self, level: int, index: int) -> list[bytes]:
        if (level, index) not in self._full:
            raise TileNotFound(f"tile {level}/{index} is not stored")
        return self._full[level, index][0]

    def roots(self, level: int, first: int, count: int) -> list[bytes]:
        return [self._full[level, i][1] for i in range(first, first + count)]

    def leaves(self, after: int, upto: int) -> list[bytes]:
        return self._leaves[after:upto]


class TiledTree(ProvingTree):
    """The tree of the first ``size`` events, read from tiles (see the module docstring)."""

    __slots__ = ("_nodes", "_size", "_source", "_tiles")

    def __init__(self, source: TileSource, size: int) -> None:
        if size < 0:
            raise ValueError(f"tree size {size} is negative")
        self._source = source
        self._size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}

    @classmethod
    def of_store(cls, recorder: HashChainRecorder, size: int | None = None) -> TiledTree:
        """The store's tree at ``size`` (default: the head). Sizes beyond the head are refused."""
        head = recorder.head().position
        if size is None:
            size = head
        elif not 0 <= size <= head:
            raise ValueError(f"tree size {size} is outside 0..{head}")
        return cls(StoreTiles(recorder), size)

    @property
    def size(self) -> int:
        return self._size

    def tile(self, level: int, index: int) -> list[bytes]:
        """The hashes of tile ``level/index`` as of this tree's size (full or partial)."""
        found = self._tiles.get((level, index))
        if found is None:
            self._load([(level, index)])
            found = self._tiles[level, index]
        return found

    def _load(self, keys: Iterable[TileKey]) -> None:
        wanted = []
        for level, index in dict.fromkeys(keys):
            if (level, index) in self._tiles:
                continue
            width = tile_width(self._size, level, index)
            if width == 0:
                raise TileNotFound(f"tile {level}/{index} is empty at size {self._size}")
            wanted.append((level, index, width))
        if not wanted:
            return
        found = self._source.tiles(wanted)
        for level, index, width in wanted:
            hashes = found.get((level, index), [])
            if len(hashes) != width or any(len(h) != HASH_LEN for h in hashes):
                raise TileNotFound(f"tile {level}/{index} has {len(hashes)} hashes, not {width}")
            self._tiles[level, index] = hashes

    def _planned(self, work: Callable[[ProvingTree], T]) -> T:
        """Run ``work`` once on a dry tree that only notes the tiles it reads, fetch them all
        at once (one connection, at most three queries), then run it for real."""
        dry = _DryRun(self._size)
        work(dry)
        self._load(dry.asked)
        return work(self)

    def plan(self, work: Callable[[ProvingTree], T]) -> T:
        """Run ``work`` (any reads of this tree) after fetching every tile it needs at once."""
        return self._planned(work)

    def root(self, size: int | None = None) -> bytes:
        return self._planned(lambda t: ProvingTree.root(t, size))

    def leaf(self, index: int) -> bytes:
        return self._planned(lambda t: ProvingTree.leaf(t, index))

    def compact_range(self, size: int | None = None) -> list[bytes]:
        return self._planned(lambda t: ProvingTree.compact_range(t, size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._planned(lambda t: ProvingTree.inclusion_proof(t, index, size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return self._planned(lambda t: ProvingTree.consistency_proof(t, size1, size2))

    def _full_subtree(self, start: int, height: int) -> bytes:
        key = (start, height)
        node = self._nodes.get(key)
        if node is not None:
            return node
        level, rest = divmod(height, TILE_HEIGHT)
        first = start >> (TILE_HEIGHT * level)  # the subtree's first hash at that level
        hashes = self.tile(level, first >> TILE_HEIGHT)
        offset = first & (TILE_WIDTH - 1)
        node = hashes[offset] if rest == 0 else perfect_root(hashes[offset : offset + (1 << rest)])
        self._nodes[key] = node
        return node


class _DryRun(TiledTree):
    """A tree that reads no tile: it notes which it would read and hashes zeros instead."""

    __slots__ = ("asked",)

    def __init__(self, size: int) -> None:
        super().__init__(_NoTiles(), size)
        self.asked: list[TileKey] = []

    def tile(self, level: int, index: int) -> list[bytes]:
        found = self._tiles.get((level, index))
        if found is None:
            width = tile_width(self._size, level, index)
            if width == 0:
                raise TileNotFound(f"tile {level}/{index} is empty at size {self._size}")
            self.asked.append((level, index))
            found = self._tiles[level, index] = []
        return found

    def _full_subtree(self, start: int, height: int) -> bytes:
        level = height // TILE_HEIGHT
        self.tile(level, (start >> (TILE_HEIGHT * level)) >> TILE_HEIGHT)
        return bytes(HASH_LEN)  # no hashing: only which tiles are read matters here

    def _planned(self, work: Callable[[ProvingTree], T]) -> T:
        return work(self)


class _NoTiles:
    def tiles(self, wanted: Sequence[tuple[int, int, int]]) -> dict[TileKey, list[bytes]]:
        raise TileNotFound("a dry run reads no tile")


def parse_tile_index(parts: Sequence[str]) -> int:
    """``x001/x234/067`` (as path elements) -> 1234067; ``ValueError`` on anything else."""
    if not parts:
        raise ValueError("a tile index needs at least one path element")
    value = 0
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        digits = part if last else part.removeprefix("x")
        if (not last and not part.startswith("x")) or len(digits) != 3 or not digits.isdigit():
            raise ValueError(f"tile index element {part!r} is not {'NNN' if last else 'xNNN'}")
        if not digits.isascii():
            raise ValueError(f"tile index element {part!r} is not ASCII digits")
        value = value * 1000 + int(digits)
    if len(parts) > 1 and parts[0] == "x000":
        raise ValueError("a tile index has no leading zero elements")
    return value


def format_tile_index(index: int) -> str:
    """1234067 -> ``x001/x234/067``."""
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile_path(level: int | str, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (``level`` "entries" for an entry bundle)."""
    path = f"tile/{level}/{format_tile_index(index)}"
    return path if width is None or width == TILE_WIDTH else f"{path}.p/{width}"


def tile_data(recorder: HashChainRecorder, level: int, index: int, width: int | None) -> bytes:
    """The bytes of ``tile/<level>/<index>[.p/<width>]`` at the log's current size.

    A partial width is served while the log holds at least that many hashes in the tile (it
    is the tile of every tree size that ends there); the full tile once it is complete.
    """
    want = TILE_WIDTH if width is None else width
    head = recorder.head().position
    available = tile_width(head, level, index)
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise TileNotFound(f"partial tile width {width} is not between 1 and 255")
    if available < want:
        raise TileNotFound(f"tile {level}/{index} has {available} hashes, not {want}")
    tree = TiledTree(StoreTiles(recorder), head)
    return b"".join(tree.tile(level, index)[:want])


def entry_bundle(recorder: HashChainRecorder, index: int, width: int | None) -> bytes:
    """The bytes of ``tile/entries/<index>[.p/<width>]``: length-prefixed canonical events."""
    want = TILE_WIDTH if width is None else width
    if width is not None and not 1 <= width < TILE_WIDTH:
        raise TileNotFound(f"partial bundle width {width} is not between 1 and 255")
    head = recorder.head().position
    if tile_width(head, 0, index) < want:
        raise TileNotFound(f"entry bundle {index} has fewer than {want} entries")
    events = recorder.read_from(index * TILE_WIDTH, want)
    if len(events) != want:
        raise TileNotFound(f"entry bundle {index} has fewer than {want} entries")
    parts: list[bytes] = []
    for e in events:
        data = encode_event(
            e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
        )
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryTooLarge(
                f"event {e.position} is {len(data)} bytes; entry bundles carry at most "
                f"{MAX_ENTRY_BYTES}"
            )
        parts.append(_U16.pack(len(data)))
        parts.append(data)
    return b"".join(parts)
