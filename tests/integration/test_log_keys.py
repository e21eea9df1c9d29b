"""Checkpoints and bundles carry an ML-DSA-65 signature beside Ed25519; keys rotate through the
log with an overlap in which both generations sign; verifiers choose the algorithms they need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eventstore.store import EventStore
from eventstore.verify import verify_store
from replay.export import export_bundle
from replay.keys import KEY_ADDED, KEY_RETIRED, Keyring, read_trust, rotate_keys
from replay.log import make_checkpoint, origin
from replay.signing import generate_signing_key, load_signing_key
from replay.verifier import (
    BundleError,
    VerifierKey,
    verify_bundle,
    verify_note_keys,
)
from tests.integration.ledger_fixtures import run_history

VERIFIER = Path(__file__).resolve().parents[2] / "replay" / "verifier.py"


def keyring_at(tmp_path: Path) -> tuple[Keyring, list[VerifierKey]]:
    path = tmp_path / "keys" / "checkpoint.key"
    path.parent.mkdir()
    generate_signing_key(path, origin())
    keyring = Keyring(path, origin())
    return keyring, [s.verifier_key for s in keyring.base_signers()]


def test_a_checkpoint_is_signed_with_ed25519_and_ml_dsa_65(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = keyring_at(tmp_path)
    run_history(store, seed=1, transfers=5)
    cp = make_checkpoint(store.recorder, keyring)
    _, verified = verify_note_keys(cp.note, keys)
    assert [k.algorithm for k in verified] == ["ed25519", "ml-dsa-65"]
    ml_dsa = next(k for k in keys if k.algorithm == "ml-dsa-65")
    assert len(ml_dsa.public_key_bytes) == 1952
    assert ml_dsa.encode().startswith(f"{origin()}+")


def test_a_verifier_can_require_the_post_quantum_signature(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = keyring_at(tmp_path)
    run_history(store, seed=1, transfers=8)
    both = tmp_path / "both"
    export_bundle(store.recorder, both, keyring)
    ed_only = tmp_path / "ed-only"
    classic = load_signing_key(tmp_path / "keys" / "checkpoint.key")
    export_bundle(store.recorder, ed_only, classic)
    pinned = [k.encode() for k in keys]
    report = verify_bundle(str(both), pinned_key=pinned, require_algorithms=["ml-dsa-65"])
    assert report.signature_algorithms == ("ed25519", "ml-dsa-65")
    verify_bundle(str(ed_only), pinned_key=pinned)  # Ed25519 is enough by default
    with pytest.raises(BundleError, match=r"manifest\.sig: no ml-dsa-65 signature by a pinned key"):
        verify_bundle(str(ed_only), pinned_key=pinned, require_algorithms=["ed25519", "ml-dsa-65"])
    with pytest.raises(BundleError, match="no ml-dsa-65 verifier key is pinned"):
        verify_bundle(str(both), pinned_key=pinned[:1], require_algorithms=["ml-dsa-65"])
    # The standalone file, as a regulator runs it, with the keys in a file.
    pub = tmp_path / "log.pub"
    pub.write_text("\n".join(pinned) + "\n")
    for bundle, code in ((both, 0), (ed_only, 1)):
        done = subprocess.run(
            [sys.executable, str(VERIFIER), str(bundle), "--public-key", str(pub),
             "--require", "ed25519,ml-dsa-65"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == code, done.stderr
    assert "signed with ed25519 + ml-dsa-65" in subprocess.run(
        [sys.executable, str(VERIFIER), str(both), "--public-key", str(pub)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip


def test_a_damaged_post_quantum_signature_rejects_the_checkpoint(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = keyring_at(tmp_path)
    run_history(store, seed=1, transfers=3)
    note = make_checkpoint(store.recorder, keyring).note
    lines = note.splitlines(keepends=True)
    ml_line = lines[-1]
    damaged = ml_line[:60] + ("A" if ml_line[60] != "A" else "B") + ml_line[61:]
    from replay.verifier import NoteError

    with pytest.raises(NoteError):
        verify_note_keys("".join(lines[:-1]) + damaged, keys)


def test_a_rotation_is_an_event_and_both_generations_sign_during_the_overlap(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, old = keyring_at(tmp_path)
    run_history(store, seed=1, transfers=5)
    rotation = rotate_keys(store.recorder, keyring, overlap_s=3600)
    new = rotation.added
    assert [k.algorithm for k in new] == ["ed25519", "ml-dsa-65"]
    assert set(rotation.retiring) == set(old)
    events = store.recorder.read_streams(["log:keys"])["log:keys"]
    assert [e.topic for e in events] == [KEY_ADDED, KEY_ADDED, KEY_RETIRED, KEY_RETIRED]
    assert verify_store(store.recorder).ok  # the rotation is part of the hash-chained log
    run_history(store, seed=2, transfers=3)
    during = make_checkpoint(store.recorder, keyring)
    _, by_old = verify_note_keys(during.note, old)
    _, by_new = verify_note_keys(during.note, new)
    assert len(by_old) == 2 and len(by_new) == 2
    bundle = tmp_path / "during"
    export_bundle(store.recorder, bundle, keyring, from_position=3)
    for pinned in (old, new):
        verify_bundle(
            str(bundle), pinned_key=[k.encode() for k in pinned], require_algorithms=["ml-dsa-65"]
        )
    # After the overlap only the new keys sign: a verifier still pinned to the old ones refuses.
    later = read_trust(store.recorder).retired[old[0].encode()] + 1
    assert {s.verifier_key for s in keyring.signers(store.recorder, later)} == set(new)


def test_a_rotation_without_overlap_retires_the_old_keys_at_once(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, old = keyring_at(tmp_path)
    run_history(store, seed=1, transfers=5)
    rotate_keys(store.recorder, keyring, overlap_s=0)
    run_history(store, seed=2, transfers=2)
    bundle = tmp_path / "after"
    export_bundle(store.recorder, bundle, keyring)
    with pytest.raises(BundleError, match="not a signature by the pinned key"):
        verify_bundle(str(bundle), pinned_key=[k.encode() for k in old])
    shipped = (bundle / "keys" / "checkpoint.pub").read_text().split()
    verify_bundle(str(bundle), pinned_key=shipped, require_algorithms=["ed25519", "ml-dsa-65"])
    assert not set(shipped) & {k.encode() for k in old}
