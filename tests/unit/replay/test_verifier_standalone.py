"""The regulator's verifier stands alone and hashes exactly what the event store hashes.

``replay/verifier.py`` duplicates the canonical encoding of ``eventstore/canonical.py`` on
purpose (it must run without the rest of Ledgerline); these tests keep the two copies
byte-identical and the verifier's imports limited to the standard library,
``cryptography`` and ``pyarrow``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstore import canonical
from replay import verifier

ALLOWED_THIRD_PARTY = {"cryptography", "pyarrow"}
VERIFIER_SOURCE = Path(verifier.__file__).read_text(encoding="utf-8")

i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text()
field = st.one_of(st.binary(), text, i64)
digest = st.binary(min_size=32, max_size=32)


def _imported_modules(source: str) -> list[tuple[str, int]]:
    """Every module named by an import anywhere in ``source``, with its relative level."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    imports = _imported_modules(VERIFIER_SOURCE)
    assert imports, "the AST walk found no imports at all"
    for module, level in imports:
        assert level == 0, f"relative import of {module!r}"
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, module


def test_the_verifier_does_not_load_modules_dynamically() -> None:
    assert "importlib" not in VERIFIER_SOURCE
    assert "__import__" not in VERIFIER_SOURCE


def test_the_import_check_would_catch_a_project_import() -> None:
    bad = "from __future__ import annotations\nimport os\nfrom eventstore import canonical\n"
    tops = {m.split(".")[0] for m, _ in _imported_modules(bad)}
    assert "eventstore" in tops
    assert "eventstore" not in sys.stdlib_module_names


@given(st.binary(max_size=16), st.lists(field, max_size=8))
def test_enc_equals_the_event_stores(tag: bytes, fields: list[bytes | str | int]) -> None:
    assert verifier.enc(tag, *fields) == canonical.enc(tag, *fields)


@given(i64, text, i64, text, i64, st.binary())
def test_event_bytes_equal_the_event_stores(
    position: int, stream_id: str, version: int, topic: str, recorded_at_ns: int, payload: bytes
) -> None:
    ours = verifier.event_bytes(position, stream_id, version, topic, recorded_at_ns, payload)
    fields = canonical.EventFields(position, stream_id, version, topic, recorded_at_ns, payload)
    assert ours == canonical.event_bytes(fields)
    assert ours == canonical.encode_event(
        position, stream_id, version, topic, recorded_at_ns, payload
    )
    assert verifier.leaf_hash(ours) == canonical.merkle_leaf_hash(ours)
    assert verifier.event_digest(ours) == canonical.sha256(ours)


@given(text, i64, i64, digest, digest)
def test_chain_hashes_equal_the_event_stores(
    stream_id: str, version: int, position: int, prev: bytes, event_digest: bytes
) -> None:
    assert verifier.stream_hash(stream_id, version, prev, event_digest) == canonical.stream_hash(
        stream_id, version, prev, event_digest
    )
    assert verifier.global_hash(position, prev, event_digest) == canonical.global_hash(
        position, prev, event_digest
    )


def test_genesis_and_tags_equal_the_event_stores() -> None:
    assert verifier.GENESIS == canonical.GENESIS
    assert (verifier.EVENT_TAG, verifier.STREAM_TAG, verifier.GLOBAL_TAG) == (
        canonical.EVENT_TAG,
        canonical.STREAM_TAG,
        canonical.GLOBAL_TAG,
    )


def test_booleans_have_no_encoding_in_either_copy() -> None:
    with pytest.raises(TypeError):
        verifier.enc(b"t", True)
    with pytest.raises(TypeError):
        canonical.enc(b"t", True)


def test_field_boundaries_are_part_of_the_encoding() -> None:
    assert verifier.enc(b"t", "ab", "c") != verifier.enc(b"t", "a", "bc")


def test_chain_hashes_refuse_links_that_are_not_32_bytes() -> None:
    with pytest.raises(verifier.ProofError):
        verifier.stream_hash("s", 1, bytes(31), bytes(32))
    with pytest.raises(verifier.ProofError):
        verifier.global_hash(1, bytes(32), bytes(33))
