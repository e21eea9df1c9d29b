"""The signing side of checkpoints: Ed25519 key files and C2SP signed notes.

Definition
    * A signing key file holds an Ed25519 private key as unencrypted PKCS#8 PEM, mode 0600.
      Beside it, ``<path>.pub`` holds the verifier-key string
      ``<name>+<hex key id>+<base64(0x01 || public key)>`` (see ``replay.verifier``).
    * ``sign_note`` appends ``— <name> <base64(key id || Ed25519 signature)>`` after a
      blank line to a note text; ``sign_checkpoint`` does so for a tlog checkpoint body.

Guarantees
    * A key file is never overwritten and never visible half-written or with wider
      permissions: it is written to a fresh 0600 temporary file, fsynced, then hard-linked
      into place (which fails if the name exists) and the temporary name removed.
    * ``load_signing_key`` refuses a file that grants any permission to group or others.
    * Every note this module signs verifies with ``replay.verifier.verify_note``.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from domain.invariant import invariant
from replay.verifier import (
    ED25519,
    ML_DSA_65,
    SIGNATURE_PREFIX,
    VerifierKey,
    check_key_name,
    check_note_text,
    checkpoint_body,
    verify_note,
    verify_note_keys,
)

KEY_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644


class KeyFileError(Exception):
    """A signing-key file is missing, already exists, has unsafe permissions or is not a key."""


def public_key_path(path: Path | str) -> Path:
    """Where the verifier key of the signing key at ``path`` is written: ``<path>.pub``."""
    path = Path(path)
    return path.with_name(path.name + ".pub")


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data`` and ``mode``, refusing to replace an existing file.

    The bytes go to a temporary file created with O_EXCL and ``mode`` from the start, are
    fsynced, and the file is then hard-linked to ``path``: ``link`` fails if ``path``
    exists, and ``path`` never names a partial file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError as exc:
        raise KeyFileError(f"stale temporary file {tmp} exists; remove it and retry") from exc
    try:
        try:
            os.fchmod(fd, mode)  # exactly mode, whatever the umask did to it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(tmp, path)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite it") from exc
    finally:
        tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def pq_key_path(path: Path | str) -> Path:
    """Where the ML-DSA-65 key beside the Ed25519 key at ``path`` lives:
    ``checkpoint.key`` -> ``checkpoint.mldsa65.key``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.mldsa65{path.suffix}")


PrivateKey = Ed25519PrivateKey | MLDSA65PrivateKey


def _write_key_pair(path: Path, name: str, private_key: PrivateKey) -> VerifierKey:
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    verifier_key = VerifierKey.from_public_key(name, private_key.public_key())
    _write_new_file(path, pem, KEY_FILE_MODE)
    _write_new_file(
        public_key_path(path), (verifier_key.encode() + "\n").encode("ascii"), PUBLIC_FILE_MODE
    )
    return verifier_key


def generate_signing_key(path: Path | str, name: str) -> VerifierKey:
    """Create the log's signing keys: Ed25519 at ``path`` and ML-DSA-65 at
    :func:`pq_key_path`, each 0600 with its verifier key in ``<file>.pub``; return the
    Ed25519 verifier key.

    Raises :class:`KeyFileError` if any of the four files already exists (nothing is written
    then), and ``replay.verifier.NoteError`` if ``name`` is not a valid note key name.
    """
    path = Path(path)
    pq_path = pq_key_path(path)
    check_key_name(name)
    for existing in (path, public_key_path(path), pq_path, public_key_path(pq_path)):
        if existing.exists() or existing.is_symlink():
            raise KeyFileError(f"{existing} already exists; refusing to overwrite it")
    verifier_key = _write_key_pair(path, name, Ed25519PrivateKey.generate())
    _write_key_pair(pq_path, name, MLDSA65PrivateKey.generate())
    return verifier_key


def generate_key(path: Path | str, name: str, algorithm: str) -> VerifierKey:
    """Create one signing key of ``algorithm`` (``ed25519`` or ``ml-dsa-65``) at ``path``."""
    path = Path(path)
    check_key_name(name)
    for existing in (path, public_key_path(path)):
        if existing.exists() or existing.is_symlink():
            raise KeyFileError(f"{existing} already exists; refusing to overwrite it")
    key: PrivateKey = (
        MLDSA65PrivateKey.generate() if algorithm == ML_DSA_65 else Ed25519PrivateKey.generate()
    )
    return _write_key_pair(path, name, key)


def load_private_key(path: Path | str) -> PrivateKey:
    """Read an Ed25519 or ML-DSA-65 private key, refusing a file any group or other user may
    access."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise KeyFileError(f"signing key {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot open signing key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())  # the file we opened, not whatever the name is now
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"signing key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"signing key {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must not be "
                f"accessible to group or others (run: chmod 600 {path})"
            )
        pem = handle.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, (Ed25519PrivateKey, MLDSA65PrivateKey)):
        raise KeyFileError(
            f"{path} holds a {type(key).__name__}, not an Ed25519 key (nor an ML-DSA-65 key)"
        )
    return key


def load_signing_key(path: Path | str) -> Ed25519PrivateKey:
    """Read an Ed25519 private key, refusing a file any group or other user may access."""
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Signer:
    """One of the log's signing keys, with the key name its signatures carry."""

    name: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def algorithm(self) -> str:
        return ML_DSA_65 if isinstance(self.private_key, MLDSA65PrivateKey) else ED25519

    @property
    def verifier_key(self) -> VerifierKey:
        return VerifierKey.from_public_key(self.name, self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def note_line(self, text: str) -> str:
        """``— <name> <base64(key id || signature over text)>\\n``."""
        blob = self.verifier_key.key_id + self.sign(text.encode("utf-8"))
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"

    def detached_line(self, data: bytes) -> str:
        """``<name> <base64(key id || signature over data)>\\n`` (a manifest.sig line)."""
        blob = self.verifier_key.key_id + self.sign(data)
        return f"{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def as_signers(key: Ed25519PrivateKey | Sequence[Signer], name: str) -> list[Signer]:
    """A bare Ed25519 key signs as ``name``; a list of signers is taken as is."""
    if isinstance(key, Ed25519PrivateKey):
        return [Signer(name, key)]
    signers = list(key)
    if not signers:
        raise KeyFileError("no signing key is available")
    return signers


def signature_line(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``— <name> <base64(key id || signature over text)>\\n``."""
    return Signer(name, private_key).note_line(text)


def sign_note_with(body: str, signers: Sequence[Signer]) -> str:
    """Sign ``body`` (non-empty, ending in a newline) with every signer, Ed25519 first."""
    if not body.endswith("\n") or body == "\n":
        raise ValueError("a note body must be non-empty text ending in a newline")
    check_note_text(body, "note body")
    ordered = sorted(signers, key=lambda s: s.algorithm != ED25519)
    note = body + "\n" + "".join(s.note_line(body) for s in ordered)
    # Paired check: what we sign must verify with the public halves, as a regulator will.
    text, verified = verify_note_keys(note, [s.verifier_key for s in ordered])
    invariant(text == body and len(verified) == len(ordered), "signed note verifies")
    return note


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign ``body`` (non-empty, ending in a newline) as a C2SP note; return the note text."""
    note = sign_note_with(body, [Signer(name, private_key)])
    invariant(verify_note(note, name, private_key.public_key()) == body, "signed note verifies")
    return note


def sign_checkpoint(
    origin: str, size: int, root: bytes, name: str, key: Ed25519PrivateKey | Sequence[Signer]
) -> str:
    """Sign the C2SP tlog checkpoint ``(origin, size, root)``; return the signed note."""
    return sign_note_with(checkpoint_body(origin, size, root), as_signers(key, name))
