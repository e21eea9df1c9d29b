"""Input types of the HTTP API: exactly what the server accepts, and what the schema says.

Definition
    ``Id128``        a client-chosen unsigned 128-bit id: a JSON integer, or (because 128-bit
                     ids do not fit JavaScript numbers) a canonical decimal string: digits
                     only, no sign, no leading zeros, no spaces, no exponent. ``true`` and
                     ``779004.0`` are not ids. Any positive integer is well formed; the ledger
                     refuses 2^128-1 and above by name (``id_must_not_be_int_max``).
    ``Ledger``/``Code``  JSON integers only, in their ranges (no booleans, floats or strings).
    ``Position``     a log position in a query: canonical decimal digits, 0..2^63-1.
    ``Amount``       a decimal string in major units, greater than zero, at most 4 fraction
                     digits (the largest exponent of ISO 4217) and 39 significant digits;
                     the account's currency decides the rest (``amount_precision_exceeded``,
                     ``amount_too_large``), which the schema cannot know.

Guarantees
    Each type's JSON Schema is generated from the same rule the validator applies, so a
    request the schema allows is never refused for its shape, and the reverse.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema

POSITION_MAX = 2**63 - 1
U32_MAX = 2**32 - 1


# Canonical decimal digits, at most 39 (every unsigned 128-bit number); values from 2^128-1
# up are well formed and refused by the ledger by name (id_must_not_be_int_max).
ID_PATTERN = r"^[1-9][0-9]{0,38}$"
_ID_RE = re.compile(ID_PATTERN)
_UINT_RE = re.compile(r"^(?:0|[1-9][0-9]*)$")


def _id(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, str):
        if not _ID_RE.match(value):
            raise ValueError(
                "an id given as a string must be at most 39 canonical decimal digits "
                "(no sign, spaces, leading zeros or exponent), not 0"
            )
        return int(value)
    raise ValueError("an id is a JSON integer or a canonical decimal string")


def _strict_int(value: Any) -> Any:
    if type(value) is int:
        return value
    raise ValueError("must be a JSON integer")


def _query_uint(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, str) and _UINT_RE.match(value) and len(value) <= 19:
        return int(value)
    raise ValueError("must be canonical decimal digits (no sign, spaces or leading zeros)")


Id128 = Annotated[
    int,
    BeforeValidator(_id),
    Field(ge=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": ID_PATTERN},
            ],
            "description": "an unsigned 128-bit id: a JSON integer, or the same number as a "
            "canonical decimal string (JavaScript clients: send ids as strings and read them "
            "with a big-integer JSON parser); 2^128-1 is reserved (id_must_not_be_int_max)",
        }
    ),
]

Ledger = Annotated[
    int,
    BeforeValidator(_strict_int),
    Field(ge=1, le=U32_MAX),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": U32_MAX}),
]

Code = Annotated[
    int,
    BeforeValidator(_strict_int),
    Field(ge=1, le=65535),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535}),
]

TimeoutSeconds = Annotated[
    int,
    BeforeValidator(_strict_int),
    Field(ge=0, le=U32_MAX),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": U32_MAX}),
]

StrictFlag = Annotated[bool, Strict()]


def _position_range(value: int) -> int:
    if not 0 <= value <= POSITION_MAX:
        raise ValueError(f"must be between 0 and {POSITION_MAX}")
    return value


def _id_range(value: int) -> int:
    if value < 1:
        raise ValueError("must be at least 1")
    return value


# For query and path parameters (FastAPI takes their constraints from these, not a Field).
Position = Annotated[
    int,
    BeforeValidator(_query_uint),
    AfterValidator(_position_range),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": POSITION_MAX}),
]

IdParam = Annotated[
    int,
    BeforeValidator(_id),
    AfterValidator(_id_range),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": ID_PATTERN},
            ]
        }
    ),
]

# Greater than zero, at most 39 significant digits and 4 fraction digits, no sign or exponent.
AMOUNT_PATTERN = (
    r"^(?:[1-9][0-9]{0,38}(?:\.[0-9]{1,4})?"
    r"|0\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$"
)

Amount = Annotated[
    str,
    Field(
        pattern=AMOUNT_PATTERN,
        description='major units as a decimal string, e.g. "12.34"; at most as many '
        "fraction digits as the currency has (amount_precision_exceeded) and at most "
        "2^128-1 minor units (amount_too_large)",
        examples=["12.34"],
    ),
]


def bounded_param(low: int, high: int) -> Any:
    """A query or path integer in ``low..high``, given as canonical decimal digits."""

    def _range(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return Annotated[
        int,
        BeforeValidator(_query_uint),
        AfterValidator(_range),
        WithJsonSchema({"type": "integer", "minimum": low, "maximum": high}),
    ]


LedgerParam = bounded_param(1, U32_MAX)
CodeParam = bounded_param(1, 65535)
PageLimit = bounded_param(1, 1000)
PositiveParam = bounded_param(1, POSITION_MAX)
