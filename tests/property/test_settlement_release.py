"""The release search against brute force on small queues: always feasible, maximal, and
with lower bounds only at least the largest set that keeps each payer's queue order."""

from __future__ import annotations

from itertools import combinations, pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.settlement.release import ObligationQueue, Queued, cascade, search

PIDS = st.integers(1, 4)


@st.composite
def scenario(
    draw: st.DrawFn, with_maxima: bool
) -> tuple[list[Queued], dict[int, int], dict[int, int], dict[int, int | None]]:
    items: list[Queued] = []
    for k in range(draw(st.integers(0, 7))):
        payer = draw(PIDS)
        payee = draw(PIDS.filter(payer.__ne__))
        items.append(Queued(100 + k, payer, payee, draw(st.integers(1, 20)), k))
    pids = range(1, 5)
    low = {p: draw(st.integers(-25, 0)) for p in pids}
    position = {p: draw(st.integers(low[p], 25)) for p in pids}
    high: dict[int, int | None] = {
        p: draw(st.one_of(st.none(), st.integers(position[p], 40))) if with_maxima else None
        for p in pids
    }
    return items, position, low, high


def feasible(
    chosen: list[Queued], position: dict[int, int], low: dict[int, int], high: dict[int, int | None]
) -> bool:
    after = dict(position)
    for q in chosen:
        after[q.payer_id] -= q.amount
        after[q.payee_id] += q.amount
    return all(
        after[p] >= min(low[p], position[p])
        and (high[p] is None or after[p] <= max(high[p], position[p]))  # type: ignore[operator]
        for p in after
    )


def in_payer_order(chosen: list[Queued], items: list[Queued]) -> bool:
    """Each payer's chosen obligations are the first ones it queued."""
    ids = {q.obligation_id for q in chosen}
    for payer in {q.payer_id for q in items}:
        mine = [q.obligation_id in ids for q in items if q.payer_id == payer]
        if any(later and not earlier for earlier, later in pairwise(mine)):
            return False
    return True


def run_search(
    items: list[Queued], position: dict[int, int], low: dict[int, int], high: dict[int, int | None]
) -> list[Queued]:
    return search(items, position.__getitem__, low.__getitem__, high.__getitem__)


@settings(max_examples=300)
@given(scenario(with_maxima=True))
def test_the_released_set_keeps_everyone_within_bounds_and_nothing_more_fits(
    case: tuple[list[Queued], dict[int, int], dict[int, int], dict[int, int | None]],
) -> None:
    items, position, low, high = case
    released = run_search(items, position, low, high)
    assert released == [q for q in items if q in released]  # arrival order, no duplicates
    assert feasible(released, position, low, high)
    for q in items:
        if q not in released:
            assert not feasible([*released, q], position, low, high)
    assert run_search(items, position, low, high) == released  # deterministic


@settings(max_examples=300)
@given(scenario(with_maxima=False))
def test_with_minimums_only_it_releases_the_largest_set_in_each_payers_order(
    case: tuple[list[Queued], dict[int, int], dict[int, int], dict[int, int | None]],
) -> None:
    items, position, low, high = case
    released = {q.obligation_id for q in run_search(items, position, low, high)}
    best: set[int] = set()
    for size in range(len(items) + 1):
        for chosen in combinations(items, size):
            if in_payer_order(list(chosen), items) and feasible(list(chosen), position, low, high):
                best |= {q.obligation_id for q in chosen}
    assert feasible([q for q in items if q.obligation_id in best], position, low, high)
    assert best <= released


@given(scenario(with_maxima=False), PIDS)
def test_the_cascade_releases_only_what_fits_in_arrival_order(
    case: tuple[list[Queued], dict[int, int], dict[int, int], dict[int, int | None]],
    credited: int,
) -> None:
    items, position, low, high = case
    queue = ObligationQueue()
    for q in items:
        queue.push(q)
    released = cascade(queue, [credited], position.__getitem__, low.__getitem__, high.__getitem__)
    assert len(queue) == len(items)  # the queue itself is untouched
    after = dict(position)
    for q in released:  # each one fitted when it was taken
        assert after[q.payer_id] - q.amount >= min(low[q.payer_id], after[q.payer_id])
        after[q.payer_id] -= q.amount
        after[q.payee_id] += q.amount
    assert feasible(released, position, low, high)


def test_a_ring_of_three_is_released_whole() -> None:
    items = [Queued(1, 1, 2, 10, 0), Queued(2, 2, 3, 10, 1), Queued(3, 3, 1, 10, 2)]
    zero = dict.fromkeys(range(1, 4), 0)
    assert run_search(items, zero, zero, dict.fromkeys(range(1, 4))) == items


def test_the_latest_obligation_of_a_short_participant_is_dropped_first() -> None:
    # 1 owes 2 ten then 2 owes 1 six: with minimums of 0, 1 cannot cover 10 - 6.
    items = [Queued(1, 1, 2, 10, 0), Queued(2, 2, 1, 6, 1), Queued(3, 1, 3, 4, 2)]
    zero = dict.fromkeys(range(1, 4), 0)
    released = run_search(items, zero, zero, dict.fromkeys(range(1, 4)))
    # Step A drops 1->3 (latest of 1), then 1->2 (1 still short), then 2->1 (2 short);
    # step B finds nothing that fits alone.
    assert released == []
    funded = {1: 4, 2: 0, 3: 0}
    assert [
        q.obligation_id for q in run_search(items, funded, zero, dict.fromkeys(range(1, 4)))
    ] == [1, 2]
