"""Properties of statement matching: deterministic, blind to entry order, exact on perfect
statements, and it finds every planted break and invents none."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.reconciliation.matching import Posting, ledger_references, match
from domain.reconciliation.statement import Entry

START = dt.date(2026, 3, 2)  # a Monday
PERIOD = ("2026-03-02", "2026-03-15")
TOLERANCE = 2


def _day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


def _shift_business_days(date: str, days: int) -> str:
    d = dt.date.fromisoformat(date)
    while days:
        d += dt.timedelta(days=1)
        if d.weekday() < 5:
            days -= 1
    return d.isoformat()


@st.composite
def ledgers(draw: st.DrawFn) -> list[Posting]:
    """Postings with distinct ids below 10^6; user data, when set, distinct and above it."""
    n = draw(st.integers(0, 25))
    ids = draw(st.lists(st.integers(1, 999_999), min_size=n, max_size=n, unique=True))
    uds = draw(st.lists(st.integers(10**6, 10**12), min_size=n, max_size=n, unique=True))
    out = []
    for tid, ud in zip(ids, uds, strict=True):
        amount = draw(st.integers(1, 5_000)) * draw(st.sampled_from((1, -1)))
        day = _day(draw(st.integers(0, 13)))
        out.append(
            Posting(tid, amount, day, ledger_references(tid, ud if draw(st.booleans()) else 0))
        )
    return out


def perfect_entry(p: Posting, value_shift: int) -> Entry:
    """The bank's entry of a posting: its reference, amount, booked the same day, value date
    up to the tolerance later."""
    ref = max(p.references, key=int)  # the user data when set, else the id
    direction = "credit" if p.signed_minor > 0 else "debit"
    value = _shift_business_days(p.date, value_shift)
    return Entry(abs(p.signed_minor), direction, "EUR", p.date, value, (ref,))


@given(ledgers(), st.data())
@settings(max_examples=40, deadline=None)
def test_a_perfect_statement_generated_from_the_ledger_reconciles_with_zero_breaks(
    postings: list[Posting], data: st.DataObject
) -> None:
    entries = [perfect_entry(p, data.draw(st.integers(0, TOLERANCE))) for p in postings]
    items = match(entries, postings, *PERIOD, TOLERANCE)
    assert [i.status for i in items] == ["matched"] * len(postings)
    assert sorted(i.posting.transfer_id for i in items if i.posting) == sorted(
        p.transfer_id for p in postings
    )


@given(ledgers(), st.data())
@settings(max_examples=40, deadline=None)
def test_matching_is_deterministic_and_blind_to_the_order_of_entries(
    postings: list[Posting], data: st.DataObject
) -> None:
    entries = [perfect_entry(p, data.draw(st.integers(0, 4))) for p in postings]
    # noise: unreferenced copies and strangers, so ambiguity and breaks take part too
    entries += data.draw(
        st.lists(
            st.builds(
                lambda a, d, ref: Entry(a, "credit", "EUR", _day(d), _day(d), ref),
                st.integers(1, 5_000),
                st.integers(0, 13),
                st.sampled_from(((), ("1",), ("nope",))),
            ),
            max_size=8,
        )
    )
    shuffled = data.draw(st.permutations(entries))
    ledger_shuffled = data.draw(st.permutations(postings))
    first = match(entries, postings, *PERIOD, TOLERANCE)
    assert match(shuffled, ledger_shuffled, *PERIOD, TOLERANCE) == first
    assert match(entries, postings, *PERIOD, TOLERANCE) == first
    taken = [i.posting.transfer_id for i in first if i.posting and i.entry]
    assert len(taken) == len(set(taken))


@given(ledgers(), st.data())
@settings(max_examples=50, deadline=None)
def test_planted_breaks_are_all_found_and_none_invented(
    postings: list[Posting], data: st.DataObject
) -> None:
    entries: list[Entry] = []
    planted: Counter[tuple[str, int | None]] = Counter()
    for p in postings:
        entry = perfect_entry(p, data.draw(st.integers(0, TOLERANCE)))
        plant = data.draw(st.sampled_from(("none", "none", "amount", "date", "drop")))
        if plant == "amount":
            delta = data.draw(st.integers(1, 100))
            amount = entry.amount_minor + delta
            entry = Entry(amount, entry.direction, "EUR", entry.booking_date, entry.value_date,
                          entry.references)  # fmt: skip
            planted["amount_break", p.transfer_id] += 1
        elif plant == "date":
            later = _shift_business_days(p.date, TOLERANCE + data.draw(st.integers(1, 6)))
            entry = Entry(entry.amount_minor, entry.direction, "EUR", later, later,
                          entry.references)  # fmt: skip
            planted["date_break", p.transfer_id] += 1
        elif plant == "drop":
            planted["unmatched_ledger", p.transfer_id] += 1
            continue
        entries.append(entry)
    for k in range(data.draw(st.integers(0, 4))):  # entries the ledger never saw
        amount = 10**9 + data.draw(st.integers(0, 10**6))  # no posting is this large
        day = _day(data.draw(st.integers(0, 13)))
        ref = (f"STRANGER-{k}",) if data.draw(st.booleans()) else ()
        entries.append(Entry(amount, "credit", "EUR", day, day, ref))
        planted["unmatched_statement", None] += 1
    items = match(entries, postings, *PERIOD, TOLERANCE)
    found = Counter(
        (i.status, i.posting.transfer_id if i.posting else None)
        for i in items
        if i.status != "matched"
    )
    assert found == planted
    assert sum(i.status == "matched" for i in items) == len(postings) - sum(
        n for (s, _), n in planted.items() if s != "unmatched_statement"
    )
