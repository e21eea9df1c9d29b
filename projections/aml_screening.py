"""Sanctions screening: names against the loaded lists, by fuzzy matching with ``rapidfuzz``.

Definition
    Every list entry's name and aliases are normalised (:func:`domain.aml.sanctions.
    normalise_name`) and indexed by their tokens. A screened name (an account holder's KYC
    name, or a counterparty name carried by a transaction as ``from_name``/``to_name``) is
    normalised the same way; the entries sharing at least one token with it are compared with
    ``rapidfuzz``: the similarity is ``fuzz.token_sort_ratio`` (order-insensitive, whole-name,
    0..100), or ``fuzz.token_set_ratio`` when the two names share at least two tokens (so
    "Ivan Petrov" matches "PETROV, Ivan Sergeyevich", while one shared surname alone never
    does). The best entry at or above the ``sanctions`` rule's ``min_similarity`` (default 90)
    is a hit. Names shorter than ``min_name_length`` (default 4 characters, normalised) never
    match.

Guarantees
    The same names and lists give the same hits (the similarity is floored to an integer);
    nothing here depends on order of loading within a list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from domain.aml.sanctions import normalise_name


@dataclass(frozen=True, slots=True)
class Hit:
    list_id: str
    uid: str
    version: int
    listed_name: str  # the entry's name (or alias) that matched
    similarity: int


class Screener:
    def __init__(self) -> None:
        self._lists: dict[str, list[dict[str, Any]]] = {}
        self._rebuild()

    def load(self, list_id: str, version: int, entries: Iterable[Mapping[str, Any]]) -> None:
        """Replace list ``list_id`` by this version's entries."""
        self._lists[list_id] = [dict(x, version=version) for x in entries]
        self._rebuild()

    def load_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Entries as stored in ``aml_sanctions`` (each with its ``list_id`` and ``version``)."""
        lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            lists[str(r["list_id"])].append(dict(r))
        self._lists = dict(lists)
        self._rebuild()

    def _rebuild(self) -> None:
        self._names: list[tuple[str, str, int, str, str]] = []  # list, uid, version, raw, norm
        self._index: dict[str, list[int]] = defaultdict(list)
        for list_id in sorted(self._lists):
            for entry in sorted(self._lists[list_id], key=lambda x: str(x["uid"])):
                for raw in (entry["name"], *entry.get("aliases", ())):
                    norm = normalise_name(str(raw))
                    if not norm:
                        continue
                    i = len(self._names)
                    self._names.append(
                        (list_id, str(entry["uid"]), int(entry.get("version", 0)), str(raw), norm)
                    )
                    for token in set(norm.split()):
                        self._index[token].append(i)

    @property
    def empty(self) -> bool:
        return not self._names

    def screen(self, name: str, min_similarity: int, min_length: int) -> Hit | None:
        norm = normalise_name(name)
        if len(norm) < min_length or not self._names:
            return None
        tokens = set(norm.split())
        candidates = sorted({i for t in tokens for i in self._index.get(t, ())})
        best: Hit | None = None
        for i in candidates:
            list_id, uid, version, raw, listed = self._names[i]
            if len(listed) < min_length:
                continue
            score = int(fuzz.token_sort_ratio(norm, listed))
            if len(tokens & set(listed.split())) >= 2:
                score = max(score, int(fuzz.token_set_ratio(norm, listed)))
            if score >= min_similarity and (
                best is None or (score, best.list_id, best.uid) > (best.similarity, list_id, uid)
            ):
                best = Hit(list_id, uid, version, raw, score)
        return best
