"""Array literals (``readmodels.arrays``) read back by PostgreSQL as the values they came from:
the same values psycopg's own list adaptation would have sent, whatever the text holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readmodels import arrays
from tests.conftest import admin_connection

# PostgreSQL text cannot hold NUL, and a lone surrogate is not UTF-8 (no str holding one can
# be sent at all); everything else, quotes, backslashes, braces, commas, spaces, "NULL" and
# non-ASCII included, must come back as it went.
_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXT = st.text(alphabet=_CHARS, max_size=20) | st.sampled_from(
    ["NULL", "null", "", " ", "{}", "{a,b}", '"', "\\", '\\"', "a,b", "  x  ", "é€😀"]
)
_U128 = st.integers(min_value=-(2**127), max_value=2**128 - 1)


@pytest.fixture(scope="module")
def conn(pg_admin_url: str) -> Iterator[psycopg.Connection[Any]]:
    with admin_connection(pg_admin_url) as c:
        c.autocommit = True
        yield c


def _back(conn: psycopg.Connection[Any], literal: str, sql_type: str) -> list[Any]:
    row = conn.execute(f"SELECT %s::{sql_type}[]", (literal,)).fetchone()
    assert row is not None
    return list(row[0])


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.none() | _TEXT, max_size=8))
def test_text_comes_back_as_it_went(conn: psycopg.Connection[Any], values: list[Any]) -> None:
    assert _back(conn, arrays.texts(values), "text") == values
    # the same as psycopg's own adaptation of the list
    row = conn.execute("SELECT %s::text[]", (values,)).fetchone()
    assert row is not None and list(row[0]) == values


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.none() | _U128, max_size=8))
def test_numbers_up_to_u128_and_nulls_come_back_as_they_went(
    conn: psycopg.Connection[Any], values: list[Any]
) -> None:
    back = _back(conn, arrays.ints(values), "numeric")
    assert [None if v is None else int(v) for v in back] == values


def test_each_sql_type_reads_its_literal(conn: psycopg.Connection[Any]) -> None:
    assert _back(conn, arrays.literal([1, None, -(2**63)], "bigint"), "bigint") == [
        1,
        None,
        -(2**63),
    ]
    assert _back(conn, arrays.literal([7, None], "integer"), "integer") == [7, None]
    assert _back(conn, arrays.literal([True, None, False], "boolean"), "boolean") == [
        True,
        None,
        False,
    ]
    assert _back(conn, arrays.literal([], "text"), "text") == []
    rows = [(1, "a", True), (2, None, None)]
    assert arrays.columns(rows, ("numeric", "text", "boolean")) == [
        "{1,2}",
        '{"a",NULL}',
        "{t,NULL}",
    ]
    assert arrays.columns([], ("numeric", "text")) == ["{}", "{}"]
    # the statement's placeholders read the same types as the literals
    assert (
        arrays.casts(("numeric", "text", "boolean")) == "%s::numeric[], %s::text[], %s::boolean[]"
    )
    back = conn.execute(
        f"SELECT * FROM unnest({arrays.casts(('numeric', 'text', 'boolean'))})",
        arrays.columns(rows, ("numeric", "text", "boolean")),
    ).fetchall()
    assert [tuple(r) for r in back] == rows


def test_a_value_of_the_wrong_kind_is_refused_before_anything_is_sent() -> None:
    # A str among numbers could otherwise add elements of its own to the literal.
    with pytest.raises(TypeError, match="int or None"):
        arrays.ints([1, "2},{3"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="int or None"):
        arrays.ints([True])
    with pytest.raises(TypeError, match="bool or None"):
        arrays.bools([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="str or None"):
        arrays.texts([b"x"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no array literal for jsonb"):
        arrays.literal([1], "jsonb")
    with pytest.raises(ValueError, match="2 columns for 3 types"):
        arrays.columns([(1, 2)], ("numeric", "numeric", "numeric"))
