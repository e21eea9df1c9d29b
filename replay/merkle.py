"""The proving side of the RFC 9162 Merkle tree over the global event log.

Definition
    ``ProvingTree`` produces roots, audit paths (RFC 9162 §2.1.3.1 PATH), consistency proofs
    (§2.1.4.1 PROOF / SUBPROOF) and compact ranges for any prefix of the log from one primitive,
    the hash of a full aligned subtree. ``MerkleTree`` holds the leaf hashes in memory (tests,
    small checks); ``replay.tiles.TiledTree`` reads the C2SP tiles the event store keeps (the
    service). ``Frontier`` holds only the compact range of a tree (one subtree root per set bit
    of its size, at most 64) and yields the current root after each append, for a reader that
    streams the log.

Guarantees
    * Every root and proof equals the RFC 9162 definition; ``replay.verifier`` checks them. Two
      trees over the same leaves answer byte for byte the same.
    * A root or a proof asks for O(log n) full subtrees.
    * ``MerkleTree`` caches the hash of every full, aligned subtree of at least
      ``2**CACHE_HEIGHT`` leaves, so a root or a proof costs O(log n) cached lookups plus
      at most O(2**CACHE_HEIGHT * log n) fresh hashes, and the cache costs about
      ``n / 2**(CACHE_HEIGHT - 1)`` hashes of memory on top of the leaves.
    * ``Frontier.append`` costs O(log n) amortised O(1) hashes; ``Frontier.root`` O(log n).

Constraints
    Leaf hashes must be 32 bytes; sizes and indices outside the tree raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.invariant import invariant
from replay.verifier import EMPTY_ROOT, HASH_LEN, node_hash, root_from_leaf_hashes

CACHE_HEIGHT = 6  # cache full subtrees of 64 leaves and up: ~n/32 cached hashes
MAX_FRONTIER_LEN = 64


def _largest_power_of_two_below(size: int) -> int:
    """The split point k of RFC 9162: the largest power of two strictly less than size."""
    invariant(size > 1, "only trees of two or more leaves are split")
    return 1 << ((size - 1).bit_length() - 1)


def _check_leaf(value: bytes) -> None:
    if len(value) != HASH_LEN:
        raise ValueError(f"a leaf hash must be {HASH_LEN} bytes, got {len(value)}")


class ProvingTree:
    """RFC 9162 roots and proofs over any source of full-subtree hashes.

    Definition
        A subclass gives ``size`` and ``_full_subtree(start, height)``: the hash of the full,
        aligned subtree of ``2**height`` leaves starting at leaf ``start``. Every root and proof
        is composed from those, so two trees over the same leaves answer byte for byte the same
        whatever they store (all leaves in memory, or C2SP tiles in PostgreSQL).
    Guarantees
        A root or a proof asks for O(log n) full subtrees (at most two per level of the tree).
    """

    __slots__ = ()

    @property
    def size(self) -> int:
        raise NotImplementedError

    def _full_subtree(self, start: int, height: int) -> bytes:
        raise NotImplementedError

    def leaf(self, index: int) -> bytes:
        self._check_index(index, self.size)
        return self._full_subtree(index, 0)

    # -- hashing of ranges -------------------------------------------------------------

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a node of the RFC 9162 tree (``start`` is aligned to the
        largest power of two not exceeding ``end - start``).

        Composed from the binary decomposition of ``end - start`` into full aligned
        subtrees, folded from the right, which is the RFC 9162 shape of that range.
        """
        count = end - start
        if count == 0:
            return EMPTY_ROOT
        parts = self._decomposition(start, count)
        result = parts[-1]
        for left in reversed(parts[:-1]):
            result = node_hash(left, result)
        return result

    def _decomposition(self, start: int, count: int) -> list[bytes]:
        parts: list[bytes] = []
        offset = start
        for height in range(count.bit_length() - 1, -1, -1):
            if count >> height & 1:
                parts.append(self._full_subtree(offset, height))
                offset += 1 << height
        return parts

    # -- public reads ------------------------------------------------------------------

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all); ``SHA-256("")`` for size 0."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._range_hash(0, size)

    def compact_range(self, size: int | None = None) -> list[bytes]:
        """The subtree roots of the binary decomposition of ``size`` (a ``Frontier``'s hashes)."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._decomposition(0, size) if size else []

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]): the audit path from the leaf up to the root."""
        size = self.size if size is None else size
        self._check_size(size)
        self._check_index(index, size)
        path: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:  # descend from the root; the path is built top-down
            k = _largest_power_of_two_below(end - start)
            if m < k:
                path.append(self._range_hash(start + k, end))
                end = start + k
            else:
                path.append(self._range_hash(start, start + k))
                start += k
                m -= k
        path.reverse()
        return path

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(size1, D[0:size2]) = SUBPROOF(size1, D[0:size2], true).

        ``size1 == size2`` gives the empty proof; ``size1 == 0`` is refused, as the
        verifier refuses it (nothing is proven by extending the empty tree).
        """
        size2 = self.size if size2 is None else size2
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise ValueError(f"need 0 < size1 <= size2, got size1={size1}, size2={size2}")
        proof: list[bytes] = []
        start, end, m, complete = 0, size2, size1, True
        while m != end - start:  # SUBPROOF(m, D[start:end], complete), unrolled
            k = _largest_power_of_two_below(end - start)
            if m <= k:
                proof.append(self._range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._range_hash(start, start + k))
                start += k
                m -= k
                complete = False
        if not complete:
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside 0..{size - 1}")


class MerkleTree(ProvingTree):
    """An append-only RFC 9162 tree over leaf hashes held in memory, able to prove any prefix.

    Definition
        ``leaf_hashes[i]`` is the RFC 9162 leaf hash of the event at log index ``i``.
        ``_cache[h - CACHE_HEIGHT][j]`` is the hash of the full subtree over leaves
        ``[j * 2**h, (j + 1) * 2**h)``, kept for every such subtree that is complete.
    Guarantees
        The cache is brought up to date by every ``append`` / ``extend``, so reads never
        mutate the tree.
    Constraints
        Memory grows with the tree: the service reads C2SP tiles instead
        (``replay.tiles.TiledTree``); this one serves tests and small in-memory checks.
    """

    __slots__ = ("_cache", "_leaves")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._leaves: list[bytes] = []
        self._cache: list[list[bytes]] = []
        self.extend(leaf_hashes)

    def __len__(self) -> int:
        return len(self._leaves)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._leaves)

    def leaf(self, index: int) -> bytes:
        self._check_index(index, self.size)
        return self._leaves[index]

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash at the end (amortised O(1) hashes)."""
        _check_leaf(leaf_hash)
        self._leaves.append(leaf_hash)
        self._sync_cache()

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes at the end, then hash the new full subtrees in one pass."""
        added = list(leaf_hashes)
        for value in added:
            _check_leaf(value)
        self._leaves.extend(added)
        self._sync_cache()

    def _sync_cache(self) -> None:
        width = 1 << CACHE_HEIGHT
        if not self._cache:
            self._cache.append([])
        base = self._cache[0]
        leaves = self._leaves
        for j in range(len(base), len(leaves) // width):
            base.append(root_from_leaf_hashes(leaves[j * width : (j + 1) * width]))
        height = 1
        while len(self._cache[height - 1]) >= 2:
            below = self._cache[height - 1]
            if len(self._cache) == height:
                self._cache.append([])
            level = self._cache[height]
            for j in range(len(level), len(below) // 2):
                level.append(node_hash(below[2 * j], below[2 * j + 1]))
            height += 1

    def _full_subtree(self, start: int, height: int) -> bytes:
        """Hash of the full aligned subtree of ``2**height`` leaves starting at ``start``."""
        if height >= CACHE_HEIGHT:
            level = self._cache[height - CACHE_HEIGHT]
            return level[start >> height]
        return root_from_leaf_hashes(self._leaves[start : start + (1 << height)])


class Frontier:
    """The compact range of an RFC 9162 tree: enough to append and to give the root.

    Definition
        ``hashes[i]`` is the root of the i-th full subtree in the binary decomposition of
        ``size``, largest (leftmost) first: one hash per set bit of ``size``.
    Guarantees
        ``root()`` equals ``MerkleTree(leaves).root()`` for the same leaves. At most 64
        hashes are kept. State can be persisted as ``(size, hashes)`` and restored.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or size.bit_count() != len(hashes):
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        if size.bit_length() > MAX_FRONTIER_LEN:
            raise ValueError(f"a frontier holds at most {MAX_FRONTIER_LEN} subtree roots")
        for value in hashes:
            _check_leaf(value)
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash: merge equal-height subtrees like a binary carry."""
        _check_leaf(leaf_hash)
        carry = leaf_hash
        size = self._size
        while size & 1:  # each trailing 1 bit is a full subtree the new leaf completes
            carry = node_hash(self._hashes.pop(), carry)
            size >>= 1
        self._hashes.append(carry)
        self._size += 1
        invariant(len(self._hashes) == self._size.bit_count(), "frontier matches its size")

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for value in leaf_hashes:
            self.append(value)

    def root(self) -> bytes:
        """MTH of all leaves appended so far, folding the subtree roots from the right."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            result = node_hash(left, result)
        return result
