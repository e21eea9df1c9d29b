"""Regulator reports, computed with duckdb over read models rebuilt by a replay.

Reports (each as of a position; each records the checkpoint it rests on):
    ``trial_balance``   per ledger and currency: the four balance sums, and whether they balance
    ``statements``      per account: every balance change with its transfer and balances after
    ``large_value``     transfers at or above a threshold (major units, per currency)
    ``daily_totals``    per ledger, currency and UTC day: transfer count and amount
    ``netting``, ``unwind``   clearing and settlement (see :mod:`replay.settlement_reports`)
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

LEDGER_REPORTS = ("trial_balance", "statements", "large_value", "daily_totals")
REPORTS = (*LEDGER_REPORTS, "netting", "unwind")

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
    from replay import settlement_reports

    return {
        **{name: db.sql(_SQL[name]).to_arrow_table() for name in LEDGER_REPORTS},
        **settlement_reports.compute(conn, schema),
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
