"""The log's signing keys and witnesses, and their changes as events in the log itself.

Definition
    The stream ``log:keys`` holds the log's trust configuration as events, written through
    the event store's batch append like any other event (so they are leaves of the Merkle
    tree, covered by every later checkpoint):

    ``log.SigningKeyAdded.v1``    ``{verifier_key, algorithm, valid_from_ns}``
    ``log.SigningKeyRetired.v1``  ``{verifier_key, algorithm, valid_until_ns}``
    ``log.WitnessAdded.v1``       ``{verifier_key, url}``
    ``log.WitnessRemoved.v1``     ``{verifier_key}``

    The keys that sign at time ``t`` are the *base* keys (the configured Ed25519 key file and
    its ML-DSA-65 sibling, see ``replay.signing``) and every added key valid from ``t`` or
    earlier, minus every key retired at or before ``t``. A rotation adds a new Ed25519 and a
    new ML-DSA-65 key and retires the current ones at ``now + overlap``: for the overlap
    window, checkpoints and manifests carry the signatures of both generations, so a verifier
    pinned to either accepts them.

    :class:`Keyring` resolves those keys against the private key files in the key directory
    (every ``*.key`` there whose ``.pub`` names it).

Guarantees
    * A rotation is one submission: the added and retired keys commit together or not at all.
    * Every checkpoint is signed by at least one Ed25519 key; a keyring without one refuses to
      sign (``KeyFileError``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eventstore.model import NewEvent, Submission, VersionConflict
from eventstore.recorder import HashChainRecorder
from replay.signing import (
    KeyFileError,
    PrivateKey,
    Signer,
    as_signers,
    generate_key,
    load_private_key,
    pq_key_path,
    public_key_path,
)
from replay.verifier import ED25519, ML_DSA_65, NoteError, VerifierKey, parse_verifier_key

log = logging.getLogger(__name__)

STREAM = "log:keys"
KEY_ADDED = "log.SigningKeyAdded.v1"
KEY_RETIRED = "log.SigningKeyRetired.v1"
WITNESS_ADDED = "log.WitnessAdded.v1"
WITNESS_REMOVED = "log.WitnessRemoved.v1"
DEFAULT_OVERLAP_S = 86_400
NS_PER_S = 1_000_000_000


class KeyConfigError(Exception):
    """A key or witness change that cannot be made (bad key, unknown witness, ...)."""


@dataclass(frozen=True)
class Witness:
    """A witness the log asks for cosignatures: its verifier key (type 0x04) and URL."""

    key: VerifierKey
    url: str

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class TrustState:
    """What ``log:keys`` says, folded: key validity windows and the current witnesses."""

    added: dict[str, int]  # verifier key -> valid from (ns)
    retired: dict[str, int]  # verifier key -> valid until (ns, exclusive)
    witnesses: dict[str, Witness]  # verifier key -> witness
    version: int  # the stream's version (0: no event yet)

    def active(self, base: Sequence[str], now_ns: int) -> list[str]:
        """The verifier keys (encoded) that sign at ``now_ns``."""
        keys = list(dict.fromkeys([*base, *self.added]))
        return [k for k in keys if self.added.get(k, 0) <= now_ns < self.retired.get(k, 2**63)]


def _payload(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def read_trust(recorder: HashChainRecorder) -> TrustState:
    """Fold the ``log:keys`` stream (a handful of events: one read)."""
    added: dict[str, int] = {}
    retired: dict[str, int] = {}
    witnesses: dict[str, Witness] = {}
    events = recorder.read_streams([STREAM])[STREAM]
    for e in events:
        body = json.loads(e.payload)
        vkey = str(body["verifier_key"])
        if e.topic == KEY_ADDED:
            added[vkey] = int(body["valid_from_ns"])
        elif e.topic == KEY_RETIRED:
            retired[vkey] = int(body["valid_until_ns"])
        elif e.topic == WITNESS_ADDED:
            witnesses[vkey] = Witness(parse_verifier_key(vkey), str(body["url"]))
        elif e.topic == WITNESS_REMOVED:
            witnesses.pop(vkey, None)
    return TrustState(added, retired, witnesses, events[-1].version if events else 0)


def _append(
    recorder: HashChainRecorder, command_id: str, command_type: str, events: list[tuple[str, bytes]]
) -> None:
    """Append ``events`` to ``log:keys`` after its current version (retrying one race)."""
    for _ in range(3):
        version = read_trust(recorder).version
        new = [
            NewEvent(STREAM, version + i + 1, topic, payload)
            for i, (topic, payload) in enumerate(events)
        ]
        [result] = recorder.append(
            [Submission(command_id, command_type, _payload({}), True, b"{}", new)]
        )
        if not isinstance(result, VersionConflict):
            return
    raise KeyConfigError("the log's key stream kept changing; try again")


def add_witness(recorder: HashChainRecorder, verifier_key: str, url: str) -> Witness:
    """Ask ``url`` for cosignatures from now on; ``verifier_key`` is the witness's (type 0x04)."""
    try:
        key = parse_verifier_key(verifier_key.strip())
    except NoteError as exc:
        raise KeyConfigError(f"not a witness verifier key: {exc}") from None
    if key.algorithm != "cosignature/v1":
        raise KeyConfigError(
            f"{key.name} is an {key.algorithm} key; a witness key has type 0x04 (cosignature/v1)"
        )
    if not url.startswith(("http://", "https://")):
        raise KeyConfigError(f"witness URL {url!r} must start with http:// or https://")
    encoded = key.encode()
    if encoded in read_trust(recorder).witnesses:
        raise KeyConfigError(f"witness {key.name} ({key.key_id.hex()}) is already added")
    _append(
        recorder,
        f"log:witness-add:{key.name}:{key.key_id.hex()}:{time.time_ns()}",
        "log.add_witness",
        [(WITNESS_ADDED, _payload({"verifier_key": encoded, "url": url.rstrip("/")}))],
    )
    return Witness(key, url.rstrip("/"))


def remove_witness(recorder: HashChainRecorder, verifier_key: str) -> None:
    state = read_trust(recorder)
    key = verifier_key.strip()
    match = [k for k, w in state.witnesses.items() if key in (k, w.name)]
    if len(match) != 1:
        raise KeyConfigError(f"no single witness matches {key!r}")
    _append(
        recorder,
        f"log:witness-remove:{time.time_ns()}",
        "log.remove_witness",
        [(WITNESS_REMOVED, _payload({"verifier_key": match[0]}))],
    )


def witnesses(recorder: HashChainRecorder) -> list[Witness]:
    return list(read_trust(recorder).witnesses.values())


class Keyring:
    """The log's signing keys, as the key files and the ``log:keys`` events say.

    ``Keyring(path, name)``: ``path`` is the configured Ed25519 key file (its directory holds
    every key of the log, old and new); ``Keyring.fixed(...)`` wraps keys already in memory.
    """

    def __init__(
        self, path: Path | None, name: str, fixed: Sequence[Signer] = (), *, rotates: bool = True
    ) -> None:
        self.path = path
        self.name = name
        self._fixed = list(fixed)
        self._rotates = rotates and path is not None
        self._loaded: dict[Path, tuple[float, Signer | None]] = {}
        self._base: dict[Path, tuple[tuple[int, int, int], Signer]] = {}

    @classmethod
    def fixed(cls, key: Ed25519PrivateKey | Sequence[Signer], name: str) -> Keyring:
        return cls(None, name, as_signers(key, name), rotates=False)

    def _signer_of(self, path: Path) -> Signer | None:
        """The signer in ``path`` (cached until the file changes), named by its ``.pub``."""
        mtime = path.stat().st_mtime
        cached = self._loaded.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        signer: Signer | None = None
        pub = public_key_path(path)
        try:
            vkey = parse_verifier_key(pub.read_text(encoding="ascii").strip())
            private = load_private_key(path)
            if VerifierKey.from_public_key(vkey.name, private.public_key()) == vkey:
                signer = Signer(vkey.name, private)
            else:
                log.warning("%s does not hold the key %s names; ignored", path, pub)
        except (OSError, NoteError, KeyFileError, UnicodeDecodeError) as exc:
            log.warning("signing key %s is unusable: %s", path, exc)
        self._loaded[path] = (mtime, signer)
        return signer

    def base_signers(self) -> list[Signer]:
        """The configured key file and its ML-DSA-65 sibling, signing as ``name``.

        Loaded strictly: a missing Ed25519 file or a file with loose permissions is an error.
        A key is read again only when its file changes.
        """
        if self.path is None:
            return list(self._fixed)
        paths = [self.path]
        pq = pq_key_path(self.path)
        if pq.exists() or pq.is_symlink():
            paths.append(pq)
        return [self._base_signer(p) for p in paths]

    def _base_signer(self, path: Path) -> Signer:
        try:
            info = path.stat()
            stamp = (info.st_mtime_ns, info.st_ino, info.st_mode)
        except OSError:
            stamp = None
        cached = self._base.get(path)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        key = load_private_key(path)  # raises KeyFileError, with the reason, on any problem
        signer = Signer(self._name_of(path, key), key)
        if stamp is not None:
            self._base[path] = (stamp, signer)
        return signer

    def _name_of(self, path: Path, key: PrivateKey) -> str:
        """The name the key's ``.pub`` gives it (if that file names this key), else ``name``."""
        try:
            vkey = parse_verifier_key(public_key_path(path).read_text(encoding="ascii").strip())
        except (OSError, NoteError, UnicodeDecodeError):
            return self.name
        if VerifierKey.from_public_key(vkey.name, key.public_key()) == vkey:
            return vkey.name
        return self.name

    def signers(
        self, recorder: HashChainRecorder | None, now_ns: int | None = None
    ) -> list[Signer]:
        """The signers valid at ``now_ns`` (default: now); at least one of them Ed25519."""
        found = self.base_signers()
        if self._rotates and recorder is not None and self.path is not None:
            state = read_trust(recorder)
            if state.added or state.retired:
                now = time.time_ns() if now_ns is None else now_ns
                on_disk = {s.verifier_key.encode(): s for s in found}
                for p in sorted(self.path.parent.glob("*.key")):
                    signer = self._signer_of(p)
                    if signer is not None:
                        on_disk.setdefault(signer.verifier_key.encode(), signer)
                active = state.active([s.verifier_key.encode() for s in found], now)
                missing = [k for k in active if k not in on_disk]
                if missing:
                    log.warning("no key file for the active signing keys %s", missing)
                found = [on_disk[k] for k in active if k in on_disk]
        if not any(s.algorithm == ED25519 for s in found):
            raise KeyFileError("no Ed25519 signing key is valid now; a checkpoint needs one")
        return found


@dataclass(frozen=True)
class Rotation:
    added: list[VerifierKey]
    retiring: list[VerifierKey]
    valid_until_ns: int


def rotate_keys(
    recorder: HashChainRecorder,
    keyring: Keyring,
    *,
    overlap_s: int = DEFAULT_OVERLAP_S,
    now_ns: int | None = None,
) -> Rotation:
    """Create a new Ed25519 and ML-DSA-65 key beside the current ones and record, in one
    submission, that they sign from now on and that the current keys stop after ``overlap_s``.
    """
    if keyring.path is None:
        raise KeyConfigError("only keys kept in files can be rotated")
    if overlap_s < 0:
        raise KeyConfigError(f"the overlap must not be negative, got {overlap_s} s")
    now = time.time_ns() if now_ns is None else now_ns
    current = keyring.signers(recorder, now)
    stamp = datetime.fromtimestamp(now / NS_PER_S, UTC).strftime("%Y%m%dT%H%M%S%fZ")
    directory = keyring.path.parent
    stem = keyring.path.stem
    name = next(s.name for s in current if s.algorithm == ED25519)
    new_ed = generate_key(directory / f"{stem}-{stamp}.key", name, ED25519)
    new_pq = generate_key(directory / f"{stem}-{stamp}.mldsa65.key", name, ML_DSA_65)
    until = now + overlap_s * NS_PER_S
    events = [
        (KEY_ADDED, _payload({"verifier_key": k.encode(), "algorithm": k.algorithm,
                              "valid_from_ns": now}))
        for k in (new_ed, new_pq)
    ] + [
        (KEY_RETIRED, _payload({"verifier_key": s.verifier_key.encode(),
                                "algorithm": s.algorithm, "valid_until_ns": until}))
        for s in current
    ]  # fmt: skip
    _append(recorder, f"log:keys-rotate:{new_ed.key_id.hex()}", "log.rotate_keys", events)
    return Rotation([new_ed, new_pq], [s.verifier_key for s in current], until)
