"""Matching a statement's entries to the ledger's postings on the nostro account.

Definition
    A :class:`Posting` is one ledger transfer that moved money on the nostro account (a
    single-phase transfer, or a pending one when it was posted), in the statement's view:
    ``signed_minor`` is positive for money in (the bank credited us). Its references are its
    id and, when non-zero, its ``user_data_128``, both as decimal text. An entry and a
    posting *share a reference* when one of the entry's (normalised) references equals one of
    the posting's. Dates are UTC calendar days; business days are Monday to Friday (no
    holiday calendar); the distance between two dates is the number of business days after
    the earlier one up to and including the later one (Friday to Monday is 1).

    :func:`match` applies the rules below in this order, each to what the earlier ones left:

    1. ``exact``: a shared reference, the same signed amount, and the posting's date is the
       entry's booking or value date.
    2. ``reference_amount_near_date``: a shared reference, the same amount, dates at most
       ``tolerance_days`` business days apart (closest first).
    3. ``amount_date_unique``: neither side shares a reference with anything on the other
       side; the same amount and the posting's date is the entry's booking or value date;
       and the pair is the only candidate of each of its two members.
    4. ``amount_near_date_unique``: as 3, with dates at most ``tolerance_days`` apart.
    5. ``date_break`` (rule ``reference_amount``): a shared reference and the same amount,
       dates further apart than the tolerance.
    6. ``amount_break`` (rule ``reference``): a shared reference, different amounts
       (closest amount first).

    What is left is ``unmatched_statement`` (rule ``ambiguous`` with the candidate transfer
    ids when rules 3-4 found several, else ``no_counterpart``) and, for postings dated inside
    the statement's period, ``unmatched_ledger``. Postings outside the period may be matched
    (a value date across the period's edge) but are never reported unmatched.

Guarantees
    * A posting is paired with at most one entry and an entry with at most one posting.
    * The result depends on the entries and postings as sets: entries are taken in a
      canonical order of their content, postings by (date, transfer id), ties between
      candidates broken by that order. Shuffling the statement changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.invariant import invariant
from domain.reconciliation.statement import Entry

MAX_TOLERANCE_DAYS = 10
STATUSES = ("matched", "amount_break", "date_break", "unmatched_statement", "unmatched_ledger")


@dataclass(frozen=True, slots=True)
class Posting:
    transfer_id: int
    signed_minor: int
    date: str  # YYYY-MM-DD, UTC
    references: tuple[str, ...]

    def to_payload(self) -> dict[str, Any]:
        return {
            "transfer_id": self.transfer_id,
            "signed_minor": self.signed_minor,
            "date": self.date,
            "references": list(self.references),
        }

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Posting:
        return cls(
            int(p["transfer_id"]), int(p["signed_minor"]), str(p["date"]), tuple(p["references"])
        )


def ledger_references(transfer_id: int, user_data_128: int) -> tuple[str, ...]:
    """A transfer's references: its id and its non-zero user_data_128, as decimal text."""
    refs = {str(transfer_id)} | ({str(user_data_128)} if user_data_128 else set())
    return tuple(sorted(refs))


def business_days(a: str, b: str) -> int:
    """Business days (Mon-Fri) after the earlier of ``a`` and ``b`` up to the later one."""
    lo, hi = sorted((dt.date.fromisoformat(a), dt.date.fromisoformat(b)))
    span = (hi - lo).days
    weeks, rest = divmod(span, 7)
    count = weeks * 5
    start = lo.weekday()
    for k in range(1, rest + 1):
        if (start + k) % 7 < 5:
            count += 1
    return count


@dataclass(frozen=True, slots=True)
class Item:
    """One line of the result: an entry with its posting, or either alone."""

    status: str
    rule: str
    entry: Entry | None
    posting: Posting | None
    candidates: tuple[int, ...] = ()

    @property
    def business_days(self) -> int | None:
        if self.entry is None or self.posting is None:
            return None
        return min(business_days(d, self.posting.date) for d in self.entry.dates)

    @property
    def difference_minor(self) -> int | None:
        """Statement minus ledger, signed (money in positive)."""
        if self.entry is None or self.posting is None:
            return None
        return self.entry.signed_minor - self.posting.signed_minor


def counts_of(items: Iterable[Item]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for item in items:
        counts[item.status] += 1
    return counts


def match(  # noqa: PLR0912, PLR0915 - the rules in order, one block each, as documented
    entries: Sequence[Entry],
    postings: Sequence[Posting],
    period_from: str,
    period_to: str,
    tolerance_days: int,
) -> list[Item]:
    """The items of a reconciliation: entries in canonical order (each with its posting, if
    any), then the unmatched postings of the period in (date, id) order."""
    es = sorted(entries, key=Entry.sort_key)
    ps = sorted(postings, key=lambda p: (p.date, p.transfer_id))
    invariant(len({p.transfer_id for p in ps}) == len(ps), "a transfer is one posting")
    by_ref: dict[str, list[int]] = {}
    for j, p in enumerate(ps):
        for r in p.references:
            by_ref.setdefault(r, []).append(j)
    related_e = [sorted({j for r in x.references for j in by_ref.get(r, ())}) for x in es]
    related_p: list[set[int]] = [set() for _ in ps]
    for i, js in enumerate(related_e):
        for j in js:
            related_p[j].add(i)
    free_e, free_p = set(range(len(es))), set(range(len(ps)))
    paired: dict[int, tuple[int, str, str]] = {}
    candidates: dict[int, tuple[int, ...]] = {}

    def dist(i: int, j: int) -> int:
        return min(business_days(d, ps[j].date) for d in es[i].dates)

    def same_amount(i: int, j: int) -> bool:
        return es[i].signed_minor == ps[j].signed_minor

    def same_date(i: int, j: int) -> bool:
        return ps[j].date in es[i].dates

    def pair(i: int, j: int, status: str, rule: str) -> None:
        invariant(i in free_e and j in free_p, "an entry or posting is paired once")
        free_e.discard(i)
        free_p.discard(j)
        paired[i] = (j, status, rule)

    def greedy(ranked: list[tuple[Any, ...]], status: str, rule: str) -> None:
        for *_, i, j in sorted(ranked):
            if i in free_e and j in free_p:
                pair(i, j, status, rule)

    # 1. exact
    for i in range(len(es)):
        for j in related_e[i]:
            if j in free_p and same_amount(i, j) and same_date(i, j):
                pair(i, j, "matched", "exact")
                break
    # 2. reference, amount, near date
    near = [
        (dist(i, j), i, j)
        for i in sorted(free_e)
        for j in related_e[i]
        if j in free_p and same_amount(i, j)
    ]
    greedy([c for c in near if c[0] <= tolerance_days], "matched", "reference_amount_near_date")
    # 3-4. no reference on either side: amount and date, unique both ways
    lone_e = [i for i in sorted(free_e) if not related_e[i]]
    lone_by_amount: dict[int, list[int]] = {}
    for j in sorted(free_p):
        if not related_p[j]:
            lone_by_amount.setdefault(ps[j].signed_minor, []).append(j)
    for rule, close in (
        ("amount_date_unique", same_date),
        ("amount_near_date_unique", lambda i, j: dist(i, j) <= tolerance_days),
    ):
        ce = {
            i: [
                j for j in lone_by_amount.get(es[i].signed_minor, ()) if j in free_p and close(i, j)
            ]
            for i in lone_e
            if i in free_e
        }
        cp: dict[int, list[int]] = {}
        for i, js in ce.items():
            for j in js:
                cp.setdefault(j, []).append(i)
        for i, js in ce.items():
            if len(js) == 1 and len(cp[js[0]]) == 1:
                pair(i, js[0], "matched", rule)
            elif len(js) > 1:
                candidates[i] = tuple(ps[j].transfer_id for j in js)
    # 5. date breaks, 6. amount breaks
    left = [(i, j) for i in sorted(free_e) for j in related_e[i] if j in free_p]
    greedy(
        [(dist(i, j), i, j) for i, j in left if same_amount(i, j)], "date_break", "reference_amount"
    )
    left = [(i, j) for i, j in left if i in free_e and j in free_p]
    greedy(
        [(abs(es[i].signed_minor - ps[j].signed_minor), dist(i, j), i, j) for i, j in left],
        "amount_break",
        "reference",
    )
    items: list[Item] = []
    for i, x in enumerate(es):
        if i in paired:
            j, status, rule = paired[i]
            items.append(Item(status, rule, x, ps[j]))
        elif i in candidates:
            items.append(Item("unmatched_statement", "ambiguous", x, None, candidates[i]))
        else:
            items.append(Item("unmatched_statement", "no_counterpart", x, None))
    for j in sorted(free_p):
        if period_from <= ps[j].date <= period_to:
            items.append(Item("unmatched_ledger", "no_counterpart", None, ps[j]))
    return items
