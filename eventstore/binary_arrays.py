"""Columns of a batch as PostgreSQL arrays in the binary wire format, built in one pass each.

Definition
    :func:`int8s`, :func:`texts`, :func:`byteas` and :func:`bools` turn one column of values
    into a :class:`BinaryArray`: the bytes PostgreSQL's ``array_recv`` reads, tagged with the
    array type's oid. Passed with a ``%b`` placeholder, psycopg sends them as they are, so a
    batch goes out as ``INSERT ... SELECT * FROM unnest(%b, %b, ...)``: an ordinary statement,
    which (unlike ``COPY``) can share a pipeline's round trip with the rest of a transaction.

Guarantees
    The values PostgreSQL stores are the ones the binary ``COPY`` stored: integers as
    big-endian 64-bit (a value outside the type's range raises ``struct.error``; nothing is
    sent), text as UTF-8, bytes as they are, ``None`` as SQL NULL. A column of any other type
    is refused with ``TypeError``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import chain, repeat

from psycopg import adapters
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Element and array type oids (pg_type), fixed since PostgreSQL 8.
_BOOL, _BYTEA, _INT8, _TEXT = 16, 17, 20, 25
_ARRAY_OF = {_BOOL: 1000, _BYTEA: 1001, _INT8: 1016, _TEXT: 1009}
_NULL = struct.pack(">i", -1)
_LENGTH = struct.Struct(">i").pack


class BinaryArray(bytes):
    """An array's binary wire form; ``oid`` is the array type's."""

    oid: int = 0


class _Int8Array(BinaryArray):
    oid = _ARRAY_OF[_INT8]


class _TextArray(BinaryArray):
    oid = _ARRAY_OF[_TEXT]


class _ByteaArray(BinaryArray):
    oid = _ARRAY_OF[_BYTEA]


class _BoolArray(BinaryArray):
    oid = _ARRAY_OF[_BOOL]


def _header(element_oid: int, n: int, has_null: bool) -> bytes:
    if n == 0:  # an empty array has no dimensions
        return struct.pack(">iii", 0, 0, element_oid)
    return struct.pack(">iiiii", 1, int(has_null), element_oid, n, 1)


def int8s(values: Sequence[int | None]) -> BinaryArray:
    if None not in values:
        if not all(type(v) is int for v in values):
            raise TypeError("an int8 array element must be an int or None")
        body = struct.pack(f">{'iq' * len(values)}", *chain.from_iterable(zip(repeat(8), values)))
        return _Int8Array(_header(_INT8, len(values), False) + body)
    parts = [_header(_INT8, len(values), True)]
    for v in values:
        if v is None:
            parts.append(_NULL)
        elif type(v) is int:
            parts.append(struct.pack(">iq", 8, v))
        else:
            raise TypeError(f"an int8 array element must be an int or None, not {v!r}")
    return _Int8Array(b"".join(parts))


def _varlena(element_oid: int, values: Sequence[bytes | None]) -> bytes:
    has_null = None in values
    parts = [_header(element_oid, len(values), has_null)]
    if has_null:
        for v in values:
            parts.extend((_NULL,) if v is None else (_LENGTH(len(v)), v))
    else:
        lengths = map(_LENGTH, map(len, values))  # type: ignore[arg-type]
        parts.extend(chain.from_iterable(zip(lengths, values, strict=True)))  # type: ignore[arg-type]
    return b"".join(parts)


def byteas(values: Sequence[bytes | None]) -> BinaryArray:
    if not all(type(v) is bytes or v is None for v in values):
        raise TypeError("a bytea array element must be bytes or None")
    return _ByteaArray(_varlena(_BYTEA, values))


def texts(values: Sequence[str | None]) -> BinaryArray:
    if not all(type(v) is str or v is None for v in values):
        raise TypeError("a text array element must be a str or None")
    encoded = [None if v is None else v.encode() for v in values]
    return _TextArray(_varlena(_TEXT, encoded))


def bools(values: Sequence[bool | None]) -> BinaryArray:
    parts = [_header(_BOOL, len(values), None in values)]
    for v in values:
        if v is None:
            parts.append(_NULL)
        elif type(v) is bool:
            parts.append(b"\x00\x00\x00\x01\x01" if v else b"\x00\x00\x00\x01\x00")
        else:
            raise TypeError(f"a bool array element must be a bool or None, not {v!r}")
    return _BoolArray(b"".join(parts))


_BUILDERS = {"int8": int8s, "text": texts, "bytea": byteas, "bool": bools}


def columns(rows: Sequence[Sequence[object]], types: Sequence[str]) -> list[BinaryArray]:
    """``rows`` as one array per column, in ``types`` order (``int8``, ``text``, ``bytea`` or
    ``bool``): the parameters of ``unnest(%b, ...)``."""
    cols: list[Sequence[object]] = list(zip(*rows, strict=True)) or [() for _ in types]
    if len(cols) != len(types):
        raise ValueError(f"rows of {len(cols)} columns for {len(types)} types")
    return [_BUILDERS[t](c) for c, t in zip(cols, types, strict=True)]  # type: ignore[operator]


def unnest(count: int) -> str:
    """``unnest(%b, %b, ...)`` with ``count`` binary placeholders."""
    return "unnest(" + ", ".join(["%b"] * count) + ")"


class _BinaryArrayDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: BinaryArray) -> Buffer:
        return obj


def _register() -> None:
    for cls in (_Int8Array, _TextArray, _ByteaArray, _BoolArray):
        dumper = type(f"{cls.__name__}Dumper", (_BinaryArrayDumper,), {"oid": cls.oid})
        adapters.register_dumper(cls, dumper)


_register()
