"""Clearing and settlement read models: cycles, positions, bilateral pairs, queue, instructions.

Definition (one row per key; amounts in minor units, ids as numeric(39,0))
    ``settlement_participants``        a participant: name, status, accounts and limits (JSON)
    ``settlement_schemes``             a scheme: mode, currencies, hub accounts, schedule, open seq
    ``settlement_members``             (scheme, participant): who is admitted where
    ``settlement_cycles``              a cycle: state, value date, schedule, cut-off, settlement
    ``settlement_totals``              per cycle and currency: G, B, M, accepted and queued counts
    ``settlement_positions``           per cycle, currency, participant: sent and received
                                       (n_i = received - sent)
    ``settlement_pairs``               per cycle, currency, ordered pair: the gross o(i->j)
                                       (b(i,j) = o(i->j) - o(j->i) at query time)
    ``settlement_obligations``         every obligation: parties, amount, status (accepted,
                                       queued, released, dropped), when queued and decided
    ``settlement_instructions``        hub instructions, valid from one position to another
                                       (pending after cut-off, superseded by an unwind, posted
                                       at settlement with their ledger transfer ids)
    ``settlement_unwinds``             each unwind: what it removed and whose position moved

    "Now" reads the current tables, which the projection keeps incrementally. A cycle, its
    positions, pairs and totals at a past position are computed from the obligation rows
    netted by then (``decided_position`` <= the point, an index range scan), without the
    participants unwound by then; the queue from when each obligation was queued and
    decided; instructions from their validity range. Never a replay of events.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from eventstore.schema import APP_ROLE, Migration
from readmodels.schema import SCHEMA, register

_GRANT_DML = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"
)
_CYCLE_KEY = " scheme_id numeric(39, 0) NOT NULL, seq bigint NOT NULL, currency text NOT NULL,"

MIGRATIONS = (
    Migration(
        200,
        "settlement participants, schemes, cycles, totals, positions, pairs, obligations",
        (
            "CREATE TABLE {schema}.settlement_participants ("
            " participant_id numeric(39, 0) PRIMARY KEY,"
            " name text NOT NULL,"
            " status text NOT NULL,"
            " accounts jsonb NOT NULL,"
            " caps jsonb NOT NULL,"
            " min_positions jsonb NOT NULL,"
            " max_positions jsonb NOT NULL,"
            " registered_position bigint NOT NULL,"
            " last_position bigint NOT NULL)",
            "CREATE TABLE {schema}.settlement_schemes ("
            " scheme_id numeric(39, 0) PRIMARY KEY,"
            " name text NOT NULL,"
            " mode text NOT NULL,"
            " currencies jsonb NOT NULL,"
            " settlement_accounts jsonb NOT NULL,"
            " cut_off_times_s jsonb NOT NULL,"
            " open_seq bigint NOT NULL,"
            " created_position bigint NOT NULL,"
            " last_position bigint NOT NULL)",
            "CREATE TABLE {schema}.settlement_members ("
            " scheme_id numeric(39, 0) NOT NULL,"
            " participant_id numeric(39, 0) NOT NULL,"
            " admitted_position bigint NOT NULL,"
            " PRIMARY KEY (scheme_id, participant_id))",
            "CREATE INDEX settlement_members_participant_idx"
            " ON {schema}.settlement_members (participant_id)",
            "CREATE TABLE {schema}.settlement_cycles ("
            " scheme_id numeric(39, 0) NOT NULL,"
            " seq bigint NOT NULL,"
            " mode text NOT NULL,"
            " state text NOT NULL,"
            " currencies jsonb NOT NULL,"
            " value_date text NOT NULL,"
            " cut_off_at_ns bigint NOT NULL,"
            " opened_position bigint NOT NULL,"
            " opened_at_ns bigint NOT NULL,"
            " cut_position bigint,"
            " cut_at_ns bigint,"
            " cut_trigger text,"
            " cut_breaches jsonb,"
            " settled_position bigint,"
            " settled_at_ns bigint,"
            " breaches jsonb NOT NULL,"
            " unwound jsonb NOT NULL,"
            " last_position bigint NOT NULL,"
            " PRIMARY KEY (scheme_id, seq))",
            "CREATE TABLE {schema}.settlement_totals ("
            + _CYCLE_KEY
            + " gross numeric(39, 0) NOT NULL,"
            " bilateral numeric(39, 0) NOT NULL,"
            " multilateral numeric(39, 0) NOT NULL,"
            " accepted bigint NOT NULL,"
            " queued bigint NOT NULL,"
            " last_position bigint NOT NULL,"
            " PRIMARY KEY (scheme_id, seq, currency))",
            "CREATE TABLE {schema}.settlement_positions ("
            + _CYCLE_KEY
            + " participant_id numeric(39, 0) NOT NULL,"
            " sent numeric(39, 0) NOT NULL CHECK (sent >= 0),"
            " received numeric(39, 0) NOT NULL CHECK (received >= 0),"
            " last_position bigint NOT NULL,"
            " PRIMARY KEY (scheme_id, seq, currency, participant_id))",
            "CREATE INDEX settlement_positions_participant_idx"
            " ON {schema}.settlement_positions (participant_id)",
            "CREATE TABLE {schema}.settlement_pairs ("
            + _CYCLE_KEY
            + " payer_id numeric(39, 0) NOT NULL,"
            " payee_id numeric(39, 0) NOT NULL,"
            " gross numeric(39, 0) NOT NULL CHECK (gross >= 0),"
            " last_position bigint NOT NULL,"
            " PRIMARY KEY (scheme_id, seq, currency, payer_id, payee_id))",
            "CREATE INDEX settlement_pairs_payee_idx"
            " ON {schema}.settlement_pairs (scheme_id, seq, currency, payee_id)",
            "CREATE TABLE {schema}.settlement_obligations ("
            " obligation_id numeric(39, 0) PRIMARY KEY,"
            " scheme_id numeric(39, 0) NOT NULL,"
            " seq bigint NOT NULL,"
            " payer_id numeric(39, 0) NOT NULL,"
            " payee_id numeric(39, 0) NOT NULL,"
            " currency text NOT NULL,"
            " amount numeric(39, 0) NOT NULL CHECK (amount > 0),"
            " value_date text NOT NULL,"
            " reference text NOT NULL,"
            " status text NOT NULL,"
            " reason text NOT NULL,"
            " submitted_position bigint NOT NULL,"
            " submitted_at_ns bigint NOT NULL,"
            " decided_position bigint)",
            # Obligations that were ever queued: the queue, now or at a past position.
            # The netted obligations of a cycle in position order: any past position.
            "CREATE INDEX settlement_obligations_netted_idx"
            " ON {schema}.settlement_obligations (scheme_id, seq, decided_position)"
            " WHERE status IN ('accepted', 'released')",
            "CREATE INDEX settlement_obligations_queued_idx"
            " ON {schema}.settlement_obligations (scheme_id, seq, submitted_position)"
            " WHERE reason <> ''",
            "CREATE TABLE {schema}.settlement_instructions ("
            + _CYCLE_KEY
            + " participant_id numeric(39, 0) NOT NULL,"
            " valid_from bigint NOT NULL,"
            " valid_to bigint,"
            " direction text NOT NULL,"
            " amount numeric(39, 0) NOT NULL CHECK (amount > 0),"
            " state text NOT NULL,"
            " debit_account_id numeric(39, 0),"
            " credit_account_id numeric(39, 0),"
            " transfer_id numeric(39, 0),"
            " PRIMARY KEY (scheme_id, seq, currency, participant_id, valid_from))",
            "CREATE TABLE {schema}.settlement_unwinds ("
            " scheme_id numeric(39, 0) NOT NULL,"
            " seq bigint NOT NULL,"
            " participant_id numeric(39, 0) NOT NULL,"
            " position bigint NOT NULL,"
            " at_ns bigint NOT NULL,"
            " removed_gross jsonb NOT NULL,"
            " changes jsonb NOT NULL,"
            " debit_increases jsonb NOT NULL,"
            " totals jsonb NOT NULL,"
            " breaches jsonb NOT NULL,"
            " PRIMARY KEY (scheme_id, seq, participant_id))",
            _GRANT_DML,
        ),
    ),
)
register(MIGRATIONS)

TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "settlement_participants": ("participant_id",),
    "settlement_schemes": ("scheme_id",),
    "settlement_members": ("scheme_id", "participant_id"),
    "settlement_cycles": ("scheme_id", "seq"),
    "settlement_totals": ("scheme_id", "seq", "currency"),
    "settlement_positions": ("scheme_id", "seq", "currency", "participant_id"),
    "settlement_pairs": ("scheme_id", "seq", "currency", "payer_id", "payee_id"),
    "settlement_obligations": ("obligation_id",),
    "settlement_instructions": ("scheme_id", "seq", "currency", "participant_id", "valid_from"),
    "settlement_unwinds": ("scheme_id", "seq", "participant_id"),
}


# ------------------------------------------------------------------ rows


@dataclass
class ParticipantRow:
    participant_id: int
    name: str
    status: str
    accounts: str  # JSON
    caps: str
    min_positions: str
    max_positions: str
    registered_position: int
    last_position: int


@dataclass
class SchemeRow:
    scheme_id: int
    name: str
    mode: str
    currencies: str
    settlement_accounts: str
    cut_off_times_s: str
    open_seq: int
    created_position: int
    last_position: int


@dataclass
class MemberRow:
    scheme_id: int
    participant_id: int
    admitted_position: int


@dataclass
class CycleRow:
    scheme_id: int
    seq: int
    mode: str
    state: str
    currencies: str
    value_date: str
    cut_off_at_ns: int
    opened_position: int
    opened_at_ns: int
    cut_position: int | None
    cut_at_ns: int | None
    cut_trigger: str | None
    cut_breaches: str | None
    settled_position: int | None
    settled_at_ns: int | None
    breaches: str
    unwound: str
    last_position: int


@dataclass
class TotalsRow:
    scheme_id: int
    seq: int
    currency: str
    gross: int
    bilateral: int
    multilateral: int
    accepted: int
    queued: int
    last_position: int


@dataclass
class PositionRow:
    scheme_id: int
    seq: int
    currency: str
    participant_id: int
    sent: int
    received: int
    last_position: int


@dataclass
class PairRow:
    scheme_id: int
    seq: int
    currency: str
    payer_id: int
    payee_id: int
    gross: int
    last_position: int


@dataclass
class ObligationRow:
    obligation_id: int
    scheme_id: int
    seq: int
    payer_id: int
    payee_id: int
    currency: str
    amount: int
    value_date: str
    reference: str
    status: str
    reason: str
    submitted_position: int
    submitted_at_ns: int
    decided_position: int | None


@dataclass
class InstructionRow:
    scheme_id: int
    seq: int
    currency: str
    participant_id: int
    valid_from: int
    valid_to: int | None
    direction: str
    amount: int
    state: str
    debit_account_id: int | None
    credit_account_id: int | None
    transfer_id: int | None


@dataclass
class UnwindRow:
    scheme_id: int
    seq: int
    participant_id: int
    position: int
    at_ns: int
    removed_gross: str
    changes: str
    debit_increases: str
    totals: str
    breaches: str


Key = tuple[Any, ...]


@dataclass
class Changes:
    """Row changes produced by projecting one batch of events (final state per key)."""

    participants: dict[int, ParticipantRow] = field(default_factory=dict)
    schemes: dict[int, SchemeRow] = field(default_factory=dict)
    members: dict[Key, MemberRow] = field(default_factory=dict)
    cycles: dict[Key, CycleRow] = field(default_factory=dict)
    totals: dict[Key, TotalsRow] = field(default_factory=dict)
    positions: dict[Key, PositionRow] = field(default_factory=dict)
    pairs: dict[Key, PairRow] = field(default_factory=dict)
    obligations: dict[int, ObligationRow] = field(default_factory=dict)
    instructions: dict[Key, InstructionRow] = field(default_factory=dict)
    unwinds: dict[Key, UnwindRow] = field(default_factory=dict)


_TABLES: dict[str, tuple[type, tuple[str, ...], tuple[str, ...]]] = {
    # attribute of Changes -> (row type, SQL types of its columns, key columns)
    "participants": (
        ParticipantRow,
        ("numeric", "text", "text", "jsonb", "jsonb", "jsonb", "jsonb", "bigint", "bigint"),
        ("participant_id",),
    ),
    "schemes": (
        SchemeRow,
        ("numeric", "text", "text", "jsonb", "jsonb", "jsonb", "bigint", "bigint", "bigint"),
        ("scheme_id",),
    ),
    "members": (MemberRow, ("numeric", "numeric", "bigint"), ("scheme_id", "participant_id")),
    "cycles": (
        CycleRow,
        (
            "numeric",
            "bigint",
            "text",
            "text",
            "jsonb",
            "text",
            "bigint",
            "bigint",
            "bigint",
            "bigint",
            "bigint",
            "text",
            "jsonb",
            "bigint",
            "bigint",
            "jsonb",
            "jsonb",
            "bigint",
        ),
        ("scheme_id", "seq"),
    ),
    "totals": (
        TotalsRow,
        (
            "numeric",
            "bigint",
            "text",
            "numeric",
            "numeric",
            "numeric",
            "bigint",
            "bigint",
            "bigint",
        ),
        ("scheme_id", "seq", "currency"),
    ),
    "positions": (
        PositionRow,
        ("numeric", "bigint", "text", "numeric", "numeric", "numeric", "bigint"),
        ("scheme_id", "seq", "currency", "participant_id"),
    ),
    "pairs": (
        PairRow,
        ("numeric", "bigint", "text", "numeric", "numeric", "numeric", "bigint"),
        ("scheme_id", "seq", "currency", "payer_id", "payee_id"),
    ),
    "obligations": (
        ObligationRow,
        (
            "numeric",
            "numeric",
            "bigint",
            "numeric",
            "numeric",
            "text",
            "numeric",
            "text",
            "text",
            "text",
            "text",
            "bigint",
            "bigint",
            "bigint",
        ),
        ("obligation_id",),
    ),
    "instructions": (
        InstructionRow,
        (
            "numeric",
            "bigint",
            "text",
            "numeric",
            "bigint",
            "bigint",
            "text",
            "numeric",
            "text",
            "numeric",
            "numeric",
            "numeric",
        ),
        ("scheme_id", "seq", "currency", "participant_id", "valid_from"),
    ),
    "unwinds": (
        UnwindRow,
        (
            "numeric",
            "bigint",
            "numeric",
            "bigint",
            "bigint",
            "jsonb",
            "jsonb",
            "jsonb",
            "jsonb",
            "jsonb",
        ),
        ("scheme_id", "seq", "participant_id"),
    ),
}
_TABLE_NAME = {
    "participants": "settlement_participants",
    "schemes": "settlement_schemes",
    "members": "settlement_members",
    "cycles": "settlement_cycles",
    "totals": "settlement_totals",
    "positions": "settlement_positions",
    "pairs": "settlement_pairs",
    "obligations": "settlement_obligations",
    "instructions": "settlement_instructions",
    "unwinds": "settlement_unwinds",
}


def _columns_of(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type))


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> tuple[str, str, str]:
    """(create the staging table, COPY into it, move its rows into the table)."""
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    stage = f"pg_temp.stage_{table}"
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS stage_{table}"
        f" (LIKE {{schema}}.{table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
        f"COPY {stage} ({cols}) FROM STDIN",
        f"INSERT INTO {{schema}}.{table} ({cols}) SELECT {cols} FROM {stage}"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
    )


_UPSERTS = {
    attr: (
        _upsert_sql(_TABLE_NAME[attr], _columns_of(row_type), key),
        operator.attrgetter(*_columns_of(row_type)),
    )
    for attr, (row_type, _types, key) in _TABLES.items()
}


def write_changes(cur: psycopg.Cursor[Any], changes: Changes, schema: str = SCHEMA) -> None:
    """Per table: COPY the batch's final rows into a staging table (cleared at commit), then
    one INSERT ... ON CONFLICT DO UPDATE from it. COPY formats rows in C: much cheaper than
    binding one array per column."""
    for attr, ((create, copy_sql, move), row_of) in _UPSERTS.items():
        rows: dict[Any, Any] = getattr(changes, attr)
        if not rows:
            continue
        cur.execute(create.format(schema=schema))
        cur.execute(f"TRUNCATE {copy_sql.split()[1]}")  # a staging table of an aborted batch
        with cur.copy(copy_sql) as copy:
            for row in rows.values():
                copy.write_row(row_of(row))
        cur.execute(move.format(schema=schema))


# ------------------------------------------------------------------ loading (projection side)


def _num(v: Any) -> Any:
    return int(v) if isinstance(v, Decimal) else v


def _json(v: Any) -> Any:
    return v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def _load(
    cur: psycopg.Cursor[Any],
    schema: str,
    attr: str,
    where: str,
    params: Sequence[Any],
) -> list[Any]:
    row_type, types, _ = _TABLES[attr]
    columns = _columns_of(row_type)
    cur.execute(
        f"SELECT {', '.join(columns)} FROM {schema}.{_TABLE_NAME[attr]} WHERE {where}", params
    )
    out = []
    for r in cur.fetchall():
        values = tuple(r.values()) if isinstance(r, dict) else tuple(r)
        out.append(
            row_type(
                *(_json(v) if t == "jsonb" else _num(v) for v, t in zip(values, types, strict=True))
            )
        )
    return out


def _keyed(keys: Iterable[Key], width: int) -> list[list[Any]]:
    columns = [list(c) for c in zip(*keys, strict=True)]
    return columns or [[] for _ in range(width)]


def load_participants(
    cur: psycopg.Cursor[Any], ids: Iterable[int], schema: str
) -> dict[int, ParticipantRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = _load(cur, schema, "participants", "participant_id = ANY(%s::numeric[])", (wanted,))
    return {r.participant_id: r for r in rows}


def load_schemes(cur: psycopg.Cursor[Any], ids: Iterable[int], schema: str) -> dict[int, SchemeRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = _load(cur, schema, "schemes", "scheme_id = ANY(%s::numeric[])", (wanted,))
    return {r.scheme_id: r for r in rows}


def load_cycles(cur: psycopg.Cursor[Any], keys: Iterable[Key], schema: str) -> dict[Key, CycleRow]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = _load(
        cur,
        schema,
        "cycles",
        "(scheme_id, seq) IN (SELECT * FROM unnest(%s::numeric[], %s::bigint[]))",
        _keyed(wanted, 2),
    )
    return {(r.scheme_id, r.seq): r for r in rows}


def load_totals(cur: psycopg.Cursor[Any], keys: Iterable[Key], schema: str) -> dict[Key, TotalsRow]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = _load(
        cur,
        schema,
        "totals",
        "(scheme_id, seq, currency) IN"
        " (SELECT * FROM unnest(%s::numeric[], %s::bigint[], %s::text[]))",
        _keyed(wanted, 3),
    )
    return {(r.scheme_id, r.seq, r.currency): r for r in rows}


def _by_cycle_currency(keys: Iterable[Key]) -> dict[Key, list[Key]]:
    groups: dict[Key, list[Key]] = {}
    for k in keys:
        groups.setdefault(k[:3], []).append(k[3:])
    return groups


def load_positions(
    cur: psycopg.Cursor[Any], keys: Iterable[Key], schema: str
) -> dict[Key, PositionRow]:
    out: dict[Key, PositionRow] = {}
    for (scheme_id, seq, currency), rest in _by_cycle_currency(set(keys)).items():
        rows = _load(
            cur,
            schema,
            "positions",
            "scheme_id = %s AND seq = %s AND currency = %s AND participant_id = ANY(%s)",
            (scheme_id, seq, currency, [k[0] for k in rest]),
        )
        out.update({(r.scheme_id, r.seq, r.currency, r.participant_id): r for r in rows})
    return out


def load_cycle_positions(
    cur: psycopg.Cursor[Any], scheme_id: int, seq: int, schema: str
) -> dict[Key, PositionRow]:
    rows = _load(cur, schema, "positions", "scheme_id = %s AND seq = %s", (scheme_id, seq))
    return {(r.scheme_id, r.seq, r.currency, r.participant_id): r for r in rows}


def load_pairs(cur: psycopg.Cursor[Any], keys: Iterable[Key], schema: str) -> dict[Key, PairRow]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = _load(
        cur,
        schema,
        "pairs",
        "(scheme_id, seq, currency, payer_id, payee_id) IN (SELECT * FROM unnest("
        "%s::numeric[], %s::bigint[], %s::text[], %s::numeric[], %s::numeric[]))",
        _keyed(wanted, 5),
    )
    return {(r.scheme_id, r.seq, r.currency, r.payer_id, r.payee_id): r for r in rows}


def load_pairs_of(
    cur: psycopg.Cursor[Any], scheme_id: int, seq: int, participant_id: int, schema: str
) -> dict[Key, PairRow]:
    """Every pair of the cycle to or from the participant (an unwind)."""
    rows = _load(
        cur,
        schema,
        "pairs",
        "scheme_id = %s AND seq = %s AND (payer_id = %s OR payee_id = %s) AND gross > 0",
        (scheme_id, seq, participant_id, participant_id),
    )
    return {(r.scheme_id, r.seq, r.currency, r.payer_id, r.payee_id): r for r in rows}


def load_obligations(
    cur: psycopg.Cursor[Any], ids: Iterable[int], schema: str
) -> dict[int, ObligationRow]:
    wanted = list(ids)
    if not wanted:
        return {}
    rows = _load(cur, schema, "obligations", "obligation_id = ANY(%s::numeric[])", (wanted,))
    return {r.obligation_id: r for r in rows}


def load_current_instructions(
    cur: psycopg.Cursor[Any], scheme_id: int, seq: int, schema: str
) -> dict[Key, InstructionRow]:
    rows = _load(
        cur,
        schema,
        "instructions",
        "scheme_id = %s AND seq = %s AND valid_to IS NULL",
        (scheme_id, seq),
    )
    return {(r.scheme_id, r.seq, r.currency, r.participant_id, r.valid_from): r for r in rows}


# ------------------------------------------------------------------ queries (API side)


def _rows(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
    return [{k: _num(v) for k, v in r.items()} for r in cur.fetchall()]


def get_participant(conn: psycopg.Connection[Any], participant_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.settlement_participants WHERE participant_id = %s",
            (participant_id,),
        )
        rows = _rows(cur)
        if not rows:
            return None
        cur.execute(
            f"SELECT scheme_id FROM {SCHEMA}.settlement_members WHERE participant_id = %s"
            " ORDER BY scheme_id",
            (participant_id,),
        )
        rows[0]["schemes"] = [r["scheme_id"] for r in _rows(cur)]
        return rows[0]


def get_scheme(conn: psycopg.Connection[Any], scheme_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {SCHEMA}.settlement_schemes WHERE scheme_id = %s", (scheme_id,))
        rows = _rows(cur)
        if not rows:
            return None
        cur.execute(
            f"SELECT participant_id FROM {SCHEMA}.settlement_members WHERE scheme_id = %s"
            " ORDER BY participant_id",
            (scheme_id,),
        )
        rows[0]["participants"] = [r["participant_id"] for r in _rows(cur)]
        return rows[0]


def list_schemes(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every scheme in id order, each with its participants (as :func:`get_scheme`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT s.*, ARRAY(SELECT m.participant_id FROM {SCHEMA}.settlement_members m"
            " WHERE m.scheme_id = s.scheme_id ORDER BY m.participant_id) AS participants"
            f" FROM {SCHEMA}.settlement_schemes s ORDER BY s.scheme_id"
        )
        rows = _rows(cur)
        for r in rows:
            r["participants"] = [int(p) for p in r["participants"]]
        return rows


def scheme_cycles(
    conn: psycopg.Connection[Any], scheme_id: int, *, before_seq: int | None, limit: int
) -> list[dict[str, Any]]:
    """A scheme's cycles, newest first (keyset pagination on the seq), each with its
    per-currency totals."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.settlement_cycles WHERE scheme_id = %s"
            " AND (%s::bigint IS NULL OR seq < %s) ORDER BY seq DESC LIMIT %s",
            (scheme_id, before_seq, before_seq, limit),
        )
        cycles = _rows(cur)
        if not cycles:
            return cycles
        cur.execute(
            f"SELECT * FROM {SCHEMA}.settlement_totals WHERE scheme_id = %s"
            " AND seq = ANY(%s) ORDER BY seq, currency",
            (scheme_id, [c["seq"] for c in cycles]),
        )
        totals: dict[int, list[dict[str, Any]]] = {}
        for t in _rows(cur):
            totals.setdefault(t["seq"], []).append(t)
        for c in cycles:
            c["totals"] = totals.get(c["seq"], [])
        return cycles


def _netted_pairs_at(scheme_id: int, seq: int, p: int) -> tuple[str, list[Any]]:
    """CTE ``pairs``: o(i->j) per currency of what was netted at position ``p``."""
    sql = (
        f"WITH gone AS (SELECT participant_id FROM {SCHEMA}.settlement_unwinds"
        " WHERE scheme_id = %s AND seq = %s AND position <= %s),"
        " pairs AS (SELECT currency, payer_id, payee_id, sum(amount) AS gross"
        f" FROM {SCHEMA}.settlement_obligations"
        " WHERE scheme_id = %s AND seq = %s AND status IN ('accepted', 'released')"
        " AND decided_position <= %s"
        " AND payer_id NOT IN (SELECT participant_id FROM gone)"
        " AND payee_id NOT IN (SELECT participant_id FROM gone)"
        " GROUP BY currency, payer_id, payee_id)"
    )
    return sql, [scheme_id, seq, p, scheme_id, seq, p]


_POSITIONS_FROM_PAIRS = (
    " SELECT currency, participant_id, sum(sent) AS sent, sum(received) AS received FROM ("
    " SELECT currency, payer_id AS participant_id, gross AS sent, 0 AS received FROM pairs"
    " UNION ALL SELECT currency, payee_id, 0, gross FROM pairs) x"
    " GROUP BY currency, participant_id"
)


def _totals_at(cur: psycopg.Cursor[Any], scheme_id: int, seq: int, p: int) -> list[dict[str, Any]]:
    cte, params = _netted_pairs_at(scheme_id, seq, p)
    cur.execute(
        cte + ", pos AS (" + _POSITIONS_FROM_PAIRS + "),"
        " g AS (SELECT a.currency, sum(a.gross) AS gross, sum(CASE"
        "   WHEN b.gross IS NULL THEN a.gross"
        "   WHEN a.payer_id < a.payee_id THEN abs(a.gross - b.gross) ELSE 0 END) AS bilateral"
        "   FROM pairs a LEFT JOIN pairs b ON b.currency = a.currency"
        "   AND b.payer_id = a.payee_id AND b.payee_id = a.payer_id GROUP BY a.currency),"
        " m AS (SELECT currency, sum(greatest(sent - received, 0)) AS multilateral"
        "   FROM pos GROUP BY currency),"
        " c AS (SELECT currency,"
        "   count(*) FILTER (WHERE status IN ('accepted', 'released')"
        "     AND decided_position <= %s) AS accepted,"
        "   count(*) FILTER (WHERE reason <> '' AND submitted_position <= %s"
        "     AND (decided_position IS NULL OR decided_position > %s)) AS queued"
        f"   FROM {SCHEMA}.settlement_obligations WHERE scheme_id = %s AND seq = %s"
        "   GROUP BY currency)"
        " SELECT t.currency, coalesce(g.gross, 0) AS gross, coalesce(g.bilateral, 0) AS bilateral,"
        " coalesce(m.multilateral, 0) AS multilateral, coalesce(c.accepted, 0) AS accepted,"
        " coalesce(c.queued, 0) AS queued"
        f" FROM {SCHEMA}.settlement_totals t LEFT JOIN g USING (currency)"
        " LEFT JOIN m USING (currency) LEFT JOIN c USING (currency)"
        " WHERE t.scheme_id = %s AND t.seq = %s ORDER BY t.currency",
        [*params, p, p, p, scheme_id, seq, scheme_id, seq],
    )
    return _rows(cur)


def get_cycle(
    conn: psycopg.Connection[Any], scheme_id: int, seq: int, as_of_position: int | None = None
) -> dict[str, Any] | None:
    """The cycle with its per-currency totals, now or as it was at a past position."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.settlement_cycles WHERE scheme_id = %s AND seq = %s",
            (scheme_id, seq),
        )
        rows = _rows(cur)
        if not rows:
            return None
        cycle = rows[0]
        p = as_of_position
        if p is not None:
            if p < cycle["opened_position"]:
                return None
            _cycle_at(cur, cycle, p)
            cycle["totals"] = _totals_at(cur, scheme_id, seq, p)
        else:
            cur.execute(
                f"SELECT * FROM {SCHEMA}.settlement_totals WHERE scheme_id = %s AND seq = %s"
                " ORDER BY currency",
                (scheme_id, seq),
            )
            cycle["totals"] = _rows(cur)
        cycle["as_of_position"] = p if p is not None else cycle["last_position"]
        return cycle


def _cycle_at(cur: psycopg.Cursor[Any], cycle: dict[str, Any], p: int) -> None:
    """Turn the current cycle row into the row as it was at position ``p``."""
    settled = cycle["settled_position"] is not None and cycle["settled_position"] <= p
    cut = cycle["cut_position"] is not None and cycle["cut_position"] <= p
    cycle["state"] = "settled" if settled else "cut_off" if cut else "open"
    if not settled:
        cycle["settled_position"] = cycle["settled_at_ns"] = None
    if not cut:
        cycle["cut_position"] = cycle["cut_at_ns"] = cycle["cut_trigger"] = None
        cycle["breaches"], cycle["unwound"] = [], []
        return
    cur.execute(
        f"SELECT participant_id, breaches FROM {SCHEMA}.settlement_unwinds"
        " WHERE scheme_id = %s AND seq = %s AND position <= %s ORDER BY position",
        (cycle["scheme_id"], cycle["seq"], p),
    )
    unwinds = _rows(cur)
    cycle["unwound"] = [u["participant_id"] for u in unwinds]
    cycle["breaches"] = unwinds[-1]["breaches"] if unwinds else cycle["cut_breaches"]


def cycle_positions(
    conn: psycopg.Connection[Any], scheme_id: int, seq: int, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    """Per currency and participant: sent, received (and so n_i), now or at a position."""
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT currency, participant_id, sent, received"
                f" FROM {SCHEMA}.settlement_positions WHERE scheme_id = %s AND seq = %s"
                " ORDER BY currency, participant_id",
                (scheme_id, seq),
            )
        else:
            cte, params = _netted_pairs_at(scheme_id, seq, as_of_position)
            cur.execute(cte + _POSITIONS_FROM_PAIRS + " ORDER BY currency, participant_id", params)
        return [r for r in _rows(cur) if r["sent"] or r["received"]]


def cycle_pairs(
    conn: psycopg.Connection[Any], scheme_id: int, seq: int, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    """Per currency and ordered pair: the gross o(payer->payee), now or at a position."""
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT currency, payer_id, payee_id, gross FROM {SCHEMA}.settlement_pairs"
                " WHERE scheme_id = %s AND seq = %s AND gross > 0"
                " ORDER BY currency, payer_id, payee_id",
                (scheme_id, seq),
            )
        else:
            cte, params = _netted_pairs_at(scheme_id, seq, as_of_position)
            cur.execute(cte + " SELECT * FROM pairs ORDER BY currency, payer_id, payee_id", params)
        return _rows(cur)


def cycle_instructions(
    conn: psycopg.Connection[Any], scheme_id: int, seq: int, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT * FROM {SCHEMA}.settlement_instructions"
                " WHERE scheme_id = %s AND seq = %s AND valid_to IS NULL"
                " ORDER BY currency, direction, participant_id",
                (scheme_id, seq),
            )
        else:
            cur.execute(
                f"SELECT * FROM {SCHEMA}.settlement_instructions"
                " WHERE scheme_id = %s AND seq = %s AND valid_from <= %s"
                " AND (valid_to IS NULL OR valid_to > %s)"
                " ORDER BY currency, direction, participant_id",
                (scheme_id, seq, as_of_position, as_of_position),
            )
        return _rows(cur)


def open_seq_at(
    conn: psycopg.Connection[Any], scheme_id: int, as_of_position: int | None = None
) -> int | None:
    """The seq of the scheme's cycle open now, or at a past position."""
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT open_seq AS seq FROM {SCHEMA}.settlement_schemes WHERE scheme_id = %s",
                (scheme_id,),
            )
        else:
            cur.execute(
                f"SELECT max(seq) AS seq FROM {SCHEMA}.settlement_cycles"
                " WHERE scheme_id = %s AND opened_position <= %s",
                (scheme_id, as_of_position),
            )
        row = cur.fetchone()
        return int(row["seq"]) if row and row["seq"] is not None else None


def queue(
    conn: psycopg.Connection[Any], scheme_id: int, seq: int, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    """The queued obligations of a cycle in arrival order, now or at a past position."""
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT * FROM {SCHEMA}.settlement_obligations"
                " WHERE scheme_id = %s AND seq = %s AND reason <> '' AND status = 'queued'"
                " ORDER BY submitted_position",
                (scheme_id, seq),
            )
        else:
            cur.execute(
                f"SELECT * FROM {SCHEMA}.settlement_obligations"
                " WHERE scheme_id = %s AND seq = %s AND reason <> ''"
                " AND submitted_position <= %s"
                " AND (decided_position IS NULL OR decided_position > %s)"
                " ORDER BY submitted_position",
                (scheme_id, seq, as_of_position, as_of_position),
            )
        return _rows(cur)


def get_obligation(conn: psycopg.Connection[Any], obligation_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT o.*, c.state AS cycle_state, c.mode, c.unwound"
            f" FROM {SCHEMA}.settlement_obligations o JOIN {SCHEMA}.settlement_cycles c"
            " USING (scheme_id, seq) WHERE o.obligation_id = %s",
            (obligation_id,),
        )
        rows = _rows(cur)
        return rows[0] if rows else None


def participant_positions(
    conn: psycopg.Connection[Any], participant_id: int, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    """The participant's position in the open cycle of each of its schemes, per currency."""
    out: list[dict[str, Any]] = []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT m.scheme_id, s.mode, s.currencies FROM {SCHEMA}.settlement_members m"
            f" JOIN {SCHEMA}.settlement_schemes s USING (scheme_id)"
            " WHERE m.participant_id = %s"
            + (" AND m.admitted_position <= %s" if as_of_position is not None else "")
            + " ORDER BY m.scheme_id",
            (participant_id, as_of_position) if as_of_position is not None else (participant_id,),
        )
        schemes = _rows(cur)
    for s in schemes:
        seq = open_seq_at(conn, s["scheme_id"], as_of_position)
        if seq is None:
            continue
        with conn.cursor(row_factory=dict_row) as cur:
            if as_of_position is None:
                cur.execute(
                    f"SELECT currency, sent, received FROM {SCHEMA}.settlement_positions"
                    " WHERE scheme_id = %s AND seq = %s AND participant_id = %s",
                    (s["scheme_id"], seq, participant_id),
                )
            else:
                cte, params = _netted_pairs_at(s["scheme_id"], seq, as_of_position)
                cur.execute(
                    cte + " SELECT * FROM (" + _POSITIONS_FROM_PAIRS + ") q"
                    " WHERE participant_id = %s",
                    [*params, participant_id],
                )
            by_currency = {r["currency"]: r for r in _rows(cur)}
        for currency in s["currencies"]:
            r = by_currency.get(currency, {"sent": 0, "received": 0})
            out.append(
                {
                    "scheme_id": s["scheme_id"],
                    "mode": s["mode"],
                    "seq": seq,
                    "currency": currency,
                    "sent": r["sent"],
                    "received": r["received"],
                }
            )
    return out


def due_cut_offs(
    conn: psycopg.Connection[Any], now_ns: int, limit: int = 100
) -> list[tuple[int, int]]:
    """(scheme, seq) of open cycles whose scheduled cut-off time has come."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT c.scheme_id, c.seq FROM {SCHEMA}.settlement_cycles c"
            f" JOIN {SCHEMA}.settlement_schemes s"
            " ON s.scheme_id = c.scheme_id AND s.open_seq = c.seq"
            " WHERE c.state = 'open' AND c.cut_off_at_ns > 0 AND c.cut_off_at_ns <= %s"
            " ORDER BY c.cut_off_at_ns LIMIT %s",
            (now_ns, limit),
        )
        return [(int(r["scheme_id"]), int(r["seq"])) for r in cur.fetchall()]


def next_cut_off(conn: psycopg.Connection[Any]) -> int | None:
    """When the earliest scheduled cut-off of an open cycle falls (ns), or None."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT min(c.cut_off_at_ns) FROM {SCHEMA}.settlement_cycles c"
            f" JOIN {SCHEMA}.settlement_schemes s"
            " ON s.scheme_id = c.scheme_id AND s.open_seq = c.seq"
            " WHERE c.state = 'open' AND c.cut_off_at_ns > 0"
        )
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None


def unwinds(conn: psycopg.Connection[Any], scheme_id: int, seq: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.settlement_unwinds WHERE scheme_id = %s AND seq = %s"
            " ORDER BY position",
            (scheme_id, seq),
        )
        return _rows(cur)
