"""The OpenAPI document in version 3.0.3, so that its schemas mean what the server does.

Definition
    FastAPI writes OpenAPI 3.1, whose schemas are JSON Schema 2020-12. There, ``2.0`` *is* an
    integer (numbers compare by value), so a schema saying ``integer`` would promise that
    ``{"id": 779004.0}`` is a well-formed id, while the server refuses it. OpenAPI 3.0's schema
    dialect (JSON Schema draft 4) says an integer is a number without a fraction or exponent,
    which is the server's rule. :func:`to_openapi_30` rewrites the 3.1 document into 3.0.3:

    * ``anyOf: [X, {"type": "null"}]`` and ``type: [X, "null"]`` become ``nullable: true``;
    * ``const`` becomes a one-value ``enum``; a schema's ``examples`` list becomes ``example``;
    * numeric ``exclusiveMinimum``/``exclusiveMaximum`` become their draft-4 boolean form;
    * an integer bound that a 64-bit float cannot spell exactly (``2^63 - 1``) is written as
      the exclusive bound one step beyond it (``2^63``, exact), so tools that read numbers as
      floats compare ids against the right limit.

Guarantees
    The rewrite changes no constraint: every request the 3.1 document allows, the 3.0.3 one
    allows, except fractional spellings of integers, which the server refuses anyway.
"""

from __future__ import annotations

from typing import Any

_SCHEMA_NESTS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONES = ("items", "not", "additionalProperties", "if", "then", "else", "schema")


def _float_exact(value: int) -> bool:
    try:
        return int(float(value)) == value
    except OverflowError:
        return False


def _schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = _nullable({key: _walk(key, value) for key, value in node.items()})
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for exclusive, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(exclusive)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[inclusive] = value
            out[exclusive] = True
    high = out.get("maximum")
    if (
        out.get("type") == "integer"
        and isinstance(high, int)
        and not out.get("exclusiveMaximum")
        and not _float_exact(high)
        and _float_exact(high + 1)
    ):
        out["maximum"], out["exclusiveMaximum"] = high + 1, True
    return out


def _nullable(out: dict[str, Any]) -> dict[str, Any]:
    """``type: [X, "null"]`` and ``anyOf: [X, {"type": "null"}]`` -> X with nullable."""
    nullable = False
    if isinstance(out.get("type"), list):
        kinds = [t for t in out["type"] if t != "null"]
        nullable = len(kinds) < len(out["type"])
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    for key in ("anyOf", "oneOf"):
        members = out.get(key)
        if isinstance(members, list) and {"type": "null"} in members:
            rest = [m for m in members if m != {"type": "null"}]
            nullable = True
            del out[key]
            if len(rest) == 1 and "$ref" in rest[0]:
                out["allOf"] = rest
            elif len(rest) == 1:
                out = {**rest[0], **out}
            else:
                out[key] = rest
    if nullable:
        out["nullable"] = True
        # OpenAPI 3.0.3: ``nullable`` does not widen an ``enum``; null must be one of its values.
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _walk(key: str, value: Any) -> Any:
    if key in _SCHEMA_NESTS and isinstance(value, dict):
        return {name: _schema(sub) for name, sub in value.items()}
    if key in _SCHEMA_LISTS and isinstance(value, list):
        return [_schema(sub) for sub in value]
    if key in _SCHEMA_ONES and isinstance(value, dict):
        return _schema(value)
    return _document(value)


def _document(node: Any) -> Any:
    """Walk the OpenAPI document, converting every schema object found in it."""
    if isinstance(node, list):
        return [_document(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "schema" and isinstance(value, dict):
            out[key] = _schema(value)
        elif key == "schemas" and isinstance(value, dict):
            out[key] = {name: _schema(sub) for name, sub in value.items()}
        else:
            out[key] = _document(value)
    return out


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = _document(document)
    converted["openapi"] = "3.0.3"
    return converted
