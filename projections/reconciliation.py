"""The reconciliation projection: reconciliations, their items and balance checks.

Definition
    :class:`ReconciliationProjection` folds ``reconciliation.*`` events into the tables of
    :mod:`readmodels.reconciliation` inside the runner's (or Kafka worker's) transaction: an
    opened reconciliation is a header row, each item event one item row (with the
    difference and the business days between the dates computed from the event's fields),
    each balance check a balance row; the completion sets the counts.

Guarantees
    Rows depend on the events alone (positions, payloads): a replay rebuilds them bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from domain.reconciliation.events import (
    BalanceChecked,
    ItemRecorded,
    ReconciliationCompleted,
    ReconciliationOpened,
    decode_event,
)
from domain.reconciliation.matching import business_days
from eventstore.model import StoredEvent
from readmodels import reconciliation as rm
from readmodels.schema import SCHEMA

NAME = "reconciliation"
TABLE_KEYS = rm.TABLE_KEYS


def _item_row(ev: ItemRecorded) -> tuple[Any, ...]:
    entry = ev.entry
    signed = None
    date = None
    if entry is not None:
        amount = int(entry["amount_minor"])
        signed = amount if entry["direction"] == "credit" else -amount
        date = str(entry["value_date"])
    difference = days = None
    if entry is not None and ev.ledger_date is not None and ev.ledger_amount_minor is not None:
        difference = (signed or 0) - ev.ledger_amount_minor
        dates = {str(entry["booking_date"]), str(entry["value_date"])}
        days = min(business_days(d, ev.ledger_date) for d in dates)
    return (
        ev.reconciliation_id,
        ev.seq,
        ev.STATUS,
        ev.rule,
        json.dumps(entry, sort_keys=True) if entry is not None else None,
        signed,
        date,
        ev.transfer_id,
        ev.ledger_amount_minor,
        ev.ledger_date,
        difference,
        days,
        json.dumps([str(c) for c in ev.candidates]),
    )


class ReconciliationProjection:
    """The reconciliation read models, for the in-process runner and the Kafka workers."""

    name = NAME

    def __init__(self, schema: str = SCHEMA) -> None:
        self.schema = schema

    def apply(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        headers: list[tuple[Any, ...]] = []
        items: list[tuple[Any, ...]] = []
        balances: list[tuple[Any, ...]] = []
        completed: list[tuple[str, dict[str, int]]] = []
        for stored in events:
            if not stored.topic.startswith("reconciliation."):
                continue
            ev = decode_event(stored.topic, json.loads(stored.payload))
            if isinstance(ev, ReconciliationOpened):
                headers.append(
                    (
                        ev.reconciliation_id,
                        ev.statement_id,
                        ev.statement_digest,
                        ev.statement_format,
                        ev.bank_account,
                        ev.account_id,
                        ev.ledger,
                        ev.currency,
                        ev.nostro_view,
                        ev.period_from,
                        ev.period_to,
                        ev.entries,
                        ev.date_tolerance_days,
                        ev.ledger_position,
                        ev.opened_at_ns,
                        stored.position,
                    )
                )
            elif isinstance(ev, ItemRecorded):
                items.append(_item_row(ev))
            elif isinstance(ev, BalanceChecked):
                balances.append(
                    (ev.reconciliation_id, ev.kind, ev.date, ev.statement_minor, ev.ledger_minor)
                )
            elif isinstance(ev, ReconciliationCompleted):
                completed.append((ev.reconciliation_id, ev.counts))
        rm.write(cur, self.schema, headers, items, balances, completed)
