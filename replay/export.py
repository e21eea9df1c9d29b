"""Evidence bundles: the events of a position range, signed, provable against a checkpoint.

Layout of a bundle directory::

    events.parquet          every event in the range: position, stream, version, topic,
                            commit time, canonical payload bytes, both chain links
    checkpoint              the C2SP signed checkpoint at the range's last position (Ed25519
                            and ML-DSA-65 signature lines)
    witnessed-checkpoint    (when the log has witnesses) the newest cosigned checkpoint at or
                            after the range's end, with the witnesses' cosignature lines; if
                            none has seen that far, the export asks them to cosign the head
    proofs/consistency-<m>-<n>.json   RFC 9162 proofs: from a checkpoint the regulator holds
                            to the bundle's, and from the bundle's to the witnessed one
    reports/*.parquet       reports computed over the same range (see replay.reports)
    keys/checkpoint.pub     the log's verifier keys, one per line (pin them out of band too)
    keys/witnesses.pub      the verifier keys of the witnesses the log asks (informational)
    manifest.json           ranges, the prefix before the range (compact Merkle range and
                            global hash), every file's SHA-256 and size
    manifest.sig            one line per log key: ``<name> <base64(key id || signature)>``
                            over the exact bytes of manifest.json

``replay/verifier.py`` checks all of it with only the standard library, ``cryptography`` and
``pyarrow``.

Guarantees
    An export of positions ``A..B`` reads the events ``A - 1..B``, O(log n) tiles and a few
    checkpoint rows: its cost grows with ``B - A``, not with the log. Events are written to
    Parquet batch by batch, so memory does not grow with the range either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.canonical import GENESIS
from eventstore.recorder import HashChainRecorder
from eventstore.schema import LATEST_VERSION
from replay.keys import Keyring, witnesses
from replay.log import latest_cosigned, log_tree, make_checkpoint, origin, published
from replay.verifier import BUNDLE_FORMAT, ED25519
from replay.witness import collect_cosignatures

TOOL_VERSION = "ledgerline 0.1.0"
BATCH_SIZE = 20_000

EVENT_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("stream_id", pa.string()),
        ("version", pa.int64()),
        ("topic", pa.string()),
        ("recorded_at_ns", pa.int64()),
        ("payload", pa.binary()),
        ("prev_stream_hash", pa.binary(32)),
        ("stream_hash", pa.binary(32)),
        ("prev_global_hash", pa.binary(32)),
        ("global_hash", pa.binary(32)),
    ]
)


class ExportError(Exception):
    pass


def export_range(head: int, from_position: int, to_position: int | None) -> int:
    """The last position of an export of ``from_position..to_position`` (``None``: the head),
    or ExportError when the range is not within the log ``1..head``."""
    last = head if to_position is None else to_position
    if not 1 <= from_position <= last <= head:
        raise ExportError(f"positions {from_position}..{last} are not within the log (1..{head})")
    return last


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _proof_file(out: Path, tree: Any, m: int, n: int) -> str:
    path = f"proofs/consistency-{m}-{n}.json"
    (out / path).write_text(
        json.dumps(
            {"from": m, "to": n, "proof": [h.hex() for h in tree.consistency_proof(m, n)]},
            indent=1,
        )
    )
    return path


def export_bundle(  # noqa: PLR0915 - one linear sequence of files
    recorder: HashChainRecorder,
    out: Path,
    key: Ed25519PrivateKey | Keyring,
    *,
    from_position: int = 1,
    to_position: int | None = None,
    trusted_sizes: Sequence[int] = (),
    reports: dict[str, pa.Table] | None = None,
    batch_size: int = BATCH_SIZE,
    witness_timeout_s: float = 5.0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty; export into a new directory")
    head = recorder.head().position
    last = export_range(head, from_position, to_position)
    for m in trusted_sizes:
        if not 0 < m <= last:
            raise ExportError(f"a trusted checkpoint of size {m} cannot precede size {last}")
    name = origin()
    keyring = key if isinstance(key, Keyring) else Keyring.fixed(key, name)
    tree = log_tree(recorder, head)
    checkpoint = make_checkpoint(recorder, keyring, log_origin=name, size=last, tree=tree)
    signers = keyring.signers(recorder)
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("proofs", "keys", "reports"):
        (out / sub).mkdir()

    advanced = progress or (lambda n: None)
    prev_global = GENESIS
    if from_position > 1:
        [before] = recorder.read_from(from_position - 2, 1)
        prev_global = before.global_hash
    count = 0
    with pq.ParquetWriter(out / "events.parquet", EVENT_SCHEMA, compression="zstd") as writer:
        after = from_position - 1
        while after < last:
            batch = recorder.read_from(after, batch_size, last)
            if not batch:
                break
            after = batch[-1].position
            count += len(batch)
            columns = {f: [getattr(e, f) for e in batch] for f in EVENT_SCHEMA.names}
            writer.write_table(pa.table(columns, schema=EVENT_SCHEMA))
            advanced(len(batch))
    if count != last - from_position + 1:
        raise ExportError(f"the log returned {count} events for positions {from_position}..{last}")
    (out / "checkpoint").write_text(checkpoint.note)
    prefix = tree.compact_range(from_position - 1)
    consistency = [
        {"from": m, "to": last, "file": _proof_file(out, tree, m, last)}
        for m in sorted(set(trusted_sizes))
    ]
    witnessed: dict[str, Any] | None = None
    cosigned = latest_cosigned(recorder, last)
    if cosigned is None and witnesses(recorder):
        # No witness has seen this much of the log yet: show them the head now (witnesses only
        # move forward, so the newest checkpoint is the one they can all cosign).
        at_head = make_checkpoint(recorder, keyring, log_origin=name, size=tree.size, tree=tree)
        collect_cosignatures(recorder, at_head, timeout_s=witness_timeout_s)
        cosigned = latest_cosigned(recorder, last)
    if cosigned is not None and cosigned.size <= tree.size:
        (out / "witnessed-checkpoint").write_text(published(recorder, cosigned))
        witnessed = {
            "file": "witnessed-checkpoint",
            "size": cosigned.size,
            "root": cosigned.root.hex(),
            "consistency": (
                _proof_file(out, tree, last, cosigned.size) if cosigned.size > last else None
            ),
        }
    verifier_keys = [s.verifier_key.encode() for s in signers]
    (out / "keys" / "checkpoint.pub").write_text("".join(k + "\n" for k in verifier_keys))
    (out / "keys" / "witnesses.pub").write_text(
        "".join(w.key.encode() + "\n" for w in witnesses(recorder))
    )
    for report_name, report in (reports or {}).items():
        pq.write_table(report, out / "reports" / f"{report_name}.parquet")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    ed25519_key = next(
        k for s, k in zip(signers, verifier_keys, strict=True) if s.algorithm == ED25519
    )
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "origin": name,
        "verifier_key": ed25519_key,
        "verifier_keys": verifier_keys,
        "signature_algorithms": sorted({s.algorithm for s in signers}),
        "first_position": from_position,
        "last_position": last,
        "event_count": count,
        "prefix": {
            "size": from_position - 1,
            "frontier": [h.hex() for h in prefix],
            "prev_global_hash": prev_global.hex(),
        },
        "checkpoint": {
            "file": "checkpoint",
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
        },
        "witnessed": witnessed,
        "consistency": consistency,
        "reports": sorted(reports or {}),
        "schema_version": LATEST_VERSION,
        "tool_version": TOOL_VERSION,
        "files": [
            {"path": str(p.relative_to(out)), "sha256": _sha256_file(p), "bytes": p.stat().st_size}
            for p in files
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (out / "manifest.json").write_bytes(manifest_bytes)
    ordered = sorted(signers, key=lambda s: s.algorithm != ED25519)
    (out / "manifest.sig").write_text("".join(s.detached_line(manifest_bytes) for s in ordered))
    return manifest
