"""Differential tests: our RFC 9162 tree against pymerkle 7.0.0 as an independent oracle.

pymerkle (GPL-3.0) is a test-only dependency and is never imported by ``replay/``. Its
roots and inclusion paths follow RFC 9162 (``prove_inclusion(i + 1, n).path[1:]`` is the
audit path; ``path[0]`` is the leaf itself). Its consistency proofs use a different,
non-RFC layout, so they are not compared here; ``test_merkle_tree`` checks ours against
the RFC definition and ``test_merkle_vectors`` against transparency-dev's vectors.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from replay.merkle import MerkleTree
from replay.verifier import leaf_hash, root_from_leaf_hashes, verify_inclusion

ORACLE_SIZE = 600
ENTRIES = [f"event {i}".encode() for i in range(ORACLE_SIZE)]
LEAVES = [leaf_hash(e) for e in ENTRIES]
TREE = MerkleTree(LEAVES)


def _oracle(entries: list[bytes]) -> InmemoryTree:
    tree = InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    return tree


ORACLE = _oracle(ENTRIES)


def test_leaf_hashes_are_the_oracles() -> None:
    for index in (0, 1, 299, ORACLE_SIZE - 1):
        assert ORACLE.get_leaf(index + 1) == LEAVES[index]


def test_roots_equal_the_oracle_for_every_size_up_to_300() -> None:
    for size in range(301):
        assert TREE.root(size) == ORACLE.get_root(size), size


def test_roots_equal_the_oracle_for_random_sizes() -> None:
    rng = random.Random(9162)
    for size in rng.sample(range(301, ORACLE_SIZE + 1), 60):
        assert TREE.root(size) == ORACLE.get_root(size) == root_from_leaf_hashes(LEAVES[:size])


@pytest.mark.parametrize("size", [*range(1, 70), 127, 128, 129, 255, 256, 257, 300, 513])
def test_inclusion_paths_equal_the_oracles(size: int) -> None:
    root = TREE.root(size)
    for index in range(size):
        ours = TREE.inclusion_proof(index, size)
        theirs = ORACLE.prove_inclusion(index + 1, size).path
        assert theirs[0] == LEAVES[index]
        assert ours == list(theirs[1:]), (index, size)
        verify_inclusion(LEAVES[index], index, size, ours, root)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=16), min_size=1, max_size=200), st.data())
def test_random_trees_agree_with_the_oracle(entries: list[bytes], data: st.DataObject) -> None:
    oracle = _oracle(entries)
    tree = MerkleTree([leaf_hash(e) for e in entries])
    size = data.draw(st.integers(0, len(entries)))
    assert tree.root(size) == oracle.get_root(size)
    if size:
        index = data.draw(st.integers(0, size - 1))
        path = oracle.prove_inclusion(index + 1, size).path
        assert tree.inclusion_proof(index, size) == list(path[1:])
