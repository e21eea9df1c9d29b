"""The Reconciliation aggregate: one statement matched against one nostro account, recorded.

Definition
    A reconciliation is identified by :func:`reconciliation_id`, derived from the statement's
    content digest, the ledger account and the date tolerance: the same statement reconciled
    again with the same options is the same reconciliation. Stream: ``reconciliation:<id>``.
    It is written once, by :meth:`Reconciliation.record`, and never changes afterwards.

Guarantees
    * Written once: recording a reconciliation that has events is a programmer error (the
      service answers the recorded one instead).
    * The item events are the matcher's items in its order (``seq`` 0, 1, ...), so the read
      model lists them exactly as they were decided.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.reconciliation.events import (
    ITEM_EVENTS,
    BalanceChecked,
    ItemRecorded,
    ReconciliationCompleted,
    ReconciliationEvent,
    ReconciliationOpened,
)
from domain.reconciliation.matching import Item

PREFIX = "reconciliation:"


def reconciliation_id(statement_digest: str, account_id: int, date_tolerance_days: int) -> str:
    """32 hex digits from the statement's content, the account and the tolerance."""
    key = f"v1|{statement_digest}|{account_id}|{date_tolerance_days}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def stream_id(rid: str) -> str:
    return PREFIX + rid


class Reconciliation(Aggregate):
    __slots__ = ("account_id", "completed", "counts", "period", "reconciliation_id")

    def __init__(self, rid: str) -> None:
        super().__init__(stream_id(rid))
        self.reconciliation_id = rid
        self.account_id = 0
        self.period: tuple[str, str] = ("", "")
        self.counts: tuple[tuple[str, int], ...] = ()
        self.completed = False

    @property
    def is_final(self) -> bool:
        return self.completed

    def record(
        self,
        opened: ReconciliationOpened,
        items: Sequence[Item],
        balances: Sequence[BalanceChecked],
        counts: dict[str, int],
        now_ns: int,
    ) -> None:
        invariant(self.version == 0, f"reconciliation {self.reconciliation_id} is written once")
        invariant(opened.reconciliation_id == self.reconciliation_id, "one reconciliation id")
        rid = self.reconciliation_id
        self._trigger(opened)
        for seq, item in enumerate(items):
            posting = item.posting
            self._trigger(
                ITEM_EVENTS[item.status](
                    rid,
                    seq,
                    item.rule,
                    item.entry.to_payload() if item.entry is not None else None,
                    posting.transfer_id if posting is not None else None,
                    posting.signed_minor if posting is not None else None,
                    posting.date if posting is not None else None,
                    list(item.candidates),
                )
            )
        for balance in balances:
            self._trigger(balance)
        self._trigger(ReconciliationCompleted(rid, dict(counts), now_ns))

    def apply(self, event: Any) -> None:
        invariant(isinstance(event, ReconciliationEvent), "a reconciliation event")
        if isinstance(event, ReconciliationOpened):
            self.account_id = event.account_id
            self.period = (event.period_from, event.period_to)
        elif isinstance(event, ItemRecorded | BalanceChecked):
            pass  # the items live in the read model; the aggregate keeps the summary
        elif isinstance(event, ReconciliationCompleted):
            self.counts = tuple(sorted(event.counts.items()))
            self.completed = True

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "reconciliation_id": self.reconciliation_id,
            "account_id": self.account_id,
            "period": list(self.period),
            "counts": [list(c) for c in self.counts],
            "completed": self.completed,
        }

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> Reconciliation:
        agg = cls(state["reconciliation_id"])
        agg.account_id = state["account_id"]
        agg.period = (state["period"][0], state["period"][1])
        agg.counts = tuple((str(k), int(v)) for k, v in state["counts"])
        agg.completed = state["completed"]
        agg.version = version
        return agg
