"""Array parameters as PostgreSQL array literals, built by one ``str.join`` per column.

Batched writes send one array per column (``unnest``) and batched reads one array of keys
(``= ANY``). psycopg dumps a Python list element by element in Python, about 1 µs per
number; a literal costs about a tenth of that, which is a third of a projection's time on a
large batch. The literal goes out as one text parameter and the statement casts it
(``%s::numeric[]``), so PostgreSQL parses it with the element type's own input function:
the values it stores are the ones psycopg would have sent.

Elements are ints (``numeric``, ``bigint``, ``integer``), bools (``boolean``) or strs
(``text``), any of them ``None`` (SQL NULL). Text elements are always quoted, so a value
such as ``NULL``, ``{}`` or one with commas stays that string.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

_INTEGER_TYPES = frozenset({"numeric", "bigint", "integer", "smallint"})
_INT_OR_NONE = frozenset({int, type(None)})
_BOOL_OR_NONE = frozenset({bool, type(None)})
_BOOLS = {True: "t", False: "f", None: "NULL"}


def ints(values: Sequence[int | None]) -> str:
    """``{1,2,NULL}``. Only ints: anything else is refused, never sent as text."""
    if not set(map(type, values)) <= _INT_OR_NONE:
        bad = next(v for v in values if type(v) not in _INT_OR_NONE)
        raise TypeError(f"an integer array element must be an int or None, not {bad!r}")
    if None in values:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


def bools(values: Sequence[bool | None]) -> str:
    """``{t,f,NULL}``."""
    if not set(map(type, values)) <= _BOOL_OR_NONE:  # 1 and 0 would pass for True and False
        bad = next(v for v in values if type(v) not in _BOOL_OR_NONE)
        raise TypeError(f"a boolean array element must be a bool or None, not {bad!r}")
    return "{" + ",".join([_BOOLS[v] for v in values]) + "}"


def _quoted(value: str | None) -> str:
    if value is None:
        return "NULL"
    if type(value) is not str:
        raise TypeError(f"a text array element must be a str or None, not {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def texts(values: Sequence[str | None]) -> str:
    """``{"a","b \\"c\\"",NULL}``: every element quoted, backslash and quote escaped."""
    return "{" + ",".join(map(_quoted, values)) + "}"


def literal(values: Sequence[Any], sql_type: str) -> str:
    """``values`` as a literal of ``sql_type[]`` (``numeric``, ``bigint``, ``integer``,
    ``smallint``, ``boolean`` or ``text``)."""
    if sql_type in _INTEGER_TYPES:
        return ints(values)
    if sql_type == "boolean":
        return bools(values)
    if sql_type == "text":
        return texts(values)
    raise ValueError(f"no array literal for {sql_type}")


def casts(types: Sequence[str]) -> str:
    """The placeholders that take :func:`columns`' literals, each cast to its array type
    (``%s::numeric[], %s::text[]``): a statement and its parameters read one list of types."""
    return ", ".join(f"%s::{t}[]" for t in types)


def columns(rows: Iterable[Sequence[Any]], types: Sequence[str]) -> list[str]:
    """Rows to one literal per column, in ``types`` order (the ``unnest`` parameters)."""
    cols = list(zip(*rows, strict=True)) or [() for _ in types]
    if len(cols) != len(types):
        raise ValueError(f"rows of {len(cols)} columns for {len(types)} types")
    return [literal(col, t) for col, t in zip(cols, types, strict=True)]
