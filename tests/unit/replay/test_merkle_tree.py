"""Our proving side and verifying side agree with RFC 9162 and with each other.

Reference roots are RFC 6962's, from transparency-dev/merkle ``testonly/constants.go``;
the naive ``_mth`` / ``_path`` / ``_subproof`` below transcribe the RFC 9162 recursive
definitions literally, as a second, slow implementation to compare against.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.merkle import CACHE_HEIGHT, Frontier, MerkleTree
from replay.verifier import (
    EMPTY_ROOT,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
RFC6962_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# The compact ranges ("frontiers") of the same trees, also from constants.go.
_NH0 = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
]
_NH1 = [
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
]
_NH2 = "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
_NH3 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
RFC6962_COMPACT = [
    [bytes.fromhex(h) for h in row]
    for row in (
        [],
        [_NH0[0]],
        [_NH1[0]],
        [_NH1[0], _NH0[1]],
        [_NH2],
        [_NH2, _NH0[2]],
        [_NH2, _NH1[1]],
        [_NH2, _NH1[1], _NH0[3]],
        [_NH3],
    )
]

EDGE_SIZES = sorted(
    {0, 1, 2, 3}
    | {s for k in range(2, 11) for s in (2**k - 1, 2**k, 2**k + 1)}
    | {2**CACHE_HEIGHT * 3 + 5}
)


def _leaves(count: int, seed: int = 0) -> list[bytes]:
    return [leaf_hash(f"{seed}:{i}".encode()) for i in range(count)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _split(len(d))
    return node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
    if m == len(d):
        return [] if complete else [_mth(d)]
    k = _split(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], complete), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


SMALL = _leaves(70)
SMALL_TREE = MerkleTree(SMALL)


# -- roots -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_roots_equal_the_rfc6962_reference_roots(size: int) -> None:
    hashes = [leaf_hash(d) for d in RFC6962_LEAVES[:size]]
    tree = MerkleTree([leaf_hash(d) for d in RFC6962_LEAVES])
    frontier = Frontier()
    frontier.extend(hashes)
    assert root_from_leaf_hashes(hashes) == RFC6962_ROOTS[size]
    assert tree.root(size) == RFC6962_ROOTS[size]
    assert frontier.root() == RFC6962_ROOTS[size]
    assert list(frontier.hashes) == RFC6962_COMPACT[size]


def test_the_empty_tree_has_the_hash_of_the_empty_string_as_root() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert MerkleTree().root() == EMPTY_ROOT == root_from_leaf_hashes([])
    assert Frontier().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_roots_at_edge_sizes_equal_the_recursive_definition(size: int) -> None:
    leaves = _leaves(size, seed=size)
    expected = _mth(leaves)
    assert root_from_leaf_hashes(leaves) == expected
    assert MerkleTree(leaves).root() == expected
    frontier = Frontier()
    frontier.extend(leaves)
    assert frontier.root() == expected
    assert len(frontier.hashes) == size.bit_count()


def test_every_prefix_root_of_a_tree_built_by_appends_equals_the_recomputed_root() -> None:
    leaves = _leaves(5 * 2**CACHE_HEIGHT + 3, seed=7)
    tree = MerkleTree()
    frontier = Frontier()
    for size, value in enumerate(leaves, start=1):
        tree.append(value)
        frontier.append(value)
        assert frontier.root() == tree.root()
        assert tree.root() == root_from_leaf_hashes(leaves[:size])
    bulk = MerkleTree(leaves)
    for size in range(len(leaves) + 1):
        assert tree.root(size) == bulk.root(size) == root_from_leaf_hashes(leaves[:size])


def test_a_frontier_restored_from_its_state_continues_with_the_same_roots() -> None:
    leaves = _leaves(200, seed=3)
    first = Frontier()
    first.extend(leaves[:77])
    restored = Frontier(first.size, first.hashes)
    restored.extend(leaves[77:])
    assert restored.size == 200
    assert restored.root() == root_from_leaf_hashes(leaves)


def test_a_frontier_whose_hashes_do_not_match_its_size_is_refused() -> None:
    with pytest.raises(ValueError, match="holds"):
        Frontier(5, [bytes(32)])
    with pytest.raises(ValueError, match="at most 64"):
        Frontier(2**64, [bytes(32)])
    with pytest.raises(ValueError, match="32 bytes"):
        Frontier(1, [bytes(31)])


# -- inclusion ---------------------------------------------------------------------------


def test_inclusion_proofs_equal_the_rfc_path_and_verify_for_every_index_up_to_70() -> None:
    for size in range(1, 71):
        root = SMALL_TREE.root(size)
        for index in range(size):
            proof = SMALL_TREE.inclusion_proof(index, size)
            assert proof == _path(index, SMALL[:size])
            verify_inclusion(SMALL[index], index, size, proof, root)


@pytest.mark.parametrize(("index", "size"), [(0, 1), (5, 7), (63, 64), (64, 65), (20, 69)])
def test_an_inclusion_proof_fails_for_another_leaf_index_size_or_root(
    index: int, size: int
) -> None:
    proof = SMALL_TREE.inclusion_proof(index, size)
    root = SMALL_TREE.root(size)
    leaf = SMALL[index]
    other = SMALL[(index + 1) % size] if size > 1 else leaf_hash(b"other")
    cases = [
        (other, index, size, proof, root),
        (leaf, index, size, proof, SMALL_TREE.root(size - 1)),
        (leaf, index, size, [*proof, bytes(32)], root),
        (leaf, size, size, proof, root),
        (leaf, index, size + 1, proof, SMALL_TREE.root(size + 1)),
    ]
    if size > 1:
        cases.append((leaf, (index + 1) % size, size, proof, root))
        cases.append((leaf, index, size, proof[:-1], root))
        flipped = bytearray(proof[0])
        flipped[0] ^= 1
        cases.append((leaf, index, size, [bytes(flipped), *proof[1:]], root))
    for args in cases:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


def test_hashes_that_are_not_32_bytes_are_refused_by_the_inclusion_verifier() -> None:
    proof = SMALL_TREE.inclusion_proof(3, 8)
    root = SMALL_TREE.root(8)
    with pytest.raises(ProofError, match="leaf hash must be 32 bytes"):
        verify_inclusion(SMALL[3][:31], 3, 8, proof, root)
    with pytest.raises(ProofError, match="root must be 32 bytes"):
        verify_inclusion(SMALL[3], 3, 8, proof, root + b"\x00")
    with pytest.raises(ProofError, match="proof hash 1 must be 32 bytes"):
        verify_inclusion(SMALL[3], 3, 8, [proof[0], proof[1][:16], proof[2]], root)


# -- consistency -------------------------------------------------------------------------


def test_consistency_proofs_equal_the_rfc_subproof_and_verify_for_all_pairs_up_to_70() -> None:
    for size2 in range(1, 71):
        root2 = SMALL_TREE.root(size2)
        for size1 in range(1, size2 + 1):
            proof = SMALL_TREE.consistency_proof(size1, size2)
            assert proof == _subproof(size1, SMALL[:size2], True)
            verify_consistency(size1, size2, proof, SMALL_TREE.root(size1), root2)


def test_a_consistency_proof_fails_against_a_different_history() -> None:
    forked = list(SMALL)
    forked[10] = leaf_hash(b"rewritten event 10")
    forked_tree = MerkleTree(forked)
    for size1, size2 in [(11, 12), (11, 64), (16, 70), (33, 65), (64, 70)]:
        proof = forked_tree.consistency_proof(size1, size2)
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, SMALL_TREE.root(size1), forked_tree.root(size2))


@pytest.mark.parametrize(("size1", "size2"), [(1, 2), (3, 7), (4, 8), (6, 8), (7, 64), (63, 65)])
def test_a_tampered_consistency_proof_is_rejected(size1: int, size2: int) -> None:
    proof = SMALL_TREE.consistency_proof(size1, size2)
    root1, root2 = SMALL_TREE.root(size1), SMALL_TREE.root(size2)
    for position in range(len(proof)):
        flipped = bytearray(proof[position])
        flipped[31] ^= 0x80
        bad = [*proof[:position], bytes(flipped), *proof[position + 1 :]]
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, bad, root1, root2)
    for bad_proof in (proof[:-1], [*proof, proof[-1]], [bytes(32), *proof]):
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, bad_proof, root1, root2)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root2, root1)


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    root = SMALL_TREE.root(9)
    assert SMALL_TREE.consistency_proof(9, 9) == []
    verify_consistency(9, 9, [], root, root)
    with pytest.raises(ProofError, match="roots differ"):
        verify_consistency(9, 9, [], root, SMALL_TREE.root(8))
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(9, 9, [root], root, root)


def test_consistency_from_the_empty_tree_is_refused_by_prover_and_verifier() -> None:
    with pytest.raises(ValueError, match="0 < size1"):
        SMALL_TREE.consistency_proof(0, 5)
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 5, [], EMPTY_ROOT, SMALL_TREE.root(5))
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)


def test_a_shrinking_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="size1 <= size2"):
        SMALL_TREE.consistency_proof(6, 5)
    with pytest.raises(ProofError, match="smaller than size1"):
        verify_consistency(6, 5, [], SMALL_TREE.root(6), SMALL_TREE.root(5))


# -- big trees ---------------------------------------------------------------------------

BIG_SIZE = 2**17 + 3
BIG = _leaves(BIG_SIZE, seed=17)
BIG_TREE = MerkleTree(BIG)


def test_a_big_tree_has_the_same_root_as_the_level_by_level_reduction() -> None:
    assert BIG_TREE.root() == root_from_leaf_hashes(BIG)
    for size in (2**16 - 1, 2**16, 2**16 + 1, 100_000, BIG_SIZE - 1):
        assert BIG_TREE.root(size) == root_from_leaf_hashes(BIG[:size])


@pytest.mark.parametrize(
    ("size1", "size2"),
    [
        (1, BIG_SIZE),
        (2**16, BIG_SIZE),
        (2**16 + 1, 2**17),
        (12_345, 65_536),
        (99_999, 100_000),
        (BIG_SIZE - 1, BIG_SIZE),
        (2**CACHE_HEIGHT, 2**CACHE_HEIGHT * 1000 + 7),
    ],
)
def test_big_consistency_proofs_verify(size1: int, size2: int) -> None:
    proof = BIG_TREE.consistency_proof(size1, size2)
    assert len(proof) <= 2 * size2.bit_length()
    verify_consistency(size1, size2, proof, BIG_TREE.root(size1), BIG_TREE.root(size2))


def test_big_inclusion_proofs_verify() -> None:
    rng = random.Random(42)
    pairs = [(0, BIG_SIZE), (2**16 - 1, BIG_SIZE), (2**16, BIG_SIZE), (BIG_SIZE - 1, BIG_SIZE)]
    pairs += [(rng.randrange(s), s) for s in (rng.randrange(1, BIG_SIZE + 1) for _ in range(50))]
    for index, size in pairs:
        proof = BIG_TREE.inclusion_proof(index, size)
        verify_inclusion(BIG[index], index, size, proof, BIG_TREE.root(size))


# -- properties --------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=8), min_size=1, max_size=300),
    st.data(),
)
def test_any_proof_our_tree_makes_our_verifier_accepts(
    entries: list[bytes], data: st.DataObject
) -> None:
    leaves = [leaf_hash(e) for e in entries]
    tree = MerkleTree(leaves)
    size2 = data.draw(st.integers(1, len(leaves)))
    size1 = data.draw(st.integers(1, size2))
    index = data.draw(st.integers(0, size2 - 1))
    root1, root2 = _mth(leaves[:size1]), _mth(leaves[:size2])
    verify_inclusion(leaves[index], index, size2, tree.inclusion_proof(index, size2), root2)
    verify_consistency(size1, size2, tree.consistency_proof(size1, size2), root1, root2)


def test_reads_outside_the_tree_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        SMALL_TREE.root(71)
    with pytest.raises(ValueError, match="outside"):
        SMALL_TREE.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="outside"):
        SMALL_TREE.inclusion_proof(0, 0)
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree().append(b"short")
