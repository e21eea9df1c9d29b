"""The settlement projection: cycles, totals, positions, pairs, queue and instructions.

Definition
    :class:`SettlementProjection` folds settlement events into the tables of
    :mod:`readmodels.settlement` inside the runner's (or Kafka worker's) transaction. For a
    batch it loads, in a few queries, the current rows the batch touches (cycles, totals,
    positions and pairs of the obligations it nets, queued obligations it releases), folds
    every event in position order, and writes each table with one statement.

Guarantees
    * Incremental: an obligation changes two positions, one pair and the cycle's totals, from
      their current values (B and M by the change of |b| and of the debits), never by
      recomputing from all obligations.
    * Each obligation row records when it was netted (``decided_position``) and when queued,
      so a cycle, its positions, pairs and queue at any past position are computed from the
      obligation rows by then (see :mod:`readmodels.settlement`), not from per-change copies.
    * Paired checks: at a cut-off and an unwind the projected totals (and, for an unwind, each
      survivor's new position) must equal what the event recorded; a difference stops the
      projection (``projection_failures``) instead of serving wrong numbers.
    * Each event's apply reads only rows of its own stream's keys (its cycle, scheme or
      participant), so Kafka partitions by stream id keep it exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from domain.settlement.events import (
    CycleAdvanced,
    CycleCutOff,
    CycleOpened,
    CycleSettled,
    ObligationAccepted,
    ObligationQueued,
    ParticipantAdmitted,
    ParticipantLimitsChanged,
    ParticipantRegistered,
    ParticipantStatusChanged,
    ParticipantUnwound,
    QueueReleased,
    SchemeCreated,
    SettlementEvent,
    decode_event,
)
from eventstore.model import StoredEvent
from readmodels import settlement as rm
from readmodels.schema import SCHEMA

Decoded = tuple[StoredEvent, SettlementEvent]
TABLE_KEYS = rm.TABLE_KEYS


class ProjectionMismatch(ValueError):
    """The projected state disagrees with what an event recorded: stop, do not serve it."""


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


_LONG_INT = re.compile(rb"[0-9]{20}")


def loads_deep_exact(payload: bytes) -> dict[str, Any]:
    """orjson when every number fits 64 bits; the exact parser when a number has 20 digits or
    more (ids go up to 2^127: orjson would read those as floats). Settlement payloads hold
    no floats, and no digits inside strings other than dates, references and currencies."""
    if _LONG_INT.search(payload):
        value: dict[str, Any] = json.loads(payload)
    else:
        value = orjson.loads(payload)
    return value


def decode(events: Sequence[StoredEvent]) -> list[Decoded]:
    return [
        (e, decode_event(e.topic, loads_deep_exact(e.payload)))
        for e in events
        if e.topic.startswith("settlement.")
    ]


class _Fold:
    """The rows one batch touches, loaded up front (hot path) or on first use (rare events)."""

    def __init__(self, cur: psycopg.Cursor[Any], schema: str, batch: Sequence[Decoded]) -> None:
        self.cur = cur
        self.schema = schema
        self.changes = rm.Changes()
        self._preload(batch)

    # ------------------------------------------------------------------ loading

    def _preload(self, batch: Sequence[Decoded]) -> None:
        participants: set[int] = set()
        schemes: set[int] = set()
        cycles: set[rm.Key] = set()
        referenced: set[int] = set()
        created: set[int] = set()
        for _, ev in batch:
            if isinstance(ev, ParticipantLimitsChanged | ParticipantStatusChanged):
                participants.add(ev.participant_id)
            elif isinstance(ev, CycleAdvanced | ParticipantAdmitted):
                schemes.add(ev.scheme_id)
            if hasattr(ev, "seq") and not isinstance(ev, CycleAdvanced):
                cycles.add((ev.scheme_id, ev.seq))  # type: ignore[attr-defined]
            if isinstance(ev, ObligationAccepted | ObligationQueued):
                created.add(ev.obligation_id)
                referenced.update(ev.released)
            elif isinstance(ev, QueueReleased):
                referenced.update(ev.released)
            elif isinstance(ev, CycleCutOff):
                for ids in (*ev.released.values(), *ev.dropped.values()):
                    referenced.update(ids)
        cur, schema = self.cur, self.schema
        self.participants = rm.load_participants(cur, participants, schema)
        self.schemes = rm.load_schemes(cur, schemes, schema)
        self.cycles = rm.load_cycles(cur, cycles, schema)
        self.obligations = rm.load_obligations(cur, referenced - created, schema)
        self._preload_netting(batch)

    def _preload_netting(self, batch: Sequence[Decoded]) -> None:
        """Second round: the totals, positions and pairs the batch's obligations net into."""
        totals: set[rm.Key] = set()
        positions: set[rm.Key] = set()
        pairs: set[rm.Key] = set()

        def netting(scheme: int, seq: int, currency: str, payer: int, payee: int) -> None:
            positions.add((scheme, seq, currency, payer))
            positions.add((scheme, seq, currency, payee))
            pairs.add((scheme, seq, currency, payer, payee))
            pairs.add((scheme, seq, currency, payee, payer))

        def released(ids: Sequence[int]) -> None:
            for oid in ids:
                o = self.obligations.get(oid)
                if o is not None:
                    netting(o.scheme_id, o.seq, o.currency, o.payer_id, o.payee_id)

        for _, ev in batch:
            if isinstance(ev, ObligationAccepted | ObligationQueued):
                totals.add((ev.scheme_id, ev.seq, ev.currency))
                # queued now, perhaps released later in the same batch
                netting(ev.scheme_id, ev.seq, ev.currency, ev.payer_id, ev.payee_id)
                released(ev.released)
            elif isinstance(ev, CycleCutOff | QueueReleased | ParticipantUnwound):
                for currency in self._currencies(ev.scheme_id, ev.seq):
                    totals.add((ev.scheme_id, ev.seq, currency))
                if isinstance(ev, QueueReleased):
                    released(ev.released)
                elif isinstance(ev, CycleCutOff):
                    for ids in ev.released.values():
                        released(ids)
        cur, schema = self.cur, self.schema
        self.totals = rm.load_totals(cur, totals, schema)
        self.positions = rm.load_positions(cur, positions, schema)
        self.pairs = rm.load_pairs(cur, pairs, schema)

    def _currencies(self, scheme_id: int, seq: int) -> list[str]:
        cycle = self.cycles.get((scheme_id, seq))
        return json.loads(cycle.currencies) if cycle is not None else []

    def cycle(self, scheme_id: int, seq: int) -> rm.CycleRow:
        return self.cycles[(scheme_id, seq)]

    def total(self, key: rm.Key) -> rm.TotalsRow:
        row = self.totals.get(key)
        if row is None:
            row = self.totals[key] = rm.TotalsRow(key[0], key[1], key[2], 0, 0, 0, 0, 0, 0)
        return row

    def position(self, key: rm.Key) -> rm.PositionRow:
        row = self.positions.get(key)
        if row is None:
            row = self.positions[key] = rm.PositionRow(key[0], key[1], key[2], key[3], 0, 0, 0)
        return row

    def pair(self, key: rm.Key) -> rm.PairRow:
        row = self.pairs.get(key)
        if row is None:
            row = self.pairs[key] = rm.PairRow(key[0], key[1], key[2], key[3], key[4], 0, 0)
        return row

    # ------------------------------------------------------------------ recording

    def _totals_changed(self, row: rm.TotalsRow, pos: int, at: int) -> None:
        row.last_position = pos
        self.changes.totals[(row.scheme_id, row.seq, row.currency)] = row

    def _position_changed(self, row: rm.PositionRow, pos: int, at: int) -> None:
        row.last_position = pos
        self.changes.positions[(row.scheme_id, row.seq, row.currency, row.participant_id)] = row

    def _pair_changed(self, row: rm.PairRow, pos: int, at: int) -> None:
        row.last_position = pos
        key = (row.scheme_id, row.seq, row.currency, row.payer_id, row.payee_id)
        self.changes.pairs[key] = row

    def _cycle_changed(self, row: rm.CycleRow, pos: int) -> None:
        row.last_position = pos
        self.changes.cycles[(row.scheme_id, row.seq)] = row

    # ------------------------------------------------------------------ netting

    def net(self, o: rm.ObligationRow, pos: int, at: int) -> None:
        """Net one obligation into its pair, both positions and the totals: O(1)."""
        cyc = (o.scheme_id, o.seq, o.currency)
        total = self.total(cyc)
        forward = self.pair((*cyc, o.payer_id, o.payee_id))
        backward = self.pair((*cyc, o.payee_id, o.payer_id))
        a = o.amount
        total.bilateral += abs(forward.gross + a - backward.gross) - abs(
            forward.gross - backward.gross
        )
        total.gross += a
        forward.gross += a
        self._pair_changed(forward, pos, at)
        payer = self.position((*cyc, o.payer_id))
        payee = self.position((*cyc, o.payee_id))
        self._move(total, payer, sent=a)
        self._move(total, payee, received=a)
        self._position_changed(payer, pos, at)
        self._position_changed(payee, pos, at)

    @staticmethod
    def _move(total: rm.TotalsRow, row: rm.PositionRow, sent: int = 0, received: int = 0) -> None:
        before = row.received - row.sent
        row.sent += sent
        row.received += received
        after = row.received - row.sent
        total.multilateral += max(0, -after) - max(0, -before)

    def release(self, oid: int, pos: int, at: int) -> rm.ObligationRow:
        o = self.obligations[oid]
        o.status = "released"
        o.decided_position = pos
        self.changes.obligations[oid] = o
        total = self.total((o.scheme_id, o.seq, o.currency))
        total.queued -= 1
        total.accepted += 1
        self.net(o, pos, at)
        self._totals_changed(total, pos, at)
        return o

    # ------------------------------------------------------------------ events

    def apply(self, stored: StoredEvent, ev: SettlementEvent) -> None:
        handler = _HANDLERS.get(type(ev))
        if handler is not None:
            handler(self, stored.position, stored.recorded_at_ns, ev)

    def on_registered(self, pos: int, at: int, ev: ParticipantRegistered) -> None:
        row = rm.ParticipantRow(
            ev.participant_id,
            ev.name,
            "active",
            _j(ev.accounts),
            _j(ev.caps_minor),
            _j(ev.min_positions_minor),
            _j(ev.max_positions_minor),
            pos,
            pos,
        )
        self.participants[ev.participant_id] = self.changes.participants[ev.participant_id] = row

    def on_limits(self, pos: int, at: int, ev: ParticipantLimitsChanged) -> None:
        row = self.participants[ev.participant_id]
        row.caps = _j(ev.caps_minor)
        row.min_positions = _j(ev.min_positions_minor)
        row.max_positions = _j(ev.max_positions_minor)
        row.last_position = pos
        self.changes.participants[ev.participant_id] = row

    def on_status(self, pos: int, at: int, ev: ParticipantStatusChanged) -> None:
        row = self.participants[ev.participant_id]
        row.status = ev.status
        row.last_position = pos
        self.changes.participants[ev.participant_id] = row

    def on_scheme(self, pos: int, at: int, ev: SchemeCreated) -> None:
        row = rm.SchemeRow(
            ev.scheme_id,
            ev.name,
            ev.mode,
            _j(ev.currencies),
            _j(ev.settlement_accounts),
            _j(ev.cut_off_times_s),
            1,
            pos,
            pos,
        )
        self.schemes[ev.scheme_id] = self.changes.schemes[ev.scheme_id] = row
        for pid in ev.participants:
            self.changes.members[(ev.scheme_id, pid)] = rm.MemberRow(ev.scheme_id, pid, pos)

    def on_admitted(self, pos: int, at: int, ev: ParticipantAdmitted) -> None:
        key = (ev.scheme_id, ev.participant_id)
        self.changes.members[key] = rm.MemberRow(ev.scheme_id, ev.participant_id, pos)

    def on_advanced(self, pos: int, at: int, ev: CycleAdvanced) -> None:
        row = self.schemes[ev.scheme_id]
        row.open_seq = ev.open_seq
        row.last_position = pos
        self.changes.schemes[ev.scheme_id] = row

    def on_opened(self, pos: int, at: int, ev: CycleOpened) -> None:
        row = rm.CycleRow(
            ev.scheme_id,
            ev.seq,
            ev.mode,
            "open",
            _j(ev.currencies),
            ev.value_date,
            ev.cut_off_at_ns,
            pos,
            ev.opened_at_ns,
            None,
            None,
            None,
            None,
            None,
            None,
            "[]",
            "[]",
            pos,
        )
        self.cycles[(ev.scheme_id, ev.seq)] = row
        self._cycle_changed(row, pos)
        for currency in ev.currencies:
            self._totals_changed(self.total((ev.scheme_id, ev.seq, currency)), pos, at)

    def on_obligation(self, pos: int, at: int, ev: ObligationAccepted | ObligationQueued) -> None:
        queued = isinstance(ev, ObligationQueued)
        o = rm.ObligationRow(
            ev.obligation_id,
            ev.scheme_id,
            ev.seq,
            ev.payer_id,
            ev.payee_id,
            ev.currency,
            ev.amount_minor,
            ev.value_date,
            ev.reference,
            "queued" if queued else "accepted",
            ev.reason if isinstance(ev, ObligationQueued) else "",
            pos,
            at,
            None if queued else pos,
        )
        self.obligations[o.obligation_id] = self.changes.obligations[o.obligation_id] = o
        total = self.total((ev.scheme_id, ev.seq, ev.currency))
        if queued:
            total.queued += 1
        else:
            total.accepted += 1
            self.net(o, pos, at)
        self._totals_changed(total, pos, at)
        for oid in ev.released:
            self.release(oid, pos, at)

    def on_released(self, pos: int, at: int, ev: QueueReleased) -> None:
        for oid in ev.released:
            self.release(oid, pos, at)

    def on_cut_off(self, pos: int, at: int, ev: CycleCutOff) -> None:
        for currency in sorted(ev.released):
            for oid in ev.released[currency]:
                self.release(oid, pos, at)
        for currency in sorted(ev.dropped):
            total = self.total((ev.scheme_id, ev.seq, currency))
            for oid in ev.dropped[currency]:
                o = self.obligations[oid]
                o.status = "dropped"
                o.decided_position = pos
                self.changes.obligations[oid] = o
                total.queued -= 1
            self._totals_changed(total, pos, at)
        for currency, recorded in ev.totals.items():
            total = self.total((ev.scheme_id, ev.seq, currency))
            mine = {
                "gross": total.gross,
                "bilateral": total.bilateral,
                "multilateral": total.multilateral,
            }
            if mine != recorded:
                raise ProjectionMismatch(
                    f"cycle {ev.scheme_id}-{ev.seq} {currency}: projected {mine}, "
                    f"the cut-off recorded {recorded}"
                )
            for pid, n in ev.positions[currency]:
                if n:
                    self._instruction(ev.scheme_id, ev.seq, currency, pid, n, pos)
        row = self.cycle(ev.scheme_id, ev.seq)
        row.state = "cut_off"
        row.cut_position = pos
        row.cut_at_ns = ev.at_ns
        row.cut_trigger = ev.trigger
        row.cut_breaches = row.breaches = _j(ev.breaches)
        self._cycle_changed(row, pos)

    def _instruction(
        self, scheme_id: int, seq: int, currency: str, pid: int, n: int, pos: int
    ) -> None:
        key = (scheme_id, seq, currency, pid, pos)
        self.changes.instructions[key] = rm.InstructionRow(
            *key[:4],
            pos,
            None,
            "pay_in" if n < 0 else "pay_out",
            abs(n),
            "pending",
            None,
            None,
            None,
        )

    def _supersede(
        self, scheme_id: int, seq: int, pos: int, only: set[tuple[str, int]] | None
    ) -> None:
        current = rm.load_current_instructions(self.cur, scheme_id, seq, self.schema)
        current.update(
            {k: v for k, v in self.changes.instructions.items() if k[:2] == (scheme_id, seq)}
        )
        for key, row in current.items():
            if row.valid_to is None and (
                only is None or (row.currency, row.participant_id) in only
            ):
                row.valid_to = pos
                self.changes.instructions[key] = row

    def on_unwound(self, pos: int, at: int, ev: ParticipantUnwound) -> None:
        x = ev.participant_id
        pairs = rm.load_pairs_of(self.cur, ev.scheme_id, ev.seq, x, self.schema)
        for key, pair in pairs.items():
            self.pairs.setdefault(key, pair)
        keys = {(k[0], k[1], k[2], k[3 if k[4] == x else 4]) for k in pairs}
        keys |= {(ev.scheme_id, ev.seq, c, x) for c in self._currencies(ev.scheme_id, ev.seq)}
        loaded = rm.load_positions(self.cur, keys - set(self.positions), self.schema)
        self.positions.update(loaded)
        moved: set[tuple[str, int]] = set()
        for currency in self._currencies(ev.scheme_id, ev.seq):
            moved |= self._remove(ev, currency, pos, at)
        for currency, pid, _before, after in ev.changes:
            row = self.position((ev.scheme_id, ev.seq, currency, pid))
            if row.received - row.sent != after:
                raise ProjectionMismatch(
                    f"unwind of {x}: participant {pid} projected at {row.received - row.sent}, "
                    f"the event recorded {after}"
                )
        self._supersede(ev.scheme_id, ev.seq, pos, moved)
        for currency, pid in sorted(moved):
            row = self.position((ev.scheme_id, ev.seq, currency, pid))
            n = row.received - row.sent
            if n:
                self._instruction(ev.scheme_id, ev.seq, currency, pid, n, pos)
        cycle = self.cycle(ev.scheme_id, ev.seq)
        cycle.unwound = _j([*json.loads(cycle.unwound), x])
        cycle.breaches = _j(ev.breaches)
        self._cycle_changed(cycle, pos)
        self.changes.unwinds[(ev.scheme_id, ev.seq, x)] = rm.UnwindRow(
            ev.scheme_id,
            ev.seq,
            x,
            pos,
            ev.at_ns,
            _j(ev.removed_gross),
            _j(ev.changes),
            _j(ev.debit_increases),
            _j(ev.totals),
            _j(ev.breaches),
        )

    def _remove(
        self, ev: ParticipantUnwound, currency: str, pos: int, at: int
    ) -> set[tuple[str, int]]:
        """Delete every obligation to or from the defaulter in one currency; O(its pairs)."""
        x = ev.participant_id
        cyc = (ev.scheme_id, ev.seq, currency)
        total = self.total(cyc)
        mine = self.position((*cyc, x))
        others = sorted(
            {k[4] if k[3] == x else k[3] for k in self.pairs if k[:3] == cyc and x in k[3:]}
        )
        moved = {(currency, x)}
        for other in others:
            out_row = self.pair((*cyc, x, other))
            in_row = self.pair((*cyc, other, x))
            o_xj, o_jx = out_row.gross, in_row.gross
            if not (o_xj or o_jx):
                continue
            total.bilateral -= abs(o_xj - o_jx)
            total.gross -= o_xj + o_jx
            theirs = self.position((*cyc, other))
            self._move(total, theirs, sent=-o_jx, received=-o_xj)
            self._move(total, mine, sent=-o_xj, received=-o_jx)
            for pair in (out_row, in_row):
                if pair.gross:
                    pair.gross = 0
                    self._pair_changed(pair, pos, at)
            self._position_changed(theirs, pos, at)
            moved.add((currency, other))
        self._position_changed(mine, pos, at)
        self._totals_changed(total, pos, at)
        recorded = ev.totals[currency]
        projected = {
            "gross": total.gross,
            "bilateral": total.bilateral,
            "multilateral": total.multilateral,
        }
        if projected != recorded:
            raise ProjectionMismatch(
                f"unwind of {x} from {ev.scheme_id}-{ev.seq} {currency}: projected "
                f"{projected}, the event recorded {recorded}"
            )
        return moved

    def on_settled(self, pos: int, at: int, ev: CycleSettled) -> None:
        self._supersede(ev.scheme_id, ev.seq, pos, None)
        for ins in ev.instructions:
            key = (ev.scheme_id, ev.seq, ins["currency"], ins["participant_id"], pos)
            self.changes.instructions[key] = rm.InstructionRow(
                *key[:4],
                pos,
                None,
                ins["direction"],
                ins["amount_minor"],
                "posted",
                ins["debit_account_id"],
                ins["credit_account_id"],
                ins["transfer_id"],
            )
        row = self.cycle(ev.scheme_id, ev.seq)
        row.state = "settled"
        row.settled_position = pos
        row.settled_at_ns = ev.at_ns
        self._cycle_changed(row, pos)


_HANDLERS: dict[type, Any] = {
    ParticipantRegistered: _Fold.on_registered,
    ParticipantLimitsChanged: _Fold.on_limits,
    ParticipantStatusChanged: _Fold.on_status,
    SchemeCreated: _Fold.on_scheme,
    ParticipantAdmitted: _Fold.on_admitted,
    CycleAdvanced: _Fold.on_advanced,
    CycleOpened: _Fold.on_opened,
    ObligationAccepted: _Fold.on_obligation,
    ObligationQueued: _Fold.on_obligation,
    QueueReleased: _Fold.on_released,
    CycleCutOff: _Fold.on_cut_off,
    ParticipantUnwound: _Fold.on_unwound,
    CycleSettled: _Fold.on_settled,
}


class SettlementProjection:
    """The settlement read models, for the in-process runner and the Kafka workers alike."""

    name = "settlement"

    def __init__(self, schema: str = SCHEMA) -> None:
        self.schema = schema

    def apply(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        batch = decode(events)
        if not batch:
            return
        fold = _Fold(cur, self.schema, batch)
        for stored, ev in batch:
            fold.apply(stored, ev)
        rm.write_changes(cur, fold.changes, self.schema)
