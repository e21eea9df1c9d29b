"""Evidence bundles: the events of a position range, signed, provable against a checkpoint.

Layout of a bundle directory::

    events.parquet          every event in the range: position, stream, version, topic,
                            commit time, canonical payload bytes, both chain links
    checkpoint              the C2SP signed checkpoint at the range's last position
    proofs/consistency-<m>-<n>.json   RFC 9162 proof from a checkpoint the regulator holds
    reports/*.parquet       reports computed from the same events (see replay.reports)
    keys/checkpoint.pub     the log's verifier key (pin it out of band, too)
    manifest.json           ranges, the prefix before the range (compact Merkle range and
                            global hash), every file's SHA-256 and size
    manifest.sig            Ed25519 signature over the exact bytes of manifest.json

``replay/verifier.py`` checks all of it with only the standard library, ``cryptography`` and
``pyarrow``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.canonical import GENESIS
from eventstore.recorder import HashChainRecorder
from eventstore.schema import LATEST_VERSION
from replay.log import build_tree, make_checkpoint, origin
from replay.merkle import Frontier
from replay.verifier import BUNDLE_FORMAT, format_verifier_key, key_id, public_key_bytes

TOOL_VERSION = "ledgerline 0.1.0"

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


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_bundle(
    recorder: HashChainRecorder,
    out: Path,
    key: Ed25519PrivateKey,
    *,
    from_position: int = 1,
    to_position: int | None = None,
    trusted_sizes: Sequence[int] = (),
    reports: dict[str, pa.Table] | None = None,
) -> dict[str, Any]:
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty; export into a new directory")
    head = recorder.head().position
    last = head if to_position is None else to_position
    if not 1 <= from_position <= last <= head:
        raise ExportError(f"positions {from_position}..{last} are not within the log (1..{head})")
    name = origin()
    tree = build_tree(recorder)
    checkpoint = make_checkpoint(recorder, key, log_origin=name, size=last, tree=tree)
    out.mkdir(parents=True, exist_ok=True)
    (out / "proofs").mkdir()
    (out / "keys").mkdir()
    (out / "reports").mkdir()

    columns: dict[str, list[Any]] = {f.name: [] for f in EVENT_SCHEMA}
    prev_global = GENESIS
    for batch in recorder.iter_all(20_000, upto_position=last):
        for e in batch:
            if e.position < from_position:
                prev_global = e.global_hash
                continue
            for field in EVENT_SCHEMA.names:
                columns[field].append(getattr(e, field if field != "position" else "position"))
    table = pa.table(columns, schema=EVENT_SCHEMA)
    pq.write_table(table, out / "events.parquet", compression="zstd")
    (out / "checkpoint").write_text(checkpoint.note)
    prefix = Frontier()
    for i in range(from_position - 1):
        prefix.append(tree.leaf(i))
    consistency = []
    for m in sorted(set(trusted_sizes)):
        if not 0 < m <= last:
            raise ExportError(f"a trusted checkpoint of size {m} cannot precede size {last}")
        path = f"proofs/consistency-{m}-{last}.json"
        (out / path).write_text(
            json.dumps(
                {
                    "from": m,
                    "to": last,
                    "proof": [h.hex() for h in tree.consistency_proof(m, last)],
                },
                indent=1,
            )
        )
        consistency.append({"from": m, "to": last, "file": path})
    verifier_key = format_verifier_key(name, key.public_key())
    (out / "keys" / "checkpoint.pub").write_text(verifier_key + "\n")
    for report_name, report in (reports or {}).items():
        pq.write_table(report, out / "reports" / f"{report_name}.parquet")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    manifest = {
        "bundle_format": BUNDLE_FORMAT,
        "origin": name,
        "verifier_key": verifier_key,
        "first_position": from_position,
        "last_position": last,
        "event_count": table.num_rows,
        "prefix": {
            "size": prefix.size,
            "frontier": [h.hex() for h in prefix.hashes],
            "prev_global_hash": prev_global.hex(),
        },
        "checkpoint": {
            "file": "checkpoint",
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
        },
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
    kid = key_id(name, public_key_bytes(key.public_key()))
    signature = key.sign(manifest_bytes)
    import base64

    (out / "manifest.sig").write_text(
        f"{name} {base64.b64encode(kid + signature).decode('ascii')}\n"
    )
    return manifest
