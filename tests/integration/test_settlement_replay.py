"""A random settlement day: the read models at every past position equal the domain rebuilt
from the events up to there, a replay rebuilds them bit for bit, and the reports add up."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from commands.settlement import rebuild
from domain.settlement.cycle import Cycle
from eventstore.store import connect_owner
from ledgerline.runtime import Runtime, build_runtime
from readmodels import settlement as rm
from replay import settlement_reports
from replay.replay import replay
from tests.integration.settlement_fixtures import Day

PIDS = (21, 22, 23, 24, 25)
DNS, RTGS = 1, 2


@pytest.fixture
def runtime(db_url: str) -> Iterator[Runtime]:
    rt = build_runtime(db_url, sweep_interval_s=None, checkpoint_interval_s=None)
    try:
        yield rt
    finally:
        rt.close()


def _random_day(day: Day, seed: int) -> None:
    rnd = random.Random(seed)
    for pid in PIDS:
        day.participant(
            pid,
            caps={"USD": f"{rnd.randint(0, 60)}.00", "EUR": "40.00"},
            min_positions={"USD": f"-{rnd.randint(0, 40)}.00"},
        )
    day.scheme(DNS, "dns", PIDS, ("USD", "EUR"))
    day.scheme(RTGS, "rtgs", PIDS, ("USD",))
    oid = 1
    for step in range(70):
        scheme = rnd.choice((DNS, DNS, RTGS))
        payer, payee = rnd.sample(PIDS, 2)
        currency = rnd.choice(("USD", "EUR")) if scheme == DNS else "USD"
        day.obligation(
            oid, scheme, payer, payee, f"{rnd.randint(1, 30)}.{rnd.randint(0, 99):02d}", currency
        )
        oid += 1
        if step == 35:
            day.release(RTGS)
        if step == 45:
            assert day.cut_off(DNS, 1).accepted
            assert day.unwind(DNS, 1, PIDS[0]).accepted
    day.release(DNS)
    assert day.cut_off(RTGS, 1).accepted


def _cycle_at(db_url: str, runtime: Runtime, scheme_id: int, seq: int, p: int) -> Cycle | None:
    events = [
        e
        for batch in runtime.store.recorder.iter_all(10_000, upto_position=p)
        for e in batch
        if e.stream_id == f"cycle:{scheme_id}:{seq}"
    ]
    agg = rebuild(None, events)
    return agg if isinstance(agg, Cycle) else None


def test_every_past_position_reads_what_the_events_up_to_it_say(
    runtime: Runtime, db_url: str
) -> None:
    day = Day(runtime)
    _random_day(day, seed=7)
    day.settled_read_models()
    head = runtime.store.recorder.head().position
    checked = 0
    with connect_owner(db_url) as conn:
        for p in range(1, head + 1, 3):
            for scheme_id, seq in ((DNS, 1), (DNS, 2), (RTGS, 1)):
                cycle = _cycle_at(db_url, runtime, scheme_id, seq, p)
                row = rm.get_cycle(conn, scheme_id, seq, as_of_position=p)
                if cycle is None:
                    assert row is None
                    continue
                assert row is not None
                assert row["state"] == cycle.state
                assert row["unwound"] == cycle.unwound
                totals = {t["currency"]: t for t in row["totals"]}
                positions = rm.cycle_positions(conn, scheme_id, seq, as_of_position=p)
                for currency, book in cycle.books.items():
                    t = book.totals()
                    assert (
                        totals[currency]["gross"],
                        totals[currency]["bilateral"],
                        totals[currency]["multilateral"],
                    ) == (t.gross, t.bilateral, t.multilateral), (p, scheme_id, seq, currency)
                    projected = {
                        r["participant_id"]: r["received"] - r["sent"]
                        for r in positions
                        if r["currency"] == currency
                    }
                    assert {k: v for k, v in projected.items() if v} == {
                        k: v for k, v in book.positions().items() if v
                    }
                queue = rm.queue(conn, scheme_id, seq, as_of_position=p)
                for currency in cycle.currencies:
                    assert [q["obligation_id"] for q in queue if q["currency"] == currency] == [
                        q.obligation_id for q in cycle.queued(currency)
                    ], (p, scheme_id, seq, currency)
                checked += 1
    assert checked > 50


def test_a_replay_rebuilds_the_settlement_read_models_bit_for_bit(
    runtime: Runtime, db_url: str
) -> None:
    day = Day(runtime)
    _random_day(day, seed=11)
    day.settled_read_models()
    report = replay(runtime.store.recorder, db_url, check=True)
    assert report.ok, report.to_json()
    settlement_tables = [t for t in report.digests if t.startswith("settlement_")]
    assert len(settlement_tables) == len(rm.TABLE_KEYS)
    assert all(report.digests[t] == (report.live_digests or {})[t] for t in settlement_tables)


def test_the_netting_and_unwind_reports_agree_with_the_read_models(
    runtime: Runtime, db_url: str
) -> None:
    day = Day(runtime)
    _random_day(day, seed=13)
    day.settled_read_models()
    with connect_owner(db_url) as conn:
        netting = settlement_reports.netting(conn, "readmodels").to_pylist()
        stress = settlement_reports.unwind(conn, "readmodels").to_pylist()
        cycle = rm.get_cycle(conn, RTGS, 1)
        positions = rm.cycle_positions(conn, RTGS, 1)
    assert cycle is not None
    rtgs = [r for r in netting if r["cycle_id"] == f"{RTGS}-1"]
    assert {int(r["participant_id"]): int(r["net_minor"]) for r in rtgs} == {
        p["participant_id"]: p["received"] - p["sent"] for p in positions
    }
    assert all(int(r["funding_minor"]) == max(0, -int(r["net_minor"])) for r in netting)
    assert all(r["instruction_state"] == "pending" for r in rtgs if int(r["net_minor"]) != 0)
    # The stress view: unwinding a participant moves each counterparty by -b(x, j), and the
    # cycle's multilateral value afterwards is a fresh netting of the rest.
    for row in stress:
        assert int(row["net_after_minor"]) != int(row["net_before_minor"])
        assert int(row["debit_increase_minor"]) == max(
            0, int(row["debit_after_minor"]) - int(row["debit_before_minor"])
        )
    flagged = {(r["cycle_id"], r["currency"]) for r in stress if r["largest_net_debtor"]}
    assert flagged
