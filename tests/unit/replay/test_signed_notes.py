"""Checkpoints are C2SP signed notes that only the pinned Ed25519 key can produce.

The golang.org/x/mod/sumdb/note example (the "PeterNeumann" key and note) is an
independent reference: Ed25519 is deterministic, so signing its text with its key must
reproduce its published note byte for byte, and its verifier key string must parse.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from replay.signing import (
    KeyFileError,
    generate_signing_key,
    load_signing_key,
    public_key_path,
    sign_checkpoint,
    sign_note,
    signature_line,
)
from replay.verifier import (
    NoteError,
    VerifierKey,
    checkpoint_body,
    format_verifier_key,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    verify_checkpoint,
    verify_note,
)

GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "ledgerline.example/log"
NAME = "ledgerline.example/log"
ROOT = hashlib.sha256(b"some root").digest()


def _go_private_key() -> Ed25519PrivateKey:
    blob = base64.b64decode(GO_SIGNER_KEY.split("+", 4)[4])
    assert blob[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(blob[1:])


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


# -- interoperability --------------------------------------------------------------------


def test_signing_the_go_example_reproduces_the_go_note_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", _go_private_key()) == GO_NOTE


def test_the_go_note_verifies_with_the_go_verifier_key() -> None:
    vkey = parse_verifier_key(GO_VERIFIER_KEY)
    assert vkey.name == "PeterNeumann"
    assert vkey.key_id.hex() == "c74f20a3"
    assert verify_note(GO_NOTE, vkey.name, vkey.public_key) == GO_TEXT
    assert format_verifier_key("PeterNeumann", _go_private_key().public_key()) == GO_VERIFIER_KEY


def test_a_verifier_key_whose_base64_contains_a_plus_parses() -> None:
    # From transparency-dev/formats' note tests: a key whose base64 part holds a '+'.
    vkey = parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert vkey.name == "TEST"
    assert vkey.key_id == bytes.fromhex("7997405c")
    assert vkey.encode() == "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"


def test_the_key_id_is_the_truncated_hash_of_name_newline_type_and_key(
    key: Ed25519PrivateKey,
) -> None:
    expected = hashlib.sha256(NAME.encode() + b"\x0a\x01" + _raw(key)).digest()[:4]
    assert key_id(NAME, _raw(key)) == expected
    assert key_id("PeterNeumann", _raw(_go_private_key())) == bytes.fromhex("c74f20a3")


# -- checkpoints -------------------------------------------------------------------------


def test_a_signed_checkpoint_verifies_and_yields_its_size_and_root(
    key: Ed25519PrivateKey,
) -> None:
    note = sign_checkpoint(ORIGIN, 1234, ROOT, NAME, key)
    body = f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert note.startswith(body + "\n— " + NAME + " ")
    assert verify_note(note, NAME, key.public_key()) == body
    assert verify_checkpoint(note, ORIGIN, NAME, key.public_key()) == (1234, ROOT)
    assert verify_checkpoint(note, ORIGIN, NAME, _raw(key)) == (1234, ROOT)


def test_the_empty_tree_checkpoint_round_trips(key: Ed25519PrivateKey) -> None:
    empty = hashlib.sha256(b"").digest()
    note = sign_checkpoint(ORIGIN, 0, empty, NAME, key)
    assert verify_checkpoint(note, ORIGIN, NAME, key.public_key()) == (0, empty)


def test_a_checkpoint_from_another_origin_is_rejected(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint("other.example/log", 5, ROOT, NAME, key)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(note, ORIGIN, NAME, key.public_key())


def test_signatures_from_unknown_keys_are_ignored(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, NAME, key)
    body = checkpoint_body(ORIGIN, 7, ROOT)
    witness = Ed25519PrivateKey.from_private_bytes(bytes(32))
    rotated = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)  # same name, new key
    garbage = "— garbage.example " + base64.b64encode(b"\x00\x01\x02\x03junk").decode() + "\n"
    extra = signature_line(body, "witness.example", witness) + signature_line(body, NAME, rotated)
    for combined in (note + extra + garbage, body + "\n" + garbage + extra + note.split("\n\n")[1]):
        assert verify_note(combined, NAME, key.public_key()) == body


def test_a_note_signed_only_by_other_keys_is_rejected(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    note = sign_checkpoint(ORIGIN, 7, ROOT, NAME, other)
    with pytest.raises(NoteError, match="no signature"):
        verify_note(note, NAME, key.public_key())
    with pytest.raises(NoteError, match="no signature"):
        verify_note(note, "another-name", other.public_key())


def test_a_flipped_bit_anywhere_in_the_signature_is_rejected(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, NAME, key)
    body, line = note.split("\n\n")
    prefix, b64 = line.rstrip("\n").rsplit(" ", 1)
    blob = base64.b64decode(b64)
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        tampered = f"{body}\n\n{prefix} {base64.b64encode(bytes(flipped)).decode()}\n"
        with pytest.raises(NoteError):
            verify_note(tampered, NAME, key.public_key())


def test_an_edited_body_is_rejected(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, NAME, key)
    for edited in (
        note.replace("\n7\n", "\n8\n"),
        note.replace(ORIGIN, ORIGIN + "x", 1),
        note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
        "extra line\n" + note,
    ):
        assert edited != note
        with pytest.raises(NoteError, match="does not verify"):
            verify_note(edited, NAME, key.public_key())


def test_a_signature_by_the_pinned_key_that_fails_rejects_the_whole_note(
    key: Ed25519PrivateKey,
) -> None:
    good = sign_checkpoint(ORIGIN, 7, ROOT, NAME, key)
    stale = sign_checkpoint(ORIGIN, 6, ROOT, NAME, key).split("\n\n")[1]
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(good + stale, NAME, key.public_key())


def test_a_wrong_public_key_is_rejected(key: Ed25519PrivateKey) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, NAME, key)
    other = Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32)
    with pytest.raises(NoteError):
        verify_note(note, NAME, other.public_key())


@pytest.mark.parametrize(
    "note",
    [
        "no blank line\n— a AAAAAAA=\n",
        "text\n\n",
        "text\n\n— a AAAAAAAA",
        "text\n\n- a AAAAAAAAAA==\n",
        "text\n\n—a AAAAAAAAAA==\n",
        "text\n\n— a\n",
        "text\n\n— a+b AAAAAAAAAA==\n",
        "text\n\n— a AAAA\n",
        "text\n\n— a not*base64\n",
        "te\tx\n\n— a AAAAAAAAAA==\n",
        "text\n\n— a AAAAAAAAAA==\n\n",
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    with pytest.raises(NoteError):
        parse_note(note)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "origin\n5\n",
        "origin\n5\nROOT",
        "\n5\nROOT\n",
        "origin\n05\nROOT\n",
        "origin\n-5\nROOT\n",
        "origin\n+5\nROOT\n",
        "origin\n 5\nROOT\n",
        "origin\n\u0665\nROOT\n",
        "origin\n9223372036854775808\nROOT\n",
        "origin\n5\nAAAA\n",
        "origin\n5\nROOT\n\n",
        "origin\n5\nROOT\next\n\n",
        "origin\n5\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",
    ],
)
def test_malformed_checkpoint_bodies_are_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body.replace("ROOT", base64.b64encode(ROOT).decode()))


def test_a_checkpoint_with_non_empty_extension_lines_parses() -> None:
    body = checkpoint_body(ORIGIN, 5, ROOT) + "ext one\next two\n"
    assert parse_checkpoint(body) == (ORIGIN, 5, ROOT)


def test_a_root_in_non_canonical_base64_is_rejected() -> None:
    canonical = base64.b64encode(ROOT).decode()  # 44 chars, one padding '='
    last = canonical[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(last) ^ 1]  # differs only in the unused low bits
    with pytest.raises(NoteError, match="canonical"):
        parse_checkpoint(f"{ORIGIN}\n5\n{canonical[:-2]}{sibling}=\n")


# -- verifier keys -----------------------------------------------------------------------


def test_a_verifier_key_round_trips(key: Ed25519PrivateKey) -> None:
    text = format_verifier_key(NAME, key.public_key())
    name, hex_id, blob = text.split("+", 2)
    assert (name, hex_id) == (NAME, key_id(NAME, _raw(key)).hex())
    assert base64.b64decode(blob) == b"\x01" + _raw(key)
    assert parse_verifier_key(text) == VerifierKey.from_public_key(NAME, key.public_key())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.replace("c74f20a3", "c74f20a4"),
        lambda s: s.replace("c74f20a3", "C74F20A3"),
        lambda s: s.replace("PeterNeumann", "PeterNeumanm"),
        lambda s: s.replace("+ARpc", "+AhpC"),
        lambda s: s + "+extra",
        lambda s: s + "\n\n",
        lambda s: " " + s,
        lambda s: s[:-4],
        lambda s: s.replace("PeterNeumann", ""),
        lambda s: s.replace("PeterNeumann", "Peter Neumann"),
    ],
)
def test_a_mangled_verifier_key_is_rejected(mangle: object) -> None:
    assert callable(mangle)
    mangled = mangle(GO_VERIFIER_KEY)
    assert mangled != GO_VERIFIER_KEY
    with pytest.raises(NoteError):
        parse_verifier_key(mangled)


def test_key_names_with_spaces_or_plus_are_refused(key: Ed25519PrivateKey) -> None:
    for bad in ("", "a b", "a+b", "a\u00a0b"):
        with pytest.raises(NoteError):
            sign_note("text\n", bad, key)


# -- key files ---------------------------------------------------------------------------


def test_a_generated_key_file_is_private_and_its_verifier_key_is_beside_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.key"
    old_umask = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        vkey = generate_signing_key(path, NAME)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_path(path) == tmp_path / "checkpoint.key.pub"
    assert parse_verifier_key(public_key_path(path).read_text()) == vkey
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.key",
        "checkpoint.key.pub",
        "checkpoint.mldsa65.key",  # the post-quantum co-signing key, created with it
        "checkpoint.mldsa65.key.pub",
    ]
    assert stat.S_IMODE((tmp_path / "checkpoint.mldsa65.key").stat().st_mode) == 0o600
    loaded = load_signing_key(path)
    note = sign_checkpoint(ORIGIN, 3, ROOT, vkey.name, loaded)
    assert verify_checkpoint(note, ORIGIN, vkey.name, vkey.public_key) == (3, ROOT)
    assert b"ENCRYPTED" not in path.read_bytes()
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.key"
    generate_signing_key(path, NAME)
    before = path.read_bytes(), public_key_path(path).read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_signing_key(path, NAME)
    assert (path.read_bytes(), public_key_path(path).read_bytes()) == before


def test_an_existing_public_key_file_stops_generation_before_anything_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.key"
    public_key_path(path).write_text("someone else's key\n")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_signing_key(path, NAME)
    assert not path.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_a_key_file_accessible_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "checkpoint.key"
    generate_signing_key(path, NAME)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_signing_key(path)


def test_a_missing_symlinked_or_foreign_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_signing_key(tmp_path / "absent.key")
    real = tmp_path / "real.key"
    generate_signing_key(real, NAME)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        load_signing_key(link)
    ec = tmp_path / "ec.key"
    pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(ec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_signing_key(ec)
    junk = tmp_path / "junk.key"
    fd = os.open(junk, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"not a key")
    os.close(fd)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM"):
        load_signing_key(junk)


def test_a_body_that_is_not_newline_terminated_text_is_refused(key: Ed25519PrivateKey) -> None:
    for bad in ("", "\n", "no newline", "ctrl\x07char\n"):
        with pytest.raises(ValueError):
            sign_note(bad, NAME, key)


# -- post-quantum keys and witness cosignatures --------------------------------------------


def test_an_ml_dsa_65_verifier_key_round_trips_and_names_its_algorithm() -> None:
    from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

    from replay.verifier import ML_DSA_65, SIGNATURE_TYPES

    private = MLDSA65PrivateKey.generate()
    text = format_verifier_key(NAME, private.public_key())
    vkey = parse_verifier_key(text)
    assert vkey.algorithm == ML_DSA_65
    assert vkey.encode() == text
    blob = base64.b64decode(text.split("+", 2)[2])
    assert blob.startswith(SIGNATURE_TYPES[ML_DSA_65])  # 0xff and the id-ml-dsa-65 OID
    assert (
        vkey.key_id
        == hashlib.sha256(
            NAME.encode()
            + b"\n"
            + SIGNATURE_TYPES[ML_DSA_65]
            + private.public_key().public_bytes_raw()
        ).digest()[:4]
    )
    vkey.verify(private.sign(b"message"), b"message")
    with pytest.raises(NoteError, match="does not verify"):
        vkey.verify(private.sign(b"message"), b"another message")
    with pytest.raises(NoteError):
        parse_verifier_key(text[:-8])  # truncated key material


def test_a_note_signed_by_both_algorithms_verifies_with_either_pinned_key(
    key: Ed25519PrivateKey,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

    from replay.signing import Signer, sign_note_with
    from replay.verifier import verify_note_keys

    pq = MLDSA65PrivateKey.generate()
    note = sign_note_with("hello\n", [Signer(NAME, pq), Signer(NAME, key)])
    lines = note.splitlines()
    assert len(lines) == 4 and len(lines[2]) < len(lines[3])  # Ed25519 first, then ML-DSA-65
    for pinned in ([Signer(NAME, key)], [Signer(NAME, pq)]):
        text, verified = verify_note_keys(note, [s.verifier_key for s in pinned])
        assert text == "hello\n" and len(verified) == 1
    assert verify_note(note, NAME, key.public_key()) == "hello\n"  # the classic API still works


def test_a_witness_cosignature_covers_the_checkpoint_and_its_timestamp(
    key: Ed25519PrivateKey,
) -> None:
    from replay.verifier import (
        COSIGNATURE_V1,
        VerifierKey,
        cosigned_message,
        verify_note_keys,
    )

    witness = Ed25519PrivateKey.generate()
    wkey = VerifierKey.from_public_key("witness.example/w1", witness.public_key(), COSIGNATURE_V1)
    assert parse_verifier_key(wkey.encode()) == wkey
    assert base64.b64decode(wkey.encode().split("+", 2)[2])[0] == 0x04
    note = sign_checkpoint(ORIGIN, 3, ROOT, NAME, key)
    text = note.split("\n\n")[0] + "\n"
    ts = 1_700_000_000
    sig = witness.sign(cosigned_message(text, ts))
    assert cosigned_message(text, ts).startswith(b"cosignature/v1\ntime 1700000000\n")
    line = (
        f"\u2014 {wkey.name} "
        + base64.b64encode(wkey.key_id + ts.to_bytes(8, "big") + sig).decode()
    )
    _, verified = verify_note_keys(note + line + "\n", [wkey])
    assert verified == [wkey]
    shifted = (
        f"\u2014 {wkey.name} "
        + base64.b64encode(wkey.key_id + (ts + 1).to_bytes(8, "big") + sig).decode()
    )
    with pytest.raises(NoteError, match="does not verify"):
        verify_note_keys(note + shifted + "\n", [wkey])
    # A witness key cannot stand in for the log's key.
    from replay.verifier import BundleError, KeyPolicy

    with pytest.raises(BundleError, match="witness key"):
        KeyPolicy((wkey,), ())
    with pytest.raises(BundleError, match="no ml-dsa-65 verifier key is pinned"):
        KeyPolicy((parse_verifier_key(GO_VERIFIER_KEY),), ("ml-dsa-65",))
    with pytest.raises(BundleError, match="unknown algorithm"):
        KeyPolicy((parse_verifier_key(GO_VERIFIER_KEY),), ("rsa",))
    with pytest.raises(BundleError, match="quorum of 2"):
        KeyPolicy((parse_verifier_key(GO_VERIFIER_KEY),), (), (wkey,), 2)
