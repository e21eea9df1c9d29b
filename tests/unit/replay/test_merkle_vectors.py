"""The RFC 9162 verifiers agree with every transparency-dev/merkle test vector.

The vectors (Apache-2.0, copied unmodified from transparency-dev/merkle at 417fb0c, licence
beside them) live in ``tests/vectors/merkle``: one JSON file per case with ``wantErr``. A
missing vector directory is a failure, never a skip.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from replay.verifier import ProofError, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "merkle"

if not (VECTORS / "inclusion").is_dir() or not (VECTORS / "consistency").is_dir():
    raise FileNotFoundError(f"Merkle test vectors are missing: expected them under {VECTORS}")

INCLUSION = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((VECTORS / "consistency").rglob("*.json"))

# Our verifier is deliberately stricter than the Go reference in one place: it requires
# every root to be a 32-byte SHA-256 value even when size1 == size2, where the Go code
# only compares the two roots. This single upstream "happy" vector uses 12-byte
# placeholder roots, so we expect a rejection that names the length check.
STRICTER_THAN_REFERENCE = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(h) for h in case["proof"] or []]


def _id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def test_the_vector_set_is_complete() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98
    wanted_ok = [p for p in INCLUSION + CONSISTENCY if not json.loads(p.read_text())["wantErr"]]
    assert len(wanted_ok) >= 10


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_verifier_matches_the_vector(path: Path) -> None:
    case = json.loads(path.read_text())

    def run() -> None:
        verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_verifier_matches_the_vector(path: Path) -> None:
    case = json.loads(path.read_text())

    def run() -> None:
        verify_consistency(
            case["size1"], case["size2"], _proof(case), _b64(case["root1"]), _b64(case["root2"])
        )

    if _id(path) in STRICTER_THAN_REFERENCE:
        assert case["wantErr"] is False
        with pytest.raises(ProofError, match="32 bytes"):
            run()
    elif case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


def test_exactly_one_vector_is_overridden_and_it_exists() -> None:
    assert {_id(p) for p in CONSISTENCY} >= STRICTER_THAN_REFERENCE
