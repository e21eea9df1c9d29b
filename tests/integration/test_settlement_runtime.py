"""Settlement through the real processor, store and projector: read models match the domain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventstore.store import connect_owner
from ledgerline.runtime import Runtime, build_runtime
from readmodels import ledger as lrm
from readmodels import settlement as rm
from tests.integration.settlement_fixtures import HUB, Day, account_of

A, B, C = 11, 12, 13
DNS = 100
BANXICO = [(A, B, "25"), (A, C, "7"), (B, A, "17"), (B, C, "9"), (C, A, "11"), (C, B, "14")]


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    rt = build_runtime(db_url, sweep_interval_s=None, checkpoint_interval_s=None)
    try:
        yield rt
    finally:
        rt.close()


def _day(runtime: Runtime, **limits: object) -> Day:
    day = Day(runtime)
    for pid in (A, B, C):
        day.participant(pid, **(limits.get(str(pid), {})))  # type: ignore[arg-type]
    day.scheme(DNS, "dns", (A, B, C))
    return day


def test_the_banxico_day_projects_positions_pairs_totals_and_instructions(
    runtime: Runtime, db_url: str
) -> None:
    day = _day(runtime)
    day.ledger_accounts((A, B, C), ("USD",))
    for k, (payer, payee, amount) in enumerate(BANXICO, start=1):
        assert day.obligation(k, DNS, payer, payee, amount).result["status"] == "accepted"
    day.settled_read_models()
    with connect_owner(db_url) as conn:
        cycle = rm.get_cycle(conn, DNS, 1)
        assert cycle is not None
        assert [(t["gross"], t["bilateral"], t["multilateral"]) for t in cycle["totals"]] == [
            (8300, 1700, 1300)
        ]
        positions = {
            r["participant_id"]: r["received"] - r["sent"] for r in rm.cycle_positions(conn, DNS, 1)
        }
        assert positions == {A: -400, B: 1300, C: -900}
    assert day.cut_off(DNS, 1).accepted
    unwound = day.unwind(DNS, 1, C)
    assert unwound.accepted, unwound.result
    assert unwound.result["debit_increases"] == [["USD", A, 400, 800]]
    settled = day.settle(DNS, 1)
    assert settled.accepted, settled.result
    day.settled_read_models()
    with connect_owner(db_url) as conn:
        instructions = rm.cycle_instructions(conn, DNS, 1)
        assert [
            (i["participant_id"], i["direction"], i["amount"], i["state"]) for i in instructions
        ] == [
            (A, "pay_in", 800, "posted"),
            (B, "pay_out", 800, "posted"),
        ]
        assert rm.get_cycle(conn, DNS, 1)["state"] == "settled"  # type: ignore[index]
        a = lrm.get_account(conn, account_of(A, "USD"))
        b = lrm.get_account(conn, account_of(B, "USD"))
        hub = lrm.get_account(conn, HUB["USD"])
        assert a is not None and b is not None and hub is not None
        assert a["debits_posted"] == 800 and b["credits_posted"] == 800
        assert hub["debits_posted"] == hub["credits_posted"] == 800
        # At the cut-off position, before the unwind: the frozen positions and instructions.
        cut = rm.get_cycle(conn, DNS, 1)["cut_position"]  # type: ignore[index]
        before = rm.cycle_instructions(conn, DNS, 1, as_of_position=cut)
        assert [(i["participant_id"], i["amount"], i["state"]) for i in before] == [
            (A, 400, "pending"),
            (C, 900, "pending"),
            (B, 1300, "pending"),
        ]
        then = rm.get_cycle(conn, DNS, 1, as_of_position=cut)
        assert then is not None and then["state"] == "cut_off"
        assert then["totals"][0]["multilateral"] == 1300
        tb = lrm.trial_balance(conn, 1)
        assert all(r["debits_posted"] == r["credits_posted"] for r in tb)


def test_a_queued_obligation_is_projected_and_released_into_the_positions(
    runtime: Runtime, db_url: str
) -> None:
    day = Day(runtime)
    for pid in (A, B, C):
        day.participant(pid, caps={"USD": "8.00"} if pid == C else {})
    day.scheme(DNS, "dns", (A, B, C))
    statuses = [
        day.obligation(k, DNS, payer, payee, amount).result["status"]
        for k, (payer, payee, amount) in enumerate(BANXICO, start=1)
    ]
    assert statuses == ["accepted"] * 5 + ["queued"]
    day.settled_read_models()
    with connect_owner(db_url) as conn:
        assert [q["obligation_id"] for q in rm.queue(conn, DNS, 1)] == [6]
        queued_at = day.last_position
    released = day.obligation(7, DNS, A, C, "1")
    assert released.result["released"] == [6]
    day.settled_read_models()
    with connect_owner(db_url) as conn:
        assert rm.queue(conn, DNS, 1) == []
        assert [q["obligation_id"] for q in rm.queue(conn, DNS, 1, as_of_position=queued_at)] == [6]
        positions = {
            r["participant_id"]: r["received"] - r["sent"] for r in rm.cycle_positions(conn, DNS, 1)
        }
        assert positions == {A: -500, B: 1300, C: -800}
        assert rm.get_obligation(conn, 6)["status"] == "released"  # type: ignore[index]
