"""The worked example in docs/evidence-bundle.md is what the code computes, byte for byte.

The page is a specification a regulator may implement from; its example values must never
drift from the implementation. Every test here reads the example's stated inputs from the page
itself, recomputes the outputs with the project's own functions, and compares them with the
hex strings, key strings and signed notes written on the page.
"""

from __future__ import annotations

import base64
import re
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from eventstore.canonical import (
    GENESIS,
    encode_event,
    global_hash,
    merkle_leaf_hash,
    sha256,
    stream_hash,
)
from replay.merkle import MerkleTree
from replay.signing import Signer, sign_checkpoint
from replay.verifier import (
    COSIGNATURE_V1,
    ED25519,
    ML_DSA_65,
    KeyPolicy,
    VerifierKey,
    cosigned_message,
    verify_signed_checkpoint,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "evidence-bundle.md"

EVENTS_HEADER = "| position | stream_id | version | topic | recorded_at_ns | payload |"
KEYS_HEADER = "| key | name | algorithm | seed (hex) |"
RESULT_LINE = re.compile(r"^([a-z_]+(?:\[[0-9,]+\])+) = ([0-9a-f]{64})$", re.MULTILINE)

Event = tuple[int, str, int, str, int, bytes]


@cache
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def table(header: str) -> list[list[str]]:
    """The body rows of the markdown table under ``header``, cells stripped of backticks."""
    lines = doc().splitlines()
    start = lines.index(header) + 2  # skip the header and the |---| line
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split(" | ")])
    return rows


def fenced(info: str) -> list[str]:
    """The contents of every fenced block opened with ```` ```info ````."""
    return re.findall(rf"^```{info}\n(.*?)^```$", doc(), re.MULTILINE | re.DOTALL)


def example_events() -> list[Event]:
    return [
        (int(pos), sid, int(ver), topic, int(at), payload.encode("utf-8"))
        for pos, sid, ver, topic, at, payload in table(EVENTS_HEADER)
    ]


def expected_results(events: list[Event]) -> dict[str, str]:
    """Every labelled hash of the worked example, computed with the project's functions."""
    out: dict[str, str] = {}
    prev_global = GENESIS
    heads: dict[str, bytes] = {}
    leaves = []
    for position, sid, version, topic, at_ns, payload in events:
        data = encode_event(position, sid, version, topic, at_ns, payload)
        digest = sha256(data)
        link = heads.get(sid, GENESIS)
        heads[sid] = stream_hash(sid, version, link, digest)
        prev_global = global_hash(position, prev_global, digest)
        leaves.append(merkle_leaf_hash(data))
        out[f"event_digest[{position}]"] = digest.hex()
        out[f"stream_hash[{position}]"] = heads[sid].hex()
        out[f"global_hash[{position}]"] = prev_global.hex()
        out[f"leaf_hash[{position}]"] = leaves[-1].hex()
    tree = MerkleTree(leaves)
    n = len(leaves)
    for size in range(1, n + 1):
        out[f"root[{size}]"] = tree.root(size).hex()
    for k, h in enumerate(tree.compact_range(n - 1)):
        out[f"frontier[{n - 1}][{k}]"] = h.hex()
    for m in (1, n - 1):
        for k, h in enumerate(tree.consistency_proof(m, n)):
            out[f"consistency[{m},{n}][{k}]"] = h.hex()
    for k, h in enumerate(tree.inclusion_proof(n - 1, n)):
        out[f"inclusion[{n - 1},{n}][{k}]"] = h.hex()
    return out


def keys() -> dict[str, tuple[str, bytes]]:
    """``"<role> <algorithm>"`` -> (key name, seed) from the page's key table."""
    return {
        f"{role} {alg}": (name, bytes.fromhex(seed)) for role, name, alg, seed in table(KEYS_HEADER)
    }


def log_signer() -> Signer:
    name, seed = keys()[f"log {ED25519}"]
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def witness() -> tuple[Ed25519PrivateKey, VerifierKey]:
    name, seed = keys()[f"witness {COSIGNATURE_V1}"]
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private, VerifierKey.from_public_key(name, private.public_key(), COSIGNATURE_V1)


def stated(label: str) -> str:
    found = re.search(rf"^{re.escape(label)} = (\S+)$", doc(), re.MULTILINE)
    assert found, f"the page states no {label!r}"
    return found.group(1)


def cosignature_time() -> int:
    found = re.search(r"at timestamp `(\d+)`", doc())
    assert found, "the page states no cosignature timestamp"
    return int(found.group(1))


def flat() -> str:
    """The page with every run of whitespace made one space (phrases may wrap anywhere)."""
    return " ".join(doc().split())


def spaced(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw)


def test_the_page_states_three_example_events_in_position_order() -> None:
    events = example_events()
    assert [e[0] for e in events] == [1, 2, 3]
    assert events[2][1] == events[0][1], "event 3 continues event 1's stream"


def test_the_annotated_hex_dump_is_the_canonical_bytes_of_event_1() -> None:
    [dump] = fenced("hexdump")
    written = "".join(
        "".join(line.split("#", 1)[0].split()) for line in dump.splitlines() if line.strip()
    )
    data = encode_event(*example_events()[0])
    assert written == data.hex()
    assert f"### 12.1 Canonical bytes of event 1 ({len(data)} bytes)" in doc()


def test_every_hash_of_the_worked_example_is_the_one_the_code_computes() -> None:
    written = dict(RESULT_LINE.findall(doc()))
    assert written == expected_results(example_events())


def test_the_payload_sizes_stated_are_the_payloads_byte_lengths() -> None:
    sizes = ", ".join(str(len(e[5])) for e in example_events()[:-1])
    last = len(example_events()[-1][5])
    assert f"({sizes} and {last} bytes)" in flat()


def test_the_example_verifier_keys_derive_from_the_stated_seeds() -> None:
    assert stated("log ed25519 verifier key") == log_signer().verifier_key.encode()
    name, seed = keys()[f"log {ML_DSA_65}"]
    mldsa = VerifierKey.from_public_key(name, MLDSA65PrivateKey.from_seed_bytes(seed).public_key())
    assert stated("log ml-dsa-65 key id") == mldsa.key_id.hex()
    assert f"the ML-DSA-65 key, {len(mldsa.encode()):,} characters" in flat()
    assert stated("witness verifier key") == witness()[1].encode()


def test_the_example_checkpoint_is_the_note_the_log_signs_over_the_example_root() -> None:
    signer = log_signer()
    root = bytes.fromhex(expected_results(example_events())["root[3]"])
    note = sign_checkpoint(signer.name, 3, root, signer.name, [signer])
    signed, _ = fenced("note")
    assert signed == note
    assert f"`{spaced(signer.verifier_key.key_id)}` (the key id)" in flat()


def test_the_example_witnessed_checkpoint_carries_the_witness_cosignature_and_verifies() -> None:
    signed, witnessed = fenced("note")
    private, wkey = witness()
    at = cosignature_time()
    body = signed[: signed.index("\n\n") + 1]
    blob = wkey.key_id + at.to_bytes(8, "big") + private.sign(cosigned_message(body, at))
    line = f"\u2014 {wkey.name} {base64.b64encode(blob).decode('ascii')}\n"
    assert witnessed == signed + line
    assert f"`{spaced(wkey.key_id)}`, the timestamp `{spaced(at.to_bytes(8, 'big'))}`" in flat()
    policy = KeyPolicy((log_signer().verifier_key,), (ED25519,), (wkey,), 1)
    size, root, algorithms, cosigners = verify_signed_checkpoint(
        witnessed, log_signer().name, policy
    )
    assert (size, root.hex()) == (3, expected_results(example_events())["root[3]"])
    assert (algorithms, cosigners) == ((ED25519,), (wkey.name,))
