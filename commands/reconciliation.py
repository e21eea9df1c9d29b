"""Reconciliation commands and their handler: the application service.

One command, ``reconciliation.reconcile``: the statements of one file, each with the facts the
ledger's read model gave about its nostro account (see
:class:`domain.reconciliation.service.LedgerFacts`), reconciled in one unit of work (all of
them or none). Its id is ``reconciliation:<digest of the reconciliation ids>`` and its payload
names the reconciliation ids (each derived from a statement's content, its account and the
date tolerance): the same file sent again is answered with the first outcome, and a
reconciliation already recorded (alone or in another file) is answered as it was recorded,
whatever the ledger holds now. Rejections are about the request, so none is recorded: the same
statement may be sent again once its account exists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from commands.context import CommandContext
from commands.processor import Command, UnitOfWork, canonical_json
from domain.aggregate import Aggregate
from domain.reconciliation import errors as e
from domain.reconciliation import service
from domain.reconciliation.events import (
    ReconciliationEvent,
    ReconciliationOpened,
    decode_event,
)
from domain.reconciliation.reconciliation import (
    PREFIX,
    Reconciliation,
    reconciliation_id,
    stream_id,
)
from domain.reconciliation.statement import Statement
from eventstore.model import StoredEvent

COMMAND_TYPE = "reconciliation.reconcile"


@dataclass(frozen=True, slots=True)
class Reconcile:
    statements: tuple[tuple[Statement, service.LedgerFacts], ...]
    date_tolerance_days: int = service.DEFAULT_TOLERANCE_DAYS

    def reconciliation_ids(self) -> list[str]:
        return [
            reconciliation_id(
                s.digest(), f.account.account_id if f.account else 0, self.date_tolerance_days
            )
            for s, f in self.statements
        ]


def reconcile_command(cmd: Reconcile) -> Command:
    rids = cmd.reconciliation_ids()
    digest = hashlib.sha256(",".join(rids).encode()).hexdigest()[:32]
    payload = {"reconciliation_ids": rids, "date_tolerance_days": cmd.date_tolerance_days}
    return Command.create(f"reconciliation:{digest}", COMMAND_TYPE, cmd, payload)


class NotRecorded(Exception):
    """A refusal of the request: answered, not logged; the same statement may come again."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


class _Source:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def get_reconciliation(self, rid: str) -> Reconciliation | None:
        agg = self._uow.get(stream_id(rid))
        return agg if isinstance(agg, Reconciliation) else None

    def add(self, aggregate: Reconciliation) -> None:
        self._uow.add(aggregate)


def summary(rec: Reconciliation, statement: Statement, recorded: bool) -> dict[str, Any]:
    counts = dict(rec.counts)
    return {
        "id": rec.reconciliation_id,
        "account_id": rec.account_id,
        "statement_id": statement.statement_id,
        "period_from": rec.period[0],
        "period_to": rec.period[1],
        "counts": counts,
        "breaks": service.breaks(counts),
        "recorded": recorded,
    }


def build_handlers(clock: Callable[[], int]) -> dict[str, Any]:
    def reconcile(uow: UnitOfWork, cmd: Reconcile) -> dict[str, Any]:
        try:
            for statement, facts in cmd.statements:  # every statement checked before any is kept
                service.check(statement, cmd.date_tolerance_days, facts)
            now = clock()
            out = []
            for statement, facts in cmd.statements:
                rec, recorded = service.reconcile(
                    _Source(uow), statement, facts, cmd.date_tolerance_days, now
                )
                out.append(summary(rec, statement, recorded))
        except e.ReconciliationRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "reconciled", "reconciliations": out}

    return {COMMAND_TYPE: reconcile}


def _streams_of(command: Command) -> Sequence[str]:
    body = command.body
    if isinstance(body, Reconcile):
        return list(dict.fromkeys(stream_id(r) for r in body.reconciliation_ids()))
    return []


def encode(event: ReconciliationEvent) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(event.to_payload())


def rebuild(aggregate: Aggregate | None, events: Sequence[StoredEvent]) -> Aggregate | None:
    decoded = [decode_event(s.topic, json.loads(s.payload)) for s in events]
    if aggregate is None and decoded:
        first = decoded[0]
        if not isinstance(first, ReconciliationOpened):
            raise ValueError(f"stream {events[0].stream_id} starts with {first.TOPIC}")
        aggregate = Reconciliation(first.reconciliation_id)
    if aggregate is not None:
        aggregate.replay(decoded)
    return aggregate


def restore(stream_id: str, version: int, state: dict[str, Any]) -> Aggregate:
    return Reconciliation.from_snapshot(stream_id, version, state)


def _to_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NotRecorded):
        return exc.outcome
    if isinstance(exc, e.ReconciliationRejection):
        return exc.to_outcome()
    raise exc


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The reconciliation context's write side: reconciliations of bank statements."""
    return CommandContext(
        name="reconciliation",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=(PREFIX,),
        encode=encode,
        rebuild=rebuild,
        rejection_types=(e.ReconciliationRejection,),
        invalid_types=(NotRecorded,),
        to_outcome=_to_outcome,
        restore=restore,
    )
