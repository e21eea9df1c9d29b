"""Witnesses: C2SP tlog-witness ``add-checkpoint`` and tlog-cosignature, both sides.

Definition
    A :class:`WitnessService` holds its own Ed25519 key (a ``cosignature/v1`` key, signature
    type 0x04), the verifier keys of the logs it follows (by origin), and, per origin, the
    latest checkpoint it cosigned, in a state file. :meth:`WitnessService.add_checkpoint`
    implements ``POST <prefix>/add-checkpoint`` of c2sp.org/tlog-witness: the body is
    ``old <size>``, up to 63 base64 consistency-proof lines, an empty line and a signed
    checkpoint; the answer is one cosignature line, or an HTTP status naming the refusal
    (400 malformed, 403 no trusted signature, 404 unknown origin, 409 the old size is not the
    latest cosigned size, or same size with another root; 422 the proof does not verify).

    The log side, :func:`collect_cosignatures`, sends a checkpoint to every witness in
    ``log:keys`` with a consistency proof (from the tiles) from the size that witness last
    cosigned, verifies each cosignature it gets back and stores it append-only.

Guarantees
    * A witness cosigns a checkpoint only if it is consistent with the last one it cosigned
      for that origin: a rewritten log is refused, even when signed with the log's own key.
    * The check against the stored size and the update of it are one atomic step (a lock
      held across both, a file lock across processes); the state is fsynced and renamed into
      place before the cosignature is returned.
    * The log stores only cosignatures that verify against the witness's pinned key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.recorder import HashChainRecorder
from replay.keys import Witness, witnesses
from replay.log import Checkpoint, log_tree
from replay.merkle import ProvingTree
from replay.signing import (
    KEY_FILE_MODE,
    PUBLIC_FILE_MODE,
    KeyFileError,
    _write_new_file,
    load_signing_key,
    public_key_path,
)
from replay.verifier import (
    COSIGNATURE_V1,
    HASH_LEN,
    SIGNATURE_PREFIX,
    NoteError,
    ProofError,
    VerifierKey,
    check_key_name,
    cosigned_message,
    parse_checkpoint,
    verify_consistency,
    verify_note_keys,
)

log = logging.getLogger(__name__)

MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessRefusal(Exception):
    """The witness refuses the request; ``status`` is the HTTP status the spec names."""

    def __init__(self, status: int, detail: str, body: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.body = body


@dataclass(frozen=True)
class WitnessAnswer:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


# ------------------------------------------------------------------ the witness


def witness_key_path(directory: Path) -> Path:
    return directory / "witness.key"


def create_witness_key(directory: Path, name: str) -> VerifierKey:
    """A new Ed25519 witness key in ``directory`` (0600) and its type-0x04 verifier key."""
    check_key_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    path = witness_key_path(directory)
    for existing in (path, public_key_path(path)):
        if existing.exists() or existing.is_symlink():
            raise KeyFileError(f"{existing} already exists; refusing to overwrite it")
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    vkey = VerifierKey.from_public_key(name, key.public_key(), COSIGNATURE_V1)
    _write_new_file(path, pem, KEY_FILE_MODE)
    _write_new_file(public_key_path(path), (vkey.encode() + "\n").encode(), PUBLIC_FILE_MODE)
    return vkey


def load_witness(directory: Path) -> tuple[Ed25519PrivateKey, VerifierKey]:
    path = witness_key_path(directory)
    key = load_signing_key(path)
    try:
        from replay.verifier import parse_verifier_key

        vkey = parse_verifier_key(public_key_path(path).read_text(encoding="ascii").strip())
    except (OSError, NoteError) as exc:
        raise KeyFileError(
            f"{public_key_path(path)} is not a witness verifier key: {exc}"
        ) from None
    if vkey.algorithm != COSIGNATURE_V1 or vkey.public_key_bytes != (
        key.public_key().public_bytes_raw()
    ):
        raise KeyFileError(f"{public_key_path(path)} does not name the key in {path}")
    return key, vkey


class WitnessService:
    """One witness: its key, the logs it trusts and the latest cosigned checkpoint of each."""

    def __init__(
        self,
        directory: Path,
        logs: Mapping[str, Sequence[VerifierKey]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.key, self.verifier_key = load_witness(directory)
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self._clock = clock
        self._lock = threading.Lock()
        self._state_path = directory / "state.json"
        self._lock_path = directory / "state.lock"

    @property
    def name(self) -> str:
        return self.verifier_key.name

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._lock, open(self._lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read_state(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        logs = data.get("logs", {}) if isinstance(data, dict) else {}
        return logs if isinstance(logs, dict) else {}

    def _write_state(self, state: dict[str, dict[str, object]]) -> None:
        tmp = self._state_path.with_name(f".state.{os.getpid()}.tmp")
        data = json.dumps({"logs": state}, sort_keys=True, indent=1).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._state_path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def latest(self, origin: str) -> tuple[int, bytes | None]:
        entry = self._read_state().get(origin)
        if not entry:
            return 0, None
        return int(str(entry["size"])), base64.b64decode(str(entry["root"]))

    def add_checkpoint(self, body: bytes) -> WitnessAnswer:
        """``POST add-checkpoint``: a cosignature line, or the status of the refusal."""
        try:
            return WitnessAnswer(200, self._add(body))
        except WitnessRefusal as refusal:
            if refusal.body is not None:
                return WitnessAnswer(refusal.status, refusal.body, SIZE_CONTENT_TYPE)
            return WitnessAnswer(refusal.status, refusal.detail + "\n")

    def _add(self, body: bytes) -> str:
        old, proof, note = parse_add_checkpoint(body)
        text_origin = note.split("\n", 1)[0]
        trusted = self.logs.get(text_origin)
        if trusted is None:
            raise WitnessRefusal(404, f"unknown log origin {text_origin!r}")
        try:
            text, _ = verify_note_keys(note, trusted)
        except NoteError as exc:
            raise WitnessRefusal(403, f"no trusted signature verifies: {exc}") from None
        try:
            origin, size, root = parse_checkpoint(text)
        except NoteError as exc:
            raise WitnessRefusal(400, f"not a checkpoint: {exc}") from None
        if old > size:
            raise WitnessRefusal(400, f"old size {old} is beyond the checkpoint's size {size}")
        if old == 0 and proof:
            raise WitnessRefusal(400, "a proof from size 0 must be empty")
        with self._exclusive():
            state = self._read_state()
            entry = state.get(origin)
            held_size = int(str(entry["size"])) if entry else 0
            held_root = base64.b64decode(str(entry["root"])) if entry else None
            if old != held_size:
                raise WitnessRefusal(
                    409, f"the latest cosigned size is {held_size}", body=f"{held_size}\n"
                )
            if old == size:
                if held_root is not None and held_root != root:
                    raise WitnessRefusal(409, f"size {size} was cosigned with another root")
            elif old > 0:
                try:
                    verify_consistency(old, size, proof, held_root or b"", root)
                except ProofError as exc:
                    log.warning(
                        "refused checkpoint %d of %s: inconsistent with %d (%s)",
                        size,
                        origin,
                        old,
                        exc,
                    )
                    raise WitnessRefusal(
                        422, f"the consistency proof from {old} to {size} does not verify: {exc}"
                    ) from None
            state[origin] = {"size": size, "root": base64.b64encode(root).decode("ascii")}
            self._write_state(state)
        return self.cosign(text)

    def cosign(self, text: str) -> str:
        """A ``cosignature/v1`` line over the checkpoint ``text``, timestamped now."""
        timestamp = int(self._clock())
        signature = self.key.sign(cosigned_message(text, timestamp))
        blob = self.verifier_key.key_id + timestamp.to_bytes(8, "big") + signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """Split an add-checkpoint body into (old size, proof hashes, checkpoint note)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessRefusal(400, "the body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRefusal(400, "no empty line between the proof and the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size_text = first.removeprefix("old ")
    if (
        not first.startswith("old ")
        or not size_text.isdigit()
        or not size_text.isascii()
        or (size_text != "0" and size_text.startswith("0"))
    ):
        raise WitnessRefusal(400, "the first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            value = base64.b64decode(line.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise WitnessRefusal(400, "a proof line is not base64") from None
        if len(value) != HASH_LEN:
            raise WitnessRefusal(400, "a proof line is not a 32-byte hash")
        proof.append(value)
    return int(size_text), proof, note


# ------------------------------------------------------------------ the log's side


def add_checkpoint_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode("ascii") for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def _last_cosigned_size(recorder: HashChainRecorder, witness: Witness) -> int:
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        row = conn.execute(
            f'SELECT max(tree_size) AS size FROM "{schema}".checkpoint_cosignatures'
            " WHERE witness = %s AND key_id = %s",
            (witness.name, witness.key.key_id),
        ).fetchone()
    return int(row["size"]) if row and row["size"] is not None else 0


def _store(recorder: HashChainRecorder, size: int, witness: Witness, line: str) -> None:
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        conn.execute(
            f'INSERT INTO "{schema}".checkpoint_cosignatures'
            " (tree_size, witness, key_id, signature_line) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (size, witness.name, witness.key.key_id, line),
        )


def _valid_lines(text: str, note: str, witness: Witness) -> list[str]:
    """The lines of a witness's answer that are cosignatures of ``note`` by its key."""
    good = []
    for line in text.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            continue
        try:
            _, verified = verify_note_keys(note + line + "\n", [witness.key])
        except NoteError:
            continue
        if verified:
            good.append(line)
    return good


def request_cosignature(
    recorder: HashChainRecorder,
    checkpoint: Checkpoint,
    witness: Witness,
    tree: ProvingTree,
    *,
    client: httpx.Client,
) -> str | None:
    """Ask one witness to cosign; store and return its cosignature line (None if refused)."""
    old = _last_cosigned_size(recorder, witness)
    for _ in range(2):  # a 409 names the size the witness holds: retry once from it
        if old > checkpoint.size:
            log.info("witness %s holds size %d > %d", witness.name, old, checkpoint.size)
            return None
        proof = tree.consistency_proof(old, checkpoint.size) if 0 < old < checkpoint.size else []
        try:
            response = client.post(
                f"{witness.url}/add-checkpoint",
                content=add_checkpoint_body(old, proof, checkpoint.note),
            )
        except httpx.HTTPError as exc:
            log.warning("witness %s unreachable: %s", witness.name, exc)
            return None
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(
            SIZE_CONTENT_TYPE
        ):
            held = response.text.strip()
            if held.isdigit() and int(held) != old:
                old = int(held)
                continue
        if response.status_code != 200:
            log.warning(
                "witness %s refused checkpoint %d: %d %s",
                witness.name,
                checkpoint.size,
                response.status_code,
                response.text.strip()[:200],
            )
            return None
        lines = _valid_lines(response.text, checkpoint.note, witness)
        if not lines:
            log.warning("witness %s answered without a valid cosignature", witness.name)
            return None
        _store(recorder, checkpoint.size, witness, lines[0])
        return lines[0]
    return None


def collect_cosignatures(
    recorder: HashChainRecorder,
    checkpoint: Checkpoint,
    *,
    timeout_s: float = 10.0,
    only: Sequence[Witness] | None = None,
) -> list[str]:
    """Ask every configured witness to cosign ``checkpoint``; return the lines obtained."""
    targets = list(only) if only is not None else witnesses(recorder)
    if not targets:
        return []
    tree = log_tree(recorder)
    lines: list[str] = []
    with httpx.Client(timeout=timeout_s) as client:
        for witness in targets:
            line = request_cosignature(recorder, checkpoint, witness, tree, client=client)
            if line is not None:
                lines.append(line)
    return lines
