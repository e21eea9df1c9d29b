"""The trading projection: depth of book, orders and their audit trail, the tape, candles and
the book-update feed, from the books' events.

Definition
    :func:`project` is pure: given a batch of (stored event, decoded event) pairs of ``book:``
    streams and the current rows they touch, it returns the rows to write. Every event that
    changes the depth carries the side, price and quantities it changes, so no lookup beyond
    the touched rows is needed. :class:`TradingProjection` wraps it for a runner (in-process
    or Kafka worker): load, project, write, in the caller's transaction.

Guarantees
    * The depth of book equals the aggregate's own (``OrderBook.depth``) after every event.
    * Per order: quantity = filled + open + cancelled (amendments change the quantity).
    * Replaying the log rebuilds identical rows (times are the book's, not the projector's).

Order status
    ``open`` (resting, nothing filled), ``partially_filled`` (resting, something filled),
    ``filled``, ``cancelled`` (with ``cancel_reason``) or ``expired``. An order that never rests
    (ioc, fok, market) is ``filled`` unless a cancel follows: it always ends with one when it
    did not fill in full (remainder, kill, unspent budget, self-trade).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from domain.invariant import invariant
from domain.trading.events import (
    InstrumentClosed,
    InstrumentHalted,
    InstrumentListed,
    InstrumentResumed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderReduced,
    OrderRested,
    TradeExecuted,
    TradingEvent,
    decode_event,
)
from domain.trading.orders import NewOrder
from eventstore.model import StoredEvent
from readmodels.trading import (
    CANDLE_NS,
    TABLE_KEYS,
    CandleRow,
    Changes,
    InstrumentRow,
    LevelRow,
    OrderEventRow,
    OrderRow,
    TradeRow,
    UpdateRow,
    load_candles,
    load_instruments,
    load_levels,
    load_orders,
    write_changes,
)

Decoded = tuple[StoredEvent, TradingEvent]
__all__ = ["TABLE_KEYS", "TradingProjection", "project"]


def decode(events: Sequence[StoredEvent]) -> list[Decoded]:
    return [
        (e, decode_event(e.topic, json.loads(e.payload)))
        for e in events
        if e.topic.startswith("trading.") and e.stream_id.startswith("book:")
    ]


def _instrument_of(stored: StoredEvent) -> int:
    return int(stored.stream_id[5:])


def touched(
    batch: Sequence[Decoded],
) -> tuple[set[int], set[int], set[tuple[int, str, int]], set[tuple[int, int]]]:
    """The rows a batch needs: instruments, orders it did not create, levels, candles."""
    instruments: set[int] = set()
    orders: set[int] = set()
    created: set[int] = set()
    levels: set[tuple[int, str, int]] = set()
    candles: set[tuple[int, int]] = set()
    for stored, ev in batch:
        iid = _instrument_of(stored)
        instruments.add(iid)
        if isinstance(ev, OrderAccepted):
            created.add(ev.order.order_id)
            if ev.rested_lots:
                levels.add((iid, ev.order.side, ev.order.price_ticks or 0))
        elif isinstance(ev, TradeExecuted):
            orders.update((ev.maker_order_id, ev.taker_order_id))
            levels.add((iid, "sell" if ev.aggressor_side == "buy" else "buy", ev.price_ticks))
            candles.add((iid, ev.at_ns - ev.at_ns % CANDLE_NS))
        elif isinstance(ev, OrderAmended):
            orders.add(ev.order_id)
            levels.add((iid, ev.side, ev.old_price_ticks))
        elif isinstance(ev, OrderRested | OrderReduced | OrderCancelled | OrderExpired):
            orders.add(ev.order_id)
            if ev.price_ticks is not None and not (
                isinstance(ev, OrderReduced | OrderCancelled) and not ev.rested
            ):
                levels.add((iid, ev.side, ev.price_ticks))
    return instruments, orders - created, levels, candles


def project(
    batch: Sequence[Decoded],
    instruments: dict[int, InstrumentRow],
    orders: dict[int, OrderRow],
    levels: dict[tuple[int, str, int], LevelRow],
    candles: dict[tuple[int, int], CandleRow],
) -> Changes:
    changes = Changes()
    for stored, ev in batch:
        _Step(changes, instruments, orders, levels, candles, stored, ev).run()
    return changes


class _Step:
    """One event's row changes (a small object so each rule reads as one method)."""

    def __init__(
        self,
        changes: Changes,
        instruments: dict[int, InstrumentRow],
        orders: dict[int, OrderRow],
        levels: dict[tuple[int, str, int], LevelRow],
        candles: dict[tuple[int, int], CandleRow],
        stored: StoredEvent,
        ev: TradingEvent,
    ) -> None:
        self.changes, self.instruments, self.orders = changes, instruments, orders
        self.levels, self.candles = levels, candles
        self.stored, self.ev = stored, ev
        self.iid = _instrument_of(stored)
        self.pos = stored.position

    def run(self) -> None:
        ev = self.ev
        if isinstance(ev, InstrumentListed):
            self._listed(ev)
            return
        inst = self.instruments[self.iid]
        inst.sequence, inst.last_position = ev.seq, self.pos
        self.changes.instruments[self.iid] = inst
        if isinstance(ev, InstrumentHalted):
            inst.status = "halted"
        elif isinstance(ev, InstrumentResumed):
            inst.status = "open"
        elif isinstance(ev, InstrumentClosed):
            inst.status = "closed"
        elif isinstance(ev, OrderAccepted):
            self._accepted(ev)
        elif isinstance(ev, TradeExecuted):
            inst.last_price_ticks = ev.price_ticks
            self._trade(ev)
        else:
            self._order_change(ev)

    def _order_change(self, ev: TradingEvent) -> None:
        if isinstance(ev, OrderRested):
            row = self._order(ev.order_id)
            row.open_lots, row.rest_price_ticks = ev.quantity_lots, ev.price_ticks
            row.status = "partially_filled" if row.filled_lots else "open"
            self._level(ev.side, ev.price_ticks, ev.quantity_lots, 1)
            self._audit(row, "rested", ev.price_ticks, ev.quantity_lots, None)
        elif isinstance(ev, OrderReduced):
            row = self._order(ev.order_id)
            row.cancelled_lots += ev.reduced_by_lots
            if ev.rested:
                row.open_lots = ev.remaining_lots
                gone = -1 if not ev.remaining_lots else 0
                self._level(ev.side, ev.price_ticks or 0, -ev.reduced_by_lots, gone)
                if not ev.remaining_lots:
                    row.status, row.cancel_reason = "cancelled", ev.reason
            self._audit(row, "reduced", ev.price_ticks, ev.reduced_by_lots, ev.reason)
        elif isinstance(ev, OrderAmended):
            row = self._order(ev.order_id)
            row.quantity_lots = (row.quantity_lots or 0) + ev.quantity_lots - ev.old_remaining_lots
            row.open_lots = 0
            row.price_ticks = row.rest_price_ticks = ev.price_ticks
            self._level(ev.side, ev.old_price_ticks, -ev.old_remaining_lots, -1)
            self._audit(row, "amended", ev.price_ticks, ev.quantity_lots, None)
        elif isinstance(ev, OrderCancelled):
            row = self._order(ev.order_id)
            row.cancelled_lots += ev.quantity_lots
            if ev.rested:
                self._level(ev.side, ev.price_ticks or 0, -ev.quantity_lots, -1)
            row.open_lots = 0
            row.status, row.cancel_reason = "cancelled", ev.reason
            self._audit(row, "cancelled", ev.price_ticks, ev.quantity_lots, ev.reason)
        elif isinstance(ev, OrderExpired):
            row = self._order(ev.order_id)
            row.cancelled_lots += ev.quantity_lots
            row.open_lots, row.status = 0, "expired"
            self._level(ev.side, ev.price_ticks, -ev.quantity_lots, -1)
            self._audit(row, "expired", ev.price_ticks, ev.quantity_lots, None)

    # ------------------------------------------------------------------ rules

    def _listed(self, ev: InstrumentListed) -> None:
        row = InstrumentRow(
            ev.instrument_id,
            ev.symbol,
            ev.base_asset,
            ev.quote_asset,
            ev.tick_size,
            ev.lot_size,
            ev.min_quantity,
            ev.price_band_bps,
            ev.reference_price,
            ev.status,
            ev.settlement,
            ev.maker_fee_bps,
            ev.taker_fee_bps,
            ev.self_trade_prevention,
            ev.ledger,
            ev.base_hold_account_id,
            ev.quote_hold_account_id,
            ev.fee_account_id,
            None,
            ev.seq,
            self.pos,
            ev.at_ns,
            self.pos,
        )
        self.instruments[self.iid] = self.changes.instruments[self.iid] = row

    def _accepted(self, ev: OrderAccepted) -> None:
        o: NewOrder = ev.order
        rests = o.time_in_force in ("gtc", "gtd")
        row = OrderRow(
            o.order_id,
            self.iid,
            o.account_id,
            o.side,
            o.order_type,
            o.time_in_force,
            o.price_ticks,
            o.price_ticks if ev.rested_lots else None,
            o.quantity_lots,
            o.quote_quantity,
            ev.rested_lots,
            0,
            0,
            0,
            "open" if rests else "filled",
            None,
            o.post_only,
            ev.self_trade_prevention,
            o.expire_at_ns,
            ev.seq,
            self.pos,
            ev.at_ns,
            ev.seq,
            self.pos,
            ev.at_ns,
        )
        self.orders[o.order_id] = self.changes.orders[o.order_id] = row
        if ev.rested_lots:
            self._level(o.side, o.price_ticks or 0, ev.rested_lots, 1)
        self._audit(row, "accepted", o.price_ticks, o.quantity_lots, None)

    def _trade(self, ev: TradeExecuted) -> None:
        self.changes.trades.append(
            TradeRow(
                self.iid,
                ev.seq,
                ev.maker_order_id,
                ev.taker_order_id,
                ev.maker_account_id,
                ev.taker_account_id,
                ev.price_ticks,
                ev.quantity_lots,
                ev.aggressor_side,
                self.pos,
                ev.at_ns,
            )
        )
        maker_side = "sell" if ev.aggressor_side == "buy" else "buy"
        gone = -1 if not ev.maker_remaining_lots else 0
        self._level(maker_side, ev.price_ticks, -ev.quantity_lots, gone)
        notional = ev.price_ticks * ev.quantity_lots
        maker = self._order(ev.maker_order_id)
        maker.filled_lots += ev.quantity_lots
        maker.filled_notional += notional
        maker.open_lots = ev.maker_remaining_lots
        maker.status = "partially_filled" if ev.maker_remaining_lots else "filled"
        self._audit(maker, "traded", ev.price_ticks, ev.quantity_lots, f"maker:{ev.taker_order_id}")
        taker = self._order(ev.taker_order_id)
        taker.filled_lots += ev.quantity_lots
        taker.filled_notional += notional
        if taker.quantity_lots is not None and (
            taker.filled_lots + taker.cancelled_lots >= taker.quantity_lots
        ):
            taker.status = "filled"
        self._audit(taker, "traded", ev.price_ticks, ev.quantity_lots, f"taker:{ev.maker_order_id}")
        bucket = ev.at_ns - ev.at_ns % CANDLE_NS
        key = (self.iid, bucket)
        candle = self.candles.get(key)
        if candle is None:
            candle = CandleRow(
                self.iid, bucket, ev.price_ticks, ev.price_ticks, ev.price_ticks, ev.price_ticks,
                0, 0, 0, ev.seq, ev.seq,
            )  # fmt: skip
            self.candles[key] = candle
        candle.high_ticks = max(candle.high_ticks, ev.price_ticks)
        candle.low_ticks = min(candle.low_ticks, ev.price_ticks)
        candle.close_ticks, candle.last_sequence = ev.price_ticks, ev.seq
        candle.volume_lots += ev.quantity_lots
        candle.notional += notional
        candle.trades += 1
        self.changes.candles[key] = candle

    # ------------------------------------------------------------------ helpers

    def _order(self, order_id: int) -> OrderRow:
        row = self.orders[order_id]
        row.last_sequence, row.last_position, row.updated_at_ns = (
            self.ev.seq,
            self.pos,
            self.ev.at_ns,
        )
        self.changes.orders[order_id] = row
        return row

    def _level(self, side: str, price: int, lots: int, orders: int) -> None:
        key = (self.iid, side, price)
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = LevelRow(self.iid, side, price, 0, 0, 0)
        level.quantity_lots += lots
        level.order_count += orders
        level.sequence = self.ev.seq
        if level.quantity_lots < 0 or (level.quantity_lots == 0) != (level.order_count == 0):
            invariant(False, f"level {key} of the read model went out of step with the book")
        self.changes.levels[key] = level
        self.changes.updates.append(
            UpdateRow(
                self.iid, self.ev.seq, side, price, level.quantity_lots, level.order_count, self.pos
            )
        )

    def _audit(
        self, row: OrderRow, kind: str, price: int | None, lots: int | None, detail: str | None
    ) -> None:
        self.changes.order_events.append(
            OrderEventRow(
                row.order_id,
                self.ev.seq,
                self.iid,
                self.pos,
                self.ev.at_ns,
                kind,
                price,
                lots,
                row.open_lots,
                detail,
            )
        )


class TradingProjection:
    """Runner adapter: load the touched rows, project, write; all in the caller's transaction."""

    name = "trading"

    def __init__(self, schema: str = "readmodels") -> None:
        self.schema = schema

    def apply(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        batch = decode(events)
        if not batch:
            return
        instrument_ids, order_ids, level_keys, candle_keys = touched(batch)
        changes = project(
            batch,
            load_instruments(cur, instrument_ids, self.schema),
            load_orders(cur, order_ids, self.schema),
            load_levels(cur, level_keys, self.schema),
            load_candles(cur, candle_keys, self.schema),
        )
        write_changes(cur, changes, self.schema)
