"""Canonical JSON is byte-for-byte the standard library's sorted, compact, UTF-8 encoding.

Command payloads are stored with a digest that every retry is compared against, so the
encoding may never change: the fast encoder must agree with the original one exactly.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.processor import canonical_json

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**130), max_value=2**130),
    st.text(),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=20,
)


def reference(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=2000)
@given(documents)
def test_the_fast_canonical_encoding_is_the_reference_encoding_byte_for_byte(doc: Any) -> None:
    try:
        expected = reference(doc)
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form either way
        return
    assert canonical_json(doc) == expected
