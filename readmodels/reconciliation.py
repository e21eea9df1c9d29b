"""Reconciliation read models, and the ledger facts a reconciliation reads.

Definition
    ``reconciliations``         one row per reconciliation: the statement, the account, the
                                period, the counts per status, when it was recorded
    ``reconciliation_items``    one row per item, in the matcher's order (``seq``): the
                                statement entry (JSON), the ledger transfer, amounts (signed
                                minor units, money in positive), dates, the rule
    ``reconciliation_balances`` the statement's opening and closing balances against the
                                ledger's

    :func:`ledger_facts` reads, from the ledger's read model, what a reconciliation needs of
    a nostro account: the account, its posted movements in a time window, and its posted
    balances before two instants; in one REPEATABLE READ snapshot.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from eventstore.schema import APP_ROLE, Migration
from readmodels.schema import SCHEMA, register

_GRANT_DML = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        400,
        "reconciliations of bank statements, their items and balance checks",
        (
            "CREATE TABLE {schema}.reconciliations ("
            " reconciliation_id text PRIMARY KEY,"
            " statement_id text NOT NULL,"
            " statement_digest text NOT NULL,"
            " statement_format text NOT NULL,"
            " bank_account text NOT NULL,"
            " account_id numeric(39, 0) NOT NULL,"
            " ledger bigint NOT NULL,"
            " currency text NOT NULL,"
            " nostro_view text NOT NULL,"
            " period_from text NOT NULL,"
            " period_to text NOT NULL,"
            " entries integer NOT NULL,"
            " date_tolerance_days integer NOT NULL,"
            " ledger_position bigint NOT NULL,"
            " counts jsonb,"
            " completed boolean NOT NULL DEFAULT false,"
            " opened_at_ns bigint NOT NULL,"
            " recorded_position bigint NOT NULL)",
            "CREATE INDEX reconciliations_account_idx"
            " ON {schema}.reconciliations (account_id, recorded_position)",
            "CREATE INDEX reconciliations_position_idx"
            " ON {schema}.reconciliations (recorded_position)",
            "CREATE TABLE {schema}.reconciliation_items ("
            " reconciliation_id text NOT NULL,"
            " seq integer NOT NULL,"
            " status text NOT NULL,"
            " rule text NOT NULL,"
            " entry jsonb,"
            " statement_amount_minor numeric(40, 0),"
            " statement_date text,"
            " transfer_id numeric(39, 0),"
            " ledger_amount_minor numeric(40, 0),"
            " ledger_date text,"
            " difference_minor numeric(41, 0),"
            " business_days integer,"
            " candidates jsonb NOT NULL,"
            " PRIMARY KEY (reconciliation_id, seq))",
            "CREATE TABLE {schema}.reconciliation_balances ("
            " reconciliation_id text NOT NULL,"
            " kind text NOT NULL,"
            " date text NOT NULL,"
            " statement_minor numeric(40, 0) NOT NULL,"
            " ledger_minor numeric(40, 0) NOT NULL,"
            " PRIMARY KEY (reconciliation_id, kind))",
            _GRANT_DML,
        ),
    ),
)
register(MIGRATIONS)

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "reconciliations": ("reconciliation_id",),
    "reconciliation_items": ("reconciliation_id", "seq"),
    "reconciliation_balances": ("reconciliation_id", "kind"),
}

ITEM_COLUMNS = (
    "reconciliation_id",
    "seq",
    "status",
    "rule",
    "entry",
    "statement_amount_minor",
    "statement_date",
    "transfer_id",
    "ledger_amount_minor",
    "ledger_date",
    "difference_minor",
    "business_days",
    "candidates",
)
HEADER_COLUMNS = (
    "reconciliation_id",
    "statement_id",
    "statement_digest",
    "statement_format",
    "bank_account",
    "account_id",
    "ledger",
    "currency",
    "nostro_view",
    "period_from",
    "period_to",
    "entries",
    "date_tolerance_days",
    "ledger_position",
    "opened_at_ns",
    "recorded_position",
)


def _insert(table: str, columns: tuple[str, ...], schema: str) -> str:
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {schema}.{table} ({', '.join(columns)}) VALUES ({marks})"


def write(
    cur: psycopg.Cursor[Any],
    schema: str,
    headers: list[tuple[Any, ...]],
    items: list[tuple[Any, ...]],
    balances: list[tuple[Any, ...]],
    completed: list[tuple[str, dict[str, int]]],
) -> None:
    """Insert the batch's rows (a reconciliation is written once, in one batch or several)."""
    if headers:
        cur.executemany(_insert("reconciliations", HEADER_COLUMNS, schema), headers)
    if items:
        cur.executemany(_insert("reconciliation_items", ITEM_COLUMNS, schema), items)
    if balances:
        cols = ("reconciliation_id", "kind", "date", "statement_minor", "ledger_minor")
        cur.executemany(_insert("reconciliation_balances", cols, schema), balances)
    if completed:
        cur.executemany(
            f"UPDATE {schema}.reconciliations SET counts = %s, completed = true"
            " WHERE reconciliation_id = %s",
            [(json.dumps(c, sort_keys=True), rid) for rid, c in completed],
        )


# ------------------------------------------------------------------ queries (API side)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def get_reconciliation(conn: psycopg.Connection[Any], rid: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {SCHEMA}.reconciliations WHERE reconciliation_id = %s", (rid,))
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(
            "SELECT kind, date, statement_minor, ledger_minor"
            f" FROM {SCHEMA}.reconciliation_balances WHERE reconciliation_id = %s"
            " ORDER BY kind DESC",
            (rid,),
        )
        out = _plain(row)
        out["balances"] = [_plain(b) for b in cur.fetchall()]
        return out


def reconciliation_items(
    conn: psycopg.Connection[Any], rid: str, statuses: list[str] | None = None
) -> list[dict[str, Any]]:
    where = "reconciliation_id = %s"
    params: list[Any] = [rid]
    if statuses:
        where += " AND status = ANY(%s)"
        params.append(statuses)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.reconciliation_items WHERE {where} ORDER BY seq", params
        )
        return [_plain(r) for r in cur.fetchall()]


def list_reconciliations(
    conn: psycopg.Connection[Any],
    *,
    account_id: int | None,
    before_position: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated by the position they were recorded at."""
    where, params = ["completed"], []
    if account_id is not None:
        where.append("account_id = %s")
        params.append(account_id)
    if before_position is not None:
        where.append("recorded_position < %s")
        params.append(before_position)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.reconciliations WHERE {' AND '.join(where)}"
            " ORDER BY recorded_position DESC, reconciliation_id LIMIT %s",
            [*params, limit],
        )
        return [_plain(r) for r in cur.fetchall()]


# ------------------------------------------------------------------ the ledger's side

_MOVEMENTS = (
    "SELECT h.transfer_id, h.change, h.recorded_at_ns, t.amount, t.posted_amount,"
    " t.user_data_128"
    " FROM {schema}.account_history h JOIN {schema}.transfers t ON t.transfer_id = h.transfer_id"
    " WHERE h.account_id = %s AND h.recorded_at_ns >= %s AND h.recorded_at_ns < %s"
    " AND (h.change LIKE '%%:AmountPosted' OR h.change LIKE '%%:ReservationPosted')"
    " ORDER BY h.position"
)
_BALANCE = (
    "SELECT debits_posted, credits_posted FROM {schema}.account_history"
    " WHERE account_id = %s AND recorded_at_ns < %s"
    " ORDER BY recorded_at_ns DESC, position DESC LIMIT 1"
)


def ledger_facts(
    conn: psycopg.Connection[Any],
    account_id: int,
    from_ns: int,
    to_ns: int,
    opening_before_ns: int,
    closing_before_ns: int,
    schema: str = SCHEMA,
) -> dict[str, Any] | None:
    """The account (``None``: no such account), its posted movements with
    ``from_ns <= time < to_ns`` (``side``, ``amount``, ``at_ns``, ``transfer_id``,
    ``user_data_128``) and its posted balances before the two instants."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT account_id, ledger, currency, account_type FROM {schema}.accounts"
            " WHERE account_id = %s",
            (account_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        account = {
            "account_id": int(row[0]),
            "ledger": int(row[1]),
            "currency": row[2],
            "account_type": row[3],
        }
        cur.execute(_MOVEMENTS.format(schema=schema), (account_id, from_ns, to_ns))
        movements = []
        for transfer_id, change, at_ns, amount, posted, user_data_128 in cur.fetchall():
            side, kind = str(change).split(":", 1)
            moved = int(amount if kind == "AmountPosted" else posted)
            if moved:
                movements.append(
                    {
                        "transfer_id": int(transfer_id),
                        "side": side,
                        "amount": moved,
                        "at_ns": int(at_ns),
                        "user_data_128": int(user_data_128),
                    }
                )
        balances = []
        for before in (opening_before_ns, closing_before_ns):
            cur.execute(_BALANCE.format(schema=schema), (account_id, before))
            b = cur.fetchone()
            balances.append((int(b[0]), int(b[1])) if b else (0, 0))
    return {"account": account, "movements": movements, "balances": balances}
