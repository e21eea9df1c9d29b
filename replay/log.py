"""The event log as an RFC 9162 Merkle tree, and its signed checkpoints.

Definition
    Leaf ``i`` (0-based) is ``SHA-256(0x00 || event_bytes)`` of the event at position
    ``i + 1``. The tree is read from the C2SP tiles the event store keeps (``replay.tiles``).
    A checkpoint is a C2SP ``tlog-checkpoint`` (origin, tree size, root) signed with every
    signing key the log holds at the time (Ed25519 always, ML-DSA-65 beside it, both
    generations during a key rotation: ``replay.keys``) and stored append-only in
    ``<schema>.checkpoints``. Witness cosignatures of a checkpoint live in
    ``<schema>.checkpoint_cosignatures`` (``replay.witness``); the *published* checkpoint is
    the note with those cosignature lines appended.

Guarantees
    * The signer never signs a checkpoint inconsistent with one it signed before: before
      signing size ``n`` it proves, with an RFC 9162 consistency proof from the tiles, that
      the nearest stored checkpoints below and above ``n`` are consistent with the current
      log. Every stored checkpoint was checked against its neighbours when it was signed, so
      consistency with all of them follows.
    * Signing reads O(log n) tiles and O(1) checkpoint rows, whatever the log's length.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.recorder import HashChainRecorder
from replay.keys import Keyring
from replay.merkle import ProvingTree
from replay.signing import load_signing_key, sign_checkpoint
from replay.tiles import TiledTree
from replay.verifier import ED25519, ProofError, verify_consistency

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


def _select(recorder: HashChainRecorder, where: str, params: tuple[Any, ...]) -> list[Checkpoint]:
    table = f'"{recorder.datastore.schema}".checkpoints'
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(
            f"SELECT tree_size, root, note, key_name, created_at FROM {table}"
            f" {where.replace('{t}', table)}",
            params,
        ).fetchall()
    return [
        Checkpoint(int(r["tree_size"]), bytes(r["root"]), r["note"], r["key_name"], r["created_at"])
        for r in rows
    ]


def checkpoints(recorder: HashChainRecorder) -> list[Checkpoint]:
    """Every stored checkpoint, oldest first (for tests and audits; grows with the log)."""
    return _select(recorder, "ORDER BY tree_size", ())


def latest_checkpoint(recorder: HashChainRecorder) -> Checkpoint | None:
    found = _select(recorder, "ORDER BY tree_size DESC LIMIT 1", ())
    return found[0] if found else None


def checkpoint_at(recorder: HashChainRecorder, size: int) -> Checkpoint | None:
    found = _select(recorder, "WHERE tree_size = %s", (size,))
    return found[0] if found else None


def checkpoint_at_or_below(recorder: HashChainRecorder, size: int) -> Checkpoint | None:
    found = _select(recorder, "WHERE tree_size <= %s ORDER BY tree_size DESC LIMIT 1", (size,))
    return found[0] if found else None


def _checkpoint_above(recorder: HashChainRecorder, size: int) -> Checkpoint | None:
    found = _select(recorder, "WHERE tree_size > %s ORDER BY tree_size LIMIT 1", (size,))
    return found[0] if found else None


def log_tree(recorder: HashChainRecorder, size: int | None = None) -> TiledTree:
    """The log's tree (from its tiles) at ``size``, default the head."""
    return TiledTree.of_store(recorder, size)


def make_checkpoint(
    recorder: HashChainRecorder,
    key: Ed25519PrivateKey | Keyring,
    *,
    log_origin: str | None = None,
    size: int | None = None,
    tree: ProvingTree | None = None,
) -> Checkpoint:
    """Sign and store a checkpoint of the first ``size`` events (default: all of them)."""
    name = log_origin or origin()
    keyring = key if isinstance(key, Keyring) else Keyring.fixed(key, name)
    tree = tree or log_tree(recorder)  # up to the head: proofs may reach past `size`
    size = tree.size if size is None else size
    if not 0 <= size <= tree.size:
        raise CheckpointError(f"the log has {tree.size} events; cannot checkpoint {size}")
    # The stored checkpoints at, just below and just above this size: one query.
    near = _select(
        recorder,
        "WHERE tree_size = (SELECT max(tree_size) FROM {t} WHERE tree_size <= %s)"
        " OR tree_size = (SELECT min(tree_size) FROM {t} WHERE tree_size > %s)"
        " ORDER BY tree_size",
        (size, size),
    )
    neighbours = [c for c in near if c.size not in (0, size) and c.size <= tree.size]
    if any(c.size > tree.size for c in near):
        raise CheckpointError(
            f"refusing to sign size {size}: a checkpoint lies beyond the {tree.size} events of "
            "this tree"
        )
    proofs: dict[int, list[bytes]] = {}

    def work(t: ProvingTree) -> bytes:
        for c in neighbours:
            lo, hi = sorted((c.size, size))
            proofs[c.size] = t.consistency_proof(lo, hi)
        return t.root(size)

    root = tree.plan(work) if isinstance(tree, TiledTree) else work(tree)
    same = next((c for c in near if c.size == size), None)
    if same is not None:
        if same.root != root:
            raise CheckpointError(
                f"the log's root at size {size} differs from the checkpoint signed earlier: "
                "the log was rewritten"
            )
        return same
    # Never sign anything inconsistent with what was signed before.
    for earlier in neighbours:
        lo, hi = sorted((earlier.size, size))
        try:
            verify_consistency(
                lo,
                hi,
                proofs[earlier.size],
                earlier.root if earlier.size == lo else root,
                root if size == hi else earlier.root,
            )
        except (ProofError, ValueError) as exc:
            raise CheckpointError(
                f"refusing to sign size {size}: inconsistent with checkpoint {earlier.size} ({exc})"
            ) from None
    signers = keyring.signers(recorder)
    note = sign_checkpoint(name, size, root, name, signers)
    key_name = next(s.name for s in signers if s.algorithm == ED25519)
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        inserted = conn.execute(
            f'INSERT INTO "{schema}".checkpoints (tree_size, root, note, key_name)'
            " VALUES (%s, %s, %s, %s) ON CONFLICT (tree_size) DO NOTHING",
            (size, root, note, key_name),
        ).rowcount
    if inserted == 1:
        return Checkpoint(size, root, note, key_name)
    raced = checkpoint_at(recorder, size)  # another signer stored this size meanwhile
    if raced is None or raced.root != root:
        raise CheckpointError(f"checkpoint {size} was stored with another root meanwhile")
    return raced


def cosignature_lines(recorder: HashChainRecorder, size: int) -> list[str]:
    """The witness cosignature lines stored for the checkpoint of ``size``."""
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(
            f'SELECT signature_line FROM "{schema}".checkpoint_cosignatures'
            " WHERE tree_size = %s ORDER BY witness, key_id",
            (size,),
        ).fetchall()
    return [str(r["signature_line"]) for r in rows]


def published(recorder: HashChainRecorder, checkpoint: Checkpoint) -> str:
    """The checkpoint's note with the witnesses' cosignature lines appended."""
    lines = cosignature_lines(recorder, checkpoint.size)
    return checkpoint.note + "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def latest_cosigned(recorder: HashChainRecorder, min_size: int = 0) -> Checkpoint | None:
    """The newest checkpoint of at least ``min_size`` that some witness cosigned."""
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        row = conn.execute(
            f'SELECT max(tree_size) AS size FROM "{schema}".checkpoint_cosignatures'
            " WHERE tree_size >= %s",
            (min_size,),
        ).fetchone()
    if row is None or row["size"] is None:
        return None
    return checkpoint_at(recorder, int(row["size"]))


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_at",
    "checkpoints",
    "latest_checkpoint",
    "load_signing_key",
    "log_tree",
    "make_checkpoint",
    "published",
]
