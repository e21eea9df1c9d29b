"""Random days of two schemes (DNS with caps, RTGS with bounds): every rule and invariant holds.

After every step: each book's identities (recomputed), no open DNS position past its cap, no
RTGS position outside its bounds, each cycle equal to a fresh netting of the obligations it
accepted (without the unwound participants), each stream's events replay (through JSON) to
the same state, and snapshot + tail = the whole history. Rejected commands change nothing.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.settlement import errors as e
from domain.settlement import service
from domain.settlement.cycle import Cycle, ObligationSpec
from domain.settlement.events import (
    CycleCutOff,
    ObligationAccepted,
    ObligationQueued,
    QueueReleased,
    decode_event,
)
from domain.settlement.netting import net_from_scratch
from domain.settlement.participant import Participant, ParticipantSpec
from domain.settlement.scheme import Scheme, SchemeSpec
from tests.unit.domain.settlement.fakes import FakeSettlement

T0 = 1_700_000_000_000_000_000
DNS, RTGS = 1, 2
PIDS = st.integers(1, 5)
AMOUNTS = st.integers(1, 60)
CURRENCIES = ("USD", "EUR")


def _restore(stream_id: str, version: int, state: dict[str, Any]) -> Any:
    kind = stream_id.split(":", 1)[0]
    cls = {"cycle": Cycle, "scheme": Scheme, "participant": Participant}[kind]
    return cls.from_snapshot(stream_id, version, state)


def _fresh(stream_id: str) -> Any:
    kind, _, rest = stream_id.partition(":")
    if kind == "cycle":
        scheme, seq = rest.split(":")
        return Cycle(int(scheme), int(seq))
    return Scheme(int(rest)) if kind == "scheme" else Participant(int(rest))


def _through_json(event: Any) -> Any:
    payload = json.loads(json.dumps(event.to_payload(), sort_keys=True))
    return decode_event(event.TOPIC, payload)


class SettlementDay(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.src = FakeSettlement()
        self.next_id = 1
        self.obligations: dict[int, tuple[int, int, str, int]] = {}
        self.snapshots: list[tuple[str, int, dict[str, Any], int]] = []
        self.caps: dict[int, int | None] = {}
        self.bounds: dict[int, tuple[int, int | None]] = {}

    @initialize(
        caps=st.lists(st.one_of(st.none(), st.integers(0, 80)), min_size=5, max_size=5),
        mins=st.lists(st.integers(-80, 0), min_size=5, max_size=5),
        maxs=st.lists(st.one_of(st.none(), st.integers(0, 80)), min_size=5, max_size=5),
    )
    def open_the_day(self, caps: list[int | None], mins: list[int], maxs: list[int | None]) -> None:
        for pid in range(1, 6):
            cap, low, high = caps[pid - 1], mins[pid - 1], maxs[pid - 1]
            self.caps[pid] = cap
            self.bounds[pid] = (low, high)
            spec = ParticipantSpec(
                pid,
                f"bank {pid}",
                {"USD": pid * 10 + 1, "EUR": pid * 10 + 2},
                dict.fromkeys(CURRENCIES, cap) if cap is not None else {},
                dict.fromkeys(CURRENCIES, low),
                dict.fromkeys(CURRENCIES, high) if high is not None else {},
            )
            service.register_participant(self.src, spec, T0)
        self.src.commit()
        members = (1, 2, 3, 4, 5)
        for scheme_id, mode in ((DNS, "dns"), (RTGS, "rtgs")):
            spec = SchemeSpec(
                scheme_id, "s", mode, {"USD": 900 + scheme_id, "EUR": 910 + scheme_id}, (), members
            )
            service.create_scheme(self.src, spec, T0)
            self.src.commit()

    # ------------------------------------------------------------------ helpers

    def _run(self, action: Any) -> Any:
        before = {
            sid: (agg.version, agg.to_snapshot())  # type: ignore[attr-defined]
            for sid, agg in self.src.committed.items()
        }
        try:
            result = action()
        except e.SettlementRejection as exc:
            self.src.rollback()
            result = exc
        else:
            self.src.commit()
            return result
        after = {
            sid: (agg.version, agg.to_snapshot())  # type: ignore[attr-defined]
            for sid, agg in self.src.committed.items()
        }
        assert after == before, f"{result.code} changed state"
        return result

    def _cycles(self) -> list[Cycle]:
        return [a for a in self.src.committed.values() if isinstance(a, Cycle)]

    def _open(self, scheme_id: int) -> Cycle:
        return self.src.cycle(scheme_id, self.src.scheme(scheme_id).open_seq)

    def _fits_alone(self, scheme_id: int, payer: int, payee: int, cur: str, amount: int) -> bool:
        book = self._open(scheme_id).books[cur]
        if scheme_id == DNS:
            cap = self.caps[payer]
            return cap is None or book.position(payer) - amount >= -cap
        low, high = self.bounds[payer][0], self.bounds[payee][1]
        return book.position(payer) - amount >= low and (
            high is None or book.position(payee) + amount <= high
        )

    # ------------------------------------------------------------------ rules

    @rule(
        scheme_id=st.sampled_from([DNS, RTGS]),
        payer=PIDS,
        payee=PIDS,
        amount=AMOUNTS,
        currency=st.sampled_from(CURRENCIES),
    )
    def submit(self, scheme_id: int, payer: int, payee: int, amount: int, currency: str) -> None:
        oid = self.next_id
        self.next_id += 1
        fits = payer != payee and self._fits_alone(scheme_id, payer, payee, currency, amount)
        spec = ObligationSpec(oid, scheme_id, payer, payee, currency, amount)
        result = self._run(lambda: service.submit_obligation(self.src, spec, T0))
        if payer == payee:
            assert isinstance(result, e.PayerMustDifferFromPayee)
            return
        if isinstance(result, e.ParticipantDefaulted):
            return
        assert not isinstance(result, e.SettlementRejection), result
        self.obligations[oid] = (payer, payee, currency, amount)
        # A payment that fits alone is accepted at once (CHIPS, DTC); one that does not is
        # queued, or (RTGS) released at once with the queued payments it offsets.
        assert (result.status == "accepted") == fits
        last = self.src.history[result.cycle.id][-1]
        assert isinstance(last, ObligationAccepted if fits else ObligationQueued)

    @rule(scheme_id=st.sampled_from([DNS, RTGS]))
    def release(self, scheme_id: int) -> None:
        result = self._run(lambda: service.release(self.src, scheme_id, T0))
        assert not isinstance(result, e.SettlementRejection)

    @rule(scheme_id=st.sampled_from([DNS, RTGS]))
    def cut_off(self, scheme_id: int) -> None:
        result = self._run(lambda: service.cut_off(self.src, scheme_id, None, T0))
        assert not isinstance(result, e.SettlementRejection)
        event = result[0]
        assert isinstance(event, CycleCutOff)
        if scheme_id == DNS:
            # Nothing accepted ever breaches a cap, so a cut-off without unwinds finds none.
            assert event.breaches == []

    @rule(seq=st.integers(1, 4), pid=PIDS)
    def unwind(self, seq: int, pid: int) -> None:
        self._run(lambda: service.unwind(self.src, DNS, seq, pid, T0))

    @rule(scheme_id=st.sampled_from([DNS, RTGS]), seq=st.integers(1, 4))
    def settle(self, scheme_id: int, seq: int) -> None:
        def go() -> None:
            cycle, instructions = service.plan_settlement(self.src, scheme_id, seq)
            cycle.settle(instructions, T0)

        self._run(go)

    @precondition(lambda self: len(self.src.committed) > 0)
    @rule(data=st.data())
    def take_a_snapshot(self, data: st.DataObject) -> None:
        stream_id = data.draw(st.sampled_from(sorted(self.src.committed)))
        agg = self.src.committed[stream_id]
        self.snapshots.append(
            (stream_id, agg.version, agg.to_snapshot(), len(self.src.history[stream_id]))  # type: ignore[attr-defined]
        )

    # ------------------------------------------------------------------ invariants

    @invariant()
    def every_book_keeps_its_identities(self) -> None:
        for cycle in self._cycles():
            for book in cycle.books.values():
                book.verify()

    @invariant()
    def no_open_dns_position_is_past_its_cap(self) -> None:
        for cycle in self._cycles():
            if cycle.mode != "dns" or cycle.state != "open":
                continue
            for book in cycle.books.values():
                for pid, n in book.positions().items():
                    cap = self.caps[pid]
                    assert cap is None or -n <= cap

    @invariant()
    def no_rtgs_position_crosses_its_bounds(self) -> None:
        for cycle in self._cycles():
            if cycle.mode != "rtgs":
                continue
            for book in cycle.books.values():
                for pid, n in book.positions().items():
                    low, high = self.bounds[pid]
                    assert low <= n and (high is None or n <= high)

    @invariant()
    def each_cycle_equals_a_fresh_netting_of_what_it_accepted(self) -> None:
        for cycle in self._cycles():
            accepted: dict[str, list[int]] = {}
            for ev in self.src.history[cycle.id]:
                ids: list[int] = []
                if isinstance(ev, ObligationAccepted):
                    ids = [ev.obligation_id, *ev.released]
                elif isinstance(ev, ObligationQueued | QueueReleased):
                    ids = list(ev.released)
                elif isinstance(ev, CycleCutOff):
                    ids = [i for c in ev.released.values() for i in c]
                for oid in ids:
                    accepted.setdefault(self.obligations[oid][2], []).append(oid)
            queued = {q.obligation_id for c in cycle.currencies for q in cycle.queued(c)}
            for currency in cycle.currencies:
                triples = [
                    (self.obligations[i][0], self.obligations[i][1], self.obligations[i][3])
                    for i in accepted.get(currency, [])
                ]
                triples = [t for t in triples if not set(t[:2]) & set(cycle.unwound)]
                fresh = net_from_scratch(triples)
                book = cycle.books[currency]
                assert book.totals() == fresh.totals()
                live = {p: n for p, n in book.positions().items() if n}
                assert live == {p: n for p, n in fresh.positions().items() if n}
            assert not queued & {i for ids in accepted.values() for i in ids}

    @invariant()
    def every_stream_replays_through_json_to_the_same_state(self) -> None:
        for stream_id, agg in self.src.committed.items():
            fresh = _fresh(stream_id).replay(
                _through_json(ev) for ev in self.src.history[stream_id]
            )
            assert fresh.version == agg.version
            assert fresh.to_snapshot() == agg.to_snapshot()  # type: ignore[attr-defined]

    @invariant()
    def a_snapshot_and_its_tail_equal_the_whole_history(self) -> None:
        for stream_id, version, state, seen in self.snapshots[-3:]:
            restored = _restore(stream_id, version, json.loads(json.dumps(state)))
            restored.replay(self.src.history[stream_id][seen:])
            live = self.src.committed[stream_id]
            assert restored.version == live.version
            assert restored.to_snapshot() == live.to_snapshot()  # type: ignore[attr-defined]


SettlementDay.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_settlement_day = SettlementDay.TestCase
