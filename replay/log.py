"""The event log as an RFC 9162 Merkle tree, and its signed checkpoints.

Definition
    Leaf ``i`` (0-based) is ``SHA-256(0x00 || event_bytes)`` of the event at position
    ``i + 1``. A checkpoint is a C2SP ``tlog-checkpoint`` (origin, tree size, root) signed with
    the log's Ed25519 key and stored append-only in ``<schema>.checkpoints``.

Guarantees
    The signer never signs a checkpoint inconsistent with one it signed before: before signing
    size ``n`` it proves, with an RFC 9162 consistency proof, that the last stored checkpoint's
    tree is a prefix of the current one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.canonical import EventFields, event_bytes, merkle_leaf_hash
from eventstore.model import StoredEvent
from eventstore.recorder import HashChainRecorder
from replay.merkle import MerkleTree
from replay.signing import load_signing_key, sign_checkpoint
from replay.verifier import ProofError, verify_consistency

DEFAULT_ORIGIN = "ledgerline.local/ledger"
ENV_ORIGIN = "LEDGERLINE_LOG_ORIGIN"
ENV_SIGNING_KEY = "LEDGERLINE_SIGNING_KEY"


class CheckpointError(Exception):
    """A checkpoint could not be made or does not agree with the log."""


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root: bytes
    note: str
    key_name: str
    # When it was stored (None until read back); not part of what a checkpoint is.
    created_at: dt.datetime | None = field(default=None, compare=False)


def origin() -> str:
    return os.environ.get(ENV_ORIGIN) or DEFAULT_ORIGIN


def signing_key_path(data_dir: Path) -> Path:
    configured = os.environ.get(ENV_SIGNING_KEY)
    return Path(configured) if configured else data_dir / "keys" / "checkpoint.key"


def leaf_of(e: StoredEvent) -> bytes:
    return merkle_leaf_hash(
        event_bytes(
            EventFields(e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload)
        )
    )


def iter_leaves(recorder: HashChainRecorder, upto: int | None = None) -> Iterator[bytes]:
    for batch in recorder.iter_all(20_000, upto_position=upto):
        for e in batch:
            yield leaf_of(e)


def build_tree(recorder: HashChainRecorder, upto: int | None = None) -> MerkleTree:
    return MerkleTree(iter_leaves(recorder, upto))


def checkpoints(recorder: HashChainRecorder) -> list[Checkpoint]:
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(
            f'SELECT tree_size, root, note, key_name, created_at FROM "{schema}".checkpoints'
            " ORDER BY tree_size"
        ).fetchall()
    return [
        Checkpoint(int(r["tree_size"]), bytes(r["root"]), r["note"], r["key_name"], r["created_at"])
        for r in rows
    ]


def latest_checkpoint(recorder: HashChainRecorder) -> Checkpoint | None:
    found = checkpoints(recorder)
    return found[-1] if found else None


def make_checkpoint(
    recorder: HashChainRecorder,
    key: Ed25519PrivateKey,
    *,
    log_origin: str | None = None,
    size: int | None = None,
    tree: MerkleTree | None = None,
) -> Checkpoint:
    """Sign and store a checkpoint of the first ``size`` events (default: all of them)."""
    name = log_origin or origin()
    tree = tree or build_tree(recorder)  # whole log: proofs may reach past `size`
    size = tree.size if size is None else size
    if size > tree.size:
        raise CheckpointError(f"the log has {tree.size} events; cannot checkpoint {size}")
    root = tree.root(size)
    existing = checkpoints(recorder)
    same = next((c for c in existing if c.size == size), None)
    if same is not None:
        if same.root != root:
            raise CheckpointError(
                f"the log's root at size {size} differs from the checkpoint signed earlier: "
                "the log was rewritten"
            )
        return same
    for earlier in existing:  # never sign anything inconsistent with what was signed before
        lo, hi = sorted((earlier.size, size))
        if lo == 0:
            continue
        try:
            verify_consistency(
                lo,
                hi,
                tree.consistency_proof(lo, hi),
                earlier.root if earlier.size == lo else root,
                root if size == hi else earlier.root,
            )
        except ProofError as exc:
            raise CheckpointError(
                f"refusing to sign size {size}: inconsistent with checkpoint {earlier.size} ({exc})"
            ) from None
    note = sign_checkpoint(name, size, root, name, key)
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        conn.execute(
            f'INSERT INTO "{schema}".checkpoints (tree_size, root, note, key_name)'
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tree_size) DO NOTHING",
            (size, root, note, name),
        )
    return Checkpoint(size, root, note, name)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "build_tree",
    "checkpoints",
    "latest_checkpoint",
    "load_signing_key",
    "make_checkpoint",
]
