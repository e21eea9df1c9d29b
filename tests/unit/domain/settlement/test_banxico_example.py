"""The Banco de México worked example (Central = A, Comercial = B, Meridional = C), fixed."""

from __future__ import annotations

from fractions import Fraction

from domain.settlement import service
from domain.settlement.events import CycleCutOff, ObligationAccepted, ParticipantUnwound
from domain.settlement.netting import efficiency, efficiency_text, fraction_text
from tests.unit.domain.settlement.world import (
    BANXICO,
    HUB,
    SCHEME,
    T0,
    A,
    B,
    C,
    account_of,
    cut,
    ob,
    open_cycle,
    participant,
    run,
    submit,
    submit_all,
    world,
)


def test_six_obligations_net_to_g83_b17_m13() -> None:
    src = world(participant(A), participant(B), participant(C))
    assert submit_all(src, BANXICO) == ["accepted"] * 6
    book = open_cycle(src).books["USD"]
    totals = book.totals()
    assert (totals.gross, totals.bilateral, totals.multilateral) == (83, 17, 13)
    assert book.positions() == {A: -4, B: 13, C: -9}
    assert [book.bilateral(A, B), book.bilateral(C, A), book.bilateral(C, B)] == [8, 4, 5]


def test_the_efficiencies_are_exact_fractions_and_decimal_strings() -> None:
    bilateral, multilateral = efficiency(17, 83), efficiency(13, 83)
    assert bilateral == Fraction(66, 83)
    assert multilateral == Fraction(70, 83)
    assert (fraction_text(bilateral), efficiency_text(bilateral)) == ("66/83", "0.795181")
    assert (fraction_text(multilateral), efficiency_text(multilateral)) == ("70/83", "0.843373")
    assert efficiency(0, 0) is None


def test_the_hub_instructions_are_two_pay_ins_and_one_pay_out() -> None:
    src = world(participant(A), participant(B), participant(C))
    submit_all(src, BANXICO)
    cut(src)
    _, instructions = service.plan_settlement(src, SCHEME, 1)
    assert [(i.participant_id, i.direction, i.amount_minor) for i in instructions] == [
        (A, "pay_in", 4),
        (C, "pay_in", 9),
        (B, "pay_out", 13),
    ]
    hub = HUB["USD"]
    assert [(i.debit_account_id, i.credit_account_id) for i in instructions] == [
        (account_of(A, "USD"), hub),
        (account_of(C, "USD"), hub),
        (hub, account_of(B, "USD")),
    ]
    assert len({i.transfer_id for i in instructions}) == 3
    assert all(i.transfer_id >= service.SYSTEM_ID_FLOOR for i in instructions)


def test_with_a_cap_of_8_the_obligation_that_takes_c_past_it_is_queued() -> None:
    src = world(participant(A), participant(B), participant(C, caps={"USD": 8}))
    # C's position as they arrive: +7, +16, +5, then C->B 14 would make it -9 < -8.
    assert submit_all(src, BANXICO) == ["accepted"] * 5 + ["queued"]
    cycle = open_cycle(src)
    assert [q.obligation_id for q in cycle.queued("USD")] == [6]
    assert cycle.books["USD"].positions() == {A: -4, B: -1, C: 5}


def test_the_queued_obligation_is_accepted_as_soon_as_a_credit_makes_room() -> None:
    src = world(participant(A), participant(B), participant(C, caps={"USD": 8}))
    submit_all(src, BANXICO)
    assert submit(src, ob(7, A, C, 1)) == "accepted"  # C at +6: 6 - 14 = -8, within the cap
    events = src.history[f"cycle:{SCHEME}:1"]
    assert isinstance(events[-1], ObligationAccepted)
    assert events[-1].released == [6]
    cycle = open_cycle(src)
    assert cycle.queued("USD") == []
    assert cycle.books["USD"].positions() == {A: -5, B: 13, C: -8}


def test_unwinding_c_leaves_a_minus_8_b_plus_8_and_reports_a_debit_doubling() -> None:
    src = world(participant(A), participant(B), participant(C))
    submit_all(src, BANXICO)
    cut(src)
    event = run(src, lambda: service.unwind(src, SCHEME, 1, C, T0))
    assert isinstance(event, ParticipantUnwound)
    book = src.cycle(SCHEME, 1).books["USD"]
    assert book.positions() == {A: -8, B: 8}
    assert book.position(C) == 0
    assert event.debit_increases == [["USD", A, 4, 8]]
    assert event.changes == [["USD", A, -4, -8], ["USD", B, 13, 8]]
    assert event.totals == {"USD": {"gross": 42, "bilateral": 8, "multilateral": 8}}
    assert event.removed_gross == {"USD": 41}
    assert src.participant(C).status == "defaulted"


def test_after_the_unwind_the_survivors_settle_the_recomputed_positions() -> None:
    src = world(participant(A), participant(B), participant(C))
    submit_all(src, BANXICO)
    cut(src)
    run(src, lambda: service.unwind(src, SCHEME, 1, C, T0))
    cycle, instructions = service.plan_settlement(src, SCHEME, 1)
    cycle.settle(instructions, T0)
    src.commit()
    assert [(i.participant_id, i.direction, i.amount_minor) for i in instructions] == [
        (A, "pay_in", 8),
        (B, "pay_out", 8),
    ]
    assert src.cycle(SCHEME, 1).state == "settled"


def test_the_cut_off_event_freezes_the_positions_and_totals() -> None:
    src = world(participant(A), participant(B), participant(C))
    submit_all(src, BANXICO)
    outcome = cut(src)
    event = outcome[0]
    assert isinstance(event, CycleCutOff)
    assert event.positions == {"USD": [[A, -4], [B, 13], [C, -9]]}
    assert event.totals == {"USD": {"gross": 83, "bilateral": 17, "multilateral": 13}}
    assert event.breaches == []
    assert src.scheme(SCHEME).open_seq == 2
    assert open_cycle(src).state == "open"


def test_with_a_cap_lowered_to_8_after_the_fact_the_cut_off_reports_the_breach() -> None:
    src = world(participant(A), participant(B), participant(C))
    submit_all(src, BANXICO)
    run(src, lambda: service.change_limits(src, C, {"USD": 8}, {}, {}, T0))
    event = cut(src)[0]
    assert event.breaches == [["USD", C, 9, 8]]
