"""Evidence bundles verify offline, and every kind of tampering is named."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.store import EventStore
from replay import verifier
from replay.export import export_bundle
from replay.log import log_tree, make_checkpoint, origin
from replay.signing import generate_signing_key, load_signing_key, sign_checkpoint
from replay.verifier import BundleError, verify_bundle
from tests.integration.ledger_fixtures import run_history


@pytest.fixture
def bundle(store: EventStore, tmp_path: Path) -> tuple[Path, Path, str, Ed25519PrivateKey]:
    """A bundle of positions 20..end, and the checkpoint a regulator took earlier."""
    key_path = tmp_path / "keys" / "checkpoint.key"
    key_path.parent.mkdir()
    verifier_key = generate_signing_key(key_path, origin()).encode()
    key = load_signing_key(key_path)
    run_history(store, seed=1, transfers=30)
    held = make_checkpoint(store.recorder, key)
    held_file = tmp_path / "held-checkpoint"
    held_file.write_text(held.note)
    run_history(store, seed=2, transfers=30)
    out = tmp_path / "bundle"
    export_bundle(store.recorder, out, key, from_position=20, trusted_sizes=[held.size])
    return out, held_file, verifier_key, key


def test_a_clean_bundle_verifies_against_the_held_checkpoint(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey],
) -> None:
    out, held, pinned, _ = bundle
    report = verify_bundle(str(out), pinned_key=pinned, trusted_checkpoint=str(held))
    assert report.first_position == 20
    assert report.trusted_size is not None
    assert verifier.main([str(out), "--public-key", pinned, "--trusted-checkpoint", str(held)]) == 0


def test_every_sampled_single_bit_flip_in_any_file_is_detected(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey], tmp_path: Path
) -> None:
    out, held, pinned, _ = bundle
    rng = random.Random(7)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    flips = 0
    for path in files:
        original = path.read_bytes()
        offsets = sorted(rng.sample(range(len(original)), min(25, len(original))))
        for offset in offsets:
            damaged = bytearray(original)
            damaged[offset] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(damaged))
            with pytest.raises((BundleError, ValueError)):
                verify_bundle(str(out), pinned_key=pinned, trusted_checkpoint=str(held))
            flips += 1
        path.write_bytes(original)
    assert flips >= 150  # 25 sampled bits in each of the six files
    verify_bundle(str(out), pinned_key=pinned, trusted_checkpoint=str(held))


def _resign(out: Path, key: Ed25519PrivateKey, edit: Callable[[pa.Table], pa.Table]) -> None:
    """An insider with the key rewrites events.parquet and re-signs the manifest."""
    table = edit(pq.read_table(out / "events.parquet"))
    pq.write_table(table, out / "events.parquet")
    manifest = json.loads((out / "manifest.json").read_bytes())
    import hashlib

    for entry in manifest["files"]:
        if entry["path"] == "events.parquet":
            data = (out / "events.parquet").read_bytes()
            entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (out / "manifest.json").write_bytes(raw)
    kid = verifier.key_id(manifest["origin"], verifier.public_key_bytes(key.public_key()))
    import base64

    (out / "manifest.sig").write_text(
        f"{manifest['origin']} {base64.b64encode(kid + key.sign(raw)).decode()}\n"
    )


def _rows(table: pa.Table, order: list[int]) -> pa.Table:
    return table.take(pa.array(order))


def _edit_payload(table: pa.Table) -> pa.Table:
    payloads = table.column("payload").to_pylist()
    payloads[5] = payloads[5].replace(b"1", b"9", 1) if b"1" in payloads[5] else payloads[5] + b" "
    return table.set_column(
        table.schema.get_field_index("payload"), "payload", pa.array(payloads, pa.binary())
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: _rows(t, [i for i in range(t.num_rows) if i != 10]), "events, but positions"),
        (lambda t: _rows(t, [*range(t.num_rows), t.num_rows - 1])[1:], "position 20 expected"),
        (lambda t: _rows(t, [0, 1, 3, 2, *range(4, t.num_rows)]), "position 22 expected"),
        (_edit_payload, "position 25"),
    ],
    ids=["deleted row", "duplicated row", "reordered rows", "edited row"],
)
def test_an_insider_who_rewrites_events_and_resigns_the_manifest_is_caught(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey],
    edit: Callable[[pa.Table], pa.Table],
    message: str,
) -> None:
    out, held, pinned, key = bundle
    _resign(out, key, edit)
    with pytest.raises(BundleError, match=message):
        verify_bundle(str(out), pinned_key=pinned, trusted_checkpoint=str(held))


def test_an_edited_manifest_breaks_its_signature(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey],
) -> None:
    out, _, pinned, _ = bundle
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["first_position"] = 1
    (out / "manifest.json").write_bytes(
        json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    )
    with pytest.raises(BundleError, match=r"manifest\.sig: the signature does not match"):
        verify_bundle(str(out), pinned_key=pinned)


def test_a_bundle_signed_by_another_key_is_refused(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey],
) -> None:
    out, _, pinned, _ = bundle
    _resign(out, Ed25519PrivateKey.generate(), lambda t: t)
    with pytest.raises(BundleError, match="not a signature by the pinned key"):
        verify_bundle(str(out), pinned_key=pinned)


def test_a_checkpoint_inconsistent_with_the_held_one_is_refused(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey], tmp_path: Path
) -> None:
    out, held, pinned, key = bundle
    size, _ = verifier.verify_checkpoint(held.read_text(), origin(), origin(), key.public_key())
    forged = tmp_path / "forged-held"
    forged.write_text(sign_checkpoint(origin(), size, b"\x42" * 32, origin(), key))
    with pytest.raises(BundleError, match="not consistent with the trusted checkpoint"):
        verify_bundle(str(out), pinned_key=pinned, trusted_checkpoint=str(forged))


def test_a_truncated_bundle_is_refused(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey], store: EventStore, tmp_path: Path
) -> None:
    out, _, pinned, key = bundle
    head = store.recorder.head().position
    later = make_checkpoint(store.recorder, key, size=head)
    held_later = tmp_path / "held-later"
    held_later.write_text(later.note)
    short = tmp_path / "short"
    export_bundle(store.recorder, short, key, from_position=20, to_position=head - 5)
    with pytest.raises(BundleError, match="the log was truncated"):
        verify_bundle(str(short), pinned_key=pinned, trusted_checkpoint=str(held_later))
    (out / "events.parquet").unlink()
    with pytest.raises(BundleError, match=r"missing \['events\.parquet'\]"):
        verify_bundle(str(out), pinned_key=pinned)
    shutil.rmtree(out / "reports")
    with pytest.raises(BundleError, match="file set differs"):
        verify_bundle(str(out), pinned_key=pinned)


def test_the_signer_refuses_a_checkpoint_inconsistent_with_one_it_signed(
    store: EventStore, tmp_path: Path
) -> None:
    key_path = tmp_path / "k"
    generate_signing_key(key_path, origin())
    key = load_signing_key(key_path)
    run_history(store, seed=3, transfers=5)
    tree = log_tree(store.recorder)
    good = make_checkpoint(store.recorder, key, tree=tree)
    assert good.size == tree.size
    # A tree that claims a different history of the same events.
    from replay.log import CheckpointError
    from replay.merkle import MerkleTree

    other = MerkleTree([b"\x07" * 32] * (tree.size + 3))
    with pytest.raises(CheckpointError, match="inconsistent with checkpoint"):
        make_checkpoint(store.recorder, key, tree=other)


def test_a_bundle_without_a_proof_to_the_held_checkpoint_says_how_to_re_export(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey], store: EventStore, tmp_path: Path
) -> None:
    _, held, pinned, key = bundle
    held_size = int(held.read_text().splitlines()[1])
    plain = tmp_path / "plain"
    export_bundle(store.recorder, plain, key, from_position=20)
    with pytest.raises(BundleError, match=rf"ledgerline export --trusted-size {held_size}"):
        verify_bundle(str(plain), pinned_key=pinned, trusted_checkpoint=str(held))


def test_a_signed_manifest_without_its_range_and_a_key_file_that_is_not_text_are_named(
    bundle: tuple[Path, Path, str, Ed25519PrivateKey],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, _, pinned, key = bundle
    binary = tmp_path / "key.bin"
    binary.write_bytes(b"\xff\xfe\x00key")
    assert verifier.main([str(out), "--public-key", str(binary)]) == 1
    assert "key.bin: not a file of verifier keys" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_bytes())
    del manifest["first_position"]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (out / "manifest.json").write_bytes(raw)
    kid = verifier.key_id(manifest["origin"], verifier.public_key_bytes(key.public_key()))
    import base64

    (out / "manifest.sig").write_text(
        f"{manifest['origin']} {base64.b64encode(kid + key.sign(raw)).decode()}\n"
    )
    with pytest.raises(BundleError, match="first_position and last_position must be integers"):
        verify_bundle(str(out), pinned_key=pinned)
