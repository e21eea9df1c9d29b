"""Standalone verification of Ledgerline evidence: canonical bytes, RFC 9162 proofs, signed notes.

This module is handed to regulators to run on their own machines. It imports only the
Python standard library and ``cryptography`` (``pyarrow`` is also allowed, for reading
bundles), never another Ledgerline module, so that it can be read and audited on its own.
A unit test parses this file's imports to keep it that way.

Definition
    * Canonical encoding (identical bytes to ``eventstore/canonical.py``)::

        enc(tag, f1..fn) = u32be(len(tag)) || tag || for each f: u32be(len(f)) || f
        event_bytes  = enc("evt/v1", position, stream_id, version, topic, recorded_at_ns, payload)
        event_digest = SHA-256(event_bytes)
        stream_hash  = SHA-256(enc("stream/v1", stream_id, version, prev_stream_hash, digest))
        global_hash  = SHA-256(enc("global/v1", position, prev_global_hash, digest))

    * RFC 9162 Merkle tree hashing::

        MTH({})     = SHA-256("")
        leaf_hash   = SHA-256(0x00 || data)
        node_hash   = SHA-256(0x01 || left || right)

      split at the largest power of two smaller than the number of leaves.

    * Checkpoints: a C2SP ``tlog-checkpoint`` body ``<origin>\\n<size>\\n<base64 root>\\n``
      inside a C2SP ``signed-note`` with signature lines
      ``— <name> <base64(key_id(4) || signature)>`` (U+2014 EM DASH, then a space): Ed25519
      (64-byte signatures) and, when the log has one, ML-DSA-65; witnesses add cosignature/v1
      lines.

    * Verifier keys: ``<name>+<8 hex digits of key_id>+<base64(0x01 || 32-byte public key)>``,
      the format of golang.org/x/mod/sumdb/note.

Guarantees
    * ``verify_inclusion`` and ``verify_consistency`` implement RFC 9162 §2.1.3.2 and
      §2.1.4.2 step by step, check that every hash is exactly 32 bytes, compare digests in
      constant time, and raise :class:`ProofError` (a ``ValueError``) naming the failed
      check. They return ``None`` only for a proof that verifies.
    * ``verify_note`` returns the note text only if at least one signature line from the
      pinned (name, key id) verifies; signatures from other keys are ignored, and a
      signature from the pinned key that fails to verify rejects the whole note.
    * Every parser here rejects malformed input with :class:`ProofError` or
      :class:`NoteError` rather than guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey

# ---------------------------------------------------------------------------------------
# Canonical encoding.
#
# Deliberately duplicated from eventstore/canonical.py (about twenty lines): this module
# must not import any project code, because regulators run it alone. A unit test checks,
# on hypothesis-generated inputs, that both definitions produce identical bytes.
# ---------------------------------------------------------------------------------------

HASH_LEN = 32
GENESIS = bytes(HASH_LEN)

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")

EVENT_TAG = b"evt/v1"
STREAM_TAG = b"stream/v1"
GLOBAL_TAG = b"global/v1"

Field = bytes | str | int


def _field(value: Field) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bool):  # bool is an int subclass: refuse it rather than guess
        raise TypeError("booleans have no canonical encoding")
    return _I64.pack(value)


def enc(tag: bytes, *fields: Field) -> bytes:
    """Length-prefix ``tag`` and every field, and concatenate them.

    Integers are 8-byte big-endian signed, text is UTF-8, bytes are taken as is.
    """
    parts = [_U32.pack(len(tag)), tag]
    for value in fields:
        raw = _field(value)
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def event_bytes(
    position: int, stream_id: str, version: int, topic: str, recorded_at_ns: int, payload: bytes
) -> bytes:
    """``enc("evt/v1", position, stream_id, version, topic, recorded_at_ns, payload)``."""
    return enc(EVENT_TAG, position, stream_id, version, topic, recorded_at_ns, payload)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def event_digest(data: bytes) -> bytes:
    """``SHA-256(event_bytes)``: the digest both hash chains link."""
    return sha256(data)


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_LEN:
        raise ProofError(f"{what} must be {HASH_LEN} bytes, got {len(value)}")


def stream_hash(stream_id: str, version: int, prev_stream_hash: bytes, digest: bytes) -> bytes:
    """``SHA-256(enc("stream/v1", stream_id, version, prev_stream_hash, digest))``."""
    _require_hash(prev_stream_hash, "previous stream hash")
    _require_hash(digest, "event digest")
    return sha256(enc(STREAM_TAG, stream_id, version, prev_stream_hash, digest))


def global_hash(position: int, prev_global_hash: bytes, digest: bytes) -> bytes:
    """``SHA-256(enc("global/v1", position, prev_global_hash, digest))``."""
    _require_hash(prev_global_hash, "previous global hash")
    _require_hash(digest, "event digest")
    return sha256(enc(GLOBAL_TAG, position, prev_global_hash, digest))


# ---------------------------------------------------------------------------------------
# RFC 9162 Merkle tree hashing and proof verification.
# ---------------------------------------------------------------------------------------

EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A Merkle proof, root or hash failed verification or is malformed."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root (MTH) over ``hashes``, which are already leaf hashes.

    Definition
        Level-by-level reduction: pair adjacent nodes and carry an unpaired last node up
        unchanged. This yields exactly the RFC 9162 tree (left subtrees are the largest
        power of two), without recursion. The empty tree has root ``SHA-256("")``.
    Guarantees
        Raises :class:`ProofError` if any hash is not 32 bytes. O(n) hashes, O(n) memory.
    """
    for index, value in enumerate(hashes):
        if len(value) != HASH_LEN:
            raise ProofError(f"leaf hash {index} must be {HASH_LEN} bytes, got {len(value)}")
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        pairs = zip(level[0::2], level[1::2], strict=False)  # an odd last node has no pair
        nxt = [sha(_NODE_PREFIX + left + right).digest() for left, right in pairs]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _same_hash(calculated: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(calculated, expected)


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_LEN:
            raise ProofError(f"proof hash {position} must be {HASH_LEN} bytes, got {len(value)}")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` sits at ``index`` in the tree of ``size`` with ``root``.

    Definition
        RFC 9162 §2.1.3.2, verbatim: walk the audit path with ``fn = index`` and
        ``sn = size - 1``, hashing the path element on the left when ``fn`` is odd or equals
        ``sn`` (then shifting past the right border), and on the right otherwise.
    Guarantees
        Returns ``None`` only if the recomputed root equals ``root`` and the proof had
        exactly the right number of elements. Raises :class:`ProofError` otherwise.
    """
    if index < 0 or size < 0:
        raise ProofError(f"index ({index}) and size ({size}) must not be negative")
    if index >= size:  # step 1
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _require_hash(leaf_hash, "leaf hash")
    _require_hash(root, "root")
    _check_proof_hashes(proof)

    fn, sn = index, size - 1  # step 2
    r = leaf_hash  # step 3
    for p in proof:  # step 4
        if sn == 0:  # 4a
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # no-op when fn is odd
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError("inclusion proof is shorter than the path to the root")
    if not _same_hash(r, root):
        raise ProofError("inclusion proof does not lead to the expected root")


def _consistency_walk(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """Steps 2-7 (sn check) of RFC 9162 §2.1.4.2 for ``0 < size1 < size2``: return the
    recomputed ``(fr, sr)``; the caller compares them with root1 and root2."""
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: first is an exact power of two
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            raise ProofError("consistency proof is longer than needed")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:  # no-op when fn is odd
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    if sn != 0:  # step 7, first part
        raise ProofError("consistency proof is shorter than needed")
    return fr, sr


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the one of ``size2``.

    Definition
        RFC 9162 §2.1.4.2, verbatim, for ``0 < size1 < size2``. As in the reference
        verifier (transparency-dev/merkle), ``size1 == size2`` needs an empty proof and
        equal roots, and ``size1 == 0`` is refused: every tree extends the empty tree, so
        such a "proof" proves nothing and a caller asking for one has a bug.
    Guarantees
        Returns ``None`` only for a valid proof. Raises :class:`ProofError` for a bad
        size, a hash that is not 32 bytes (roots included, even when the sizes are equal),
        a proof of the wrong length, or a root mismatch.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"sizes must not be negative (size1={size1}, size2={size2})")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    _require_hash(root1, "root1")
    _require_hash(root2, "root2")
    _check_proof_hashes(proof)
    if size1 == size2:
        if proof:
            raise ProofError("size1 equals size2, so the proof must be empty")
        if not _same_hash(root1, root2):
            raise ProofError("size1 equals size2 but the roots differ")
        return

    if not proof:  # step 1
        raise ProofError("consistency proof is empty")
    fr, sr = _consistency_walk(size1, size2, proof, root1)
    if not _same_hash(fr, root1):  # step 7, second part
        raise ProofError("consistency proof does not lead to root1")
    if not _same_hash(sr, root2):
        raise ProofError("consistency proof does not lead to root2")


# ---------------------------------------------------------------------------------------
# C2SP signed notes (Ed25519) and tlog checkpoints.
# ---------------------------------------------------------------------------------------

SIGNATURE_TYPE_ED25519 = 0x01
KEY_ID_LEN = 4
ED25519_PUBLIC_KEY_LEN = 32
ED25519_SIGNATURE_LEN = 64
MAX_SIGNATURES = 100  # the spec requires accepting at least 16; golang's note allows 100
MAX_TREE_SIZE = 2**63 - 1  # positions are PostgreSQL bigint

EM_DASH = "\u2014"
SIGNATURE_PREFIX = EM_DASH + " "

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A signed note, checkpoint or verifier key is malformed or fails verification."""


def check_key_name(name: str) -> None:
    """Raise :class:`NoteError` unless ``name`` is a valid note key name (C2SP)."""
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")


def check_note_text(text: str, what: str) -> None:
    """Raise :class:`NoteError` if ``text`` holds an ASCII control character but newline."""
    if _CONTROL.search(text):
        raise NoteError(f"{what} contains an ASCII control character other than newline")


def _b64decode_strict(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4) that must round-trip exactly, so it has one spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


# Signature algorithms, by the signed-note signature type they use in key IDs and verifier
# keys. ML-DSA-65 has no signed-note type of its own: it uses 0xff ("types without an assigned
# identifier byte") followed by the DER encoding of its OID, id-ml-dsa-65 (2.16.840.1.101.3.4.3.18).
ED25519 = "ed25519"
ML_DSA_65 = "ml-dsa-65"
COSIGNATURE_V1 = "cosignature/v1"  # C2SP tlog-cosignature, timestamped Ed25519 (witnesses)
SIGNATURE_TYPE_COSIGNATURE = 0x04
ML_DSA_65_OID_DER = bytes.fromhex("0609608648016503040312")
SIGNATURE_TYPES: dict[str, bytes] = {
    ED25519: bytes([SIGNATURE_TYPE_ED25519]),
    ML_DSA_65: b"\xff" + ML_DSA_65_OID_DER,
    COSIGNATURE_V1: bytes([SIGNATURE_TYPE_COSIGNATURE]),
}
PUBLIC_KEY_LEN = {ED25519: ED25519_PUBLIC_KEY_LEN, ML_DSA_65: 1952, COSIGNATURE_V1: 32}
# The signature proper (a cosignature line carries an 8-byte timestamp before it).
SIGNATURE_LEN = {ED25519: ED25519_SIGNATURE_LEN, ML_DSA_65: 3309, COSIGNATURE_V1: 64}
COSIGNATURE_TIMESTAMP_LEN = 8
LOG_ALGORITHMS = (ED25519, ML_DSA_65)  # what a log signs checkpoints and manifests with


def key_id(name: str, public_key_bytes: bytes, algorithm: str = ED25519) -> bytes:
    """C2SP key ID: ``SHA-256(name || 0x0A || signature type || public_key)[:4]``."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + SIGNATURE_TYPES[algorithm] + public_key_bytes
    ).digest()[:KEY_ID_LEN]


def public_key_bytes(public_key: Ed25519PublicKey | MLDSA65PublicKey) -> bytes:
    """The raw encoding of a public key (32 bytes for Ed25519, 1,952 for ML-DSA-65)."""
    return public_key.public_bytes_raw()


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a C2SP ``cosignature/v1`` (Ed25519) signs: header, time line, note text."""
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A pinned note-verification key: name, 4-byte key ID, algorithm and public key.

    Guarantees
        Constructed only with a valid name, a public key of the algorithm's length and the key
        ID derived from all three.
    """

    name: str
    key_id: bytes
    public_key_bytes: bytes
    algorithm: str = ED25519

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if self.algorithm not in SIGNATURE_TYPES:
            raise NoteError(f"unknown signature algorithm {self.algorithm!r}")
        want = PUBLIC_KEY_LEN[self.algorithm]
        if len(self.public_key_bytes) != want:
            raise NoteError(f"an {self.algorithm} public key must be {want} bytes")
        if self.key_id != key_id(self.name, self.public_key_bytes, self.algorithm):
            raise NoteError("key id does not match the name and public key")

    @classmethod
    def from_public_key(
        cls,
        name: str,
        public_key: Ed25519PublicKey | MLDSA65PublicKey | bytes,
        algorithm: str | None = None,
    ) -> VerifierKey:
        if algorithm is None:
            algorithm = ML_DSA_65 if isinstance(public_key, MLDSA65PublicKey) else ED25519
        raw = public_key if isinstance(public_key, bytes) else public_key_bytes(public_key)
        check_key_name(name)
        if algorithm not in SIGNATURE_TYPES:
            raise NoteError(f"unknown signature algorithm {algorithm!r}")
        return cls(name, key_id(name, raw, algorithm), raw, algorithm)

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The Ed25519 key (of an ``ed25519`` or ``cosignature/v1`` verifier key)."""
        if self.algorithm == ML_DSA_65:
            raise NoteError(f"{self.name} is an ML-DSA-65 key, not an Ed25519 key")
        return Ed25519PublicKey.from_public_bytes(self.public_key_bytes)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`NoteError` unless ``signature`` is this key's over ``message``."""
        want = SIGNATURE_LEN[self.algorithm]
        if len(signature) != want:
            raise NoteError(f"signature by {self.name} is not a {want}-byte {self.algorithm}")
        try:
            if self.algorithm == ML_DSA_65:
                MLDSA65PublicKey.from_public_bytes(self.public_key_bytes).verify(signature, message)
            else:
                self.public_key.verify(signature, message)
        except InvalidSignature as exc:
            raise NoteError(f"{self.algorithm} signature by {self.name} does not verify") from exc

    def encode(self) -> str:
        """``<name>+<hex key id>+<base64(signature type || public key)>``."""
        blob = SIGNATURE_TYPES[self.algorithm] + self.public_key_bytes
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(blob).decode('ascii')}"


def format_verifier_key(
    name: str, public_key: Ed25519PublicKey | MLDSA65PublicKey | bytes, algorithm: str | None = None
) -> str:
    """The verifier-key string for ``name`` and ``public_key``."""
    return VerifierKey.from_public_key(name, public_key, algorithm).encode()


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse ``<name>+<hex key id>+<base64(type || public key)>``; raise :class:`NoteError`.

    Types: 0x01 and a 32-byte Ed25519 key (a log), 0x04 and a 32-byte Ed25519 key (a
    witness, C2SP tlog-cosignature), 0xff, the id-ml-dsa-65 OID and a 1,952-byte ML-DSA-65
    key. The key ID in the string must equal the one computed from the name and key. One
    trailing newline (as in a ``.pub`` file) is allowed.
    """
    # The name cannot contain "+", but base64 can: split at the first two only.
    parts = text.removesuffix("\n").split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key has the form <name>+<hex key id>+<base64 key>")
    name, hex_id, b64_key = parts
    check_key_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError("verifier key id must be 8 lowercase hex digits")
    blob = _b64decode_strict(b64_key, "verifier key")
    for algorithm, prefix in SIGNATURE_TYPES.items():
        if blob.startswith(prefix) and len(blob) == len(prefix) + PUBLIC_KEY_LEN[algorithm]:
            raw = blob[len(prefix) :]
            break
    else:
        raise NoteError(
            "verifier key must be 0x01 or 0x04 followed by a 32-byte Ed25519 key, or 0xff and "
            "the ML-DSA-65 OID followed by a 1952-byte ML-DSA-65 key"
        )
    if bytes.fromhex(hex_id) != key_id(name, raw, algorithm):
        raise NoteError("verifier key id does not match its name and public key")
    return VerifierKey(name, bytes.fromhex(hex_id), raw, algorithm)


def parse_verifier_keys(text: str) -> list[VerifierKey]:
    """One verifier key per non-empty line (a ``.pub`` file may list several)."""
    keys = [parse_verifier_key(line.strip()) for line in text.splitlines() if line.strip()]
    if not keys:
        raise NoteError("no verifier key given")
    return keys


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and the raw signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


def parse_note(note_text: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (with final newline) and its signature lines.

    Definition
        The text ends at the last blank line; every line after it must be
        ``— <name> <base64(key id || signature)>``, and the note must end in a newline.
    Guarantees
        Raises :class:`NoteError` for anything malformed. Verifies nothing.
    """
    check_note_text(note_text, "signed note")
    split = note_text.rfind("\n\n")
    if split < 0:
        raise NoteError("signed note has no blank line before its signatures")
    text, sig_block = note_text[: split + 1], note_text[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise NoteError("signed note must end with at least one signature line and a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"signed note has more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("signature line must start with an em dash (U+2014) and a space")
        name, sep, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise NoteError("signature line must be '— <name> <base64 signature>'")
        check_key_name(name)
        blob = _b64decode_strict(b64, "signature")
        if len(blob) <= KEY_ID_LEN:
            raise NoteError("signature is too short to hold a key id and a signature")
        signatures.append(NoteSignature(name, blob[:KEY_ID_LEN], blob[KEY_ID_LEN:]))
    return text, signatures


def verify_note_keys(note_text: str, keys: Sequence[VerifierKey]) -> tuple[str, list[VerifierKey]]:
    """Return the note's text and the known keys whose signature lines verify.

    Guarantees
        * Signature lines whose (name, key id) matches none of ``keys`` are ignored (C2SP:
          key rotation, other signers, witnesses).
        * A line from a known key that fails to verify rejects the whole note.
        * A ``cosignature/v1`` key verifies a timestamped cosignature of the text; the other
          algorithms verify a signature of the text itself.
        * Raises :class:`NoteError` if no known key signed, or on any failure.
    """
    text, signatures = parse_note(note_text)
    message = text.encode("utf-8")
    verified: list[VerifierKey] = []
    for sig in signatures:
        key = next((k for k in keys if k.name == sig.name and k.key_id == sig.key_id), None)
        if key is None:
            continue  # unknown key: C2SP says ignore
        if key.algorithm == COSIGNATURE_V1:
            if len(sig.signature) != COSIGNATURE_TIMESTAMP_LEN + SIGNATURE_LEN[COSIGNATURE_V1]:
                raise NoteError(f"cosignature by {key.name} is not 8 + 64 bytes")
            timestamp = int.from_bytes(sig.signature[:COSIGNATURE_TIMESTAMP_LEN], "big")
            if timestamp > MAX_TREE_SIZE:
                raise NoteError(f"cosignature by {key.name} has an out-of-range timestamp")
            key.verify(sig.signature[COSIGNATURE_TIMESTAMP_LEN:], cosigned_message(text, timestamp))
        else:
            key.verify(sig.signature, message)
        if key not in verified:
            verified.append(key)
    if not verified:
        names = ", ".join(sorted({k.name for k in keys})) or "no key"
        raise NoteError(f"signed note carries no signature by {names}")
    return text, verified


def verify_note(note_text: str, name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """Return the text of ``note_text`` if the Ed25519 key (``name``, ``public_key``) signed it.

    Guarantees
        * Signature lines whose (name, key id) is not the pinned key's are ignored.
        * Each line from the pinned key must verify, else the whole note is rejected.
        * At least one line from the pinned key is required.
        * Raises :class:`NoteError` on any failure.
    """
    pinned = VerifierKey.from_public_key(name, public_key, ED25519)
    text, signatures = parse_note(note_text)
    message = text.encode("utf-8")
    verified = 0
    for sig in signatures:
        if sig.name != pinned.name or sig.key_id != pinned.key_id:
            continue  # unknown key: C2SP says ignore (key rotation, witnesses)
        if len(sig.signature) != ED25519_SIGNATURE_LEN:
            raise NoteError(f"signature by {name} is not a {ED25519_SIGNATURE_LEN}-byte Ed25519")
        try:
            pinned.public_key.verify(sig.signature, message)
        except InvalidSignature as exc:
            raise NoteError(f"signature by {name} does not verify") from exc
        verified += 1
    if verified == 0:
        raise NoteError(f"signed note carries no signature by {name}")
    return text


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    """``<origin>\\n<size>\\n<base64 root>\\n``: the text of a C2SP tlog checkpoint."""
    if not origin or "\n" in origin:
        raise NoteError("checkpoint origin must be one non-empty line")
    check_note_text(origin, "checkpoint origin")
    if not 0 <= size <= MAX_TREE_SIZE:
        raise NoteError(f"checkpoint size {size} is out of range")
    if len(root) != HASH_LEN:
        raise NoteError(f"checkpoint root must be {HASH_LEN} bytes, got {len(root)}")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def parse_checkpoint(body: str) -> tuple[str, int, bytes]:
    """Parse a checkpoint note text into ``(origin, size, root)``.

    Guarantees
        Requires a non-empty origin, a decimal size without leading zeros, a canonical
        base64 32-byte root and a final newline. Extension lines (spec: opaque, optional)
        are allowed only if non-empty; they are covered by the signature but not returned.
        Raises :class:`NoteError` otherwise.
    """
    check_note_text(body, "checkpoint")
    if not body.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, size and root lines")
    if any(not line for line in lines):
        raise NoteError("checkpoint lines must not be empty")
    origin, size_text, root_text = lines[:3]
    if not _DECIMAL.fullmatch(size_text):
        raise NoteError(f"checkpoint size {size_text!r} is not a decimal without leading zeros")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise NoteError(f"checkpoint size {size} is out of range")
    root = _b64decode_strict(root_text, "checkpoint root")
    if len(root) != HASH_LEN:
        raise NoteError(f"checkpoint root must be {HASH_LEN} bytes, got {len(root)}")
    return origin, size, root


def verify_checkpoint(
    note_text: str, origin: str, name: str, public_key: Ed25519PublicKey | bytes
) -> tuple[int, bytes]:
    """Verify a signed checkpoint from the log ``origin``; return its ``(size, root)``."""
    text = verify_note(note_text, name, public_key)
    got_origin, size, root = parse_checkpoint(text)
    if got_origin != origin:
        raise NoteError(f"checkpoint origin {got_origin!r} is not the expected {origin!r}")
    return size, root


# ---------------------------------------------------------------------------------------
# Evidence bundles (written by replay/export.py).
#
# Everything below needs pyarrow (to read events.parquet) and nothing from Ledgerline.
# ---------------------------------------------------------------------------------------

BUNDLE_FORMAT = "ledgerline-evidence/v2"
READABLE_FORMATS = ("ledgerline-evidence/v1", BUNDLE_FORMAT)
PARQUET_BATCH_ROWS = 20_000


class BundleError(ValueError):
    """The bundle does not verify; the message names the file and, for events, the position."""


@dataclass(frozen=True)
class BundleReport:
    origin: str
    first_position: int
    last_position: int
    events: int
    root: bytes
    trusted_size: int | None
    signature_algorithms: tuple[str, ...] = (ED25519,)
    witnesses: tuple[str, ...] = ()  # names of the pinned witnesses that cosigned
    witnessed_size: int | None = None


@dataclass(frozen=True)
class KeyPolicy:
    """What a signature must satisfy: pinned keys, and the algorithms that must all sign.

    Definition
        ``log_keys``: the log's verifier keys (any of ``ed25519`` and ``ml-dsa-65``, old
        and new during a key rotation). ``require``: algorithms of which at least one pinned
        key must have signed. ``witnesses`` and ``quorum``: witness keys (``cosignature/v1``)
        of which at least ``quorum`` distinct ones must have cosigned the witnessed checkpoint.
    """

    log_keys: tuple[VerifierKey, ...]
    require: tuple[str, ...] = (ED25519,)
    witnesses: tuple[VerifierKey, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        for algorithm in self.require:
            if algorithm not in LOG_ALGORITHMS:
                raise BundleError(
                    f"unknown algorithm {algorithm!r} (known: {', '.join(LOG_ALGORITHMS)})"
                )
            if not any(k.algorithm == algorithm for k in self.log_keys):
                raise BundleError(
                    f"{algorithm} is required but no {algorithm} verifier key is pinned"
                )
        if any(k.algorithm == COSIGNATURE_V1 for k in self.log_keys):
            raise BundleError("a witness key (type 0x04) cannot be pinned as the log's key")
        if any(k.algorithm != COSIGNATURE_V1 for k in self.witnesses):
            raise BundleError("witness keys must be cosignature/v1 keys (type 0x04)")
        if not 0 <= self.quorum <= len(self.witnesses):
            raise BundleError(
                f"a quorum of {self.quorum} cannot be met by {len(self.witnesses)} witness keys"
            )

    def check_signers(self, verified: Sequence[VerifierKey], what: str) -> tuple[str, ...]:
        """Raise unless every required algorithm signed; return the algorithms that did."""
        algorithms = tuple(sorted({k.algorithm for k in verified if k in self.log_keys}))
        for algorithm in self.require:
            if algorithm not in algorithms:
                raise BundleError(f"{what}: no {algorithm} signature by a pinned key")
        return algorithms


def verify_signed_checkpoint(
    note_text: str, origin: str, policy: KeyPolicy, what: str = "checkpoint"
) -> tuple[int, bytes, tuple[str, ...], tuple[str, ...]]:
    """Verify a checkpoint note under ``policy``; return (size, root, algorithms, witnesses).

    Witness cosignatures are counted only when the policy names witnesses; fewer than the
    quorum is an error.
    """
    try:
        text, verified = verify_note_keys(note_text, [*policy.log_keys, *policy.witnesses])
        got_origin, size, root = parse_checkpoint(text)
    except NoteError as exc:
        raise BundleError(f"{what}: {exc}") from None
    if got_origin != origin:
        raise BundleError(
            f"{what}: checkpoint origin {got_origin!r} is not the expected {origin!r}"
        )
    if not any(k in policy.log_keys for k in verified):
        raise BundleError(f"{what}: signed note carries no signature by the pinned log keys")
    algorithms = policy.check_signers(verified, what)
    cosigners = tuple(sorted({k.name for k in verified if k in policy.witnesses}))
    if len(cosigners) < policy.quorum:
        raise BundleError(
            f"{what}: cosigned by {len(cosigners)} of the pinned witnesses "
            f"({', '.join(cosigners) or 'none'}), {policy.quorum} required"
        )
    return size, root, algorithms, cosigners


def _compact_append(size: int, hashes: list[bytes], leaf: bytes) -> int:
    carry = leaf
    n = size
    while n & 1:
        carry = node_hash(hashes.pop(), carry)
        n >>= 1
    hashes.append(carry)
    return size + 1


def _compact_root(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _hex32(text: object, what: str) -> bytes:
    try:
        value = bytes.fromhex(str(text))
    except ValueError:
        raise BundleError(f"manifest.json: {what} is not hex") from None
    if len(value) != HASH_LEN:
        raise BundleError(f"manifest.json: {what} is not 32 bytes")
    return value


def _keys_of(texts: str | Sequence[str] | None) -> list[VerifierKey]:
    if texts is None:
        return []
    items = [texts] if isinstance(texts, str) else list(texts)
    keys: list[VerifierKey] = []
    for item in items:
        try:
            keys.extend(parse_verifier_keys(item))
        except NoteError as exc:
            raise BundleError(f"verifier key: {exc}") from None
    return keys


def _verify_detached(
    data: bytes, signature_text: str, policy: KeyPolicy, what: str
) -> tuple[str, ...]:
    """Lines ``<name> <base64(key id || signature)>`` over ``data`` (manifest.sig)."""
    verified: list[VerifierKey] = []
    for line in signature_text.strip().split("\n"):
        parts = line.strip().split(" ")
        if len(parts) != 2:
            raise BundleError(f"{what}: not a signature by the pinned key")
        try:
            raw = _b64decode_strict(parts[1], "signature")
        except NoteError:
            raise BundleError(f"{what}: not a signature by the pinned key") from None
        key = next(
            (
                k
                for k in policy.log_keys
                if k.name == parts[0] and hmac.compare_digest(raw[:KEY_ID_LEN], k.key_id)
            ),
            None,
        )
        if key is None:
            continue  # another key's signature: ignored, as in notes
        try:
            key.verify(raw[KEY_ID_LEN:], data)
        except NoteError:
            raise BundleError(f"{what}: the signature does not match manifest.json") from None
        verified.append(key)
    if not verified:
        raise BundleError(f"{what}: not a signature by the pinned key")
    return policy.check_signers(verified, what)


def _load_proof(read: Callable[[str], bytes], rel: str) -> list[bytes]:
    import json

    try:
        doc = json.loads(read(rel))
        return [bytes.fromhex(h) for h in doc.get("proof", [])]
    except (ValueError, AttributeError, TypeError):
        raise BundleError(f"{rel}: not a consistency proof") from None


def verify_bundle(  # noqa: PLR0912, PLR0915 - one linear checklist, read top to bottom
    directory: str,
    *,
    pinned_key: str | Sequence[str] | None = None,
    trusted_checkpoint: str | None = None,
    require_algorithms: Sequence[str] = (ED25519,),
    witness_keys: str | Sequence[str] | None = None,
    witness_quorum: int | None = None,
) -> BundleReport:
    """Verify an evidence bundle; return a summary or raise :class:`BundleError`.

    Checks, in order: the manifest signatures (with ``pinned_key``: verifier-key strings,
    several allowed, else the keys shipped in the bundle), at least one by a pinned key of
    every algorithm in ``require_algorithms``; the exact file set and every file's SHA-256 and
    size; the signed checkpoint under the same rule; every event's canonical bytes, both hash
    chains and contiguous positions and versions; the RFC 9162 root against the checkpoint;
    given ``witness_keys``, that at least ``witness_quorum`` of them (default: all) cosigned
    the bundle's witnessed checkpoint and that it extends the bundle's; and, given
    ``trusted_checkpoint`` (a signed note the regulator already holds), its signature and a
    consistency proof from it to the bundle's checkpoint.
    """
    import json
    import os

    import pyarrow.parquet as pq

    root_dir = os.path.abspath(directory)

    def read(rel: str) -> bytes:
        try:
            with open(os.path.join(root_dir, rel), "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise BundleError(f"{rel}: cannot be read ({exc.strerror})") from None

    manifest_bytes = read("manifest.json")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise BundleError("manifest.json: not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("bundle_format") not in READABLE_FORMATS:
        raise BundleError(f"manifest.json: not a {BUNDLE_FORMAT} manifest")
    shipped = manifest.get("verifier_keys") or [str(manifest.get("verifier_key", ""))]
    log_keys = _keys_of(pinned_key) or _keys_of([str(k) for k in shipped])
    witnesses = _keys_of(witness_keys)
    policy = KeyPolicy(
        tuple(log_keys),
        tuple(require_algorithms),
        tuple(witnesses),
        len(witnesses) if witness_quorum is None else witness_quorum,
    )
    origin = str(manifest.get("origin", ""))
    algorithms = _verify_detached(
        manifest_bytes, read("manifest.sig").decode("ascii", "replace"), policy, "manifest.sig"
    )

    listed = {str(f["path"]): f for f in manifest.get("files", [])}
    present = set()
    for dirpath, _, filenames in os.walk(root_dir):
        for filename in filenames:
            rel = os.path.relpath(os.path.join(dirpath, filename), root_dir).replace(os.sep, "/")
            if rel not in {"manifest.json", "manifest.sig"}:
                present.add(rel)
    if present != set(listed):
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise BundleError(
            f"file set differs from manifest.json: extra {extra or 'none'}, "
            f"missing {missing or 'none'}"
        )
    for rel, entry in sorted(listed.items()):
        data = read(rel)
        if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            raise BundleError(f"{rel}: SHA-256 or size differs from manifest.json")

    try:
        note = read("checkpoint").decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("checkpoint: not UTF-8") from None
    log_only = KeyPolicy(policy.log_keys, policy.require)
    size, root, _, _ = verify_signed_checkpoint(note, origin, log_only)
    try:
        first, last = int(manifest["first_position"]), int(manifest["last_position"])
    except (KeyError, TypeError, ValueError):
        raise BundleError(
            "manifest.json: first_position and last_position must be integers"
        ) from None
    if size != last:
        raise BundleError(f"checkpoint: size {size} is not the bundle's last position {last}")

    prefix = manifest.get("prefix", {})
    hashes = [_hex32(h, "prefix frontier") for h in prefix.get("frontier", [])]
    tree_size = int(prefix.get("size", -1))
    if tree_size != first - 1 or tree_size.bit_count() != len(hashes):
        raise BundleError("manifest.json: the prefix does not describe positions before the range")
    prev_global = _hex32(prefix.get("prev_global_hash"), "prefix global hash")
    try:
        parquet = pq.ParquetFile(os.path.join(root_dir, "events.parquet"))
        row_count = parquet.metadata.num_rows
    except Exception as exc:  # any decoding failure of the Parquet file
        raise BundleError(f"events.parquet: cannot be read ({exc})") from None
    if row_count != last - first + 1:
        raise BundleError(
            f"events.parquet: {row_count} events, but positions {first}..{last} need "
            f"{last - first + 1}"
        )
    streams: dict[str, tuple[int, bytes]] = {}
    expected = first
    try:
        batches = parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        for batch in batches:
            for row in batch.to_pylist():
                pos = row["position"]
                where = f"events.parquet: position {pos} (stream {row['stream_id']})"
                if pos != expected:
                    raise BundleError(f"events.parquet: position {expected} expected, found {pos}")
                data = event_bytes(
                    pos,
                    row["stream_id"],
                    row["version"],
                    row["topic"],
                    row["recorded_at_ns"],
                    row["payload"],
                )
                digest = sha256(data)
                if row["prev_global_hash"] != prev_global:
                    raise BundleError(f"{where}: does not link to the previous event")
                if global_hash(pos, prev_global, digest) != row["global_hash"]:
                    raise BundleError(f"{where}: global hash does not match the event's contents")
                known = streams.get(row["stream_id"])
                if known is None:
                    if row["version"] == 1 and row["prev_stream_hash"] != GENESIS:
                        raise BundleError(
                            f"{where}: first event of its stream must link to genesis"
                        )
                else:
                    if row["version"] != known[0] + 1:
                        raise BundleError(
                            f"{where}: version {row['version']} does not follow {known[0]}"
                        )
                    if row["prev_stream_hash"] != known[1]:
                        raise BundleError(
                            f"{where}: does not link to the previous event of its stream"
                        )
                if (
                    stream_hash(row["stream_id"], row["version"], row["prev_stream_hash"], digest)
                    != row["stream_hash"]
                ):
                    raise BundleError(f"{where}: stream hash does not match the event's contents")
                streams[row["stream_id"]] = (row["version"], row["stream_hash"])
                prev_global = row["global_hash"]
                tree_size = _compact_append(tree_size, hashes, leaf_hash(data))
                expected += 1
    except BundleError:
        raise
    except Exception as exc:  # a damaged column or page
        raise BundleError(f"events.parquet: cannot be read ({exc})") from None
    if expected != last + 1:
        raise BundleError(f"events.parquet: ends at position {expected - 1}, not {last}")
    if not _same_hash(_compact_root(hashes), root):
        raise BundleError("events.parquet: the Merkle root of the events is not the checkpoint's")

    cosigners: tuple[str, ...] = ()
    witnessed_size = None
    if policy.witnesses:
        entry = manifest.get("witnessed")
        if not isinstance(entry, dict):
            raise BundleError(
                "witnessed-checkpoint: the bundle carries no checkpoint cosigned by witnesses"
            )
        try:
            witnessed_note = read(str(entry.get("file"))).decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError("witnessed-checkpoint: not UTF-8") from None
        witnessed_size, witnessed_root, _, cosigners = verify_signed_checkpoint(
            witnessed_note, origin, policy, "witnessed-checkpoint"
        )
        if witnessed_size < size:
            raise BundleError(
                f"witnessed-checkpoint: size {witnessed_size} precedes the bundle's {size}"
            )
        if witnessed_size == size:
            if not _same_hash(witnessed_root, root):
                raise BundleError("witnessed-checkpoint: same size, different root: a fork")
        else:
            rel = str(entry.get("consistency"))
            try:
                verify_consistency(
                    size, witnessed_size, _load_proof(read, rel), root, witnessed_root
                )
            except ProofError as exc:
                raise BundleError(
                    f"{rel}: the bundle is not a prefix of the witnessed log ({exc})"
                ) from None

    trusted_size = None
    if trusted_checkpoint is not None:
        try:
            with open(trusted_checkpoint, encoding="utf-8") as fh:
                held_text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"trusted checkpoint: {exc}") from None
        held_size, held_root, _, _ = verify_signed_checkpoint(
            held_text, origin, KeyPolicy(policy.log_keys, (ED25519,)), "trusted checkpoint"
        )
        if held_size > size:
            raise BundleError(
                f"trusted checkpoint: size {held_size} is beyond the bundle's {size}: "
                "the log was truncated"
            )
        if held_size == size:
            if not _same_hash(held_root, root):
                raise BundleError("trusted checkpoint: same size, different root: a fork")
        else:
            found = next(
                (
                    c
                    for c in manifest.get("consistency", [])
                    if c.get("from") == held_size and c.get("to") == size
                ),
                None,
            )
            if found is None:
                raise BundleError(
                    f"no consistency proof from the trusted size {held_size} to {size}: ask "
                    f"for a re-export with `ledgerline export --trusted-size {held_size}` (or "
                    f"GET /v1/exports?trusted_size={held_size})"
                )
            try:
                verify_consistency(
                    held_size, size, _load_proof(read, str(found["file"])), held_root, root
                )
            except ProofError as exc:
                raise BundleError(
                    f"{found['file']}: the log is not consistent with the trusted "
                    f"checkpoint ({exc})"
                ) from None
        trusted_size = held_size
    return BundleReport(
        origin,
        first,
        last,
        last - first + 1,
        root,
        trusted_size,
        algorithms,
        cosigners,
        witnessed_size,
    )


def _key_texts(values: Sequence[str] | None) -> list[str]:
    """Each value is a verifier key or a file holding verifier keys (one per line)."""
    texts = []
    for value in values or []:
        if os.path.exists(value):
            try:
                with open(value, encoding="ascii") as fh:
                    texts.append(fh.read())
            except UnicodeDecodeError:
                raise BundleError(f"{value}: not a file of verifier keys (not ASCII)") from None
        else:
            texts.append(value)
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    """``python verifier.py BUNDLE --public-key KEY... [--require ALGS]
    [--witness KEY]... [--witness-quorum K] [--trusted-checkpoint FILE]``.

    Without ``--public-key`` it refuses (exit 2): the keys inside a bundle prove only that
    whoever made the bundle signed it. ``--trust-bundled-key`` checks the bundle against its
    own keys anyway, and says loudly that this proves nothing about its origin."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="verify-bundle", description=main.__doc__)
    parser.add_argument("bundle")
    parser.add_argument(
        "--public-key",
        action="append",
        help="the log's verifier key(s), pinned out of band: a key or a file of keys (repeatable)",
    )
    parser.add_argument(
        "--require",
        default=ED25519,
        help=f"signature algorithms that must all sign, comma-separated "
        f"({', '.join(LOG_ALGORITHMS)}; default {ED25519})",
    )
    parser.add_argument(
        "--witness",
        action="append",
        help="a witness's verifier key (type 0x04) or a file of them (repeatable)",
    )
    parser.add_argument(
        "--witness-quorum",
        type=int,
        help="how many of the given witnesses must have cosigned (default: all of them)",
    )
    parser.add_argument("--trusted-checkpoint", help="a signed checkpoint you already hold")
    parser.add_argument(
        "--trust-bundled-key",
        action="store_true",
        help="without --public-key, check against the keys the bundle carries (proves nothing "
        "about who made it)",
    )
    args = parser.parse_args(argv)
    if not args.public_key and not args.trust_bundled_key:
        print(
            "verify-bundle: refused: no --public-key given; pass the log's verifier key obtained "
            "out of band (or --trust-bundled-key, which proves nothing about who made the bundle)",
            file=sys.stderr,
        )
        return 2
    if not args.public_key:
        print(
            "verify-bundle: WARNING: checking against the keys inside the bundle; anyone can make "
            "a bundle that passes this way. This proves internal consistency only, NOT its origin.",
            file=sys.stderr,
        )
    require = tuple(a.strip() for a in args.require.split(",") if a.strip())
    try:
        report = verify_bundle(
            args.bundle,
            pinned_key=_key_texts(args.public_key) or None,
            trusted_checkpoint=args.trusted_checkpoint,
            require_algorithms=require,
            witness_keys=_key_texts(args.witness) or None,
            witness_quorum=args.witness_quorum,
        )
    except (BundleError, NoteError, ProofError, OSError) as exc:
        print(f"verify-bundle: FAILED: {exc}", file=sys.stderr)
        return 1
    held = (
        f", consistent with the trusted checkpoint at {report.trusted_size}"
        if report.trusted_size is not None
        else " (no trusted checkpoint given: pass one to detect a rewritten log)"
    )
    witnessed = (
        f"; cosigned at size {report.witnessed_size} by {', '.join(report.witnesses)}"
        if report.witnessed_size is not None
        else ""
    )
    print(
        f"verify-bundle: OK: {report.events} events, positions {report.first_position}.."
        f"{report.last_position} of {report.origin}, root {report.root.hex()}, signed with "
        f"{' + '.join(report.signature_algorithms)}{witnessed}{held}"
        + ("" if args.public_key else " [UNPINNED KEY: origin not proven]")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
