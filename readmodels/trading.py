"""The trading read models: instruments, depth of book, orders, their audit trail, the trade
tape, one-minute candles and the book's update feed.

Definition
    ``instruments``   one row per instrument: its specification, status, last price and the
                      book sequence the row reflects
    ``book_levels``   one row per price level with open quantity: (instrument, side, price)
                      -> open lots and order count; the depth of book is a range scan
    ``orders``        one row per order: its terms, open / filled / cancelled quantities,
                      status and the sequence and position of its last change
    ``order_events``  every change of every order (accepted, traded, rested, reduced,
                      amended, cancelled, expired) with its book sequence, position and time:
                      the order audit trail (``ledgerline report orders``)
    ``trades``        the tape: one row per trade, keyed by (instrument, sequence)
    ``candles``       one-minute OHLCV per instrument; longer intervals are summed at read time
    ``book_updates``  each level's new open quantity and order count after each event that
                      changed it: the stream clients resume from a sequence number

    Prices are whole ticks and quantities whole lots (numeric); the API formats them with the
    instrument's tick and lot sizes. Times are the book's own (the command's clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, field, fields
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from eventstore.schema import APP_ROLE, Migration
from readmodels.schema import SCHEMA, register

_GRANT_DML = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"
)
N = "numeric(39, 0)"

MIGRATIONS = (
    Migration(
        100,
        "trading instruments, depth of book, orders, order audit trail, trades, candles, feed",
        (
            "CREATE TABLE {schema}.instruments ("
            f" instrument_id {N} PRIMARY KEY,"
            " symbol text NOT NULL, base_asset text NOT NULL, quote_asset text NOT NULL,"
            " tick_size text NOT NULL, lot_size text NOT NULL, min_quantity text NOT NULL,"
            " price_band_bps integer NOT NULL, reference_price text NOT NULL,"
            " status text NOT NULL, settlement text NOT NULL,"
            " maker_fee_bps integer NOT NULL, taker_fee_bps integer NOT NULL,"
            " self_trade_prevention text NOT NULL, ledger bigint NOT NULL,"
            f" base_hold_account_id {N} NOT NULL, quote_hold_account_id {N} NOT NULL,"
            f" fee_account_id {N} NOT NULL, last_price_ticks {N},"
            " sequence bigint NOT NULL, listed_position bigint NOT NULL,"
            " listed_at_ns bigint NOT NULL, last_position bigint NOT NULL)",
            "CREATE TABLE {schema}.book_levels ("
            f" instrument_id {N} NOT NULL, side text NOT NULL, price_ticks {N} NOT NULL,"
            f" quantity_lots {N} NOT NULL CHECK (quantity_lots > 0),"
            " order_count integer NOT NULL CHECK (order_count > 0),"
            " sequence bigint NOT NULL,"
            " PRIMARY KEY (instrument_id, side, price_ticks))",
            "CREATE TABLE {schema}.orders ("
            f" order_id {N} PRIMARY KEY, instrument_id {N} NOT NULL, account_id {N} NOT NULL,"
            " side text NOT NULL, order_type text NOT NULL, time_in_force text NOT NULL,"
            f" price_ticks {N}, rest_price_ticks {N}, quantity_lots {N}, quote_quantity {N},"
            f" open_lots {N} NOT NULL CHECK (open_lots >= 0),"
            f" filled_lots {N} NOT NULL, filled_notional {N} NOT NULL,"
            f" cancelled_lots {N} NOT NULL, status text NOT NULL, cancel_reason text,"
            " post_only boolean NOT NULL, self_trade_prevention text NOT NULL,"
            " expire_at_ns bigint, accepted_sequence bigint NOT NULL,"
            " accepted_position bigint NOT NULL, accepted_at_ns bigint NOT NULL,"
            " last_sequence bigint NOT NULL, last_position bigint NOT NULL,"
            " updated_at_ns bigint NOT NULL)",
            "CREATE INDEX orders_account_idx ON {schema}.orders (account_id, status, order_id)",
            "CREATE INDEX orders_due_idx ON {schema}.orders (expire_at_ns)"
            " WHERE status IN ('open', 'partially_filled') AND expire_at_ns IS NOT NULL",
            "CREATE TABLE {schema}.order_events ("
            f" order_id {N} NOT NULL, sequence bigint NOT NULL, instrument_id {N} NOT NULL,"
            " position bigint NOT NULL, at_ns bigint NOT NULL, kind text NOT NULL,"
            f" price_ticks {N}, quantity_lots {N}, open_lots {N}, detail text,"
            " PRIMARY KEY (order_id, sequence))",
            "CREATE INDEX order_events_time_idx ON {schema}.order_events (instrument_id, at_ns)",
            "CREATE TABLE {schema}.trades ("
            f" instrument_id {N} NOT NULL, sequence bigint NOT NULL,"
            f" maker_order_id {N} NOT NULL, taker_order_id {N} NOT NULL,"
            f" maker_account_id {N} NOT NULL, taker_account_id {N} NOT NULL,"
            f" price_ticks {N} NOT NULL, quantity_lots {N} NOT NULL,"
            " aggressor_side text NOT NULL, position bigint NOT NULL, at_ns bigint NOT NULL,"
            " PRIMARY KEY (instrument_id, sequence))",
            "CREATE TABLE {schema}.candles ("
            f" instrument_id {N} NOT NULL, bucket_ns bigint NOT NULL,"
            f" open_ticks {N} NOT NULL, high_ticks {N} NOT NULL, low_ticks {N} NOT NULL,"
            f" close_ticks {N} NOT NULL, volume_lots {N} NOT NULL, notional {N} NOT NULL,"
            " trades integer NOT NULL, first_sequence bigint NOT NULL,"
            " last_sequence bigint NOT NULL, PRIMARY KEY (instrument_id, bucket_ns))",
            "CREATE TABLE {schema}.book_updates ("
            f" instrument_id {N} NOT NULL, sequence bigint NOT NULL, side text NOT NULL,"
            f" price_ticks {N} NOT NULL, quantity_lots {N} NOT NULL,"
            " order_count integer NOT NULL, position bigint NOT NULL,"
            " PRIMARY KEY (instrument_id, sequence, side, price_ticks))",
            _GRANT_DML,
        ),
    ),
)
register(MIGRATIONS)

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "instruments": ("instrument_id",),
    "book_levels": ("instrument_id", "side", "price_ticks"),
    "orders": ("order_id",),
    "order_events": ("order_id", "sequence"),
    "trades": ("instrument_id", "sequence"),
    "candles": ("instrument_id", "bucket_ns"),
    "book_updates": ("instrument_id", "sequence", "side", "price_ticks"),
}
CANDLE_NS = 60_000_000_000


@dataclass
class InstrumentRow:
    instrument_id: int
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: str
    lot_size: str
    min_quantity: str
    price_band_bps: int
    reference_price: str
    status: str
    settlement: str
    maker_fee_bps: int
    taker_fee_bps: int
    self_trade_prevention: str
    ledger: int
    base_hold_account_id: int
    quote_hold_account_id: int
    fee_account_id: int
    last_price_ticks: int | None
    sequence: int
    listed_position: int
    listed_at_ns: int
    last_position: int


@dataclass
class LevelRow:
    instrument_id: int
    side: str
    price_ticks: int
    quantity_lots: int
    order_count: int
    sequence: int


@dataclass
class OrderRow:
    order_id: int
    instrument_id: int
    account_id: int
    side: str
    order_type: str
    time_in_force: str
    price_ticks: int | None
    rest_price_ticks: int | None
    quantity_lots: int | None
    quote_quantity: int | None
    open_lots: int
    filled_lots: int
    filled_notional: int
    cancelled_lots: int
    status: str
    cancel_reason: str | None
    post_only: bool
    self_trade_prevention: str
    expire_at_ns: int | None
    accepted_sequence: int
    accepted_position: int
    accepted_at_ns: int
    last_sequence: int
    last_position: int
    updated_at_ns: int


@dataclass
class OrderEventRow:
    order_id: int
    sequence: int
    instrument_id: int
    position: int
    at_ns: int
    kind: str
    price_ticks: int | None
    quantity_lots: int | None
    open_lots: int | None
    detail: str | None


@dataclass
class TradeRow:
    instrument_id: int
    sequence: int
    maker_order_id: int
    taker_order_id: int
    maker_account_id: int
    taker_account_id: int
    price_ticks: int
    quantity_lots: int
    aggressor_side: str
    position: int
    at_ns: int


@dataclass
class CandleRow:
    instrument_id: int
    bucket_ns: int
    open_ticks: int
    high_ticks: int
    low_ticks: int
    close_ticks: int
    volume_lots: int
    notional: int
    trades: int
    first_sequence: int
    last_sequence: int


@dataclass
class UpdateRow:
    instrument_id: int
    sequence: int
    side: str
    price_ticks: int
    quantity_lots: int
    order_count: int
    position: int


@dataclass
class Changes:
    """Row changes from projecting one batch: final rows per key, plus appended rows."""

    instruments: dict[int, InstrumentRow] = field(default_factory=dict)
    levels: dict[tuple[int, str, int], LevelRow] = field(default_factory=dict)  # qty 0: delete
    orders: dict[int, OrderRow] = field(default_factory=dict)
    candles: dict[tuple[int, int], CandleRow] = field(default_factory=dict)
    order_events: list[OrderEventRow] = field(default_factory=list)
    trades: list[TradeRow] = field(default_factory=list)
    updates: list[UpdateRow] = field(default_factory=list)


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _int(v: Any) -> Any:
    return int(v) if isinstance(v, Decimal) else v


def _load(cur: psycopg.Cursor[Any], sql: str, params: Sequence[Any]) -> list[list[Any]]:
    cur.execute(sql, params)
    rows = cur.fetchall()
    return [[_int(v) for v in (r.values() if isinstance(r, dict) else r)] for r in rows]


def load_instruments(
    cur: psycopg.Cursor[Any], ids: Iterable[int], schema: str = SCHEMA
) -> dict[int, InstrumentRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    cols = ", ".join(_names(InstrumentRow))
    rows = _load(
        cur, f"SELECT {cols} FROM {schema}.instruments WHERE instrument_id = ANY(%s)", (wanted,)
    )
    return {r[0]: InstrumentRow(*r) for r in rows}


def load_orders(
    cur: psycopg.Cursor[Any], ids: Iterable[int], schema: str = SCHEMA
) -> dict[int, OrderRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    cols = ", ".join(_names(OrderRow))
    rows = _load(cur, f"SELECT {cols} FROM {schema}.orders WHERE order_id = ANY(%s)", (wanted,))
    return {r[0]: OrderRow(*r) for r in rows}


def load_levels(
    cur: psycopg.Cursor[Any], keys: Iterable[tuple[int, str, int]], schema: str = SCHEMA
) -> dict[tuple[int, str, int], LevelRow]:
    wanted = list(keys)
    if not wanted:
        return {}
    cols = ", ".join(_names(LevelRow))
    rows = _load(
        cur,
        f"SELECT {cols} FROM {schema}.book_levels WHERE (instrument_id, side, price_ticks) IN"
        " (SELECT * FROM unnest(%s::numeric[], %s::text[], %s::numeric[]))",
        ([k[0] for k in wanted], [k[1] for k in wanted], [k[2] for k in wanted]),
    )
    return {(r[0], r[1], r[2]): LevelRow(*r) for r in rows}


def load_candles(
    cur: psycopg.Cursor[Any], keys: Iterable[tuple[int, int]], schema: str = SCHEMA
) -> dict[tuple[int, int], CandleRow]:
    wanted = list(keys)
    if not wanted:
        return {}
    cols = ", ".join(_names(CandleRow))
    rows = _load(
        cur,
        f"SELECT {cols} FROM {schema}.candles WHERE (instrument_id, bucket_ns) IN"
        " (SELECT * FROM unnest(%s::numeric[], %s::bigint[]))",
        ([k[0] for k in wanted], [k[1] for k in wanted]),
    )
    return {(r[0], r[1]): CandleRow(*r) for r in rows}


# SQL types of each table's columns, in order: a batch of upserts is ONE statement per table
# (rows sent as one array per column, ``unnest``), not one per row.
_TYPES: dict[str, tuple[str, ...]] = {
    "instruments": (
        "numeric", "text", "text", "text", "text", "text", "text", "integer", "text", "text",
        "text", "integer", "integer", "text", "bigint", "numeric", "numeric", "numeric",
        "numeric", "bigint", "bigint", "bigint", "bigint",
    ),
    "book_levels": ("numeric", "text", "numeric", "numeric", "integer", "bigint"),
    "orders": (
        "numeric", "numeric", "numeric", "text", "text", "text", "numeric", "numeric",
        "numeric", "numeric", "numeric", "numeric", "numeric", "numeric", "text", "text",
        "boolean", "text", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
    ),
    "candles": (
        "numeric", "bigint", "numeric", "numeric", "numeric", "numeric", "numeric", "numeric",
        "integer", "bigint", "bigint",
    ),
}  # fmt: skip


def _upsert(
    cur: psycopg.Cursor[Any], schema: str, table: str, rows: Sequence[Any], keys: tuple[str, ...]
) -> None:
    if not rows:
        return
    names = _names(type(rows[0]))
    types = _TYPES[table]
    arrays = ", ".join(f"%s::{t}[]" for t in types)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
    columns = [list(c) for c in zip(*(astuple(r) for r in rows), strict=True)]
    cur.execute(
        f"INSERT INTO {schema}.{table} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
        columns,
    )


def _copy(cur: psycopg.Cursor[Any], schema: str, table: str, rows: Sequence[Any]) -> None:
    if not rows:
        return
    names = _names(type(rows[0]))
    with cur.copy(f"COPY {schema}.{table} ({', '.join(names)}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row(astuple(r))


def write_changes(cur: psycopg.Cursor[Any], changes: Changes, schema: str = SCHEMA) -> None:
    _upsert(cur, schema, "instruments", list(changes.instruments.values()), ("instrument_id",))
    gone = [k for k, v in changes.levels.items() if v.quantity_lots == 0]
    if gone:
        cur.execute(
            f"DELETE FROM {schema}.book_levels WHERE (instrument_id, side, price_ticks) IN"
            " (SELECT * FROM unnest(%s::numeric[], %s::text[], %s::numeric[]))",
            ([k[0] for k in gone], [k[1] for k in gone], [k[2] for k in gone]),
        )
    _upsert(
        cur,
        schema,
        "book_levels",
        [v for v in changes.levels.values() if v.quantity_lots > 0],
        TABLE_KEYS["book_levels"],
    )
    _upsert(cur, schema, "orders", list(changes.orders.values()), ("order_id",))
    _upsert(cur, schema, "candles", list(changes.candles.values()), TABLE_KEYS["candles"])
    _copy(cur, schema, "order_events", changes.order_events)
    _copy(cur, schema, "trades", changes.trades)
    _copy(cur, schema, "book_updates", changes.updates)


# ------------------------------------------------------------------ queries (API side)


def _dicts(
    conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | dict[str, Any]
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return [{k: _int(v) for k, v in r.items()} for r in cur.fetchall()]


def get_instrument(conn: psycopg.Connection[Any], instrument_id: int) -> dict[str, Any] | None:
    rows = _dicts(
        conn, f"SELECT * FROM {SCHEMA}.instruments WHERE instrument_id = %s", (instrument_id,)
    )
    return rows[0] if rows else None


def list_instruments(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    return _dicts(conn, f"SELECT * FROM {SCHEMA}.instruments ORDER BY instrument_id", ())


def depth(
    conn: psycopg.Connection[Any], instrument_id: int, levels: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The best ``levels`` bids (highest first) and asks (lowest first)."""
    bids = _dicts(
        conn,
        f"SELECT price_ticks, quantity_lots, order_count FROM {SCHEMA}.book_levels"
        " WHERE instrument_id = %s AND side = 'buy' ORDER BY price_ticks DESC LIMIT %s",
        (instrument_id, levels),
    )
    asks = _dicts(
        conn,
        f"SELECT price_ticks, quantity_lots, order_count FROM {SCHEMA}.book_levels"
        " WHERE instrument_id = %s AND side = 'sell' ORDER BY price_ticks LIMIT %s",
        (instrument_id, levels),
    )
    return bids, asks


def get_order(conn: psycopg.Connection[Any], order_id: int) -> dict[str, Any] | None:
    rows = _dicts(conn, f"SELECT * FROM {SCHEMA}.orders WHERE order_id = %s", (order_id,))
    return rows[0] if rows else None


OPEN_STATUSES = ("open", "partially_filled")


def account_orders(
    conn: psycopg.Connection[Any],
    account_id: int,
    *,
    status: str | None,
    after_order_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    where = ["account_id = %s"]
    params: list[Any] = [account_id]
    if status == "open":
        where.append("status IN ('open', 'partially_filled')")
    elif status is not None:
        where.append("status = %s")
        params.append(status)
    if after_order_id is not None:
        where.append("order_id > %s")
        params.append(after_order_id)
    params.append(limit)
    return _dicts(
        conn,
        f"SELECT * FROM {SCHEMA}.orders WHERE {' AND '.join(where)} ORDER BY order_id LIMIT %s",
        params,
    )


def trades(
    conn: psycopg.Connection[Any], instrument_id: int, *, before_sequence: int | None, limit: int
) -> list[dict[str, Any]]:
    """The tape, newest first (keyset pagination on the sequence)."""
    if before_sequence is None:
        return _dicts(
            conn,
            f"SELECT * FROM {SCHEMA}.trades WHERE instrument_id = %s"
            " ORDER BY sequence DESC LIMIT %s",
            (instrument_id, limit),
        )
    return _dicts(
        conn,
        f"SELECT * FROM {SCHEMA}.trades WHERE instrument_id = %s AND sequence < %s"
        " ORDER BY sequence DESC LIMIT %s",
        (instrument_id, before_sequence, limit),
    )


def candles(
    conn: psycopg.Connection[Any],
    instrument_id: int,
    *,
    interval_ns: int,
    from_ns: int | None,
    to_ns: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """OHLCV per ``interval_ns`` (a multiple of a minute), oldest first, from the minutes."""
    return _dicts(
        conn,
        "SELECT bucket_ns - bucket_ns %% %(i)s AS start_ns,"
        " (array_agg(open_ticks ORDER BY bucket_ns))[1] AS open_ticks,"
        " max(high_ticks) AS high_ticks, min(low_ticks) AS low_ticks,"
        " (array_agg(close_ticks ORDER BY bucket_ns DESC))[1] AS close_ticks,"
        " sum(volume_lots) AS volume_lots, sum(notional) AS notional, sum(trades) AS trades"
        f" FROM {SCHEMA}.candles WHERE instrument_id = %(id)s"
        " AND (%(from)s::bigint IS NULL"
        "      OR bucket_ns >= %(from)s::bigint - %(from)s::bigint %% %(i)s)"
        " AND (%(to)s::bigint IS NULL OR bucket_ns < %(to)s::bigint)"
        " GROUP BY 1 ORDER BY 1 LIMIT %(limit)s",
        {"i": interval_ns, "id": instrument_id, "from": from_ns, "to": to_ns, "limit": limit},
    )


def updates_since(
    conn: psycopg.Connection[Any], instrument_id: int, after_sequence: int, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Level updates and trades with a sequence past ``after_sequence``, oldest first."""
    levels = _dicts(
        conn,
        f"SELECT sequence, side, price_ticks, quantity_lots, order_count FROM {SCHEMA}.book_updates"
        " WHERE instrument_id = %s AND sequence > %s ORDER BY sequence, side, price_ticks"
        " LIMIT %s",
        (instrument_id, after_sequence, limit),
    )
    tape = _dicts(
        conn,
        f"SELECT * FROM {SCHEMA}.trades WHERE instrument_id = %s AND sequence > %s"
        " ORDER BY sequence LIMIT %s",
        (instrument_id, after_sequence, limit),
    )
    return levels, tape


def due_instruments(conn: psycopg.Connection[Any], now_ns: int) -> list[int]:
    """Instruments with an open 'gtd' order past its expiry time (the expiry sweep)."""
    rows = _dicts(
        conn,
        f"SELECT DISTINCT instrument_id FROM {SCHEMA}.orders"
        " WHERE status IN ('open', 'partially_filled') AND expire_at_ns IS NOT NULL"
        " AND expire_at_ns <= %s ORDER BY instrument_id LIMIT 1000",
        (now_ns,),
    )
    return [int(r["instrument_id"]) for r in rows]


def next_order_expiry(conn: psycopg.Connection[Any]) -> int | None:
    """When the earliest 'gtd' expiry of an open order falls (ns), or None (``orders_due_idx``)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT min(expire_at_ns) FROM {SCHEMA}.orders"
            " WHERE status IN ('open', 'partially_filled') AND expire_at_ns IS NOT NULL"
        )
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None


def instruments_with_open_orders(conn: psycopg.Connection[Any], account_id: int) -> list[int]:
    rows = _dicts(
        conn,
        f"SELECT DISTINCT instrument_id FROM {SCHEMA}.orders"
        " WHERE account_id = %s AND status IN ('open', 'partially_filled')"
        " ORDER BY instrument_id",
        (account_id,),
    )
    return [int(r["instrument_id"]) for r in rows]
