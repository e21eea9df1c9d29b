"""Witnesses cosign only checkpoints consistent with the last one they cosigned (C2SP
tlog-witness), over real HTTP, and a regulator can require k of n of them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.witness_app import create_witness_app
from eventstore.store import EventStore
from replay.export import export_bundle
from replay.keys import Keyring, add_witness, remove_witness, witnesses
from replay.log import cosignature_lines, log_tree, make_checkpoint, origin, published
from replay.signing import generate_signing_key
from replay.verifier import (
    BundleError,
    NoteError,
    VerifierKey,
    parse_verifier_keys,
    verify_bundle,
    verify_note_keys,
)
from replay.witness import (
    WitnessService,
    add_checkpoint_body,
    collect_cosignatures,
    create_witness_key,
)
from tests.http_server import uvicorn_in_thread
from tests.integration.ledger_fixtures import run_history


def log_keys(tmp_path: Path, name: str = "log") -> tuple[Keyring, list[VerifierKey]]:
    path = tmp_path / name / "checkpoint.key"
    path.parent.mkdir(parents=True)
    generate_signing_key(path, origin())
    keyring = Keyring(path, origin())
    return keyring, [s.verifier_key for s in keyring.base_signers()]


@contextmanager
def running(service: WitnessService) -> Iterator[str]:
    with uvicorn_in_thread(create_witness_app(service)) as port:
        yield f"http://127.0.0.1:{port}"


def new_witness(tmp_path: Path, name: str, keys: list[VerifierKey]) -> WitnessService:
    create_witness_key(tmp_path / name, f"witness.example/{name}")
    return WitnessService(tmp_path / name, {origin(): keys})


def test_a_witness_cosigns_each_consistent_checkpoint_and_the_log_publishes_it(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = log_keys(tmp_path)
    service = new_witness(tmp_path, "w1", keys)
    with running(service) as url:
        add_witness(store.recorder, service.verifier_key.encode(), url)
        run_history(store, seed=1, transfers=20)
        first = make_checkpoint(store.recorder, keyring)
        assert len(collect_cosignatures(store.recorder, first)) == 1
        run_history(store, seed=2, transfers=20)
        second = make_checkpoint(store.recorder, keyring)
        [line] = collect_cosignatures(store.recorder, second)  # with a proof from `first`
    assert service.latest(origin())[0] == second.size
    note = published(store.recorder, second)
    assert note.endswith(line + "\n")
    _, verified = verify_note_keys(note, [*keys, service.verifier_key])
    assert {k.algorithm for k in verified} == {"ed25519", "ml-dsa-65", "cosignature/v1"}
    assert cosignature_lines(store.recorder, first.size) != []


def test_a_rewritten_log_is_refused_even_when_signed_with_the_logs_own_key(
    db_url: str, pg_admin_url: str, tmp_path: Path
) -> None:
    from tests.conftest import _create_database

    keyring, keys = log_keys(tmp_path)
    service = new_witness(tmp_path, "w1", keys)
    _, other_url = _create_database(pg_admin_url)
    with (
        running(service) as url,
        EventStore(db_url) as honest,
        EventStore(other_url) as rewritten,
    ):
        add_witness(honest.recorder, service.verifier_key.encode(), url)
        run_history(honest, seed=1, transfers=20)
        held = make_checkpoint(honest.recorder, keyring)
        assert collect_cosignatures(honest.recorder, held)
        # The same key, the same origin, another history (longer than the witnessed one).
        add_witness(rewritten.recorder, service.verifier_key.encode(), url)
        run_history(rewritten, seed=9, transfers=40)
        forged = make_checkpoint(rewritten.recorder, keyring)
        assert forged.size > held.size
        assert collect_cosignatures(rewritten.recorder, forged) == []
        assert cosignature_lines(rewritten.recorder, forged.size) == []
        # Asked directly, with each plausible old size: 409 (not the size it holds) or 422.
        tree = log_tree(rewritten.recorder)
        for old, status in ((0, 409), (held.size, 422)):
            proof = tree.consistency_proof(old, forged.size) if old else []
            answer = service.add_checkpoint(add_checkpoint_body(old, proof, forged.note))
            assert answer.status == status, answer.body
        same_size = make_checkpoint(rewritten.recorder, keyring, size=held.size)
        answer = service.add_checkpoint(add_checkpoint_body(held.size, [], same_size.note))
        assert answer.status == 409
    assert service.latest(origin()) == (held.size, held.root)


def test_the_witness_protocol_refuses_what_the_spec_says_to_refuse(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = log_keys(tmp_path)
    _, stranger_keys = log_keys(tmp_path, "stranger")
    service = new_witness(tmp_path, "w1", keys)
    run_history(store, seed=1, transfers=5)
    cp = make_checkpoint(store.recorder, keyring)
    body = add_checkpoint_body(0, [], cp.note)
    assert service.add_checkpoint(b"nonsense").status == 400
    assert service.add_checkpoint(body.replace(b"old 0", b"old 00")).status == 400
    assert service.add_checkpoint(add_checkpoint_body(cp.size + 1, [], cp.note)).status == 400
    other = WitnessService(tmp_path / "w1", {"elsewhere.example/log": keys})
    assert other.add_checkpoint(body).status == 404
    wrong_key = WitnessService(tmp_path / "w1", {origin(): stranger_keys})
    assert wrong_key.add_checkpoint(body).status == 403
    ok = service.add_checkpoint(body)
    assert ok.status == 200 and ok.body.startswith("\u2014 witness.example/w1 ")
    stale = service.add_checkpoint(body)  # the witness is at cp.size now, not 0
    assert stale.status == 409
    assert stale.content_type == "text/x.tlog.size"
    assert stale.body == f"{cp.size}\n"
    again = service.add_checkpoint(add_checkpoint_body(cp.size, [], cp.note))
    assert again.status == 200  # the same checkpoint may be cosigned again


def test_a_regulator_can_require_k_of_n_named_witnesses(store: EventStore, tmp_path: Path) -> None:
    keyring, keys = log_keys(tmp_path)
    w1, w2, w3 = (new_witness(tmp_path, n, keys) for n in ("w1", "w2", "w3"))
    with running(w1) as url1, running(w2) as url2:
        add_witness(store.recorder, w1.verifier_key.encode(), url1)
        add_witness(store.recorder, w2.verifier_key.encode(), url2)
        add_witness(store.recorder, w3.verifier_key.encode(), "http://127.0.0.1:9")  # down
        assert len(witnesses(store.recorder)) == 3
        run_history(store, seed=1, transfers=15)
        cp = make_checkpoint(store.recorder, keyring)
        assert len(collect_cosignatures(store.recorder, cp, timeout_s=2)) == 2
        run_history(store, seed=2, transfers=5)
        out = tmp_path / "bundle"
        export_bundle(store.recorder, out, keyring, from_position=10, to_position=cp.size - 3)
    pinned = [k.encode() for k in keys]
    named = [w.verifier_key.encode() for w in (w1, w2, w3)]
    report = verify_bundle(
        str(out), pinned_key=pinned, witness_keys=named[:2], require_algorithms=["ed25519"]
    )
    assert report.witnessed_size == cp.size and set(report.witnesses) == {
        "witness.example/w1",
        "witness.example/w2",
    }
    verify_bundle(str(out), pinned_key=pinned, witness_keys=named, witness_quorum=2)
    with pytest.raises(BundleError, match="cosigned by 2 of the pinned witnesses"):
        verify_bundle(str(out), pinned_key=pinned, witness_keys=named)  # all three required
    with pytest.raises(BundleError, match="cosigned by 0 of the pinned witnesses"):
        verify_bundle(str(out), pinned_key=pinned, witness_keys=named[2:], witness_quorum=1)
    # The bundle's shipped witness list names all three; the regulator pins their own.
    shipped = parse_verifier_keys((out / "keys" / "witnesses.pub").read_text())
    assert {k.name for k in shipped} == {"witness.example/w1", "witness.example/w2",
                                         "witness.example/w3"}  # fmt: skip


def test_a_forged_cosignature_does_not_count(store: EventStore, tmp_path: Path) -> None:
    keyring, keys = log_keys(tmp_path)
    w1 = new_witness(tmp_path, "w1", keys)
    run_history(store, seed=1, transfers=5)
    cp = make_checkpoint(store.recorder, keyring)
    line = w1.cosign(cp.note.split("\n\n")[0] + "\n")
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1
    forged = line.split(" ")[0] + " " + line.split(" ")[1] + " " + base64.b64encode(blob).decode()
    with pytest.raises(NoteError, match="does not verify"):
        verify_note_keys(cp.note + forged + "\n", [*keys, w1.verifier_key])


def test_witnesses_are_added_and_removed_through_the_log(store: EventStore, tmp_path: Path) -> None:
    _, keys = log_keys(tmp_path)
    w1 = new_witness(tmp_path, "w1", keys)
    add_witness(store.recorder, w1.verifier_key.encode(), "http://witness.example/w1/")
    [listed] = witnesses(store.recorder)
    assert listed.url == "http://witness.example/w1" and listed.key == w1.verifier_key
    events = store.recorder.read_streams(["log:keys"])["log:keys"]
    assert [e.topic for e in events] == ["log.WitnessAdded.v1"]
    remove_witness(store.recorder, "witness.example/w1")
    assert witnesses(store.recorder) == []
    from replay.keys import KeyConfigError

    with pytest.raises(KeyConfigError, match="type 0x04"):
        add_witness(store.recorder, keys[0].encode(), "http://x")
    with pytest.raises(KeyConfigError, match="http"):
        add_witness(store.recorder, w1.verifier_key.encode(), "ftp://x")


def test_cosignatures_ride_on_the_checkpoint_the_log_serves(
    store: EventStore, tmp_path: Path
) -> None:
    keyring, keys = log_keys(tmp_path)
    w1 = new_witness(tmp_path, "w1", keys)
    with running(w1) as url:
        add_witness(store.recorder, w1.verifier_key.encode(), url)
        run_history(store, seed=4, transfers=5)
        cp = make_checkpoint(store.recorder, keyring)
        collect_cosignatures(store.recorder, cp)
        with httpx.Client() as client:
            assert client.get(f"{url}/healthz").json()["witness"] == w1.verifier_key.encode()
    assert published(store.recorder, cp).count("\u2014 ") == 3  # Ed25519, ML-DSA-65, witness
