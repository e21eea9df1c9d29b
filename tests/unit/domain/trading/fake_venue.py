"""A dict-backed VenueSource with copy-on-write for the ledger, like the processor's unit of work.

Order books change in place (``MUTATES_IN_PLACE``), everything else is cloned on first use,
so a rejected command is rolled back by dropping the clones (and the book raised before its
first event).
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.trading.accounts import TradingAccount
from domain.trading.accounts import stream_id as trader_stream
from domain.trading.book import OrderBook
from domain.trading.book import stream_id as book_stream
from domain.trading.holds import OrderHold
from domain.trading.holds import stream_id as hold_stream
from tests.unit.domain.fakes import FakeLedger


class FakeVenue(FakeLedger):
    def get_book(self, instrument_id: int) -> OrderBook | None:
        agg = self._get(book_stream(instrument_id))
        return agg if isinstance(agg, OrderBook) else None

    def get_trader(self, account_id: int) -> TradingAccount | None:
        agg = self._get(trader_stream(account_id))
        return agg if isinstance(agg, TradingAccount) else None

    def get_hold(self, order_id: int) -> OrderHold | None:
        agg = self._get(hold_stream(order_id))
        return agg if isinstance(agg, OrderHold) else None

    def _get(self, stream_id: str) -> Aggregate | None:
        base = self.committed.get(stream_id)
        if base is not None and base.MUTATES_IN_PLACE and stream_id not in self.touched:
            self.touched[stream_id] = base
            return base
        return super()._get(stream_id)

    def run(self, action: Any) -> Any:
        """Run ``action(self)`` as one command: commit, or roll back and re-raise."""
        try:
            result = action(self)
        except Exception:
            for agg in self.touched.values():
                assert not (agg.MUTATES_IN_PLACE and agg.has_pending_events()), "late raise"
            self.rollback()
            raise
        self.commit()
        return result
