"""Regulator reports, computed with duckdb over read models rebuilt by a replay.

Reports (each as of a position; each records the checkpoint it rests on):
    ``trial_balance``   per ledger and currency: the four balance sums, and whether they balance
    ``statements``      per account: every balance change with its transfer and balances after
    ``large_value``     transfers at or above a threshold (major units, per currency)
    ``daily_totals``    per ledger, currency and UTC day: transfer count and amount
    ``trades``          per instrument and UTC day: trades, volume, notional, VWAP, open, high,
                        low and close (decimal strings in the instrument's units)
    ``orders``          the order audit trail: every change of every order (accepted, traded,
                        rested, reduced, amended, cancelled, expired) with its book sequence,
                        global position and time. Orders refused at placement changed no book:
                        they are in the command log (``trading.place_order``, not accepted).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

REPORTS = ("trial_balance", "statements", "large_value", "daily_totals", "trades", "orders")

_SQL = {
    "trial_balance": """
        SELECT ledger, currency, count(*) AS accounts,
               sum(debits_pending) AS debits_pending, sum(debits_posted) AS debits_posted,
               sum(credits_pending) AS credits_pending, sum(credits_posted) AS credits_posted,
               sum(debits_posted) = sum(credits_posted)
                 AND sum(debits_pending) = sum(credits_pending) AS balanced
        FROM accounts GROUP BY ledger, currency ORDER BY ledger, currency""",
    "statements": """
        SELECT h.account_id, h.position, h.change, h.transfer_id, h.currency,
               h.debits_pending, h.debits_posted, h.credits_pending, h.credits_posted,
               h.recorded_at_ns
        FROM account_history h ORDER BY h.account_id, h.position""",
    "large_value": """
        SELECT transfer_id, ledger, currency, amount, debit_account_id, credit_account_id,
               state, created_position, created_at_ns
        FROM transfers JOIN thresholds USING (currency) WHERE amount >= threshold_minor
        ORDER BY created_position""",
    "daily_totals": """
        SELECT ledger, currency,
               CAST(to_timestamp(created_at_ns / 1e9) AT TIME ZONE 'UTC' AS DATE) AS day,
               count(*) AS transfers, sum(posted_amount) AS posted_amount
        FROM transfers GROUP BY ALL ORDER BY ledger, currency, day""",
}


def _arrow(conn: psycopg.Connection[Any], schema: str, table: str) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(f'SELECT * FROM "{schema}".{table}')
        names = [d.name for d in cur.description or ()]
        rows = [[int(v) if isinstance(v, Decimal) else v for v in row] for row in cur.fetchall()]
    return (
        pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
        if rows
        else (pa.table({n: pa.array([], pa.int64()) for n in names}))
    )


def compute(
    conn: psycopg.Connection[Any], schema: str, *, large_value_major: int = 10_000
) -> dict[str, pa.Table]:
    from domain.money import currency_exponent

    db = duckdb.connect()
    tables = {t: _arrow(conn, schema, t) for t in ("accounts", "account_history", "transfers")}
    for name, table in tables.items():
        db.register(name, table)
    currencies = (
        sorted(set(tables["accounts"].column("currency").to_pylist()))
        if (tables["accounts"].num_rows)
        else []
    )
    thresholds = pa.table(
        {
            "currency": pa.array(currencies, pa.string()),
            "threshold_minor": pa.array(
                [large_value_major * 10 ** currency_exponent(c) for c in currencies], pa.int64()
            ),
        }
    )
    db.register("thresholds", thresholds)
    return {
        **{name: db.sql(sql).to_arrow_table() for name, sql in _SQL.items()},
        **_trading(conn, schema),
    }


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d.name for d in cur.description or ()]
        return [
            dict(zip(names, (int(v) if isinstance(v, Decimal) else v for v in row), strict=True))
            for row in cur.fetchall()
        ]


def _table(rows: list[dict[str, Any]], names: tuple[str, ...]) -> pa.Table:
    if rows:
        return pa.Table.from_pylist(rows)
    return pa.table({n: pa.array([], pa.string()) for n in names})


def _utc(ns: int) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return moment.replace(microsecond=(ns // 1000) % 1_000_000).isoformat().replace("+00:00", "Z")


def _trading(conn: psycopg.Connection[Any], schema: str) -> dict[str, pa.Table]:
    """The trading reports, formatted exactly with each instrument's tick and lot sizes."""
    from decimal import ROUND_HALF_EVEN

    from domain.trading.instrument import Instrument, InstrumentSpec

    instruments = {}
    for r in _rows(
        conn,
        "SELECT instrument_id, symbol, base_asset, quote_asset, tick_size, lot_size"
        f' FROM "{schema}".instruments',
    ):
        spec = InstrumentSpec(
            r["instrument_id"],
            r["symbol"],
            r["base_asset"],
            r["quote_asset"],
            r["tick_size"],
            r["lot_size"],
        )
        instruments[r["instrument_id"]] = Instrument.validate(spec)
    day = "CAST(to_timestamp(at_ns / 1000000000) AT TIME ZONE 'UTC' AS DATE)"
    daily = _rows(
        conn,
        f"SELECT instrument_id, {day} AS day, count(*) AS trades, sum(quantity_lots) AS lots,"
        " sum(price_ticks * quantity_lots) AS notional, max(price_ticks) AS high,"
        " min(price_ticks) AS low,"
        " (array_agg(price_ticks ORDER BY sequence))[1] AS open,"
        " (array_agg(price_ticks ORDER BY sequence DESC))[1] AS close"
        f' FROM "{schema}".trades GROUP BY 1, 2 ORDER BY 1, 2',
    )
    trades = []
    for r in daily:
        inst = instruments[r["instrument_id"]]
        tick = Decimal(inst.spec.tick_size)
        vwap = (Decimal(r["notional"]) / Decimal(r["lots"]) * tick).quantize(
            tick / 10_000, rounding=ROUND_HALF_EVEN
        )
        trades.append(
            {
                "instrument_id": str(r["instrument_id"]),
                "symbol": inst.spec.symbol,
                "day": r["day"].isoformat(),
                "trades": r["trades"],
                "volume": inst.lots_to_quantity(r["lots"]),
                "notional": inst.notional_to_quote(r["notional"]),
                "vwap": str(vwap),
                "open": inst.ticks_to_price(r["open"]),
                "high": inst.ticks_to_price(r["high"]),
                "low": inst.ticks_to_price(r["low"]),
                "close": inst.ticks_to_price(r["close"]),
            }
        )
    changes = _rows(
        conn,
        "SELECT e.instrument_id, e.order_id, o.account_id, o.side, o.order_type,"
        " o.time_in_force, e.sequence, e.position, e.at_ns, e.kind, e.price_ticks,"
        " e.quantity_lots, e.open_lots, e.detail"
        f' FROM "{schema}".order_events e JOIN "{schema}".orders o USING (order_id)'
        " ORDER BY e.instrument_id, e.sequence, e.order_id",
    )
    orders = []
    for r in changes:
        inst = instruments[r["instrument_id"]]
        orders.append(
            {
                "instrument_id": str(r["instrument_id"]),
                "symbol": inst.spec.symbol,
                "order_id": str(r["order_id"]),
                "account_id": str(r["account_id"]),
                "side": r["side"],
                "type": r["order_type"],
                "time_in_force": r["time_in_force"],
                "sequence": r["sequence"],
                "position": r["position"],
                "at": _utc(r["at_ns"]),
                "event": r["kind"],
                "price": None
                if r["price_ticks"] is None
                else inst.ticks_to_price(r["price_ticks"]),
                "quantity": None
                if r["quantity_lots"] is None
                else inst.lots_to_quantity(r["quantity_lots"]),
                "open_quantity": None
                if r["open_lots"] is None
                else inst.lots_to_quantity(r["open_lots"]),
                "detail": r["detail"],
            }
        )
    return {
        "trades": _table(trades, ("instrument_id", "symbol", "day", "trades", "volume", "vwap")),
        "orders": _table(orders, ("instrument_id", "order_id", "sequence", "event")),
    }


def write(report: pa.Table, path: Path, fmt: str, meta: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = report.replace_schema_metadata(
        {b"ledgerline": __import__("json").dumps(meta).encode()}
    )
    if fmt == "parquet":
        target = path.with_suffix(".parquet")
        pq.write_table(stamped, target)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        target = path.with_suffix(".csv")
        pacsv.write_csv(report, target)
        target.with_suffix(".meta.json").write_text(__import__("json").dumps(meta, indent=1))
    elif fmt == "json":
        import json

        target = path.with_suffix(".json")
        target.write_text(
            json.dumps({"meta": meta, "rows": report.to_pylist()}, indent=1, default=str)
        )
    else:
        raise ValueError(f"unknown format {fmt}")
    return target
