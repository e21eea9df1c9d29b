"""Given the ledger's postings, when a statement is matched, then each entry's status and rule.

Dates: 2026-03-02 is a Monday. Postings are ``(transfer id, signed amount, date, user_data)``
(money in positive); entries ``(signed amount, booking date, value date, reference)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.reconciliation.matching import Item, Posting, business_days, ledger_references, match
from domain.reconciliation.statement import Entry, make_references, normalise_reference

MON, TUE, WED, THU, FRI, SAT, NEXT_MON = (
    "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07",
    "2026-03-09",
)  # fmt: skip
PERIOD = (MON, FRI)


def p(tid: int, amount: int, date: str, ud: int = 0) -> Posting:
    return Posting(tid, amount, date, ledger_references(tid, ud))


def x(amount: int, booked: str, value: str | None = None, ref: str = "") -> Entry:
    direction = "credit" if amount > 0 else "debit"
    refs = make_references(ref) if ref else ()
    return Entry(abs(amount), direction, "EUR", booked, value or booked, refs)


@dataclass(frozen=True)
class Case:
    rule: str
    postings: tuple[Posting, ...]
    entries: tuple[Entry, ...]
    # per entry in the given order: (status, rule, transfer id or None)
    then: tuple[tuple[str, str, int | None], ...]
    unmatched_ledger: tuple[int, ...] = ()
    tolerance: int = 2


CASES = [
    Case(
        "a shared reference, the same amount and date match exactly",
        (p(1, 500, MON),),
        (x(500, MON, ref="1"),),
        (("matched", "exact", 1),),
    ),
    Case(
        "the reference may be the transfer's user_data_128, with leading zeros",
        (p(1, -500, MON, ud=77),),
        (x(-500, MON, ref="0077"),),
        (("matched", "exact", 1),),
    ),
    Case(
        "a UUID reference meets the user_data_128 holding the same 128 bits",
        (p(1, 500, MON, ud=0x3FA85F6457174562B3FC2C963F66AFA6),),
        (x(500, MON, ref="3fa85f64-5717-4562-b3fc-2c963f66afa6"),),
        (("matched", "exact", 1),),
    ),
    Case(
        "the booking date matches exactly even when the value date differs",
        (p(1, 500, TUE),),
        (x(500, TUE, WED, ref="1"),),
        (("matched", "exact", 1),),
    ),
    Case(
        "a value date within the tolerance in business days matches by reference",
        (p(1, 500, FRI),),
        (x(500, NEXT_MON, ref="1"),),
        (("matched", "reference_amount_near_date", 1),),
        tolerance=1,
    ),
    Case(
        "beyond the tolerance, the same reference and amount is a date break",
        (p(1, 500, MON),),
        (x(500, THU, ref="1"),),
        (("date_break", "reference_amount", 1),),
        tolerance=2,
    ),
    Case(
        "the same reference with another amount is an amount break",
        (p(1, 500, MON),),
        (x(450, MON, ref="1"),),
        (("amount_break", "reference", 1),),
    ),
    Case(
        "money out on the statement never matches money in on the ledger exactly",
        (p(1, 500, MON),),
        (x(-500, MON, ref="1"),),
        (("amount_break", "reference", 1),),
    ),
    Case(
        "without references, a unique amount on the same date matches",
        (p(1, 500, MON), p(2, 700, MON)),
        (x(500, MON),),
        (("matched", "amount_date_unique", 1),),
        unmatched_ledger=(2,),
    ),
    Case(
        "without references, a unique amount within the tolerance matches",
        (p(1, 500, MON),),
        (x(500, TUE),),
        (("matched", "amount_near_date_unique", 1),),
    ),
    Case(
        "two ledger candidates without references are ambiguous: neither is taken",
        (p(1, 500, MON), p(2, 500, MON)),
        (x(500, MON),),
        (("unmatched_statement", "ambiguous", None),),
        unmatched_ledger=(1, 2),
    ),
    Case(
        "two statement candidates for one transfer are ambiguous too",
        (p(1, 500, MON),),
        (x(500, MON), x(500, MON)),
        (("unmatched_statement", "no_counterpart", None),) * 2,
        unmatched_ledger=(1,),
    ),
    Case(
        "a transfer sharing a reference with some entry is not matched by amount alone",
        (p(1, 500, MON),),
        (x(500, MON), x(900, MON, ref="1")),
        (("unmatched_statement", "no_counterpart", None), ("amount_break", "reference", 1)),
    ),
    Case(
        "one transfer is never matched twice: the second entry stays unmatched",
        (p(1, 500, MON),),
        (x(500, MON, ref="1"), x(500, MON, ref="1")),
        (("matched", "exact", 1), ("unmatched_statement", "no_counterpart", None)),
    ),
    Case(
        "exact beats tolerant: the entry takes the same-day transfer, the other is a date break",
        (p(1, 500, MON, ud=9), p(2, 500, TUE, ud=9)),
        (x(500, TUE, ref="9"), x(500, FRI, ref="9")),
        (("matched", "exact", 2), ("matched", "reference_amount_near_date", 1)),
        tolerance=4,
    ),
    Case(
        "the closest date wins among tolerant candidates",
        (p(1, 500, MON, ud=9), p(2, 500, WED, ud=9)),
        (x(500, THU, ref="9"),),
        (("matched", "reference_amount_near_date", 2),),
        unmatched_ledger=(1,),
        tolerance=3,
    ),
    Case(
        "the closest amount wins among amount-break candidates",
        (p(1, 100, MON, ud=9), p(2, 480, MON, ud=9)),
        (x(500, MON, ref="9"),),
        (("amount_break", "reference", 2),),
        unmatched_ledger=(1,),
    ),
    Case(
        "an entry with no counterpart is unmatched",
        (),
        (x(500, MON, ref="nope"),),
        (("unmatched_statement", "no_counterpart", None),),
    ),
    Case(
        "a posting outside the period may match but is never reported unmatched",
        (p(1, 500, "2026-02-27"), p(2, 300, "2026-02-27")),
        (x(500, MON, ref="1"),),
        (("matched", "reference_amount_near_date", 1),),
    ),
    Case(
        "zero tolerance: the next business day is a date break",
        (p(1, 500, FRI),),
        (x(500, NEXT_MON, ref="1"),),
        (("date_break", "reference_amount", 1),),
        tolerance=0,
    ),
    Case(
        "zero tolerance: a Saturday booking is the Friday's business day",
        (p(1, 500, FRI),),
        (x(500, SAT, NEXT_MON, ref="1"),),
        (("matched", "reference_amount_near_date", 1),),
        tolerance=0,
    ),
]


def _by_entry(items: list[Item], entries: tuple[Entry, ...]) -> list[tuple[str, str, int | None]]:
    """The items of the entries in the order the case gave them (equal entries in turn)."""
    pool = [i for i in items if i.entry is not None]
    out = []
    for entry in entries:
        item = next(i for i in pool if i.entry == entry)
        pool.remove(item)
        out.append((item.status, item.rule, item.posting.transfer_id if item.posting else None))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_matching_rule(case: Case) -> None:
    items = match(case.entries, case.postings, *PERIOD, case.tolerance)
    assert _by_entry(items, case.entries) == list(case.then)
    unmatched = [
        i.posting.transfer_id for i in items if i.status == "unmatched_ledger" and i.posting
    ]
    assert unmatched == list(case.unmatched_ledger)
    taken = [i.posting.transfer_id for i in items if i.posting is not None]
    assert len(taken) == len(set(taken))  # no transfer twice


def test_ambiguous_entries_name_their_candidates() -> None:
    items = match((x(500, MON),), (p(2, 500, MON), p(1, 500, MON)), *PERIOD, 2)
    assert items[0].candidates == (1, 2)


@pytest.mark.parametrize(
    ("a", "b", "days"),
    [(MON, MON, 0), (MON, TUE, 1), (FRI, SAT, 0), (FRI, NEXT_MON, 1), (MON, NEXT_MON, 5),
     (NEXT_MON, MON, 5), (SAT, "2026-03-08", 0)],
)  # fmt: skip
def test_business_days_count_weekdays_after_the_earlier_date(a: str, b: str, days: int) -> None:
    assert business_days(a, b) == days


@pytest.mark.parametrize(
    ("text", "normal"),
    [(" 0042 ", "42"), ("NOTPROVIDED", ""), ("INV-7", "INV-7"), ("0", "0"),
     ("00000000-0000-0000-0000-000000000010", "16")],
)  # fmt: skip
def test_references_are_normalised_before_they_are_compared(text: str, normal: str) -> None:
    assert normalise_reference(text) == normal
