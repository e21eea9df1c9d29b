"""Given obligations, when one more (or a release, a cut-off), then what is accepted or queued."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from domain.settlement import service
from domain.settlement.events import (
    CycleCutOff,
    ObligationAccepted,
    ObligationQueued,
    QueueReleased,
)
from domain.settlement.participant import ParticipantSpec
from domain.settlement.scheme import next_cut_off_ns, value_date_of
from tests.unit.domain.settlement.fakes import FakeSettlement
from tests.unit.domain.settlement.world import (
    SCHEME,
    T0,
    A,
    B,
    C,
    D,
    S,
    cut,
    ob,
    open_cycle,
    participant,
    run,
    submit,
    submit_all,
    world,
)

X, Y, Z, W = A, B, C, D


@dataclass
class Flow:
    """Given ``limits`` and ``mode``, obligations (payer, payee, amount) in order give
    ``statuses``, leave ``queued`` (obligation ids) and ``positions``."""

    name: str
    mode: str
    obligations: list[tuple[int, int, int]]
    statuses: list[str]
    queued: list[int]
    positions: dict[int, int]
    caps: dict[int, int] = field(default_factory=dict)
    mins: dict[int, int] = field(default_factory=dict)
    maxs: dict[int, int] = field(default_factory=dict)


FLOWS = [
    Flow(
        "dns: without a cap everything is accepted",
        "dns",
        [(X, Y, 100), (Y, Z, 30)],
        ["accepted", "accepted"],
        [],
        {X: -100, Y: 70, Z: 30},
    ),
    Flow(
        "dns: a cap of 0 queues any net debit until a credit arrives",
        "dns",
        [(X, Y, 5), (Y, X, 5)],
        ["queued", "accepted"],
        [],
        {X: 0, Y: 0},
        caps={X: 0},
    ),
    Flow(
        "dns: a debit exactly at the cap is accepted, one unit more is queued",
        "dns",
        [(X, Y, 10), (X, Y, 1)],
        ["accepted", "queued"],
        [2],
        {X: -10, Y: 10},
        caps={X: 10},
    ),
    Flow(
        "dns: queued obligations are retried in arrival order, first fit",
        "dns",
        [(X, Y, 8), (X, Z, 5), (X, W, 3), (Y, X, 4)],
        ["accepted", "queued", "queued", "accepted"],
        [3],
        {X: -9, Y: 4, Z: 5, W: 0},
        caps={X: 10},
    ),
    Flow(
        "dns: an earlier large obligation does not block a later small one",
        "dns",
        [(X, Y, 10), (X, Z, 50), (X, W, 2)],
        ["accepted", "queued", "queued"],
        [2, 3],
        {X: -10, Y: 10},
        caps={X: 10},
    ),
    Flow(
        "dns: a release credits the payee, whose own queue is tried next",
        "dns",
        [(X, Y, 5), (Y, Z, 5), (Z, X, 5)],
        ["queued", "queued", "accepted"],
        [],
        {X: 0, Y: 0, Z: 0},
        caps={X: 0, Y: 0},
    ),
    Flow(
        "rtgs: a payment settles at once when both bounds hold",
        "rtgs",
        [(X, Y, 40)],
        ["accepted"],
        [],
        {X: -40, Y: 40},
        mins={X: -50},
    ),
    Flow(
        "rtgs: positions exactly at the minimum and the maximum are within bounds",
        "rtgs",
        [(X, Y, 30), (X, Y, 1)],
        ["accepted", "queued"],
        [2],
        {X: -30, Y: 30},
        mins={X: -50},
        maxs={Y: 30},
    ),
    Flow(
        "rtgs: a payer exactly at its minimum cannot pay one unit more",
        "rtgs",
        [(X, Y, 50), (X, Z, 1)],
        ["accepted", "queued"],
        [2],
        {X: -50, Y: 50},
        mins={X: -50},
    ),
    Flow(
        "rtgs: the default minimum is 0, so an unfunded payer queues",
        "rtgs",
        [(X, Y, 40)],
        ["queued"],
        [1],
        {},
    ),
    Flow(
        "rtgs: a payment that would lift the payee over its maximum queues",
        "rtgs",
        [(X, Y, 40)],
        ["queued"],
        [1],
        {},
        mins={X: -50},
        maxs={Y: 30},
    ),
    Flow(
        "rtgs: two queued payments that offset bilaterally are released together",
        "rtgs",
        [(X, Y, 10), (Y, X, 10)],
        ["queued", "released"],
        [],
        {X: 0, Y: 0},
    ),
    Flow(
        "rtgs: a ring of queued payments is released multilaterally",
        "rtgs",
        [(X, Y, 10), (Y, Z, 10), (Z, X, 10)],
        ["queued", "queued", "released"],
        [],
        {X: 0, Y: 0, Z: 0},
    ),
    Flow(
        "rtgs: a partial offset that leaves someone below its minimum releases nothing",
        "rtgs",
        [(X, Y, 10), (Y, X, 6)],
        ["queued", "queued"],
        [1, 2],
        {},
    ),
    Flow(
        "rtgs: an offset within a minimum below zero releases both",
        "rtgs",
        [(X, Y, 10), (Y, X, 6)],
        ["queued", "released"],
        [],
        {X: -4, Y: 4},
        mins={X: -5},
    ),
    Flow(
        "rtgs: an accepted payment whose payee has queued payments releases them",
        "rtgs",
        [(Y, Z, 10), (X, Y, 10)],
        ["queued", "accepted"],
        [],
        {X: -10, Y: 0, Z: 10},
        mins={X: -10},
    ),
    Flow(
        "rtgs: a maximum keeps a payee from taking offsetting payments past it",
        "rtgs",
        [(X, Y, 10), (Y, X, 10), (Z, Y, 1)],
        ["queued", "released", "queued"],
        [3],
        {X: 0, Y: 0},
        mins={Z: -10},
        maxs={Y: 0},
    ),
]


def _world(flow: Flow) -> FakeSettlement:
    specs = [
        participant(
            pid,
            caps={"USD": flow.caps[pid]} if pid in flow.caps else None,
            mins={"USD": flow.mins[pid]} if pid in flow.mins else None,
            maxs={"USD": flow.maxs[pid]} if pid in flow.maxs else None,
        )
        for pid in (X, Y, Z, W)
    ]
    return world(*specs, mode=flow.mode)


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_accepting_queueing_and_releasing(flow: Flow) -> None:
    src = _world(flow)
    assert submit_all(src, flow.obligations) == flow.statuses
    cycle = open_cycle(src)
    assert [q.obligation_id for q in cycle.queued("USD")] == flow.queued
    live = {p: n for p, n in cycle.books["USD"].positions().items() if n}
    assert live == {p: n for p, n in flow.positions.items() if n}


def test_the_event_of_a_releasing_obligation_names_what_it_released_in_order() -> None:
    src = world(*(participant(p) for p in (X, Y, Z)), mode="rtgs")
    submit_all(src, [(X, Y, 10), (Y, Z, 10), (Z, X, 10)])
    last = src.history[f"cycle:{SCHEME}:1"][-1]
    assert isinstance(last, ObligationQueued)
    assert last.reason == "minimum_position"
    assert last.released == [1, 2, 3]


def test_a_dns_gridlock_is_left_queued_until_a_release_is_asked_for() -> None:
    src = world(participant(X, caps={"USD": 0}), participant(Y, caps={"USD": 0}))
    assert submit_all(src, [(X, Y, 5), (Y, X, 5)]) == ["queued", "queued"]
    cycle, released = run(src, lambda: service.release(src, SCHEME, T0))  # type: ignore[misc]
    assert released == {"USD": [1, 2]}
    event = src.history[f"cycle:{SCHEME}:1"][-1]
    assert isinstance(event, QueueReleased)
    assert event.trigger == "on_demand"
    assert cycle.queued("USD") == []


def test_a_release_with_nothing_releasable_records_nothing() -> None:
    src = world(participant(X), participant(Y), mode="rtgs")
    submit_all(src, [(X, Y, 5)])
    count = len(src.history[f"cycle:{SCHEME}:1"])
    _, released = run(src, lambda: service.release(src, SCHEME, T0))  # type: ignore[misc]
    assert released == {}
    assert len(src.history[f"cycle:{SCHEME}:1"]) == count


def test_a_raised_limit_lets_an_on_demand_release_settle_the_queue() -> None:
    src = world(participant(X), participant(Y), mode="rtgs")
    submit_all(src, [(X, Y, 5)])
    run(src, lambda: service.change_limits(src, X, {}, {"USD": -5}, {}, T0))
    _, released = run(src, lambda: service.release(src, SCHEME, T0))  # type: ignore[misc]
    assert released == {"USD": [1]}
    assert open_cycle(src).books["USD"].positions() == {X: -5, Y: 5}


def test_at_cut_off_a_final_search_runs_and_what_still_waits_is_dropped() -> None:
    src = world(
        participant(X, caps={"USD": 0}),
        participant(Y, caps={"USD": 0}),
        participant(Z, caps={"USD": 0}),
    )
    submit_all(src, [(X, Y, 5), (Y, X, 5), (Z, X, 7)])
    event = cut(src)[0]
    assert isinstance(event, CycleCutOff)
    assert event.released == {"USD": [1, 2]}
    assert event.dropped == {"USD": [3]}
    cycle = src.cycle(SCHEME, 1)
    assert cycle.queued("USD") == []
    assert cycle.books["USD"].positions() == {X: 0, Y: 0}
    assert cycle.dropped_count == 1


def test_obligations_in_two_currencies_net_apart() -> None:
    src = world(participant(X), participant(Y), currencies=("USD", "EUR"))
    submit(src, ob(1, X, Y, 10, "USD"))
    submit(src, ob(2, Y, X, 4, "EUR"))
    cycle = open_cycle(src)
    assert cycle.books["USD"].positions() == {X: -10, Y: 10}
    assert cycle.books["EUR"].positions() == {X: 4, Y: -4}


# ------------------------------------------------------------------ the cut-off schedule

AT_23H = 23 * 3600


def test_the_first_cycle_is_due_at_the_next_scheduled_time_and_dated_that_day() -> None:
    src = world(participant(X), participant(Y), times=(AT_23H,))
    cycle = open_cycle(src)
    assert cycle.cut_off_at_ns == next_cut_off_ns((AT_23H,), T0)
    assert value_date_of(cycle.cut_off_at_ns) == "2023-11-14" == cycle.value_date
    assert cycle.cut_off_at_ns - T0 == (23 * 3600 - (22 * 3600 + 13 * 60 + 20)) * S


def test_an_obligation_after_the_cut_off_time_joins_the_next_cycle() -> None:
    src = world(participant(X), participant(Y), times=(AT_23H,))
    due = open_cycle(src).cut_off_at_ns
    submit(src, ob(1, X, Y, 5), now=due - 1)
    outcome = run(src, lambda: service.submit_obligation(src, ob(2, X, Y, 7), due))
    assert not isinstance(outcome, str)
    assert outcome.cycle.seq == 2
    assert outcome.late_cut_off is not None
    assert outcome.late_cut_off.trigger == "scheduled"
    assert outcome.late_cut_off.scheduled_at_ns == due
    first, second = src.cycle(SCHEME, 1), src.cycle(SCHEME, 2)
    assert first.state == "cut_off"
    assert first.books["USD"].positions() == {X: -5, Y: 5}
    assert second.books["USD"].positions() == {X: -7, Y: 7}
    assert second.value_date == "2023-11-15"


def test_a_late_obligation_naming_the_passed_cycle_or_its_date_is_refused() -> None:
    src = world(participant(X), participant(Y), times=(AT_23H,))
    due = open_cycle(src).cut_off_at_ns
    named = run(src, lambda: service.submit_obligation(src, ob(1, X, Y, 5, cycle_id="1-1"), due))
    dated = run(
        src, lambda: service.submit_obligation(src, ob(1, X, Y, 5, value_date="2023-11-14"), due)
    )
    assert (named, dated) == ("cycle_closed", "value_date_mismatch")
    assert src.scheme(SCHEME).open_seq == 1  # nothing was cut off by the refused commands


def test_the_duty_cuts_off_only_when_the_time_has_come() -> None:
    src = world(participant(X), participant(Y), times=(AT_23H, 10 * 3600))
    due = open_cycle(src).cut_off_at_ns
    assert service.cut_off_if_due(src, SCHEME, due - 1) is None
    event, following = service.cut_off_if_due(src, SCHEME, due)  # type: ignore[misc]
    src.commit()
    assert event.trigger == "scheduled"
    assert following.seq == 2
    assert following.cut_off_at_ns == due + 11 * 3600 * S  # the 10:00 cut-off of the next day


def test_a_manual_cut_off_of_a_scheme_without_a_schedule() -> None:
    src = world(participant(X), participant(Y))
    assert open_cycle(src).cut_off_at_ns == 0
    assert service.cut_off_if_due(src, SCHEME, T0 + 10**15) is None
    event, following = cut(src)
    assert event.trigger == "manual"
    assert following.value_date == "2023-11-14"


# ------------------------------------------------------------------ status and membership


def test_a_reinstated_participant_takes_part_again() -> None:
    src = world(participant(X), participant(Y))
    run(src, lambda: service.change_status(src, X, "suspended", "late funding", T0))
    assert submit(src, ob(1, X, Y, 5)) == "participant_suspended"
    run(src, lambda: service.change_status(src, X, "active", "funded", T0))
    assert submit(src, ob(1, X, Y, 5)) == "accepted"


def test_an_admitted_participant_can_take_part() -> None:
    src = world(participant(X), participant(Y))
    service.register_participant(src, participant(Z), T0)
    src.commit()
    assert submit(src, ob(1, X, Z, 5)) == "participant_not_member"
    run(src, lambda: service.admit_participant(src, SCHEME, Z, T0))
    assert submit(src, ob(1, X, Z, 5)) == "accepted"


def test_a_participant_settling_in_one_currency_joins_a_two_currency_scheme() -> None:
    src = world(participant(X), currencies=("USD", "EUR"))
    usd_only = ParticipantSpec(Z, "usd bank", {"USD": 77})
    service.register_participant(src, usd_only, T0)
    src.commit()
    assert not isinstance(run(src, lambda: service.admit_participant(src, SCHEME, Z, T0)), str)
    assert submit(src, ob(1, X, Z, 5, "USD")) == "accepted"
    assert submit(src, ob(2, X, Z, 5, "EUR")) == "participant_lacks_account"


def test_unwinding_declares_the_participant_in_default_for_every_scheme() -> None:
    src = world(participant(X), participant(Y), participant(Z))
    submit_all(src, [(X, Y, 5), (Z, X, 3)])
    cut(src)
    run(src, lambda: service.unwind(src, SCHEME, 1, Z, T0))
    assert src.participant(Z).status == "defaulted"
    assert submit(src, ob(9, Z, X, 1)) == "participant_defaulted"
    assert src.cycle(SCHEME, 1).unwound == [Z]


def test_an_unwind_that_pushes_a_survivor_past_its_cap_reports_the_breach() -> None:
    src = world(participant(X, caps={"USD": 6}), participant(Y), participant(Z))
    # X: -10 + 5 = -5 within its cap of 6; without Z's 5 it is -10.
    submit_all(src, [(X, Y, 10), (Z, X, 5)])
    cut(src)
    event = run(src, lambda: service.unwind(src, SCHEME, 1, Z, T0))
    assert not isinstance(event, str)
    assert event.breaches == [["USD", X, 10, 6]]
    assert event.debit_increases == [["USD", X, 5, 10]]
    assert src.cycle(SCHEME, 1).breaches == [["USD", X, 10, 6]]


def test_settled_instructions_are_recorded_on_the_cycle() -> None:
    src = world(participant(X), participant(Y))
    submit_all(src, [(X, Y, 5)])
    cut(src)
    cycle, instructions = service.plan_settlement(src, SCHEME, 1)
    cycle.settle(instructions, T0 + S)
    src.commit()
    settled = src.cycle(SCHEME, 1)
    assert settled.state == "settled"
    assert [i["amount_minor"] for i in settled.instructions] == [5, 5]
    assert settled.settled_at_ns == T0 + S


def test_every_accepted_event_replays_into_the_same_cycle() -> None:
    src = world(participant(X, caps={"USD": 3}), participant(Y), participant(Z))
    submit_all(src, [(X, Y, 5), (Y, X, 4), (Y, Z, 2), (Z, X, 1)])
    cut(src)
    run(src, lambda: service.unwind(src, SCHEME, 1, Z, T0))
    stream = f"cycle:{SCHEME}:1"
    assert src.replayed(stream).to_snapshot() == src.cycle(SCHEME, 1).to_snapshot()  # type: ignore[attr-defined]
    kinds = [type(ev).__name__ for ev in src.history[stream]]
    assert kinds[:2] == ["CycleOpened", "ObligationQueued"]
    assert isinstance(src.history[stream][2], ObligationAccepted)


def test_a_batch_answers_each_obligation_and_later_ones_see_earlier_ones() -> None:
    src = world(participant(X, caps={"USD": 5}), participant(Y), participant(Z))
    specs = [ob(1, X, Y, 5), ob(2, X, Y, 1), ob(3, X, X, 1), ob(1, Y, Z, 1), ob(4, Y, X, 1)]
    outcomes = service.submit_obligations(src, specs, T0)
    src.commit()
    described = [o.code if isinstance(o, Exception) else o.status for o in outcomes]  # type: ignore[union-attr]
    assert described == [
        "accepted",
        "queued",
        "payer_must_differ_from_payee",
        "obligation_exists",
        "accepted",  # credits X by 1, which releases obligation 2
    ]
    assert outcomes[4].released == [2]  # type: ignore[union-attr]
    assert open_cycle(src).books["USD"].positions() == {X: -5, Y: 5}
