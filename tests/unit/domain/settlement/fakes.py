"""A dict-backed SettlementSource that behaves like the command processor's unit of work.

Aggregates with immutable state are handed out as clones (a rejection drops them); an
aggregate that ``MUTATES_IN_PLACE`` (a cycle) is handed out itself, and ``rollback`` checks
the contract that makes that safe: a rejected command triggered nothing on it.
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.settlement.cycle import Cycle
from domain.settlement.cycle import stream_id as cycle_stream
from domain.settlement.participant import Participant
from domain.settlement.participant import stream_id as participant_stream
from domain.settlement.scheme import Scheme
from domain.settlement.scheme import stream_id as scheme_stream


class FakeSettlement:
    def __init__(self) -> None:
        self.committed: dict[str, Aggregate] = {}
        self.history: dict[str, list[Any]] = {}
        self.touched: dict[str, Aggregate] = {}

    # SettlementSource
    def get_participant(self, participant_id: int) -> Participant | None:
        agg = self._get(participant_stream(participant_id))
        return agg if isinstance(agg, Participant) else None

    def get_scheme(self, scheme_id: int) -> Scheme | None:
        agg = self._get(scheme_stream(scheme_id))
        return agg if isinstance(agg, Scheme) else None

    def get_cycle(self, scheme_id: int, seq: int) -> Cycle | None:
        agg = self._get(cycle_stream(scheme_id, seq))
        return agg if isinstance(agg, Cycle) else None

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate

    def _get(self, stream_id: str) -> Aggregate | None:
        if stream_id in self.touched:
            return self.touched[stream_id]
        base = self.committed.get(stream_id)
        if base is None:
            return None
        agg = base if getattr(base, "MUTATES_IN_PLACE", False) else base.clone()
        self.touched[stream_id] = agg
        return agg

    # unit of work
    def commit(self) -> list[Any]:
        events: list[Any] = []
        for stream_id, agg in self.touched.items():
            new = agg.collect_events()
            self.history.setdefault(stream_id, []).extend(new)
            events.extend(new)
            self.committed[stream_id] = agg
        self.touched = {}
        return events

    def rollback(self) -> None:
        for stream_id, agg in self.touched.items():
            if getattr(agg, "MUTATES_IN_PLACE", False) and stream_id in self.committed:
                invariant(
                    not agg.collect_events(),
                    f"a rejected command changed {stream_id}, which mutates in place",
                )
        self.touched = {}

    # helpers for tests
    def cycle(self, scheme_id: int, seq: int) -> Cycle:
        agg = self.committed[cycle_stream(scheme_id, seq)]
        assert isinstance(agg, Cycle)
        return agg

    def participant(self, participant_id: int) -> Participant:
        agg = self.committed[participant_stream(participant_id)]
        assert isinstance(agg, Participant)
        return agg

    def scheme(self, scheme_id: int) -> Scheme:
        agg = self.committed[scheme_stream(scheme_id)]
        assert isinstance(agg, Scheme)
        return agg

    def replayed(self, stream_id: str) -> Aggregate:
        """A fresh aggregate rebuilt from the stream's recorded events."""
        events = self.history[stream_id]
        kind, _, rest = stream_id.partition(":")
        fresh: Aggregate
        if kind == "cycle":
            scheme, seq = rest.split(":")
            fresh = Cycle(int(scheme), int(seq))
        elif kind == "scheme":
            fresh = Scheme(int(rest))
        else:
            fresh = Participant(int(rest))
        return fresh.replay(events)
