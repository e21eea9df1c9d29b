"""Regulator reports, computed with duckdb: over a whole replay, or over a range of positions.

Reports (each as of a position; each records the checkpoint it rests on):
    ``trial_balance``   per ledger and currency: the four balance sums, and whether they balance
    ``statements``      per account: every balance change with its transfer and balances after
    ``large_value``     transfers at or above a threshold (major units, per currency)
    ``daily_totals``    per ledger, currency and UTC day: transfer count and amount
    ``netting``, ``unwind``   clearing and settlement (see :mod:`replay.settlement_reports`)

:func:`compute` reads read models rebuilt by a replay (the whole log). :func:`compute_range`
covers positions ``first..last`` only, in time proportional to the range: it projects the
range's events with the ledger projection's own pure function, starting from the state at
``first - 1``: each account's balances from its last ``account_history`` row at or before
``first - 1`` (one indexed read per account the range touches), each transfer the range
settles from its own stream's events (at most a few per transfer). Over a range:

* ``trial_balance`` sums, per ledger and currency, the *movements* of the accounts the range
  touches (balances at ``last`` minus balances at ``first - 1``); ``accounts`` counts them.
  For ``first = 1`` this is the trial balance of the whole ledger at ``last``.
* ``statements`` has, per account the range touches, an ``opening`` row (its balances at
  ``first - 1``, at the position of the change that produced them) unless the account was
  opened in the range, then every change in the range.
* ``large_value`` and ``daily_totals`` cover the transfers created in the range (their state
  at ``last``).
    ``trades``          per instrument and UTC day: trades, volume, notional, VWAP, open, high,
                        low and close (decimal strings in the instrument's units)
    ``orders``          the order audit trail: every change of every order (accepted, traded,
                        rested, reduced, amended, cancelled, expired) with its book sequence,
                        global position and time. Orders refused at placement changed no book:
                        they are in the command log (``trading.place_order``, not accepted).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.rows import tuple_row

from domain.ledger.transfer import stream_id as transfer_stream
from eventstore.recorder import HashChainRecorder
from projections.ledger import decode, project, touched
from projections.runner import ProjectionRunner
from readmodels.ledger import AccountRow, HistoryRow, TransferRow, accounts_as_of
from readmodels.schema import SCHEMA as LIVE_SCHEMA
from readmodels.tracking import position_of

LEDGER_REPORTS = ("trial_balance", "statements", "large_value", "daily_totals")
REPORTS = (*LEDGER_REPORTS, "netting", "unwind", "trades", "orders")


class ReportError(Exception):
    """A report cannot be computed as asked (the read model it starts from is behind)."""


_LARGE_VALUE = """
        SELECT transfer_id, ledger, currency, amount, debit_account_id, credit_account_id,
               state, created_position, created_at_ns
        FROM transfers JOIN thresholds USING (currency) WHERE amount >= threshold_minor
        ORDER BY created_position"""
_DAILY_TOTALS = """
        SELECT ledger, currency,
               CAST(to_timestamp(created_at_ns / 1e9) AT TIME ZONE 'UTC' AS DATE) AS day,
               count(*) AS transfers, sum(posted_amount) AS posted_amount
        FROM transfers GROUP BY ALL ORDER BY ledger, currency, day"""

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
    "large_value": _LARGE_VALUE,
    "daily_totals": _DAILY_TOTALS,
}


def _arrow(conn: psycopg.Connection[Any], schema: str, table: str) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(f'SELECT * FROM "{schema}".{table}')
        names = [d.name for d in cur.description or ()]
        rows = [[int(v) if isinstance(v, Decimal) else v for v in row] for row in cur.fetchall()]
    # Ids go up to 2^127 (settlement instructions use 2^126 and above): a column holding an
    # integer past 64 bits is carried as decimal text, the rest stay integers.
    for k in range(len(names)):
        if any(type(r[k]) is int and not -(2**63) <= r[k] < 2**63 for r in rows):
            for r in rows:
                r[k] = None if r[k] is None else str(r[k])
    return (
        pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows])
        if rows
        else (pa.table({n: pa.array([], pa.int64()) for n in names}))
    )


def _thresholds(currencies: Iterable[str], large_value_major: int) -> pa.Table:
    from domain.money import currency_exponent

    ordered = sorted(set(currencies))
    return pa.table(
        {
            "currency": pa.array(ordered, pa.string()),
            "threshold_minor": pa.array(
                [large_value_major * 10 ** currency_exponent(c) for c in ordered], pa.int64()
            ),
        }
    )


def compute(
    conn: psycopg.Connection[Any], schema: str, *, large_value_major: int = 10_000
) -> dict[str, pa.Table]:
    db = duckdb.connect()
    tables = {t: _arrow(conn, schema, t) for t in ("accounts", "account_history", "transfers")}
    for name, table in tables.items():
        db.register(name, table)
    currencies = (
        tables["accounts"].column("currency").to_pylist() if tables["accounts"].num_rows else []
    )
    db.register("thresholds", _thresholds(currencies, large_value_major))
    from replay import settlement_reports

    return {
        **{name: db.sql(_SQL[name]).to_arrow_table() for name in LEDGER_REPORTS},
        **settlement_reports.compute(conn, schema),
        **_trading(conn, schema),
    }


# ------------------------------------------------------------------ over a range


def _table(rows: list[tuple[Any, ...]], columns: dict[str, pa.DataType]) -> pa.Table:
    if not rows:
        return pa.table({n: pa.array([], t) for n, t in columns.items()})
    arrays = {}
    for i, (name, kind) in enumerate(columns.items()):
        values = [r[i] for r in rows]
        if kind == pa.int64() and any(v is not None and not -(2**63) <= v < 2**63 for v in values):
            # As in a full replay's tables: ids past 64 bits (settlement instructions and venue
            # transfers use the whole 128-bit space) are carried as decimal text.
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
        else:
            arrays[name] = pa.array(values, kind)
    return pa.table(arrays)


_MOVEMENTS = {
    "account_id": pa.int64(),
    "ledger": pa.int64(),
    "currency": pa.string(),
    "debits_pending": pa.int64(),
    "debits_posted": pa.int64(),
    "credits_pending": pa.int64(),
    "credits_posted": pa.int64(),
}
_HISTORY = {
    "account_id": pa.int64(),
    "position": pa.int64(),
    "change": pa.string(),
    "transfer_id": pa.int64(),
    "currency": pa.string(),
    "debits_pending": pa.int64(),
    "debits_posted": pa.int64(),
    "credits_pending": pa.int64(),
    "credits_posted": pa.int64(),
    "recorded_at_ns": pa.int64(),
}
_TRANSFERS = {
    "transfer_id": pa.int64(),
    "ledger": pa.int64(),
    "currency": pa.string(),
    "amount": pa.int64(),
    "posted_amount": pa.int64(),
    "debit_account_id": pa.int64(),
    "credit_account_id": pa.int64(),
    "state": pa.string(),
    "created_position": pa.int64(),
    "created_at_ns": pa.int64(),
}


def ensure_read_model_at(
    conn: psycopg.Connection[Any], recorder: HashChainRecorder, position: int
) -> int:
    """Make sure the ledger read model has applied ``position``; return its position.

    Fed from the store (the in-process runner), a read model that is behind is caught up here
    with the runner's own code, under its tracking-row lock (a running ``serve`` simply waits
    or skips what was applied). Fed from Kafka, it must be caught up by the workers.
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT source, position FROM {LIVE_SCHEMA}.tracking WHERE projection = 'ledger'"
        )
        rows = cur.fetchall()
    sources = {str(r[0]): int(r[1]) for r in rows}
    kafka = [p for s, p in sources.items() if s.startswith("kafka:")]
    if kafka and "store" not in sources:
        if min(kafka) < position:
            raise ReportError(
                f"the ledger read model (fed from Kafka) is at position {min(kafka)}, behind "
                f"{position}; wait for the workers and retry"
            )
        return min(kafka)
    current = sources.get("store", 0)
    if current >= position:
        return current
    from projections.ledger import LedgerProjection

    runner = ProjectionRunner(recorder, [LedgerProjection()])
    try:
        runner.position = current
        runner.catch_up()
    except Exception as exc:  # the runner's own failure, named
        raise ReportError(f"the ledger read model cannot reach position {position}: {exc}") from exc
    current = position_of(conn, "ledger")
    if current < position:
        raise ReportError(f"the ledger read model is at position {current}, behind {position}")
    return current


def _transfers_at(
    recorder: HashChainRecorder, transfer_ids: Iterable[int], position: int
) -> dict[int, TransferRow]:
    """Transfer rows as of ``position``, projected from the transfers' own streams."""
    ids = list(transfer_ids)
    if not ids:
        return {}
    streams = recorder.read_streams(transfer_stream(t) for t in ids)
    events = sorted(
        (e for evs in streams.values() for e in evs if e.position <= position),
        key=lambda e: e.position,
    )
    rows: dict[int, TransferRow] = {}
    project(decode(events), {}, rows)
    return rows


def compute_range(
    conn: psycopg.Connection[Any],
    recorder: HashChainRecorder,
    first: int,
    last: int,
    *,
    batch_size: int = 20_000,
    large_value_major: int = 10_000,
) -> dict[str, pa.Table]:
    """The four reports over positions ``first..last`` (see the module docstring)."""
    if first > 1:
        ensure_read_model_at(conn, recorder, first - 1)
    accounts: dict[int, AccountRow] = {}
    transfers: dict[int, TransferRow] = {}
    opening: dict[int, AccountRow] = {}
    history: list[HistoryRow] = []
    created: set[int] = set()
    after = first - 1
    while after < last:
        batch = recorder.read_from(after, batch_size, last)
        if not batch:
            break
        after = batch[-1].position
        decoded = decode(batch)
        account_ids, transfer_ids = touched(decoded)
        missing = [a for a in account_ids if a not in accounts]
        if missing and first > 1:
            for row in accounts_as_of(conn, missing, first - 1, LIVE_SCHEMA).values():
                accounts[row.account_id] = row
                opening[row.account_id] = dataclasses.replace(row)
        missing_t = [t for t in transfer_ids if t not in transfers]
        if missing_t and first > 1:
            transfers.update(_transfers_at(recorder, missing_t, first - 1))
        changes = project(decoded, accounts, transfers)
        history.extend(changes.history)
        created.update(
            t.transfer_id for t in changes.transfers.values() if t.created_position >= first
        )
    zero = (0, 0, 0, 0)
    movements = []
    for account_id, row in sorted(accounts.items()):
        before = opening.get(account_id)
        start = (
            (
                before.debits_pending,
                before.debits_posted,
                before.credits_pending,
                before.credits_posted,
            )
            if before
            else zero
        )
        movements.append(
            (
                account_id,
                row.ledger,
                row.currency,
                row.debits_pending - start[0],
                row.debits_posted - start[1],
                row.credits_pending - start[2],
                row.credits_posted - start[3],
            )
        )
    statement_rows = [
        (o.account_id, o.last_position, "opening", None, o.currency, o.debits_pending,
         o.debits_posted, o.credits_pending, o.credits_posted, None)
        for o in opening.values()
    ] + [
        (h.account_id, h.position, h.change, h.transfer_id, h.currency, h.debits_pending,
         h.debits_posted, h.credits_pending, h.credits_posted, h.recorded_at_ns)
        for h in history
    ]  # fmt: skip
    transfer_rows = [
        (t.transfer_id, t.ledger, t.currency, t.amount, t.posted_amount, t.debit_account_id,
         t.credit_account_id, t.state, t.created_position, t.created_at_ns)
        for t in transfers.values()
        if t.transfer_id in created
    ]  # fmt: skip
    db = duckdb.connect()
    db.register("movements", _table(movements, _MOVEMENTS))
    db.register("account_history", _table(statement_rows, _HISTORY))
    db.register("transfers", _table(transfer_rows, _TRANSFERS))
    db.register("thresholds", _thresholds((m[2] for m in movements), large_value_major))
    sql = {
        "trial_balance": _SQL["trial_balance"].replace("FROM accounts", "FROM movements"),
        "statements": _SQL["statements"],
        "large_value": _LARGE_VALUE,
        "daily_totals": _DAILY_TOTALS,
    }
    return {name: db.sql(sql[name]).to_arrow_table() for name in LEDGER_REPORTS}


def _rows(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d.name for d in cur.description or ()]
        return [
            dict(zip(names, (int(v) if isinstance(v, Decimal) else v for v in row), strict=True))
            for row in cur.fetchall()
        ]


def _dict_table(rows: list[dict[str, Any]], names: tuple[str, ...]) -> pa.Table:
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
        "trades": _dict_table(
            trades, ("instrument_id", "symbol", "day", "trades", "volume", "vwap")
        ),
        "orders": _dict_table(orders, ("instrument_id", "order_id", "sequence", "event")),
    }


# Ledger report columns that hold integer minor units (settlement's end in ``_minor``).
_LEDGER_MONEY = frozenset(
    {"debits_pending", "debits_posted", "credits_pending", "credits_posted", "amount",
     "posted_amount"}
)  # fmt: skip


def present(report: pa.Table) -> pa.Table:
    """The report for people: every amount in major units of its row's currency (a decimal
    string, exact), with the minor units kept beside it as ``<name>_minor``.

    Applies to tables with a ``currency`` column; others (the trading reports, already in the
    instrument's units) are returned as they are.
    """
    from domain.money import format_major

    if "currency" not in report.column_names:
        return report
    currencies = report.column("currency").to_pylist()
    columns: dict[str, pa.Array] = {}
    for name in report.column_names:
        values = report.column(name)
        if name in _LEDGER_MONEY:
            stem = name
        elif name.endswith("_minor") and name[: -len("_minor")] not in report.column_names:
            stem = name[: -len("_minor")]
        else:
            columns[name] = values
            continue
        major = [
            None if v is None or c is None else format_major(int(v), c)
            for v, c in zip(values.to_pylist(), currencies, strict=True)
        ]
        columns[stem] = pa.array(major, pa.string())
        columns[f"{stem}_minor"] = values
    return pa.table(columns)


def summary(report: pa.Table, limit: int = 20) -> str:
    """A plain-text table of the report's first ``limit`` rows, for a terminal."""
    names = report.column_names
    rows = [
        ["" if v is None else str(v) for v in r.values()]
        for r in report.slice(0, limit).to_pylist()
    ]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(names), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if report.num_rows > limit:
        out.append(f"... {report.num_rows - limit} more rows in the file")
    return "\n".join(out)


def write(report: pa.Table, path: Path, fmt: str, meta: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = report.replace_schema_metadata({b"ledgerline": json.dumps(meta).encode()})
    if fmt == "parquet":
        target = path.with_suffix(".parquet")
        pq.write_table(stamped, target)
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        target = path.with_suffix(".csv")
        pacsv.write_csv(report, target)
        target.with_suffix(".meta.json").write_text(json.dumps(meta, indent=1))
    elif fmt == "json":
        target = path.with_suffix(".json")
        target.write_text(
            json.dumps({"meta": meta, "rows": report.to_pylist()}, indent=1, default=str)
        )
    else:
        raise ValueError(f"unknown format {fmt}")
    return target
