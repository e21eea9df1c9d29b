"""The ledger's read models: accounts with balances, per-account history, transfers.

Definition
    ``accounts``         one row per account: its fields and current balances (minor units)
    ``account_history``  one row per balance change: the balances right after the change and
                         the account's ``closed`` flag as the transfer left it, the transfer
                         that caused it, its global position and time
    ``transfers``        one row per transfer: its fields, state and amounts

    Balances at a past point are read from ``account_history`` (the last row at or before the
    point), never by replaying events on a request.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row

from eventstore.schema import APP_ROLE, Migration
from readmodels import arrays
from readmodels.schema import SCHEMA, register

_GRANT_DML = (
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {APP_ROLE}"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "ledger accounts, account history, transfers",
        (
            "CREATE TABLE {schema}.accounts ("
            " account_id numeric(39, 0) PRIMARY KEY,"
            " ledger bigint NOT NULL,"
            " currency text NOT NULL,"
            " code integer NOT NULL,"
            " debits_must_not_exceed_credits boolean NOT NULL,"
            " credits_must_not_exceed_debits boolean NOT NULL,"
            " closed boolean NOT NULL,"
            " debits_pending numeric(39, 0) NOT NULL CHECK (debits_pending >= 0),"
            " debits_posted numeric(39, 0) NOT NULL CHECK (debits_posted >= 0),"
            " credits_pending numeric(39, 0) NOT NULL CHECK (credits_pending >= 0),"
            " credits_posted numeric(39, 0) NOT NULL CHECK (credits_posted >= 0),"
            " opened_position bigint NOT NULL,"
            " opened_at_ns bigint NOT NULL,"
            " last_position bigint NOT NULL)",
            "CREATE INDEX accounts_ledger_idx ON {schema}.accounts (ledger, currency)",
            "CREATE TABLE {schema}.account_history ("
            " account_id numeric(39, 0) NOT NULL,"
            " position bigint NOT NULL,"
            " transfer_id numeric(39, 0),"
            " change text NOT NULL,"
            " ledger bigint NOT NULL,"
            " currency text NOT NULL,"
            " debits_pending numeric(39, 0) NOT NULL,"
            " debits_posted numeric(39, 0) NOT NULL,"
            " credits_pending numeric(39, 0) NOT NULL,"
            " credits_posted numeric(39, 0) NOT NULL,"
            " recorded_at_ns bigint NOT NULL,"
            " PRIMARY KEY (account_id, position))",
            "CREATE INDEX account_history_time_idx"
            " ON {schema}.account_history (account_id, recorded_at_ns)",
            "CREATE INDEX account_history_ledger_idx"
            " ON {schema}.account_history (ledger, position)",
            "CREATE TABLE {schema}.transfers ("
            " transfer_id numeric(39, 0) PRIMARY KEY,"
            " debit_account_id numeric(39, 0) NOT NULL,"
            " credit_account_id numeric(39, 0) NOT NULL,"
            " amount numeric(39, 0) NOT NULL CHECK (amount > 0),"
            " posted_amount numeric(39, 0) NOT NULL DEFAULT 0,"
            " ledger bigint NOT NULL,"
            " currency text NOT NULL,"
            " code integer NOT NULL,"
            " pending boolean NOT NULL,"
            " timeout_s bigint NOT NULL,"
            " state text NOT NULL,"
            " created_position bigint NOT NULL,"
            " created_at_ns bigint NOT NULL,"
            " last_position bigint NOT NULL,"
            " expires_at_ns bigint)",
            _GRANT_DML,
        ),
    ),
)
MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        50,
        "due holds found through a partial index (the expiry sweeper)",
        (
            # Only pending transfers with a deadline are in it: the sweeper's query reads the
            # due ones and stops, whatever the number of transfers; an idle sweep is one probe.
            "CREATE INDEX transfers_due_holds_idx ON {schema}.transfers (expires_at_ns)"
            " WHERE state = 'pending' AND expires_at_ns IS NOT NULL",
        ),
    ),
)
MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        20,
        "transfers of zero (TigerBeetle allows them: a balancing transfer with nothing left, a "
        "void or closing transfer)",
        (
            "ALTER TABLE {schema}.transfers DROP CONSTRAINT transfers_amount_check",
            "ALTER TABLE {schema}.transfers ADD CONSTRAINT transfers_amount_check"
            " CHECK (amount >= 0)",
        ),
    ),
    Migration(
        21,
        "TigerBeetle's user data on accounts and transfers, indexed for queries; the pending "
        "transfer a post or void settles; accounts' place in the chart of accounts",
        (
            "ALTER TABLE {schema}.transfers"
            " ADD COLUMN pending_id numeric(39, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN user_data_128 numeric(39, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN user_data_64 numeric(20, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN user_data_32 bigint NOT NULL DEFAULT 0",
            "CREATE INDEX transfers_user_data_128_idx ON {schema}.transfers"
            " (user_data_128, created_at_ns) WHERE user_data_128 <> 0",
            "CREATE INDEX transfers_user_data_64_idx ON {schema}.transfers"
            " (user_data_64, created_at_ns) WHERE user_data_64 <> 0",
            "CREATE INDEX transfers_user_data_32_idx ON {schema}.transfers"
            " (user_data_32, created_at_ns) WHERE user_data_32 <> 0",
            "CREATE INDEX transfers_ledger_code_idx ON {schema}.transfers"
            " (ledger, code, created_at_ns)",
            "CREATE INDEX transfers_time_idx ON {schema}.transfers (created_at_ns)",
            "ALTER TABLE {schema}.accounts"
            " ADD COLUMN user_data_128 numeric(39, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN user_data_64 numeric(20, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN user_data_32 bigint NOT NULL DEFAULT 0,"
            " ADD COLUMN account_type text NOT NULL DEFAULT '',"
            " ADD COLUMN parent_id numeric(39, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN name text NOT NULL DEFAULT ''",
            "CREATE INDEX accounts_user_data_128_idx ON {schema}.accounts"
            " (user_data_128, opened_at_ns) WHERE user_data_128 <> 0",
            "CREATE INDEX accounts_user_data_64_idx ON {schema}.accounts"
            " (user_data_64, opened_at_ns) WHERE user_data_64 <> 0",
            "CREATE INDEX accounts_user_data_32_idx ON {schema}.accounts"
            " (user_data_32, opened_at_ns) WHERE user_data_32 <> 0",
            "CREATE INDEX accounts_parent_idx ON {schema}.accounts (parent_id)"
            " WHERE parent_id <> 0",
        ),
    ),
)
MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        30,
        "TigerBeetle's flags of accounts and transfers, the reversal link both ways, and the "
        "ids of failed transfers (spent: they answer id_already_failed)",
        (
            "ALTER TABLE {schema}.accounts"
            " ADD COLUMN linked boolean NOT NULL DEFAULT false,"
            " ADD COLUMN imported boolean NOT NULL DEFAULT false,"
            " ADD COLUMN history boolean NOT NULL DEFAULT false",
            "ALTER TABLE {schema}.transfers"
            " ADD COLUMN flags integer NOT NULL DEFAULT 0,"
            " ADD COLUMN reverses_id numeric(39, 0) NOT NULL DEFAULT 0,"
            " ADD COLUMN reversal_id numeric(39, 0) NOT NULL DEFAULT 0",
            # TigerBeetle's get_account_transfers: an account's transfers in time order.
            "CREATE INDEX transfers_debit_time_idx ON {schema}.transfers"
            " (debit_account_id, created_at_ns)",
            "CREATE INDEX transfers_credit_time_idx ON {schema}.transfers"
            " (credit_account_id, created_at_ns)",
            "CREATE TABLE {schema}.failed_transfers ("
            " transfer_id numeric(39, 0) PRIMARY KEY,"
            " code text NOT NULL,"
            " failed_at_ns bigint NOT NULL,"
            " position bigint NOT NULL)",
            _GRANT_DML,
        ),
    ),
)
# The closed flag of history rows written before migration 31, from the read models alone.
# An account is closed from the balance change of the pending transfer that closed it
# (flags.closing_debit 64, flags.closing_credit 128) up to, not including, the release of that
# transfer (a void, by the pending transfer's id or by a void transfer of its own, or its
# expiry), which reopens it; an account opened closed stays closed (no transfer touches it).
CLOSED_BACKFILL: tuple[str, ...] = (
    "UPDATE {schema}.account_history h SET closed = true FROM ("
    " SELECT s.account_id, s.start_pos,"
    "  coalesce(min(r.position), 9223372036854775807) AS end_pos"
    " FROM ("
    "  SELECT x.account_id, t.transfer_id, x.position AS start_pos"
    "  FROM {schema}.transfers t"
    "  CROSS JOIN LATERAL (VALUES"
    "   (CASE WHEN t.flags & 64 <> 0 THEN t.debit_account_id END),"
    "   (CASE WHEN t.flags & 128 <> 0 THEN t.credit_account_id END)) AS a (account_id)"
    "  JOIN {schema}.account_history x ON x.account_id = a.account_id"
    "   AND x.transfer_id = t.transfer_id AND x.change LIKE '%:AmountReserved'"
    "  WHERE t.flags & 192 <> 0) s"
    " LEFT JOIN {schema}.account_history r ON r.account_id = s.account_id"
    "  AND r.position > s.start_pos AND r.change LIKE '%:ReservationReleased'"
    "  AND (r.transfer_id = s.transfer_id OR EXISTS ("
    "   SELECT 1 FROM {schema}.transfers v"
    "   WHERE v.transfer_id = r.transfer_id AND v.pending_id = s.transfer_id))"
    " GROUP BY s.account_id, s.start_pos) span"
    " WHERE h.account_id = span.account_id"
    " AND h.position >= span.start_pos AND h.position < span.end_pos",
    "UPDATE {schema}.account_history h SET closed = true FROM {schema}.accounts a"
    " WHERE h.account_id = a.account_id AND h.change = 'opened' AND a.closed"
    " AND NOT EXISTS (SELECT 1 FROM {schema}.transfers t"
    "  WHERE t.state IN ('pending', 'posted') AND ("
    "   (t.flags & 64 <> 0 AND t.debit_account_id = a.account_id)"
    "   OR (t.flags & 128 <> 0 AND t.credit_account_id = a.account_id)))",
)
MIGRATIONS = (
    *MIGRATIONS,
    Migration(
        31,
        "TigerBeetle's get_change_events: the account's closed flag at each balance change, "
        "and the debit sides of balance changes in time order (one per change event)",
        (
            "ALTER TABLE {schema}.account_history ADD COLUMN closed boolean NOT NULL DEFAULT false",
            # Rows written before the column existed: the flag as the ledger's rules set it
            # (the same values a rebuild writes, see CLOSED_BACKFILL).
            *CLOSED_BACKFILL,
            "CREATE INDEX account_history_events_idx ON {schema}.account_history"
            " (recorded_at_ns, position) WHERE change LIKE 'debit:%'",
        ),
    ),
)
register(MIGRATIONS)

# TigerBeetle's bits of a transfer's flags (``TransferRow.flags``).
TRANSFER_FLAG_BITS: dict[str, int] = {
    "linked": 1 << 0,
    "pending": 1 << 1,
    "post_pending_transfer": 1 << 2,
    "void_pending_transfer": 1 << 3,
    "balancing_debit": 1 << 4,
    "balancing_credit": 1 << 5,
    "closing_debit": 1 << 6,
    "closing_credit": 1 << 7,
    "imported": 1 << 8,
}


def transfer_flags(bits: int) -> dict[str, bool]:
    """The flags set in ``bits``, by name."""
    return {name: True for name, bit in TRANSFER_FLAG_BITS.items() if bits & bit}


DUE_HOLDS_SQL = (
    "SELECT transfer_id FROM {schema}.transfers"
    " WHERE state = 'pending' AND expires_at_ns IS NOT NULL AND expires_at_ns <= %s"
    " ORDER BY expires_at_ns LIMIT %s"
)

BALANCE_FIELDS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")


@dataclass(slots=True)  # a rebuild holds many: no per-row __dict__
class AccountRow:
    account_id: int
    ledger: int
    currency: str
    code: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    opened_position: int
    opened_at_ns: int
    last_position: int
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    account_type: str = ""
    parent_id: int = 0
    name: str = ""
    linked: bool = False
    imported: bool = False
    history: bool = False


@dataclass(slots=True)  # a rebuild holds many: no per-row __dict__
class HistoryRow:
    account_id: int
    position: int
    transfer_id: int | None
    change: str
    ledger: int
    currency: str
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    recorded_at_ns: int
    closed: bool = False  # the account's flag as the transfer that made the change left it


@dataclass(slots=True)  # a rebuild holds many: no per-row __dict__
class TransferRow:
    transfer_id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    posted_amount: int
    ledger: int
    currency: str
    code: int
    pending: bool
    timeout_s: int
    state: str
    created_position: int
    created_at_ns: int
    last_position: int
    expires_at_ns: int | None
    pending_id: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    flags: int = 0
    reverses_id: int = 0
    reversal_id: int = 0


@dataclass
class Changes:
    """Row changes produced by projecting one batch of events."""

    accounts: dict[int, AccountRow] = field(default_factory=dict)  # final state per account
    history: list[HistoryRow] = field(default_factory=list)
    transfers: dict[int, TransferRow] = field(default_factory=dict)  # final state per transfer
    # Failed transfers' ids: (transfer id, code, failed at, position).
    failed: list[tuple[int, str, int, int]] = field(default_factory=list)
    # History rows of an earlier batch whose transfer then closed or reopened the account:
    # (account id, position, closed).
    closed: list[tuple[int, int, bool]] = field(default_factory=list)

    def appended_only(self) -> Changes:
        """These changes without the account and transfer rows, when those are written another
        way (copied into a fresh table, or held by a rebuild until it flushes): the history
        and failed rows, and the history flags to set."""
        return replace(self, accounts={}, transfers={})


_ACCOUNT_COLUMNS = tuple(AccountRow.__dataclass_fields__)
_HISTORY_COLUMNS = tuple(HistoryRow.__dataclass_fields__)
_TRANSFER_COLUMNS = tuple(TransferRow.__dataclass_fields__)
# One C call per row, instead of a getattr per column.
_ROW_OF = {
    "accounts": operator.attrgetter(*_ACCOUNT_COLUMNS),
    "transfers": operator.attrgetter(*_TRANSFER_COLUMNS),
    "account_history": operator.attrgetter(*_HISTORY_COLUMNS),
}


# SQL types of the columns, in order: rows are sent as one array per column (``unnest``), so a
# batch of upserts is ONE statement, not one per row.
_ACCOUNT_TYPES = (
    "numeric", "bigint", "text", "integer", "boolean", "boolean", "boolean",
    "numeric", "numeric", "numeric", "numeric", "bigint", "bigint", "bigint",
    "numeric", "numeric", "bigint", "text", "numeric", "text", "boolean", "boolean",
    "boolean",
)  # fmt: skip
_TRANSFER_TYPES = (
    "numeric", "numeric", "numeric", "numeric", "numeric", "bigint", "text", "integer",
    "boolean", "bigint", "text", "bigint", "bigint", "bigint", "bigint",
    "numeric", "numeric", "numeric", "bigint", "integer", "numeric", "numeric",
)  # fmt: skip


_FAILED_TYPES = ("numeric", "text", "bigint", "bigint")  # Changes.failed
_CLOSED_TYPES = ("numeric", "bigint", "boolean")  # Changes.closed


def _upsert(table: str, columns: Sequence[str], types: Sequence[str], key: str) -> str:
    cols = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    return (
        f"INSERT INTO {{schema}}.{table} ({cols}) SELECT * FROM unnest({arrays.casts(types)})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


_UPSERT_ACCOUNT = _upsert("accounts", _ACCOUNT_COLUMNS, _ACCOUNT_TYPES, "account_id")
_UPSERT_TRANSFER = _upsert("transfers", _TRANSFER_COLUMNS, _TRANSFER_TYPES, "transfer_id")


def load_accounts(
    cur: psycopg.Cursor[Any], account_ids: Iterable[int], schema: str = SCHEMA
) -> dict[int, AccountRow]:
    ids = list(account_ids)
    if not ids:
        return {}
    cur.execute(
        f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM {schema}.accounts"
        " WHERE account_id = ANY(%s::numeric[])",
        (arrays.ints(ids),),
    )
    return {int(r[0]): AccountRow(*_ints(r)) for r in _tuples(cur)}


def load_transfers(
    cur: psycopg.Cursor[Any], transfer_ids: Iterable[int], schema: str = SCHEMA
) -> dict[int, TransferRow]:
    ids = list(transfer_ids)
    if not ids:
        return {}
    cur.execute(
        f"SELECT {', '.join(_TRANSFER_COLUMNS)} FROM {schema}.transfers"
        " WHERE transfer_id = ANY(%s::numeric[])",
        (arrays.ints(ids),),
    )
    return {int(r[0]): TransferRow(*_ints(r)) for r in _tuples(cur)}


def write_changes(
    cur: psycopg.Cursor[Any], changes: Changes, schema: str = SCHEMA, *, fresh: bool = False
) -> None:
    """Apply ``changes`` with batched statements (executemany is pipelined by psycopg).

    ``fresh``: the tables are known to be empty (a rebuild): rows are copied in, not upserted.
    """
    if fresh:
        for table, columns, rows in (
            ("accounts", _ACCOUNT_COLUMNS, changes.accounts.values()),
            ("transfers", _TRANSFER_COLUMNS, changes.transfers.values()),
        ):
            row_of = _ROW_OF[table]
            with cur.copy(f"COPY {schema}.{table} ({', '.join(columns)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(row_of(r))
        changes = changes.appended_only()
    if changes.accounts:
        row_of = _ROW_OF["accounts"]
        cur.execute(
            _UPSERT_ACCOUNT.format(schema=schema),
            arrays.columns(map(row_of, changes.accounts.values()), _ACCOUNT_TYPES),
        )
    if changes.transfers:
        row_of = _ROW_OF["transfers"]
        cur.execute(
            _UPSERT_TRANSFER.format(schema=schema),
            arrays.columns(map(row_of, changes.transfers.values()), _TRANSFER_TYPES),
        )
    if changes.failed:
        cur.execute(
            f"INSERT INTO {schema}.failed_transfers (transfer_id, code, failed_at_ns, position)"
            f" SELECT * FROM unnest({arrays.casts(_FAILED_TYPES)})"
            " ON CONFLICT (transfer_id) DO NOTHING",
            arrays.columns(changes.failed, _FAILED_TYPES),
        )
    if changes.history:
        row_of = _ROW_OF["account_history"]
        with cur.copy(
            f"COPY {schema}.account_history ({', '.join(_HISTORY_COLUMNS)}) FROM STDIN"
        ) as copy:
            for h in changes.history:
                copy.write_row(row_of(h))
    if changes.closed:
        cur.execute(
            f"UPDATE {schema}.account_history h SET closed = v.closed"
            f" FROM unnest({arrays.casts(_CLOSED_TYPES)})"
            " AS v (account_id, position, closed)"
            " WHERE h.account_id = v.account_id AND h.position = v.position",
            arrays.columns(changes.closed, _CLOSED_TYPES),
        )


def _tuples(cur: psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    rows = cur.fetchall()
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def _ints(row: Sequence[Any]) -> list[Any]:
    """numeric columns come back as Decimal; every amount and id here is integral."""
    from decimal import Decimal

    return [int(v) if isinstance(v, Decimal) else v for v in row]


# ------------------------------------------------------------------ queries (API side)


def get_account(
    conn: psycopg.Connection[Any],
    account_id: int,
    *,
    as_of_position: int | None = None,
    as_of_ns: int | None = None,
) -> dict[str, Any] | None:
    """The account with balances now, or at a past position or time (from history rows)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {SCHEMA}.accounts WHERE account_id = %s", (account_id,))
        row = cur.fetchone()
        if row is None:
            return None
        account = {
            k: (int(v) if k in BALANCE_FIELDS or k == "account_id" else v) for k, v in row.items()
        }
        if as_of_position is None and as_of_ns is None:
            return account
        if as_of_position is not None:
            if as_of_position < account["opened_position"]:
                return None
            cur.execute(
                f"SELECT * FROM {SCHEMA}.account_history WHERE account_id = %s"
                " AND position <= %s ORDER BY position DESC LIMIT 1",
                (account_id, as_of_position),
            )
        else:
            if as_of_ns is not None and as_of_ns < account["opened_at_ns"]:
                return None
            cur.execute(
                f"SELECT * FROM {SCHEMA}.account_history WHERE account_id = %s"
                " AND recorded_at_ns <= %s ORDER BY position DESC LIMIT 1",
                (account_id, as_of_ns),
            )
        hist = cur.fetchone()
        for name in BALANCE_FIELDS:
            account[name] = int(hist[name]) if hist else 0
        account["as_of_position"] = int(hist["position"]) if hist else account["opened_position"]
        return account


def _user_data_filters(filters: dict[str, int | None]) -> tuple[list[str], list[Any]]:
    where, params = [], []
    for name, value in filters.items():
        if value is not None:
            where.append(f"{name} = %s")
            params.append(value)
    return where, params


def list_accounts(
    conn: psycopg.Connection[Any],
    *,
    ledger: int | None = None,
    code: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
    reversed_order: bool = False,
    user_data: dict[str, int | None] | None = None,
    timestamp_min: int | None = None,
    timestamp_max: int | None = None,
) -> list[dict[str, Any]]:
    """Accounts in id order (or reversed), filtered by ledger, code, user data and the time
    they were opened (TigerBeetle's ``query_accounts``), keyset-paginated."""
    where, params = _user_data_filters(user_data or {})
    if timestamp_min is not None:
        where.append("opened_at_ns >= %s")
        params.append(timestamp_min)
    if timestamp_max is not None:
        where.append("opened_at_ns <= %s")
        params.append(timestamp_max)
    if ledger is not None:
        where.append("ledger = %s")
        params.append(ledger)
    if code is not None:
        where.append("code = %s")
        params.append(code)
    if after_id is not None:
        where.append("account_id < %s" if reversed_order else "account_id > %s")
        params.append(after_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    order = "DESC" if reversed_order else "ASC"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.accounts{clause} ORDER BY account_id {order} LIMIT %s",
            [*params, limit],
        )
        return [dict(_ints_dict(row)) for row in cur.fetchall()]


def query_transfers(
    conn: psycopg.Connection[Any],
    *,
    user_data: dict[str, int | None],
    ledger: int | None,
    code: int | None,
    timestamp_min: int | None,
    timestamp_max: int | None,
    after: tuple[int, int] | None,
    limit: int,
    reversed_order: bool,
    account_id: int | None = None,
    debits: bool = True,
    credits: bool = True,
) -> list[dict[str, Any]]:
    """TigerBeetle's ``query_transfers``: transfers whose fields equal every filter given, in
    time order (``created_at_ns``, then id; ``reversed_order``: newest first), from
    ``timestamp_min`` to ``timestamp_max`` inclusive, after the keyset ``after``. With
    ``account_id``, TigerBeetle's ``get_account_transfers``: the transfers that debit it
    (``debits``) or credit it (``credits``)."""
    where, params = _user_data_filters(user_data)
    if account_id is not None:
        sides = [
            c for c, on in (("debit_account_id", debits), ("credit_account_id", credits)) if on
        ]
        if not sides:
            return []
        where.append("(" + " OR ".join(f"{c} = %s" for c in sides) + ")")
        params.extend([account_id] * len(sides))
    for column, value in (("ledger", ledger), ("code", code)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if timestamp_min is not None:
        where.append("created_at_ns >= %s")
        params.append(timestamp_min)
    if timestamp_max is not None:
        where.append("created_at_ns <= %s")
        params.append(timestamp_max)
    if after is not None:
        where.append(
            "(created_at_ns, transfer_id) < (%s, %s)"
            if reversed_order
            else "(created_at_ns, transfer_id) > (%s, %s)"
        )
        params.extend(after)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    order = "DESC" if reversed_order else "ASC"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.transfers{clause}"
            f" ORDER BY created_at_ns {order}, transfer_id {order} LIMIT %s",
            [*params, limit],
        )
        return [dict(_ints_dict(row)) for row in cur.fetchall()]


def get_transfer(conn: psycopg.Connection[Any], transfer_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT * FROM {SCHEMA}.transfers WHERE transfer_id = %s", (transfer_id,))
        row = cur.fetchone()
        return dict(_ints_dict(row)) if row else None


def get_failed_transfer(conn: psycopg.Connection[Any], transfer_id: int) -> dict[str, Any] | None:
    """A failed transfer's id (spent), the rule it failed and when; None if it never failed."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT * FROM {SCHEMA}.failed_transfers WHERE transfer_id = %s", (transfer_id,)
        )
        row = cur.fetchone()
        return dict(_ints_dict(row)) if row else None


def account_transfers(
    conn: psycopg.Connection[Any], account_id: int, *, before_position: int | None, limit: int
) -> list[dict[str, Any]]:
    """The account's balance changes with their transfers, newest first (keyset pagination)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT h.position, h.change, h.recorded_at_ns, h.debits_pending, h.debits_posted,"
            f" h.credits_pending, h.credits_posted, t.*"
            f" FROM {SCHEMA}.account_history h"
            f" LEFT JOIN {SCHEMA}.transfers t ON t.transfer_id = h.transfer_id"
            " WHERE h.account_id = %s AND h.transfer_id IS NOT NULL AND h.position < %s"
            " ORDER BY h.position DESC LIMIT %s",
            (account_id, before_position if before_position is not None else 2**62, limit),
        )
        return [dict(_ints_dict(r)) for r in cur.fetchall()]


def account_balances(
    conn: psycopg.Connection[Any],
    account_id: int,
    *,
    user_data: dict[str, int | None],
    code: int | None,
    timestamp_min: int | None,
    timestamp_max: int | None,
    debits: bool,
    credits: bool,
    limit: int,
    reversed_order: bool,
) -> list[dict[str, Any]]:
    """TigerBeetle's ``get_account_balances``: the account's balances right after each of its
    transfers that match the filters, in time order (an account with ``history`` only)."""
    sides = [
        c for c, on in (("t.debit_account_id", debits), ("t.credit_account_id", credits)) if on
    ]
    if not sides:
        return []
    where = ["h.account_id = %s", "a.history", "(" + " OR ".join(f"{c} = %s" for c in sides) + ")"]
    params: list[Any] = [account_id, *([account_id] * len(sides))]
    for name, value in (*user_data.items(), ("code", code)):
        if value is not None:
            where.append(f"t.{name} = %s")
            params.append(value)
    if timestamp_min is not None:
        where.append("h.recorded_at_ns >= %s")
        params.append(timestamp_min)
    if timestamp_max is not None:
        where.append("h.recorded_at_ns <= %s")
        params.append(timestamp_max)
    order = "DESC" if reversed_order else "ASC"
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT h.transfer_id, h.recorded_at_ns AS timestamp, h.debits_pending,"
            " h.debits_posted, h.credits_pending, h.credits_posted, h.position"
            f" FROM {SCHEMA}.account_history h"
            f" JOIN {SCHEMA}.accounts a ON a.account_id = h.account_id"
            f" JOIN {SCHEMA}.transfers t ON t.transfer_id = h.transfer_id"
            f" WHERE {' AND '.join(where)} ORDER BY h.position {order} LIMIT %s",
            [*params, limit],
        )
        return [dict(_ints_dict(r)) for r in cur.fetchall()]


CHANGE_EVENT_TYPES = (
    "single_phase",
    "two_phase_pending",
    "two_phase_posted",
    "two_phase_voided",
    "two_phase_expired",
)

_SIDE = ("debits_pending", "debits_posted", "credits_pending", "credits_posted", "closed")
_CHANGE_EVENTS_SQL = (
    "SELECT d.position, d.recorded_at_ns, substr(d.change, 7) AS kind, d.ledger, d.currency,"
    " d.account_id AS dr_account_id,"
    + "".join(f" d.{c} AS dr_{c}," for c in _SIDE)
    + " c.account_id AS cr_account_id,"
    + "".join(f" c.{c} AS cr_{c}," for c in _SIDE)
    + " t.transfer_id, t.pending_id, t.amount, t.posted_amount, t.state, t.code,"
    " t.user_data_128, t.user_data_64, t.user_data_32"
    " FROM {schema}.account_history d"
    " JOIN {schema}.transfers t ON t.transfer_id = d.transfer_id"
    # The credit side of the same change: same transfer, same kind, same time.
    " LEFT JOIN LATERAL (SELECT * FROM {schema}.account_history x"
    "  WHERE x.account_id = t.credit_account_id AND x.recorded_at_ns = d.recorded_at_ns"
    "  AND x.transfer_id = d.transfer_id AND x.change = 'credit:' || substr(d.change, 7)"
    "  ORDER BY x.position LIMIT 1) c ON true"
    " WHERE d.change LIKE 'debit:%%' AND d.recorded_at_ns >= %s AND d.recorded_at_ns <= %s"
    " AND (d.recorded_at_ns, d.position) > (%s, %s)"
    " ORDER BY d.recorded_at_ns, d.position LIMIT %s"
)


def change_events(
    conn: psycopg.Connection[Any],
    *,
    timestamp_min: int | None,
    timestamp_max: int | None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """TigerBeetle's ``get_change_events``: one record per balance-changing event (a
    single-phase transfer, a pending one, the post, void or expiry of a pending one) in time
    order (then log position), from ``timestamp_min`` to ``timestamp_max`` inclusive, after
    the keyset ``after`` (timestamp, position): the event's type, transfer and amount, and
    both accounts with their balances and ``closed`` flag right after it.

    Each record is the debit account's history row of the change joined to the credit
    account's (``account_history_events_idx`` gives the debit sides in time order). A change
    whose credit side the read model has not applied yet (a batch split between the two, a
    Kafka partition behind) ends the page there: no event is skipped by a reader paging on.
    """
    lower = after if after is not None else (timestamp_min or 0, -1)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _CHANGE_EVENTS_SQL.format(schema=SCHEMA),
            (
                timestamp_min or 0,
                timestamp_max if timestamp_max is not None else 2**63 - 1,
                *lower,
                limit,
            ),
        )
        events = []
        for row in cur.fetchall():
            if row["cr_account_id"] is None:
                break
            events.append(_change_event(dict(_ints_dict(row))))
        return events


def _change_event(row: dict[str, Any]) -> dict[str, Any]:
    """A joined row as a change event. The history row names the transfer that caused the
    change (``transfer_id``): a post or void with an id of its own names itself (its
    ``pending_id`` is the pending transfer's); the expiry, and a post or void made without an
    id of its own (``/transfers/{id}/post``), name the pending transfer, and carry no transfer.
    """
    kind, tid, pending_id = row["kind"], row["transfer_id"], row["pending_id"]
    amount = row["amount"]
    transfer: int | None = tid
    if kind == "AmountPosted":
        event = "single_phase"
    elif kind == "AmountReserved":
        event = "two_phase_pending"
    else:
        posted = kind == "ReservationPosted"
        if pending_id == 0:  # the pending transfer itself: settled without a transfer
            transfer, pending_id = None, tid
            if posted:
                amount = row["posted_amount"]
        if posted:
            event = "two_phase_posted"
        elif transfer is None and row["state"] == "expired":
            event = "two_phase_expired"
        else:
            event = "two_phase_voided"
    return {
        "type": event,
        "timestamp": row["recorded_at_ns"],
        "position": row["position"],
        "ledger": row["ledger"],
        "currency": row["currency"],
        "transfer_id": transfer,
        "pending_id": pending_id or None,
        "amount": amount,
        "code": row["code"],
        "user_data_128": row["user_data_128"],
        "user_data_64": row["user_data_64"],
        "user_data_32": row["user_data_32"],
        **{
            side: {"account_id": row[f"{p}_account_id"], **{c: row[f"{p}_{c}"] for c in _SIDE}}
            for side, p in (("debit_account", "dr"), ("credit_account", "cr"))
        },
    }


def trial_balance(
    conn: psycopg.Connection[Any], ledger: int, *, as_of_position: int | None = None
) -> list[dict[str, Any]]:
    """Per currency: the sums of each balance column over the ledger's accounts."""
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None:
            cur.execute(
                f"SELECT currency, count(*) AS accounts,"
                f" sum(debits_pending) AS debits_pending, sum(debits_posted) AS debits_posted,"
                f" sum(credits_pending) AS credits_pending, sum(credits_posted) AS credits_posted"
                f" FROM {SCHEMA}.accounts WHERE ledger = %s GROUP BY currency ORDER BY currency",
                (ledger,),
            )
        else:
            cur.execute(
                f"SELECT a.currency, count(*) AS accounts,"
                f" sum(coalesce(h.debits_pending, 0)) AS debits_pending,"
                f" sum(coalesce(h.debits_posted, 0)) AS debits_posted,"
                f" sum(coalesce(h.credits_pending, 0)) AS credits_pending,"
                f" sum(coalesce(h.credits_posted, 0)) AS credits_posted"
                f" FROM {SCHEMA}.accounts a LEFT JOIN LATERAL ("
                f"   SELECT * FROM {SCHEMA}.account_history x"
                f"   WHERE x.account_id = a.account_id AND x.position <= %s"
                f"   ORDER BY x.position DESC LIMIT 1) h ON true"
                f" WHERE a.ledger = %s AND a.opened_position <= %s"
                f" GROUP BY a.currency ORDER BY a.currency",
                (as_of_position, ledger, as_of_position),
            )
        return [dict(_ints_dict(r)) for r in cur.fetchall()]


def chart_accounts(
    conn: psycopg.Connection[Any],
    ledger: int,
    *,
    as_of_position: int | None = None,
    as_of_ns: int | None = None,
) -> list[dict[str, Any]]:
    """The ledger's accounts (id order) with their place in the chart and their own balances
    now, or as of a position or a time (accounts opened later are left out)."""
    chart = "a.account_id, a.currency, a.code, a.account_type, a.parent_id, a.name"
    with conn.cursor(row_factory=dict_row) as cur:
        if as_of_position is None and as_of_ns is None:
            cur.execute(
                f"SELECT {chart}, a.debits_pending, a.debits_posted, a.credits_pending,"
                f" a.credits_posted FROM {SCHEMA}.accounts a WHERE a.ledger = %s"
                " ORDER BY a.account_id",
                (ledger,),
            )
        else:
            if as_of_position is not None:
                at, opened = "x.position <= %s", "a.opened_position <= %s"
                point: int = as_of_position
            else:
                at, opened = "x.recorded_at_ns <= %s", "a.opened_at_ns <= %s"
                point = as_of_ns or 0
            cur.execute(
                f"SELECT {chart},"
                " coalesce(h.debits_pending, 0) AS debits_pending,"
                " coalesce(h.debits_posted, 0) AS debits_posted,"
                " coalesce(h.credits_pending, 0) AS credits_pending,"
                " coalesce(h.credits_posted, 0) AS credits_posted"
                f" FROM {SCHEMA}.accounts a LEFT JOIN LATERAL ("
                f"   SELECT * FROM {SCHEMA}.account_history x"
                f"   WHERE x.account_id = a.account_id AND {at}"
                "   ORDER BY x.position DESC LIMIT 1) h ON true"
                f" WHERE a.ledger = %s AND {opened} ORDER BY a.account_id",
                (point, ledger, point),
            )
        return [dict(_ints_dict(r)) for r in cur.fetchall()]


def _ints_dict(row: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    from decimal import Decimal

    for k, v in row.items():
        yield k, int(v) if isinstance(v, Decimal) else v


def accounts_as_of(
    conn: psycopg.Connection[Any], account_ids: Iterable[int], position: int, schema: str = SCHEMA
) -> dict[int, AccountRow]:
    """The rows of the accounts opened at or before ``position``, with their balances and
    last change as of ``position`` (from ``account_history``): one indexed read per account."""
    ids = list(account_ids)
    if not ids:
        return {}
    static = ", ".join(f"a.{c}" for c in _ACCOUNT_COLUMNS[:7])
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {static}, h.debits_pending, h.debits_posted, h.credits_pending,"
            " h.credits_posted, a.opened_position, a.opened_at_ns, h.position"
            f" FROM {schema}.accounts a CROSS JOIN LATERAL ("
            f"  SELECT * FROM {schema}.account_history x WHERE x.account_id = a.account_id"
            "   AND x.position <= %s ORDER BY x.position DESC LIMIT 1) h"
            " WHERE a.account_id = ANY(%s) AND a.opened_position <= %s",
            (position, ids, position),
        )
        return {int(r[0]): AccountRow(*_ints(r)) for r in _tuples(cur)}


def due_holds(
    conn: psycopg.Connection[Any], now_ns: int, *, limit: int = 1000, schema: str = SCHEMA
) -> list[int]:
    """Pending transfers past their deadline, oldest deadline first (``transfers_due_holds_idx``:
    the cost is the number of due holds, not of transfers)."""
    with conn.cursor() as cur:
        cur.execute(DUE_HOLDS_SQL.format(schema=schema), (now_ns, limit))
        return [int(r[0]) for r in _tuples(cur)]


def next_hold_due(conn: psycopg.Connection[Any], *, schema: str = SCHEMA) -> int | None:
    """When the earliest deadline of a pending transfer falls (ns), or None when no pending
    transfer has one: one probe of ``transfers_due_holds_idx``."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            f"SELECT min(expires_at_ns) FROM {schema}.transfers"
            " WHERE state = 'pending' AND expires_at_ns IS NOT NULL"
        )
        row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None
