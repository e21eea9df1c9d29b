"""Given a state, when a command, then its named rejection (and nothing changed): every rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.settlement import errors as e
from domain.settlement import service
from domain.settlement.participant import ParticipantSpec
from domain.settlement.scheme import SchemeSpec
from tests.unit.domain.settlement.fakes import FakeSettlement
from tests.unit.domain.settlement.world import (
    SCHEME,
    T0,
    A,
    B,
    C,
    D,
    account_of,
    ob,
    participant,
    run,
)

RTGS = 2
E, F, G = 5, 6, 7  # suspended member, defaulted member, member without a EUR account
UNKNOWN = 99


def day() -> FakeSettlement:
    """A, B, C, E, F, G members of a USD/EUR DNS scheme (1) and an RTGS scheme (2); D only
    registered. E is suspended, F defaulted, G has no EUR account. One A->B obligation in each."""
    src = FakeSettlement()
    for pid in (A, B, C, D, E, F):
        service.register_participant(src, participant(pid), T0)
    service.register_participant(src, participant(G, currencies=("USD",)), T0)
    src.commit()
    members = (A, B, C, E, F, G)
    for scheme_id, mode in ((SCHEME, "dns"), (RTGS, "rtgs")):
        accounts = {"USD": 9000, "EUR": 9001} if scheme_id == SCHEME else {"USD": 9002}
        spec = SchemeSpec(scheme_id, "s", mode, accounts, (), members)
        service.create_scheme(src, spec, T0)
        src.commit()
    service.change_status(src, E, "suspended", "test", T0)
    service.change_status(src, F, "defaulted", "test", T0)
    src.commit()
    service.submit_obligation(src, ob(500, A, B, 10), T0)
    service.submit_obligation(src, ob(501, A, B, 10, scheme_id=RTGS), T0)
    src.commit()
    return src


def cut_first(src: FakeSettlement) -> None:
    service.cut_off(src, SCHEME, 1, T0)
    src.commit()


def settled_first(src: FakeSettlement) -> None:
    cut_first(src)
    cycle, instructions = service.plan_settlement(src, SCHEME, 1)
    cycle.settle(instructions, T0)
    src.commit()


@dataclass
class Case:
    rule: str
    when: Callable[[FakeSettlement], Any]
    given: Callable[[FakeSettlement], None] = lambda _src: None
    why: str = ""


def submitting(**kw: Any) -> Callable[[FakeSettlement], Any]:
    fields = {"obligation_id": 1, "payer": A, "payee": B, "amount": 5, **kw}
    spec = ob(
        fields.pop("obligation_id"),
        fields.pop("payer"),
        fields.pop("payee"),
        fields.pop("amount"),
        **fields,
    )
    return lambda src: service.submit_obligation(src, spec, T0)


def unwinding(pid: int, seq: int = 1, scheme: int = SCHEME) -> Callable[[FakeSettlement], Any]:
    return lambda src: service.unwind(src, scheme, seq, pid, T0)


def settling(seq: int = 1, scheme: int = SCHEME) -> Callable[[FakeSettlement], Any]:
    def run_settle(src: FakeSettlement) -> Any:
        cycle, instructions = service.plan_settlement(src, scheme, seq)
        cycle.settle(instructions, T0)

    return run_settle


def registering(**kw: Any) -> Callable[[FakeSettlement], Any]:
    spec = ParticipantSpec(
        kw.pop("participant_id", 50),
        kw.pop("name", "new bank"),
        kw.pop("accounts", {"USD": 5001}),
        kw.pop("caps", {}),
        kw.pop("mins", {}),
        kw.pop("maxs", {}),
    )
    return lambda src: service.register_participant(src, spec, T0)


def creating(**kw: Any) -> Callable[[FakeSettlement], Any]:
    spec = SchemeSpec(
        kw.pop("scheme_id", 3),
        kw.pop("name", "new scheme"),
        kw.pop("mode", "dns"),
        kw.pop("accounts", {"USD": 9100}),
        kw.pop("times", ()),
        kw.pop("participants", (A, B)),
    )
    return lambda src: service.create_scheme(src, spec, T0)


OBLIGATION_CASES = [
    Case("id_must_not_be_zero", submitting(obligation_id=0)),
    Case("id_must_not_be_int_max", submitting(payer=2**128 - 1), why="2^128-1 is reserved"),
    Case("id_must_not_be_int_max", submitting(obligation_id=2**130)),
    Case("amount_must_be_positive", submitting(amount=0)),
    Case("amount_must_be_positive", submitting(amount=-5)),
    Case("amount_too_large", submitting(amount=10**18 + 1)),
    Case("payer_must_differ_from_payee", submitting(payee=A)),
    Case("unknown_currency", submitting(currency="XXQ")),
    Case("value_date_invalid", submitting(value_date="2023-13-01")),
    Case("value_date_invalid", submitting(value_date="20231114")),
    Case("scheme_not_found", submitting(scheme_id=UNKNOWN)),
    Case("currency_not_cleared", submitting(currency="GBP")),
    Case("participant_not_found", submitting(payer=UNKNOWN), why="unknown payer"),
    Case("participant_not_found", submitting(payee=UNKNOWN), why="unknown payee"),
    Case("participant_not_member", submitting(payer=D)),
    Case("participant_not_member", submitting(payee=D)),
    Case("participant_suspended", submitting(payer=E)),
    Case("participant_suspended", submitting(payee=E)),
    Case("participant_defaulted", submitting(payer=F)),
    Case("participant_defaulted", submitting(payee=F, scheme_id=RTGS)),
    Case("participant_lacks_account", submitting(payee=G, currency="EUR")),
    Case("cycle_not_found", submitting(cycle_id="1-2")),
    Case("cycle_not_found", submitting(cycle_id="2-1"), why="a cycle of another scheme"),
    Case("cycle_not_found", submitting(cycle_id="one")),
    Case("cycle_closed", submitting(cycle_id="1-1"), given=cut_first),
    Case("value_date_mismatch", submitting(value_date="2023-11-15")),
    Case("obligation_exists", submitting(obligation_id=500), why="500 is in the open cycle"),
    # precedence: the earlier rule wins
    Case("amount_must_be_positive", submitting(amount=0, payee=A)),
    Case("payer_must_differ_from_payee", submitting(payee=A, scheme_id=UNKNOWN)),
    Case("currency_not_cleared", submitting(currency="GBP", payer=UNKNOWN)),
    Case("participant_not_found", submitting(payer=D, payee=UNKNOWN)),
    Case("participant_not_member", submitting(payer=D, payee=E)),
    Case("participant_defaulted", submitting(payer=F, payee=E)),
    Case("participant_suspended", submitting(payer=E, payee=G, currency="EUR")),
    Case("cycle_closed", submitting(cycle_id="1-1", value_date="2001-01-01"), given=cut_first),
]

CYCLE_CASES = [
    Case("scheme_not_found", lambda s: service.cut_off(s, UNKNOWN, None, T0)),
    Case("cycle_not_found", lambda s: service.cut_off(s, SCHEME, 7, T0)),
    Case("cycle_not_open", lambda s: service.cut_off(s, SCHEME, 1, T0), given=cut_first),
    Case("scheme_not_found", lambda s: service.release(s, UNKNOWN, T0)),
    Case("scheme_not_found", unwinding(A, scheme=UNKNOWN)),
    Case("cycle_not_found", unwinding(A, seq=3), given=cut_first),
    Case("participant_not_found", unwinding(UNKNOWN), given=cut_first),
    Case("participant_not_member", unwinding(D), given=cut_first),
    Case("rtgs_payments_are_final", unwinding(A, scheme=RTGS)),
    Case("cycle_already_settled", unwinding(A), given=settled_first),
    Case("cycle_not_cut_off", unwinding(A), why="unwind before cut-off"),
    Case(
        "participant_already_unwound",
        unwinding(A),
        given=lambda s: (cut_first(s), service.unwind(s, SCHEME, 1, A, T0), s.commit()),
    ),
    Case("nothing_to_unwind", unwinding(C), given=cut_first),
    Case("scheme_not_found", settling(scheme=UNKNOWN)),
    Case("cycle_not_found", settling(seq=9)),
    Case("cycle_not_cut_off", settling(), why="settle before cut-off"),
    Case("cycle_already_settled", settling(), given=settled_first),
]

PARTICIPANT_CASES = [
    Case("id_must_not_be_zero", registering(participant_id=0)),
    Case("id_must_not_be_zero", registering(accounts={"USD": 0})),
    Case("name_must_not_be_empty", registering(name="  ")),
    Case("unknown_currency", registering(accounts={"XXQ": 1})),
    Case("cap_must_not_be_negative", registering(caps={"USD": -1})),
    Case("position_bounds_must_include_zero", registering(mins={"USD": 5})),
    Case("position_bounds_must_include_zero", registering(maxs={"USD": -5})),
    Case("limit_without_account", registering(caps={"EUR": 5})),
    Case("participant_exists", registering(participant_id=A)),
    Case("participant_not_found", lambda s: service.change_status(s, UNKNOWN, "active", "", T0)),
    Case("unknown_status", lambda s: service.change_status(s, A, "asleep", "", T0)),
    Case("participant_defaulted", lambda s: service.change_status(s, F, "active", "", T0)),
    Case("status_unchanged", lambda s: service.change_status(s, A, "active", "", T0)),
    Case(
        "cap_must_not_be_negative", lambda s: service.change_limits(s, A, {"USD": -1}, {}, {}, T0)
    ),
    Case("participant_defaulted", lambda s: service.change_limits(s, F, {"USD": 1}, {}, {}, T0)),
]

SCHEME_CASES = [
    Case("id_must_not_be_zero", creating(scheme_id=0)),
    Case("id_must_not_be_int_max", creating(accounts={"USD": 2**128 - 1})),
    Case("id_must_not_be_zero", creating(participants=(0,))),
    Case("id_must_not_be_int_max", registering(participant_id=2**128 - 1)),
    Case("name_must_not_be_empty", creating(name="")),
    Case("unknown_mode", creating(mode="gross")),
    Case("currencies_must_not_be_empty", creating(accounts={})),
    Case("unknown_currency", creating(accounts={"XXQ": 1})),
    Case("cut_off_time_invalid", creating(times=(86_400,))),
    Case("cut_off_time_invalid", creating(times=(3600, 3600))),
    Case("scheme_exists", creating(scheme_id=SCHEME)),
    Case("participant_not_found", creating(participants=(A, UNKNOWN))),
    Case("participant_defaulted", creating(participants=(F,))),
    Case("participant_lacks_account", creating(participants=(G,), accounts={"EUR": 1})),
    Case("scheme_not_found", lambda s: service.admit_participant(s, UNKNOWN, D, T0)),
    Case("participant_not_found", lambda s: service.admit_participant(s, SCHEME, UNKNOWN, T0)),
    Case("participant_already_member", lambda s: service.admit_participant(s, SCHEME, A, T0)),
]

ALL_CASES = OBLIGATION_CASES + CYCLE_CASES + PARTICIPANT_CASES + SCHEME_CASES


def _state(src: FakeSettlement) -> dict[str, Any]:
    return {sid: (agg.version, agg.to_snapshot()) for sid, agg in src.committed.items()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ALL_CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(ALL_CASES)])
def test_each_rule_is_a_named_rejection_that_changes_nothing(case: Case) -> None:
    src = day()
    case.given(src)
    src.commit()
    before = _state(src)
    outcome = run(src, lambda: case.when(src))
    assert outcome == case.rule, case.why
    assert _state(src) == before


def test_every_rule_has_a_case() -> None:
    covered = {c.rule for c in ALL_CASES}
    codes = {rule.code for rule in e.ALL_RULES}
    assert codes - covered == {"funding_shortfall"}  # posting to the ledger: application layer


def test_the_documented_obligation_order_matches_the_cases_precedence() -> None:
    order = service.SUBMIT_OBLIGATION_ORDER
    assert len(set(order)) == len(order)
    assert {c.rule for c in OBLIGATION_CASES} <= set(order)


def test_a_rejection_names_the_ids_involved() -> None:
    src = day()
    try:
        submitting(payee=E)(src)
    except e.ParticipantSuspended as exc:
        outcome = exc.to_outcome()
    else:  # pragma: no cover
        pytest.fail("not rejected")
    assert outcome["code"] == "participant_suspended"
    assert outcome["participant_id"] == E
    assert outcome["role"] == "payee"
    assert outcome["obligation_id"] == 1
    assert outcome["scheme_id"] == SCHEME


def test_a_participant_with_limits_in_its_currencies_registers() -> None:
    src = FakeSettlement()
    spec = ParticipantSpec(
        9, "bank", {"USD": account_of(9, "USD")}, {"USD": 0}, {"USD": -5}, {"USD": 7}
    )
    p = service.register_participant(src, spec, T0)
    src.commit()
    limits = p.limits("USD")
    assert (limits.cap_minor, limits.min_position_minor, limits.max_position_minor) == (0, -5, 7)
    assert p.limits("EUR").cap_minor is None
    assert src.replayed("participant:9").to_snapshot() == p.to_snapshot()  # type: ignore[attr-defined]
