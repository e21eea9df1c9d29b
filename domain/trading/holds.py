"""OrderHold: the funds one order holds in the ledger, slice by slice.

Definition
    Stream ``hold:<order id>``. Placing an order on an instrument that settles into the
    ledger reserves what it could spend (:mod:`domain.trading.settlement`) as a pending
    ledger transfer from the trader's account to the venue's hold account: slice 0. A
    TigerBeetle-style pending transfer is posted or voided once, so every change makes a new
    slice: a fill posts the matched part of the current slice (the rest is released) and
    reserves what remains as the next slice; a reduction or an amendment voids the current
    slice and reserves the new need; when the order is done (filled, cancelled, expired) the
    last slice is voided.

Guarantees
    * At most one pending slice at a time; its amount is what the order still holds.
    * Slice ``k``'s ledger transfer id is ``venue_transfer_id("hold", order id, k, attempt)``
      (attempt 0 unless that id was taken), recorded in the hold's events.
    * Re-reserving after a partial post cannot fail: it takes back exactly what the post
      released, so the ledger's limits hold at every position.
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.trading.events import HoldClosed, HoldOpened, HoldResliced


def stream_id(order_id: int) -> str:
    return f"hold:{order_id}"


class OrderHold(Aggregate):
    __slots__ = (
        "account_id",
        "amount_minor",
        "base_account_id",
        "currency",
        "debit_account_id",
        "hold_account_id",
        "instrument_id",
        "open",
        "order_id",
        "quote_account_id",
        "side",
        "slice",
        "transfer_id",
    )

    def __init__(self, order_id: int) -> None:
        super().__init__(stream_id(order_id))
        self.order_id = order_id
        self.instrument_id = 0
        self.account_id = 0
        self.side = ""
        self.currency = ""
        self.debit_account_id = 0
        self.hold_account_id = 0
        self.base_account_id = 0
        self.quote_account_id = 0
        self.slice = 0
        self.transfer_id = 0
        self.amount_minor = 0
        self.open = False

    @classmethod
    def opened(cls, event: HoldOpened) -> OrderHold:
        hold = cls(event.order_id)
        hold._trigger(event)
        return hold

    def reslice(self, transfer_id: int, amount_minor: int, now_ns: int) -> None:
        invariant(self.open and amount_minor > 0, "a slice of an open hold holds something")
        self._trigger(
            HoldResliced(
                self.version + 1, now_ns, self.order_id, self.slice + 1, transfer_id, amount_minor
            )
        )

    def close(self, released_minor: int, reason: str, now_ns: int) -> None:
        invariant(self.open, "a hold closes once")
        self._trigger(HoldClosed(self.version + 1, now_ns, self.order_id, released_minor, reason))

    def to_snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _STATE}

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> OrderHold:
        hold = cls(state["order_id"])
        invariant(hold.id == stream_id, f"snapshot of {hold.id} restored as {stream_id}")
        for name in _STATE:
            setattr(hold, name, state[name])
        hold.version = version
        return hold

    def apply(self, event: Any) -> None:
        if isinstance(event, HoldOpened):
            self.instrument_id = event.instrument_id
            self.account_id = event.account_id
            self.side = event.side
            self.currency = event.currency
            self.debit_account_id = event.debit_account_id
            self.hold_account_id = event.hold_account_id
            self.base_account_id = event.base_account_id
            self.quote_account_id = event.quote_account_id
            self.transfer_id = event.transfer_id
            self.amount_minor = event.amount_minor
            self.open = True
        elif isinstance(event, HoldResliced):
            self.slice = event.slice
            self.transfer_id = event.transfer_id
            self.amount_minor = event.amount_minor
        elif isinstance(event, HoldClosed):
            self.amount_minor = 0
            self.open = False
        else:  # pragma: no cover - a programming error
            invariant(False, f"OrderHold cannot apply {type(event).__name__}")


_STATE = (
    "order_id",
    "instrument_id",
    "account_id",
    "side",
    "currency",
    "debit_account_id",
    "hold_account_id",
    "base_account_id",
    "quote_account_id",
    "slice",
    "transfer_id",
    "amount_minor",
    "open",
)
