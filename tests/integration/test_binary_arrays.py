"""Binary arrays (``eventstore.binary_arrays``) read back by PostgreSQL as the values they came
from: the store's batched INSERTs store what the binary COPY before them stored."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import binary_arrays
from tests.conftest import admin_connection

_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_INT8 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.fixture(scope="module")
def conn(pg_admin_url: str) -> Iterator[psycopg.Connection[Any]]:
    with admin_connection(pg_admin_url) as c:
        c.autocommit = True
        yield c


def _back(conn: psycopg.Connection[Any], array: binary_arrays.BinaryArray) -> list[Any]:
    row = conn.execute("SELECT %b", (array,)).fetchone()
    assert row is not None
    return list(row[0])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_INT8 | st.none(), max_size=30))
def test_int8_columns_come_back_as_sent(conn: psycopg.Connection[Any], values: list[Any]) -> None:
    assert _back(conn, binary_arrays.int8s(values)) == values


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.text(alphabet=_CHARS, max_size=20) | st.none(), max_size=30))
def test_text_columns_come_back_as_sent(conn: psycopg.Connection[Any], values: list[Any]) -> None:
    assert _back(conn, binary_arrays.texts(values)) == values


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.binary(max_size=40) | st.none(), max_size=30))
def test_bytea_columns_come_back_as_sent(conn: psycopg.Connection[Any], values: list[Any]) -> None:
    assert _back(conn, binary_arrays.byteas(values)) == values


@pytest.mark.parametrize("values", [[], [True], [False, None, True]])
def test_bool_columns_come_back_as_sent(conn: psycopg.Connection[Any], values: list[Any]) -> None:
    assert _back(conn, binary_arrays.bools(values)) == values


def test_rows_go_in_as_columns_through_unnest(conn: psycopg.Connection[Any]) -> None:
    rows = [(1, "a", b"\x00\xff", True), (2, "é", b"", None), (3, None, None, False)]
    types = ["int8", "text", "bytea", "bool"]
    cols = binary_arrays.columns(rows, types)
    got = conn.execute(f"SELECT * FROM {binary_arrays.unnest(len(types))}", cols).fetchall()
    assert got == rows


def test_an_empty_batch_inserts_nothing(conn: psycopg.Connection[Any]) -> None:
    cols = binary_arrays.columns([], ["int8", "text"])
    assert conn.execute(f"SELECT * FROM {binary_arrays.unnest(2)}", cols).fetchall() == []


def test_values_of_the_wrong_type_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(TypeError):
        binary_arrays.int8s([1, "2"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        binary_arrays.int8s([True])  # a bool is not an int8
    with pytest.raises(TypeError):
        binary_arrays.texts([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        binary_arrays.byteas(["text"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        binary_arrays.bools([1])  # type: ignore[list-item]
    with pytest.raises(struct.error):
        binary_arrays.int8s([2**63])
    with pytest.raises(ValueError, match="columns"):
        binary_arrays.columns([(1, 2)], ["int8"])
