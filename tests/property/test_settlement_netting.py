"""Netting properties: the identities at every step, order independence, additivity,
bilateral-vs-multilateral consistency, instructions that settle everything, unwind = re-net."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from domain.settlement.netting import (
    NettingBook,
    net_from_scratch,
    plain_netting,
    plan_unwind,
    unwind_stress,
)

PARTICIPANTS = st.integers(1, 7)
AMOUNTS = st.integers(1, 10**6)


@st.composite
def obligation(draw: st.DrawFn) -> tuple[int, int, int]:
    payer = draw(PARTICIPANTS)
    payee = draw(PARTICIPANTS.filter(lambda p: p != payer))
    return payer, payee, draw(AMOUNTS)


OBLIGATIONS = st.lists(obligation(), max_size=40)


def nonzero(positions: dict[int, int]) -> dict[int, int]:
    return {p: n for p, n in positions.items() if n}


def summary(book: NettingBook) -> tuple[int, int, int, dict[int, int]]:
    t = book.totals()
    return t.gross, t.bilateral, t.multilateral, nonzero(book.positions())


@given(OBLIGATIONS)
def test_the_identities_hold_after_every_obligation(
    obligations: list[tuple[int, int, int]],
) -> None:
    book = NettingBook()
    for k, (payer, payee, amount) in enumerate(obligations, start=1):
        book.add(payer, payee, amount)
        book.verify()  # sum n = 0, 0 <= M <= B <= G, n_i = sum_j b(j,i), recomputed
        gross, bilateral, multilateral, positions = plain_netting(obligations[:k])
        assert summary(book) == (gross, bilateral, multilateral, nonzero(positions))
        assert sum(book.positions().values()) == 0
        assert 0 <= book.debit_total <= book.bilateral_total <= book.gross_total
        for i in book.participants():
            assert book.position(i) == sum(book.bilateral(j, i) for j in book.participants())


@given(OBLIGATIONS, st.randoms(use_true_random=False))
def test_the_final_positions_do_not_depend_on_the_order(
    obligations: list[tuple[int, int, int]], rnd: object
) -> None:
    shuffled = list(obligations)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert summary(net_from_scratch(obligations)) == summary(net_from_scratch(shuffled))


@given(OBLIGATIONS, OBLIGATIONS)
def test_two_sets_netted_together_equal_the_two_netted_apart_and_summed(
    first: list[tuple[int, int, int]], second: list[tuple[int, int, int]]
) -> None:
    together = net_from_scratch(first + second)
    apart = net_from_scratch(first), net_from_scratch(second)
    summed: Counter[int] = Counter()
    for book in apart:
        summed.update(book.positions())
    assert nonzero(together.positions()) == nonzero(dict(summed))
    assert together.gross_total == apart[0].gross_total + apart[1].gross_total
    ids = set(together.participants())
    for i in ids:
        for j in ids:
            assert together.bilateral(i, j) == apart[0].bilateral(i, j) + apart[1].bilateral(i, j)
    # Netting never adds value: the nets of the union are at most the sums of the nets.
    assert together.bilateral_total <= apart[0].bilateral_total + apart[1].bilateral_total
    assert together.debit_total <= apart[0].debit_total + apart[1].debit_total


@given(OBLIGATIONS)
def test_paying_the_bilateral_nets_gives_the_same_multilateral_positions(
    obligations: list[tuple[int, int, int]],
) -> None:
    book = net_from_scratch(obligations)
    payments = [(i, j, b) if b > 0 else (j, i, -b) for i, j, b in book.bilateral_nets() if b != 0]
    paid = net_from_scratch(payments)
    assert nonzero(paid.positions()) == nonzero(book.positions())
    assert paid.gross_total == paid.bilateral_total == book.bilateral_total
    assert paid.debit_total == book.debit_total


@given(OBLIGATIONS)
def test_hub_instructions_settle_every_position_to_zero(
    obligations: list[tuple[int, int, int]],
) -> None:
    book = net_from_scratch(obligations)
    hub = 0
    balances = dict(book.positions())  # what each participant is owed (+) or owes (-)
    pay_ins = pay_outs = 0
    instructions = 0
    for pid, n in book.positions().items():
        if n < 0:  # pays |n| into the hub
            balances[pid] += -n
            hub += -n
            pay_ins += -n
            instructions += 1
        elif n > 0:  # receives n from the hub
            balances[pid] -= n
            hub -= n
            pay_outs += n
            instructions += 1
    assert all(v == 0 for v in balances.values())
    assert hub == 0
    assert pay_ins == pay_outs == book.debit_total
    assert instructions == len(nonzero(book.positions()))


@given(OBLIGATIONS, PARTICIPANTS)
def test_an_unwind_equals_netting_the_remaining_obligations_from_scratch(
    obligations: list[tuple[int, int, int]], defaulter: int
) -> None:
    book = net_from_scratch(obligations)
    plan = plan_unwind(book, defaulter)
    before = dict(book.positions())
    changed = book.remove_participant(defaulter)
    book.verify()
    remaining = [o for o in obligations if defaulter not in o[:2]]
    fresh = net_from_scratch(remaining)
    assert summary(book) == summary(fresh)
    assert book.position(defaulter) == 0
    assert (plan.totals.gross, plan.totals.bilateral, plan.totals.multilateral) == summary(fresh)[
        :3
    ]
    assert nonzero(plan.positions) == nonzero(fresh.positions())
    assert {p: (b, a) for p, b, a in plan.changes} == {
        p: ba for p, ba in changed.items() if ba[0] != ba[1]
    }
    for pid, debit_before, debit_after in plan.debit_increases():
        assert debit_before == max(0, -before[pid]) < debit_after == max(0, -book.position(pid))


@given(OBLIGATIONS)
def test_the_stress_view_plans_each_unwind_without_changing_the_book(
    obligations: list[tuple[int, int, int]],
) -> None:
    book = net_from_scratch(obligations)
    snapshot = book.to_snapshot()
    plans = unwind_stress(book)
    assert book.to_snapshot() == snapshot
    assert [p.participant_id for p in plans] == book.participants()
    for plan in plans:
        rest = [o for o in obligations if plan.participant_id not in o[:2]]
        assert nonzero(plan.positions) == nonzero(net_from_scratch(rest).positions())


@given(OBLIGATIONS, OBLIGATIONS)
def test_a_snapshot_and_the_tail_equal_the_whole_history(
    head: list[tuple[int, int, int]], tail: list[tuple[int, int, int]]
) -> None:
    whole = net_from_scratch(head + tail)
    restored = NettingBook.from_snapshot(net_from_scratch(head).to_snapshot())
    for payer, payee, amount in tail:
        restored.add(payer, payee, amount)
    assert restored.to_snapshot() == whole.to_snapshot()
    assert summary(restored) == summary(whole)
