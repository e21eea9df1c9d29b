"""The AML read models: monitored transactions, alerts, the flow graph, cases, reference data.

Definition
    ``aml_transactions``   every monitored transaction (ingested ones and ledger transfers) with
                           its USD value: the evidence alerts and reports cite, and the
                           monitoring engine's journal (it is rebuilt from it after a restart)
    ``aml_inputs``         the reference data the engine consumed (rules, rates, profiles), by
                           position: the other half of the journal
    ``aml_alerts``         one row per alert (raised or updated in place)
    ``aml_edges``          the flow graph: per (from, to, UTC day of business time) the number
                           of transactions, their USD sum, first and last business time
    ``aml_cases``          one row per case, its notes, evidence, trail and SAR
    ``aml_rules``, ``aml_profiles``, ``aml_rates``, ``aml_sanctions``: current reference data
    ``aml_pending_ledger`` ledger transfers created pending (monitored when posted)
    ``aml_inbox``          (Kafka mode) events received but not yet in global order

Guarantees
    Edge rows are sums of per-batch deltas (counts and sums add, first/last take min/max), so
    they do not depend on how the log was cut into batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row, tuple_row

from eventstore.schema import APP_ROLE, Migration
from readmodels import arrays
from readmodels.schema import SCHEMA, register

_GRANT_DML = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"
)

MIGRATIONS = (
    Migration(
        300,
        "aml: monitored transactions, journal, alerts, flow graph, cases, reference data",
        (
            "CREATE TABLE {schema}.aml_transactions ("
            " position bigint PRIMARY KEY,"
            " tx_id text NOT NULL UNIQUE,"
            " ts_ns bigint NOT NULL,"
            " src text NOT NULL,"
            " dst text NOT NULL,"
            " usd_minor bigint NOT NULL CHECK (usd_minor >= 0),"
            " amount_minor numeric(39, 0) NOT NULL CHECK (amount_minor > 0),"
            " currency text NOT NULL,"
            " channel text NOT NULL,"
            " kind text NOT NULL,"
            " from_country text NOT NULL,"
            " to_country text NOT NULL,"
            " conducted_by text NOT NULL,"
            " branch text NOT NULL,"
            " origin text NOT NULL,"
            " extra jsonb NOT NULL)",
            "CREATE INDEX aml_transactions_src_idx ON {schema}.aml_transactions (src, ts_ns)",
            "CREATE INDEX aml_transactions_dst_idx ON {schema}.aml_transactions (dst, ts_ns)",
            "CREATE INDEX aml_transactions_ts_idx ON {schema}.aml_transactions (ts_ns)",
            "CREATE TABLE {schema}.aml_inputs ("
            " position bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL)",
            "CREATE TABLE {schema}.aml_alerts ("
            " alert_id text PRIMARY KEY,"
            " typology text NOT NULL,"
            " category text NOT NULL,"
            " rule_id text NOT NULL,"
            " rule_version integer NOT NULL,"
            " subject text NOT NULL,"
            " episode text NOT NULL,"
            " score integer NOT NULL CHECK (score BETWEEN 0 AND 100),"
            " account_ids text[] NOT NULL,"
            " transaction_ids text[] NOT NULL,"
            " features jsonb NOT NULL,"
            " raised_event_ts bigint NOT NULL,"
            " updated_event_ts bigint NOT NULL,"
            " position bigint NOT NULL,"
            " status text NOT NULL)",
            "CREATE INDEX aml_alerts_typology_idx ON {schema}.aml_alerts (typology, position)",
            "CREATE INDEX aml_alerts_subject_idx ON {schema}.aml_alerts (subject)",
            "CREATE INDEX aml_alerts_accounts_idx ON {schema}.aml_alerts USING gin (account_ids)",
            "CREATE TABLE {schema}.aml_edges ("
            " src text NOT NULL,"
            " dst text NOT NULL,"
            " window_day integer NOT NULL,"
            " tx_count bigint NOT NULL CHECK (tx_count > 0),"
            " usd_minor bigint NOT NULL,"
            " first_ts bigint NOT NULL,"
            " last_ts bigint NOT NULL,"
            " PRIMARY KEY (src, dst, window_day))",
            "CREATE INDEX aml_edges_dst_idx ON {schema}.aml_edges (dst, window_day)",
            "CREATE TABLE {schema}.aml_pending_ledger ("
            " transfer_id numeric(39, 0) PRIMARY KEY,"
            " debit text NOT NULL, credit text NOT NULL, currency text NOT NULL,"
            " created_at_ns bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_cases ("
            " case_id text PRIMARY KEY,"
            " status text NOT NULL,"
            " title text NOT NULL,"
            " assignee text NOT NULL,"
            " alert_ids text[] NOT NULL,"
            " disposition text NOT NULL,"
            " opened_by text NOT NULL,"
            " opened_at_ns bigint NOT NULL,"
            " sar jsonb,"
            " notes jsonb NOT NULL,"
            " evidence jsonb NOT NULL,"
            " trail jsonb NOT NULL,"
            " version integer NOT NULL,"
            " position bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_rules ("
            " rule_id text PRIMARY KEY, detector text NOT NULL, version integer NOT NULL,"
            " enabled boolean NOT NULL, weight integer NOT NULL, params jsonb NOT NULL,"
            " author text NOT NULL, reason text NOT NULL, position bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_profiles ("
            " account text PRIMARY KEY, name text NOT NULL, country text NOT NULL,"
            " segment text NOT NULL, business_type text NOT NULL, opened_ns bigint,"
            " risk_rating text NOT NULL, last_activity_ns bigint, extra jsonb NOT NULL,"
            " position bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_rates ("
            " currency text PRIMARY KEY, rate text NOT NULL, position bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_sanctions ("
            " list_id text NOT NULL, uid text NOT NULL, version integer NOT NULL,"
            " name text NOT NULL, aliases text[] NOT NULL, kind text NOT NULL,"
            " programs text[] NOT NULL, country text NOT NULL, position bigint NOT NULL,"
            " PRIMARY KEY (list_id, uid))",
            "CREATE TABLE {schema}.aml_progress ("
            " id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL)",
            "CREATE TABLE {schema}.aml_inbox ("
            " position bigint PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL,"
            " topic text NOT NULL, payload bytea NOT NULL, recorded_at_ns bigint NOT NULL)",
            _GRANT_DML,
        ),
    ),
    Migration(
        301,
        "aml: the monitoring engine's checkpoint (a cache: unlogged, never compared)",
        (
            "CREATE UNLOGGED TABLE {schema}.aml_checkpoint ("
            " id integer PRIMARY KEY CHECK (id = 1), position bigint NOT NULL,"
            " code text NOT NULL, engine bytea NOT NULL, windows bigint NOT NULL)",
            "CREATE UNLOGGED TABLE {schema}.aml_checkpoint_windows ("
            " account text NOT NULL, state bytea NOT NULL)",
            "ALTER TABLE {schema}.aml_checkpoint_windows ALTER COLUMN state SET STORAGE EXTERNAL",
            _GRANT_DML,
            f"GRANT TRUNCATE ON {{schema}}.aml_checkpoint, {{schema}}.aml_checkpoint_windows"
            f" TO {APP_ROLE}",
        ),
    ),
    Migration(
        302,
        "aml: the checkpoint's windows keyed by account (a checkpoint replaces those changed)",
        (
            "TRUNCATE {schema}.aml_checkpoint, {schema}.aml_checkpoint_windows",
            "ALTER TABLE {schema}.aml_checkpoint_windows ADD PRIMARY KEY (account)",
        ),
    ),
)
register(MIGRATIONS)

# Tables a replay rebuilds and compares (the inbox is transient transport state).
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "aml_transactions": ("position",),
    "aml_inputs": ("position",),
    "aml_alerts": ("alert_id",),
    "aml_edges": ("src", "dst", "window_day"),
    "aml_pending_ledger": ("transfer_id",),
    "aml_cases": ("case_id",),
    "aml_rules": ("rule_id",),
    "aml_profiles": ("account",),
    "aml_rates": ("currency",),
    "aml_sanctions": ("list_id", "uid"),
}

TX_COLUMNS = (
    "position",
    "tx_id",
    "ts_ns",
    "src",
    "dst",
    "usd_minor",
    "amount_minor",
    "currency",
    "channel",
    "kind",
    "from_country",
    "to_country",
    "conducted_by",
    "branch",
    "origin",
    "extra",
)
ALERT_COLUMNS = (
    "alert_id",
    "typology",
    "category",
    "rule_id",
    "rule_version",
    "subject",
    "episode",
    "score",
    "account_ids",
    "transaction_ids",
    "features",
    "raised_event_ts",
    "updated_event_ts",
    "position",
    "status",
)
EDGE_COLUMNS = ("src", "dst", "window_day", "tx_count", "usd_minor", "first_ts", "last_ts")
CASE_COLUMNS = (
    "case_id",
    "status",
    "title",
    "assignee",
    "alert_ids",
    "disposition",
    "opened_by",
    "opened_at_ns",
    "sar",
    "notes",
    "evidence",
    "trail",
    "version",
    "position",
)


def _json(value: Any) -> str:
    if not value and isinstance(value, dict):
        return "{}"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer past 64 bits: the standard library writes it exactly
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------ writes (projection side)


def copy_transactions(
    cur: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]], schema: str = SCHEMA
) -> None:
    """Append monitored transactions (``TX_COLUMNS`` order, ``extra`` as a dict)."""
    if not rows:
        return
    with cur.copy(f"COPY {schema}.aml_transactions ({', '.join(TX_COLUMNS)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row((*r[:-1], _json(r[-1])))


def copy_inputs(
    cur: psycopg.Cursor[Any], inputs: Sequence[tuple[int, str, dict[str, Any]]], schema: str
) -> None:
    """Journal reference data the engine consumed: ``(position, kind, payload)``."""
    if not inputs:
        return
    with cur.copy(f"COPY {schema}.aml_inputs (position, kind, payload) FROM STDIN") as cp:
        for position, kind, payload in inputs:
            cp.write_row((position, kind, _json(payload)))


def upsert_alerts(
    cur: psycopg.Cursor[Any], rows: Iterable[dict[str, Any]], schema: str = SCHEMA
) -> None:
    """Insert alerts, or replace them in place (an ongoing pattern updates its alert)."""
    values = [tuple(_json(r[c]) if c == "features" else r[c] for c in ALERT_COLUMNS) for r in rows]
    if not values:
        return
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ALERT_COLUMNS if c != "alert_id")
    cur.executemany(
        f"INSERT INTO {schema}.aml_alerts ({', '.join(ALERT_COLUMNS)})"
        f" VALUES ({', '.join(['%s'] * len(ALERT_COLUMNS))})"
        f" ON CONFLICT (alert_id) DO UPDATE SET {updates}",
        values,
    )


_EDGE_TYPES = ("text", "text", "integer", "bigint", "bigint", "bigint", "bigint")  # EDGE_COLUMNS


def add_edges(
    cur: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]], schema: str = SCHEMA
) -> None:
    """Add per-batch flow deltas to the edge rows."""
    if not rows:
        return
    columns = arrays.columns(rows, _EDGE_TYPES)
    cur.execute(
        f"INSERT INTO {schema}.aml_edges ({', '.join(EDGE_COLUMNS)})"
        f" SELECT * FROM unnest({arrays.casts(_EDGE_TYPES)})"
        " ON CONFLICT (src, dst, window_day) DO UPDATE SET"
        f" tx_count = {schema}.aml_edges.tx_count + EXCLUDED.tx_count,"
        f" usd_minor = {schema}.aml_edges.usd_minor + EXCLUDED.usd_minor,"
        f" first_ts = LEAST({schema}.aml_edges.first_ts, EXCLUDED.first_ts),"
        f" last_ts = GREATEST({schema}.aml_edges.last_ts, EXCLUDED.last_ts)",
        columns,
    )


def copy_edges(
    cur: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]], schema: str = SCHEMA
) -> None:
    """Edges into an empty table (a rebuild): copied, not upserted."""
    with cur.copy(f"COPY {schema}.aml_edges ({', '.join(EDGE_COLUMNS)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def upsert_case(cur: psycopg.Cursor[Any], row: dict[str, Any], schema: str = SCHEMA) -> None:
    values = [
        _json(row[c]) if c in ("sar", "notes", "evidence", "trail") and row[c] is not None
        else row[c]
        for c in CASE_COLUMNS
    ]  # fmt: skip
    cols = ", ".join(CASE_COLUMNS)
    marks = ", ".join(["%s"] * len(CASE_COLUMNS))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in CASE_COLUMNS if c != "case_id")
    cur.execute(
        f"INSERT INTO {schema}.aml_cases ({cols}) VALUES ({marks})"
        f" ON CONFLICT (case_id) DO UPDATE SET {updates}",
        values,
    )


def upsert_rule(cur: psycopg.Cursor[Any], rule: dict[str, Any], position: int, schema: str) -> None:
    cur.execute(
        f"INSERT INTO {schema}.aml_rules"
        " (rule_id, detector, version, enabled, weight, params, author, reason, position)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (rule_id) DO UPDATE SET"
        " detector = EXCLUDED.detector, version = EXCLUDED.version, enabled = EXCLUDED.enabled,"
        " weight = EXCLUDED.weight, params = EXCLUDED.params, author = EXCLUDED.author,"
        " reason = EXCLUDED.reason, position = EXCLUDED.position",
        (
            rule["rule_id"],
            rule["detector"],
            rule["version"],
            rule["enabled"],
            rule["weight"],
            _json(rule["params"]),
            rule["author"],
            rule["reason"],
            position,
        ),
    )


def upsert_profiles(
    cur: psycopg.Cursor[Any], profiles: Iterable[tuple[dict[str, Any], int]], schema: str
) -> None:
    """KYC profiles (the event payloads) with the position each was recorded at."""
    cols = (
        "account", "name", "country", "segment", "business_type", "opened_ns", "risk_rating",
        "last_activity_ns", "extra",
    )  # fmt: skip
    rows = [
        (*(_json(p[c]) if c == "extra" else p[c] for c in cols), position)
        for p, position in profiles
    ]
    if not rows:
        return
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*cols[1:], "position"))
    cur.executemany(
        f"INSERT INTO {schema}.aml_profiles ({', '.join(cols)}, position)"
        f" VALUES ({', '.join(['%s'] * (len(cols) + 1))})"
        f" ON CONFLICT (account) DO UPDATE SET {updates}",
        rows,
    )


def replace_rates(
    cur: psycopg.Cursor[Any], rates: dict[str, str], position: int, schema: str
) -> None:
    cur.execute(f"DELETE FROM {schema}.aml_rates")
    cur.executemany(
        f"INSERT INTO {schema}.aml_rates (currency, rate, position) VALUES (%s, %s, %s)",
        [(c, r, position) for c, r in sorted(rates.items())],
    )


def replace_sanctions(
    cur: psycopg.Cursor[Any],
    list_id: str,
    version: int,
    entries: Sequence[dict[str, Any]],
    position: int,
    schema: str,
) -> None:
    cur.execute(f"DELETE FROM {schema}.aml_sanctions WHERE list_id = %s", (list_id,))
    with cur.copy(
        f"COPY {schema}.aml_sanctions (list_id, uid, version, name, aliases, kind, programs,"
        " country, position) FROM STDIN"
    ) as cp:
        for x in entries:
            cp.write_row(
                (
                    list_id,
                    x["uid"],
                    version,
                    x["name"],
                    list(x["aliases"]),
                    x["kind"],
                    list(x["programs"]),
                    x["country"],
                    position,
                )
            )


def pending_put(cur: psycopg.Cursor[Any], row: tuple[Any, ...], schema: str) -> None:
    cur.execute(
        f"INSERT INTO {schema}.aml_pending_ledger"
        " (transfer_id, debit, credit, currency, created_at_ns) VALUES (%s, %s, %s, %s, %s)",
        row,
    )


def copy_pending(cur: psycopg.Cursor[Any], rows: Iterable[tuple[Any, ...]], schema: str) -> None:
    """Pending transfers into an empty table (a rebuild's, at its end)."""
    with cur.copy(
        f"COPY {schema}.aml_pending_ledger"
        " (transfer_id, debit, credit, currency, created_at_ns) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def pending_take(
    cur: psycopg.Cursor[Any], transfer_id: int, schema: str
) -> tuple[str, str, str, int] | None:
    row = cur.execute(
        f"DELETE FROM {schema}.aml_pending_ledger WHERE transfer_id = %s"
        " RETURNING debit, credit, currency, created_at_ns",
        (transfer_id,),
    ).fetchone()
    if row is None:
        return None
    values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
    return str(values[0]), str(values[1]), str(values[2]), int(values[3])


# ------------------------------------------------------------------ bulk loads

BULK_TABLES = ("aml_transactions", "aml_edges", "aml_alerts")


# ------------------------------------------------------------------ the journal (warm-up)


def journal(
    cur: psycopg.Cursor[Any],
    upto: int,
    schema: str = SCHEMA,
    batch: int = 20_000,
    after: int = 0,
) -> Iterator[tuple[int, str, Any]]:
    """Every engine input in ``(after, upto]`` in position order: ``(position, "tx", row)``
    for monitored transactions (``TX_COLUMNS``) and ``(position, kind, payload)`` for
    reference data, merged."""
    # Two queries streamed through server-side cursors, ``batch`` rows per fetch, and merged
    # here: memory is two fetches whatever the journal holds (a store with millions of account
    # profiles), and the cost one pass (or one sort) whatever the tables' statistics. Pages of
    # ``position > after ORDER BY position LIMIT batch`` would each sort the rest of the table
    # while it has none (after a bulk load, until autovacuum first analyses it): quadratic.
    conn = cur.connection
    with (
        conn.transaction(),
        conn.cursor(name="aml_journal_tx", row_factory=tuple_row) as txs,
        conn.cursor(name="aml_journal_inputs", row_factory=tuple_row) as inputs,
    ):
        txs.itersize = inputs.itersize = batch
        txs.execute(
            f"SELECT {', '.join(TX_COLUMNS)} FROM {schema}.aml_transactions"
            " WHERE position > %s AND position <= %s ORDER BY position",
            (after, upto),
        )
        inputs.execute(
            f"SELECT position, kind, payload FROM {schema}.aml_inputs"
            " WHERE position > %s AND position <= %s ORDER BY position",
            (after, upto),
        )
        ref = next(inputs, None)
        for tx in txs:
            while ref is not None and ref[0] < tx[0]:
                yield int(ref[0]), str(ref[1]), ref[2]
                ref = next(inputs, None)
            yield int(tx[0]), "tx", tx
        while ref is not None:
            yield int(ref[0]), str(ref[1]), ref[2]
            ref = next(inputs, None)


def write_checkpoint(
    cur: psycopg.Cursor[Any],
    position: int,
    code: str,
    engine: bytes,
    windows: Iterable[tuple[str, bytes]],
    schema: str = SCHEMA,
) -> int:
    """Replace the engine's checkpoint (in the caller's transaction); the windows written."""
    cur.execute(f"TRUNCATE {schema}.aml_checkpoint, {schema}.aml_checkpoint_windows")
    count = 0
    with cur.copy(f"COPY {schema}.aml_checkpoint_windows (account, state) FROM STDIN") as cp:
        for row in windows:
            cp.write_row(row)
            count += 1
    cur.execute(
        f"INSERT INTO {schema}.aml_checkpoint (id, position, code, engine, windows)"
        " VALUES (1, %s, %s, %s, %s)",
        (position, code, engine, count),
    )
    return count


def update_checkpoint(
    cur: psycopg.Cursor[Any],
    position: int,
    code: str,
    engine: bytes,
    changed: Sequence[str],
    windows: Iterable[tuple[str, bytes]],
    count: int,
    schema: str = SCHEMA,
) -> None:
    """Move the engine's checkpoint to ``position`` (in the caller's transaction): the
    ``changed`` accounts' rows go, ``windows`` (those of them that still have one) come in,
    and ``count`` is how many windows the checkpoint then holds."""
    for i in range(0, len(changed), 10_000):
        cur.execute(
            f"DELETE FROM {schema}.aml_checkpoint_windows WHERE account = ANY(%s)",
            (list(changed[i : i + 10_000]),),
        )
    with cur.copy(f"COPY {schema}.aml_checkpoint_windows (account, state) FROM STDIN") as cp:
        for row in windows:
            cp.write_row(row)
    cur.execute(
        f"UPDATE {schema}.aml_checkpoint SET position = %s, code = %s, engine = %s,"
        " windows = %s WHERE id = 1",
        (position, code, engine, count),
    )


def _checkpoint_row(cur: psycopg.Cursor[Any], sql: str) -> tuple[Any, ...] | None:
    row = cur.execute(sql).fetchone()
    if row is None:
        return None
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def checkpoint_at(cur: psycopg.Cursor[Any], schema: str = SCHEMA) -> tuple[int, str] | None:
    """``(position, code)`` of the engine's checkpoint, locked until the caller's transaction
    ends (whoever moves it next sees what this one leaves)."""
    v = _checkpoint_row(
        cur, f"SELECT position, code FROM {schema}.aml_checkpoint WHERE id = 1 FOR UPDATE"
    )
    return None if v is None else (int(v[0]), str(v[1]))


def read_checkpoint(
    cur: psycopg.Cursor[Any], schema: str = SCHEMA
) -> tuple[int, str, bytes, int] | None:
    """``(position, code, engine, windows)`` of the engine's checkpoint, if there is one."""
    v = _checkpoint_row(
        cur, f"SELECT position, code, engine, windows FROM {schema}.aml_checkpoint WHERE id = 1"
    )
    return None if v is None else (int(v[0]), str(v[1]), bytes(v[2]), int(v[3]))


def checkpoint_windows(
    cur: psycopg.Cursor[Any], schema: str = SCHEMA, batch: int = 1_000
) -> Iterator[list[tuple[str, bytes]]]:
    """The checkpoint's account windows, ``batch`` at a time (a server-side cursor)."""
    conn = cur.connection
    with conn.transaction(), conn.cursor(name="aml_windows", row_factory=tuple_row) as rows:
        rows.itersize = batch
        rows.execute(f"SELECT account, state FROM {schema}.aml_checkpoint_windows")
        while chunk := rows.fetchmany(batch):
            yield [(str(a), bytes(b)) for a, b in chunk]


def sanctions_entries(cur: psycopg.Cursor[Any], schema: str = SCHEMA) -> list[dict[str, Any]]:
    cur.execute(
        f"SELECT list_id, uid, version, name, aliases, kind, programs, country"
        f" FROM {schema}.aml_sanctions ORDER BY list_id, uid"
    )
    keys = ("list_id", "uid", "version", "name", "aliases", "kind", "programs", "country")
    return [
        dict(zip(keys, tuple(r.values()) if isinstance(r, dict) else tuple(r), strict=True))
        for r in cur.fetchall()
    ]


def profile_names(cur: psycopg.Cursor[Any], schema: str = SCHEMA) -> dict[str, str]:
    cur.execute(f"SELECT account, name FROM {schema}.aml_profiles WHERE name <> ''")
    return {
        str(v[0]): str(v[1])
        for v in (tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cur.fetchall())
    }


# ------------------------------------------------------------------ queries (API side)


def _alert_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["account_ids"] = list(row["account_ids"])
    out["transaction_ids"] = list(row["transaction_ids"])
    return out


def list_alerts(
    conn: psycopg.Connection[Any],
    *,
    status: str | None = None,
    typology: str | None = None,
    account: str | None = None,
    after_position: int = 0,
    limit: int = 500,
    schema: str = SCHEMA,
    newest_first: bool = False,
    before: tuple[int, str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts in ``(position, alert_id)`` order, or newest first; ``before`` (a ``(position,
    alert_id)`` key) pages backwards from an alert, leaving out the ones at and after it."""
    where = ["position > %s"]
    params: list[Any] = [after_position]
    if before is not None:
        where.append("(position, alert_id) < (%s, %s)")
        params.extend(before)
    if status:
        where.append("status = %s")
        params.append(status)
    if typology:
        where.append("typology = %s")
        params.append(typology)
    if account:
        where.append("(subject = %s OR account_ids @> ARRAY[%s]::text[])")
        params.extend([account, account])
    params.append(limit)
    order = "position DESC, alert_id DESC" if newest_first else "position, alert_id"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {schema}.aml_alerts"
            f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %s",
            params,
        )
        return [_alert_out(r) for r in cur.fetchall()]


def get_alerts(
    conn: psycopg.Connection[Any], alert_ids: Sequence[str], schema: str = SCHEMA
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM {schema}.aml_alerts"
            " WHERE alert_id = ANY(%s) ORDER BY position, alert_id",
            (list(alert_ids),),
        )
        return [_alert_out(r) for r in cur.fetchall()]


def get_transactions(
    conn: psycopg.Connection[Any], tx_ids: Sequence[str], schema: str = SCHEMA
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(TX_COLUMNS)} FROM {schema}.aml_transactions"
            " WHERE tx_id = ANY(%s) ORDER BY ts_ns, tx_id",
            (list(tx_ids),),
        )
        return list(cur.fetchall())


def cash_between(
    conn: psycopg.Connection[Any], lo_ns: int, hi_ns: int, schema: str = SCHEMA
) -> list[dict[str, Any]]:
    """Cash transactions with business time in [lo, hi)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(TX_COLUMNS)} FROM {schema}.aml_transactions"
            " WHERE ts_ns >= %s AND ts_ns < %s AND kind <> 'transfer' ORDER BY ts_ns, tx_id",
            (lo_ns, hi_ns),
        )
        return list(cur.fetchall())


def get_case(
    conn: psycopg.Connection[Any], case_id: str, schema: str = SCHEMA
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM {schema}.aml_cases WHERE case_id = %s",
            (case_id,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    row["alert_ids"] = list(row["alert_ids"])
    return dict(row)


def cases_with_alerts(
    conn: psycopg.Connection[Any], alert_ids: Sequence[str], schema: str = SCHEMA
) -> list[dict[str, Any]]:
    """The cases that hold any of ``alert_ids`` (id, status, title, disposition, alerts)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT case_id, status, title, disposition, alert_ids FROM {schema}.aml_cases"
            " WHERE alert_ids && %s::text[] ORDER BY opened_at_ns, case_id",
            (list(alert_ids),),
        )
        return [dict(r, alert_ids=list(r["alert_ids"])) for r in cur.fetchall()]


def list_cases(
    conn: psycopg.Connection[Any], status: str | None = None, schema: str = SCHEMA
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {', '.join(CASE_COLUMNS)} FROM {schema}.aml_cases"
            + (" WHERE status = %s" if status else "")
            + " ORDER BY opened_at_ns, case_id LIMIT 1000",
            (status,) if status else (),
        )
        return [dict(r, alert_ids=list(r["alert_ids"])) for r in cur.fetchall()]


def get_profiles(
    conn: psycopg.Connection[Any], accounts: Sequence[str], schema: str = SCHEMA
) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {schema}.aml_profiles WHERE account = ANY(%s)", (list(accounts),)
        )
        return {r["account"]: dict(r) for r in cur.fetchall()}


def list_rules(conn: psycopg.Connection[Any], schema: str = SCHEMA) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {schema}.aml_rules ORDER BY rule_id")
        return {r["rule_id"]: dict(r) for r in cur.fetchall()}


def edges_touching(
    conn: psycopg.Connection[Any],
    accounts: Sequence[str],
    since_day: int,
    schema: str = SCHEMA,
) -> list[dict[str, Any]]:
    """Flows into or out of ``accounts`` in windows from ``since_day``, summed per pair."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT src, dst, sum(tx_count)::bigint AS tx_count, sum(usd_minor)::bigint AS"
            " usd_minor, min(first_ts) AS first_ts, max(last_ts) AS last_ts"
            f" FROM {schema}.aml_edges WHERE (src = ANY(%s) OR dst = ANY(%s))"
            " AND window_day >= %s GROUP BY src, dst ORDER BY src, dst",
            (list(accounts), list(accounts), since_day),
        )
        return list(cur.fetchall())


def outgoing(
    conn: psycopg.Connection[Any], accounts: Sequence[str], since_day: int, schema: str = SCHEMA
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT src, dst, sum(tx_count)::bigint AS tx_count, sum(usd_minor)::bigint AS"
            " usd_minor, min(first_ts) AS first_ts, max(last_ts) AS last_ts"
            f" FROM {schema}.aml_edges WHERE src = ANY(%s) AND window_day >= %s"
            " GROUP BY src, dst ORDER BY src, dst",
            (list(accounts), since_day),
        )
        return list(cur.fetchall())


# ------------------------------------------------------------------ graph queries

MAX_NODES = 500  # a neighbourhood stops growing here (a hub's neighbourhood is the bank)
MAX_PATHS = 100


def neighbourhood(
    conn: psycopg.Connection[Any],
    account: str,
    hops: int,
    since_day: int,
    schema: str = SCHEMA,
) -> tuple[list[str], list[dict[str, Any]], bool]:
    """The nodes within ``hops`` of ``account`` (either direction) and the flows among them
    since ``since_day``; ``True`` when the node cap cut it short."""
    seen = {account}
    frontier = [account]
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    truncated = False
    for _ in range(hops):
        if not frontier:
            break
        found = edges_touching(conn, frontier, since_day, schema)
        grown: list[str] = []
        for e in found:
            edges[(e["src"], e["dst"])] = e
            for node in (e["src"], e["dst"]):
                if node not in seen:
                    if len(seen) >= MAX_NODES:
                        truncated = True
                        continue
                    seen.add(node)
                    grown.append(node)
        frontier = sorted(grown)
    kept = [e for (s, d), e in sorted(edges.items()) if s in seen and d in seen]
    return sorted(seen), kept, truncated


def _adjacency(
    conn: psycopg.Connection[Any], start: str, depth: int, since_day: int, schema: str
) -> dict[str, list[dict[str, Any]]]:
    """Outgoing flows of every node reachable from ``start`` within ``depth`` hops."""
    adj: dict[str, list[dict[str, Any]]] = {}
    frontier = [start]
    for _ in range(depth):
        todo = [n for n in frontier if n not in adj]
        if not todo or len(adj) >= MAX_NODES:
            break
        for n in todo:
            adj[n] = []
        for e in outgoing(conn, todo, since_day, schema):
            adj[e["src"]].append(e)
        frontier = sorted({e["dst"] for n in todo for e in adj[n]})
    return adj


def paths(
    conn: psycopg.Connection[Any],
    source: str,
    target: str,
    max_hops: int,
    since_day: int,
    schema: str = SCHEMA,
) -> list[list[dict[str, Any]]]:
    """Simple directed paths of flows from ``source`` to ``target`` (shortest first)."""
    adj = _adjacency(conn, source, max_hops, since_day, schema)
    found: list[list[dict[str, Any]]] = []
    stack: list[tuple[str, list[dict[str, Any]], frozenset[str]]] = [
        (source, [], frozenset({source}))
    ]
    while stack and len(found) < MAX_PATHS:
        node, path, seen = stack.pop()
        for e in adj.get(node, ()):
            if e["dst"] == target:
                found.append([*path, e])
            elif e["dst"] not in seen and len(path) + 1 < max_hops:
                stack.append((e["dst"], [*path, e], seen | {e["dst"]}))
    return sorted(found, key=lambda p: (len(p), [(e["src"], e["dst"]) for e in p]))


def cycles(
    conn: psycopg.Connection[Any],
    account: str,
    max_hops: int,
    since_day: int,
    schema: str = SCHEMA,
) -> list[list[dict[str, Any]]]:
    """Simple directed cycles of flows through ``account`` (its money coming back)."""
    return paths(conn, account, account, max_hops, since_day, schema)
