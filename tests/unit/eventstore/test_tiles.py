"""The tile builder writes exactly the C2SP tiles of the RFC 9162 tree, at every size.

Each stored tile is checked against the in-memory tree (``replay.merkle.MerkleTree``) hash by
hash, and a tree read back from tiles proves exactly what the in-memory tree proves.
"""

from __future__ import annotations

import hashlib
import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.tiles import (
    TILE_WIDTH,
    FullTile,
    TileBuilder,
    iter_tile_keys,
    perfect_root,
    split_hashes,
    tile_width,
)
from replay.merkle import MerkleTree
from replay.tiles import MemoryTiles, TiledTree, TileNotFound


@cache
def leaves(n: int) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n))


@cache
def tree(n: int) -> MerkleTree:
    return MerkleTree(leaves(n))


def built(n: int) -> tuple[TileBuilder, list[FullTile]]:
    builder = TileBuilder()
    out: list[FullTile] = []
    builder.extend(leaves(n), out)
    return builder, out


def expected_tile(t: MerkleTree, level: int, index: int, width: int) -> list[bytes]:
    """MTH(D[(256 N + i) * 256**L : (256 N + i + 1) * 256**L]) for i < width (the spec)."""
    span = TILE_WIDTH**level
    return [
        t._range_hash((index * TILE_WIDTH + i) * span, (index * TILE_WIDTH + i + 1) * span)
        for i in range(width)
    ]


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 511, 512, 1000, 65535, 65536, 65537, 70_000])
def test_every_full_tile_holds_the_spec_hashes_and_its_root(n: int) -> None:
    t = tree(n)
    _, out = built(n)
    assert [(f.level, f.index) for f in sorted(out, key=lambda f: (f.level, f.index))] == list(
        iter_tile_keys(n)
    )
    for f in out:
        hashes = split_hashes(f.hashes)
        assert hashes == expected_tile(t, f.level, f.index, TILE_WIDTH)
        assert f.root == perfect_root(hashes)
        assert f.root == t._range_hash(
            f.index * TILE_WIDTH ** (f.level + 1), (f.index + 1) * TILE_WIDTH ** (f.level + 1)
        )


def test_the_spec_example_of_a_tree_of_70000_leaves() -> None:
    # "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile,
    # one partial level 1 tile of width 17, and one partial level 2 tile of width 1."
    builder, out = built(70_000)
    assert sum(1 for f in out if f.level == 0) == 273
    assert sum(1 for f in out if f.level == 1) == 1
    assert [len(row) for row in builder.levels] == [112, 17, 1]
    assert tile_width(70_000, 0, 273) == 112
    assert tile_width(70_000, 1, 1) == 17
    assert tile_width(70_000, 2, 0) == 1
    assert tile_width(256, 1, 0) == 1


@pytest.mark.parametrize("n", [1, 300, 65536 + 700])
def test_partial_tiles_read_from_a_tiled_tree_equal_the_spec(n: int) -> None:
    t = tree(n)
    tiled = TiledTree(MemoryTiles(leaves(n)), n)
    for level in range(3):
        for index in range(0, (n >> (8 * level)) // TILE_WIDTH + 1):
            width = tile_width(n, level, index)
            if width == 0:
                with pytest.raises(TileNotFound):
                    tiled.tile(level, index)
                continue
            assert tiled.tile(level, index) == expected_tile(t, level, index, width)


def test_a_copied_builder_shares_nothing_with_the_original() -> None:
    builder, _ = built(300)
    clone = builder.copy()
    out: list[FullTile] = []
    clone.extend(leaves(600)[300:], out)
    assert builder.size == 300 and [len(r) for r in builder.levels] == [44, 1]
    assert clone.size == 600 and [len(r) for r in clone.levels] == [88, 2]


def test_a_builder_refuses_levels_that_do_not_match_its_size() -> None:
    builder, _ = built(300)
    TileBuilder(300, builder.levels)  # fine
    with pytest.raises(Exception, match="partial tile"):
        TileBuilder(301, builder.levels)


def test_appending_in_any_batches_emits_the_same_tiles() -> None:
    rng = random.Random(5)
    _, whole = built(3000)
    builder = TileBuilder()
    pieces: list[FullTile] = []
    offset = 0
    while offset < 3000:
        step = rng.randint(1, 700)
        builder.copy()  # a writer copies before every batch
        builder.extend(leaves(3000)[offset : offset + step], pieces)
        offset += step
    assert pieces == whole


@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 1000, 65536, 65536 + 700])
def test_roots_and_proofs_from_tiles_equal_the_in_memory_trees(n: int) -> None:
    rng = random.Random(n)
    t = tree(n)
    tiled = TiledTree(MemoryTiles(leaves(n)), n)
    sizes = {1, n, n - 1, 256, 257, 512, 65536, *(rng.randint(1, n) for _ in range(8))}
    for size in sorted(s for s in sizes if 1 <= s <= n):
        assert tiled.root(size) == t.root(size)
        assert tiled.compact_range(size) == [
            t._range_hash(start, start + (1 << h)) for start, h in _decompose(size)
        ]
        for index in {0, size - 1, rng.randrange(size)}:
            assert tiled.inclusion_proof(index, size) == t.inclusion_proof(index, size)
            assert tiled.leaf(index) == t.leaf(index)
        for first in {1, size, rng.randint(1, size)}:
            assert tiled.consistency_proof(first, size) == t.consistency_proof(first, size)


def _decompose(size: int) -> list[tuple[int, int]]:
    out, start = [], 0
    for h in range(size.bit_length() - 1, -1, -1):
        if size >> h & 1:
            out.append((start, h))
            start += 1 << h
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2000), st.data())
def test_any_size_proves_like_the_in_memory_tree(n: int, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    t = tree(n)
    tiled = TiledTree(MemoryTiles(leaves(n)), n)
    assert tiled.root(size) == t.root(size)
    assert tiled.inclusion_proof(index, size) == t.inclusion_proof(index, size)
    assert tiled.consistency_proof(first, size) == t.consistency_proof(first, size)


def test_a_tiled_tree_reads_a_bounded_number_of_tiles_per_proof() -> None:
    n = 65536 * 2 + 123

    class Counting(MemoryTiles):
        reads = 0

        def full_tile(self, level: int, index: int) -> list[bytes]:
            Counting.reads += 1
            return super().full_tile(level, index)

        def roots(self, level: int, first: int, count: int) -> list[bytes]:
            Counting.reads += 1
            return super().roots(level, first, count)

        def leaves(self, after: int, upto: int) -> list[bytes]:
            Counting.reads += 1
            return super().leaves(after, upto)

    source = Counting(leaves(n))
    for index in (0, 70_000, n - 1):
        Counting.reads = 0
        TiledTree(source, n).inclusion_proof(index, n)
        assert Counting.reads <= 8
    Counting.reads = 0
    TiledTree(source, n).consistency_proof(77_777, n)
    assert Counting.reads <= 10


def test_trees_read_from_tiles_have_the_rfc_6962_reference_roots() -> None:
    from replay.verifier import leaf_hash
    from tests.unit.replay.test_merkle_tree import (
        RFC6962_COMPACT,
        RFC6962_LEAVES,
        RFC6962_ROOTS,
    )

    hashes = [leaf_hash(data) for data in RFC6962_LEAVES]
    for size in range(len(RFC6962_LEAVES) + 1):
        tiled = TiledTree(MemoryTiles(hashes[:size]), size)
        assert tiled.root() == RFC6962_ROOTS[size]
        assert tiled.compact_range() == RFC6962_COMPACT[size]
