"""A dict-backed LedgerSource with copy-on-write, as the application layer uses it."""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.ledger.account import Account
from domain.ledger.account import stream_id as account_stream
from domain.ledger.book import LedgerBook
from domain.ledger.book import stream_id as book_stream
from domain.ledger.transfer import Transfer
from domain.ledger.transfer import stream_id as transfer_stream


class FakeLedger:
    def __init__(self) -> None:
        self.committed: dict[str, Aggregate] = {}
        self.history: dict[str, list[Any]] = {}
        self.touched: dict[str, Aggregate] = {}

    # LedgerSource
    def get_account(self, account_id: int) -> Account | None:
        agg = self._get(account_stream(account_id))
        return agg if isinstance(agg, Account) else None

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        agg = self._get(transfer_stream(transfer_id))
        return agg if isinstance(agg, Transfer) else None

    def get_ledger(self, ledger: int) -> LedgerBook | None:
        agg = self._get(book_stream(ledger))
        return agg if isinstance(agg, LedgerBook) else None

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate

    def _get(self, stream_id: str) -> Aggregate | None:
        if stream_id in self.touched:
            return self.touched[stream_id]
        base = self.committed.get(stream_id)
        if base is None:
            return None
        clone = base.clone()
        self.touched[stream_id] = clone
        return clone

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
        self.touched = {}
