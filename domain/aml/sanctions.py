"""Sanctions lists as versioned data, and the name normalisation used to screen against them.

Definition
    A sanctions list (stream ``aml-sanctions:<list id>``) is loaded whole, from OFAC's SDN CSV
    shape or a simple JSON list, into entries ``{"uid", "name", "aliases", "kind",
    "programs", "country"}``. Each load that changes the entries records a new version with
    the SHA-256 of its canonical entries; loading the same content again records nothing.

Normalisation (:func:`normalise_name`), applied to list names and screened names alike
    Unicode NFKD with accents removed, case folded, every character that is not a letter or a
    digit made a space, honorifics and legal-form words dropped (``mr``, ``mrs``, ``dr``,
    ``llc``, ``ltd``, ``inc``, ``co``, ``corp``, ``sa``, ``gmbh``, ...), whitespace collapsed.
    Token order is kept; the matcher compares token sets, so ``"SMITH, John"`` and
    ``"John Smith"`` normalise to token sets that are equal.

Rejections (in precedence order, ``SANCTIONS_ORDER``)
    ``sanctions_list_empty``, ``invalid_sanctions_entry``, ``exists``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from domain.aggregate import Aggregate
from domain.aml import errors as e
from domain.aml.events import SanctionsListLoaded
from domain.invariant import invariant

SANCTIONS_ORDER: tuple[str, ...] = ("sanctions_list_empty", "invalid_sanctions_entry", "exists")
NOISE_WORDS = frozenset(
    [
        *(
            "mr mrs ms miss dr prof sir sheikh llc ltd limited inc incorporated co corp "
            "corporation company sa sas srl bv nv ag gmbh plc pjsc ojsc jsc oao ooo the"
        ).split(),
        # the Cyrillic legal forms OOO, OAO, ZAO, PAO and AO
        "\u043e\u043e\u043e",
        "\u043e\u0430\u043e",
        "\u0437\u0430\u043e",
        "\u043f\u0430\u043e",
        "\u0430\u043e",
    ]
)
_SDN_EMPTY = "-0-"


def stream_id(list_id: str) -> str:
    return f"aml-sanctions:{list_id}"


def normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    spaced = "".join(c if c.isalnum() else " " for c in plain)
    return " ".join(w for w in spaced.split() if w not in NOISE_WORDS)


def _clean(value: str) -> str:
    value = (value or "").strip()
    return "" if value == _SDN_EMPTY else value


def parse_sdn_csv(text: str) -> list[dict[str, Any]]:
    """OFAC's SDN.CSV: ``ent_num, SDN_Name, SDN_Type, Program, Title, Call_Sign, Vess_type,
    Tonnage, GRT, Vess_flag, Vess_owner, Remarks`` (no header, ``-0-`` for empty). An
    ``a.k.a. 'NAME'`` in the remarks becomes an alias. A header row, if present, is skipped."""
    entries: list[dict[str, Any]] = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0].strip() or row[0].strip().lower() in ("ent_num", "uid"):
            continue
        cells = [_clean(c) for c in row] + [""] * 12
        remarks = cells[11]
        aliases = [
            part.split("'")[1] for part in remarks.split("a.k.a. ")[1:] if part.count("'") >= 2
        ]
        entries.append(
            {
                "uid": cells[0],
                "name": cells[1],
                "kind": (cells[2] or "entity").lower(),
                "programs": [p for p in cells[3].replace(";", " ").split() if p],
                "aliases": aliases,
                "country": "",
            }
        )
    return entries


def parse_json_list(document: Any) -> list[dict[str, Any]]:
    """``{"entries": [{"uid", "name", "aliases"?, "kind"?, "programs"?, "country"?}]}``, or
    the bare list of entries."""
    raw = document.get("entries") if isinstance(document, Mapping) else document
    if not isinstance(raw, list):
        raise e.InvalidSanctionsEntry("a sanctions list is a list of entries")
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise e.InvalidSanctionsEntry("every sanctions entry is an object")
        out.append(
            {
                "uid": str(item.get("uid", item.get("id", ""))),
                "name": item.get("name", ""),
                "kind": str(item.get("kind", item.get("type", "entity"))).lower(),
                "programs": list(item.get("programs", [])),
                "aliases": list(item.get("aliases", [])),
                "country": str(item.get("country", "")),
            }
        )
    return out


def canonical_entries(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated entries, sorted by uid (the list's identity for the digest)."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        uid, name = entry.get("uid"), entry.get("name")
        if not isinstance(uid, str) or not uid or not isinstance(name, str) or not name.strip():
            raise e.InvalidSanctionsEntry(f"entry {uid!r} needs a uid and a name", uid=str(uid))
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise e.InvalidSanctionsEntry(f"entry {uid} has invalid aliases", uid=uid)
        out.append(
            {
                "uid": uid,
                "name": name.strip(),
                "aliases": sorted({a.strip() for a in aliases if a.strip()}),
                "kind": str(entry.get("kind", "entity")),
                "programs": sorted({str(p) for p in entry.get("programs", [])}),
                "country": str(entry.get("country", "")),
            }
        )
    return sorted(out, key=lambda x: x["uid"])


def digest_of(entries: list[dict[str, Any]]) -> str:
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class SanctionsList(Aggregate):
    __slots__ = ("digest", "entries", "list_id", "list_version")

    def __init__(self, list_id: str) -> None:
        super().__init__(stream_id(list_id))
        self.list_id = list_id
        self.list_version = 0
        self.digest = ""
        self.entries: tuple[dict[str, Any], ...] = ()

    @classmethod
    def load(
        cls,
        list_id: str,
        entries: Iterable[Mapping[str, Any]],
        source: str,
        existing: SanctionsList | None,
        now_ns: int,
    ) -> SanctionsList:
        clean = canonical_entries(entries)
        if not clean:
            raise e.SanctionsListEmpty("a sanctions list holds at least one entry", list_id=list_id)
        digest = digest_of(clean)
        agg = existing if existing is not None else cls(list_id)
        if agg.digest == digest:
            raise e.Exists(f"sanctions list {list_id} already has this content", list_id=list_id)
        agg._trigger(
            SanctionsListLoaded(list_id, agg.list_version + 1, source, clean, digest, now_ns)
        )
        return agg

    def apply(self, event: object) -> None:
        if isinstance(event, SanctionsListLoaded):
            self.list_version = event.version
            self.digest = event.digest
            self.entries = tuple(event.entries)
        else:  # pragma: no cover - a programming error
            invariant(False, f"SanctionsList cannot apply {type(event).__name__}")
