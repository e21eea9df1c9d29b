"""The ledger projection: account balances, balance history and transfers from ledger events.

Definition
    :func:`project` is pure: given a batch of (stored event, decoded event) pairs and the
    current rows of the accounts and transfers they touch, it returns the rows to write.
    :class:`LedgerProjection` wraps it for a runner: it loads the current rows, projects, and
    writes inside the runner's transaction. The in-process runner and the Kafka workers use the
    same class unchanged.

Guarantees
    Every balance change adds one history row holding the balances right after it and the
    account's ``closed`` flag as the change's transfer left it, so balances at any past
    position or time are one indexed read, and a change event (TigerBeetle's
    ``get_change_events``) is the debit side's row joined to the credit side's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg

from domain.ledger.events import (
    AccountClosed,
    AccountOpened,
    AccountReopened,
    BalanceChange,
    LedgerEvent,
    PendingTransferExpired,
    PendingTransferPosted,
    PendingTransferVoided,
    SettlingTransferCreated,
    TransferCreated,
    TransferFailed,
    TransferReversed,
    decode_event,
)
from domain.ledger.transfer import NS_PER_S
from eventstore.model import StoredEvent
from readmodels.ledger import (
    TRANSFER_FLAG_BITS,
    AccountRow,
    Changes,
    HistoryRow,
    TransferRow,
    load_accounts,
    load_transfers,
    write_changes,
)
from readmodels.schema import defer_indexes, restore_indexes

Decoded = tuple[StoredEvent, LedgerEvent]

# The read-model tables this projection owns (all in one schema) and their key columns.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "account_history": ("account_id", "position"),
    "transfers": ("transfer_id",),
    "failed_transfers": ("transfer_id",),
}


def loads_exact(payload: bytes) -> dict[str, Any]:
    """Parse a flat event payload fast, exactly: orjson reads integers past 64 bits as floats
    (ids go up to 2^128), and ledger payloads never hold floats, so a float means "reparse"."""
    value: dict[str, Any] = orjson.loads(payload)
    if float in map(type, value.values()):  # one C loop, no generator frame per value
        value = json.loads(payload)
    return value


def decode(events: Sequence[StoredEvent]) -> list[Decoded]:
    return [
        (e, decode_event(e.topic, loads_exact(e.payload)))
        for e in events
        if e.topic.startswith("ledger.")
    ]


def touched(batch: Sequence[Decoded]) -> tuple[set[int], set[int]]:
    """The existing rows a batch needs: accounts it changes, and transfers it settles that it
    did not create itself (a transfer created in the batch has no row yet)."""
    accounts: set[int] = set()
    transfers: set[int] = set()
    created: set[int] = set()
    for _, ev in batch:
        if isinstance(ev, (AccountOpened, BalanceChange, AccountClosed, AccountReopened)):
            accounts.add(ev.account_id)
        elif isinstance(ev, (TransferCreated, SettlingTransferCreated)):
            created.add(ev.transfer_id)
        elif isinstance(ev, _SETTLED):
            transfers.add(ev.transfer_id)
    return accounts, transfers - created


_SETTLED = (PendingTransferPosted, PendingTransferVoided, PendingTransferExpired, TransferReversed)


def _flags(ev: TransferCreated | SettlingTransferCreated) -> int:
    names = (
        "linked",
        "pending",
        "balancing_debit",
        "balancing_credit",
        "closing_debit",
        "closing_credit",
        "imported",
    )
    bits = sum(TRANSFER_FLAG_BITS[n] for n in names if getattr(ev, n, False))
    if isinstance(ev, SettlingTransferCreated):
        bits |= TRANSFER_FLAG_BITS[f"{ev.kind}_pending_transfer"]
    return bits


def project(
    batch: Sequence[Decoded],
    accounts: dict[int, AccountRow],
    transfers: dict[int, TransferRow],
) -> Changes:
    changes = Changes()
    for stored, ev in batch:
        # Times are the events' own (the ledger's timestamps, an import's the imported
        # ones), so balances at a past time are right for imported history too.
        pos = stored.position
        if isinstance(ev, AccountOpened):
            at = ev.opened_at_ns
            row = AccountRow(
                ev.account_id,
                ev.ledger,
                ev.currency,
                ev.code,
                ev.debits_must_not_exceed_credits,
                ev.credits_must_not_exceed_debits,
                ev.closed,
                0,
                0,
                0,
                0,
                pos,
                at,
                pos,
                ev.user_data_128,
                ev.user_data_64,
                ev.user_data_32,
                ev.account_type,
                ev.parent_id,
                ev.name,
                ev.linked,
                ev.imported,
                ev.history,
            )
            accounts[ev.account_id] = changes.accounts[ev.account_id] = row
            changes.history.append(_history(row, pos, None, "opened", at))
        elif isinstance(ev, BalanceChange):
            at = ev.at_ns
            row = accounts[ev.account_id]
            dp, dpo, cp, cpo = ev.deltas()
            row.debits_pending += dp
            row.debits_posted += dpo
            row.credits_pending += cp
            row.credits_posted += cpo
            row.last_position = pos
            changes.accounts[ev.account_id] = row
            change = f"{ev.side}:{type(ev).__name__}"
            # The transfer that caused the change: a post or void with an id of its own is
            # named by it (TigerBeetle's get_account_balances), the lone /post by the pending.
            changes.history.append(_history(row, pos, ev.cause_id, change, at))
        elif isinstance(ev, TransferCreated):
            at = ev.created_at_ns
            expires = (
                ev.created_at_ns + ev.timeout_s * NS_PER_S if ev.pending and ev.timeout_s else None
            )
            t = TransferRow(
                ev.transfer_id,
                ev.debit_account_id,
                ev.credit_account_id,
                ev.amount,
                0 if ev.pending else ev.amount,
                ev.ledger,
                ev.currency,
                ev.code,
                ev.pending,
                ev.timeout_s,
                "pending" if ev.pending else "posted",
                pos,
                at,
                pos,
                expires,
                0,
                ev.user_data_128,
                ev.user_data_64,
                ev.user_data_32,
                _flags(ev),
                ev.reverses_id,
            )
            transfers[ev.transfer_id] = changes.transfers[ev.transfer_id] = t
        elif isinstance(ev, SettlingTransferCreated):
            at = ev.created_at_ns
            # A post or void with an id of its own: a row of its own, never pending.
            t = TransferRow(
                ev.transfer_id,
                ev.debit_account_id,
                ev.credit_account_id,
                ev.amount,
                ev.amount if ev.kind == "post" else 0,
                ev.ledger,
                ev.currency,
                ev.code,
                False,
                0,
                "posted" if ev.kind == "post" else "voided",
                pos,
                at,
                pos,
                None,
                ev.pending_id,
                ev.user_data_128,
                ev.user_data_64,
                ev.user_data_32,
                _flags(ev),
            )
            transfers[ev.transfer_id] = changes.transfers[ev.transfer_id] = t
        elif isinstance(ev, (AccountClosed, AccountReopened)):
            row = accounts[ev.account_id]
            _set_closed(changes, row, isinstance(ev, AccountClosed))
            row.last_position = pos
            changes.accounts[ev.account_id] = row
        elif isinstance(ev, (PendingTransferPosted, PendingTransferVoided, PendingTransferExpired)):
            t = transfers[ev.transfer_id]
            if isinstance(ev, PendingTransferPosted):
                t.state, t.posted_amount = "posted", ev.amount
            elif isinstance(ev, PendingTransferVoided):
                t.state = "voided"
            elif isinstance(ev, PendingTransferExpired):
                t.state = "expired"
            t.last_position = pos
            changes.transfers[t.transfer_id] = t
        elif isinstance(ev, TransferReversed):
            t = transfers[ev.transfer_id]
            t.reversal_id = ev.reversal_id
            t.last_position = pos
            changes.transfers[t.transfer_id] = t
        elif isinstance(ev, TransferFailed):
            changes.failed.append((ev.transfer_id, ev.reason, ev.failed_at_ns, pos))
    return changes


def _history(
    row: AccountRow, pos: int, transfer_id: int | None, change: str, at: int
) -> HistoryRow:
    return HistoryRow(
        row.account_id,
        pos,
        transfer_id,
        change,
        row.ledger,
        row.currency,
        row.debits_pending,
        row.debits_posted,
        row.credits_pending,
        row.credits_posted,
        at,
        row.closed,
    )


def _set_closed(changes: Changes, row: AccountRow, closed: bool) -> None:
    """Close (or reopen) the account, and give its latest history row the flag too.

    An account is closed (or reopened) only by a transfer that changed its balances just
    before, in the same command: the account's previous event (``row.last_position``) is that
    change, and its row must say what the whole transfer left (TigerBeetle's change events
    show the account closed by the transfer that closes it, open after the void that reopens
    it). The row is in this batch (found from the end: only the command's own rows follow it)
    or was written by an earlier one (then updated with the batch's writes).
    """
    row.closed = closed
    target = row.last_position
    for h in reversed(changes.history):
        if h.position < target:
            break
        if h.position == target and h.account_id == row.account_id:
            h.closed = closed
            return
    changes.closed.append((row.account_id, target, closed))


class LedgerProjection:
    """Runner adapter: load the touched rows, project, write; all in the caller's transaction."""

    name = "ledger"

    def __init__(self, schema: str = "readmodels") -> None:
        self.schema = schema

    def apply(self, cur: psycopg.Cursor[Any], events: Sequence[StoredEvent]) -> None:
        batch = decode(events)
        if not batch:
            return
        account_ids, transfer_ids = touched(batch)
        accounts = load_accounts(cur, account_ids, self.schema)
        transfers = load_transfers(cur, transfer_ids, self.schema)
        write_changes(cur, project(batch, accounts, transfers), self.schema)


class _WriteBack:
    """The rows a rebuild holds: a bounded write-back cache over the fresh tables.

    ``rows`` maps id -> row for the rows in memory; ``stored`` the ids among them whose row is
    already in the table; ``dirty`` the ids changed since they were last written.
    """

    def __init__(self) -> None:
        self.rows: dict[int, Any] = {}
        self.stored: set[int] = set()
        self.dirty: set[int] = set()

    def split(self) -> tuple[dict[int, Any], dict[int, Any]]:
        """(rows to insert, rows to update) among the dirty ones."""
        new = {i: self.rows[i] for i in self.dirty if i not in self.stored}
        changed = {i: self.rows[i] for i in self.dirty if i in self.stored}
        return new, changed

    def written(self) -> None:
        self.stored.update(self.dirty)
        self.dirty.clear()

    def evict(self, keep: Callable[[Any], bool] = lambda _: False) -> None:
        """Drop every clean row ``keep`` does not want (all rows are clean after a flush)."""
        self.rows = {i: r for i, r in self.rows.items() if keep(r)}
        self.stored.intersection_update(self.rows)


class Rebuild:
    """Rebuild the ledger read models into a fresh schema with the projection's pure function.

    The same :func:`project` as the live runner, fed every event in order; only the writing
    differs: a fresh schema needs no upserts, so history rows are copied in batch by batch and
    account and transfer rows are copied in when first written.

    Memory is bounded, whatever the log's length: when more than ``max_rows`` account and
    transfer rows are held, the changed ones are written (new rows copied, rows already in the
    table updated), the transfers that can no longer change are dropped and, if that is not
    enough, every row; a later event that needs a dropped row reads it back (one query per
    batch for all of them).
    """

    def __init__(self, cur: psycopg.Cursor[Any], schema: str, *, max_rows: int = 100_000) -> None:
        self._cur = cur
        self._schema = schema
        self._max_rows = max_rows
        self._accounts = _WriteBack()
        self._transfers = _WriteBack()
        # The tables are loaded empty and read back by primary key only: their secondary
        # indexes are built once at the end, sorted, instead of row by row.
        self._indexes = defer_indexes(cur, schema, list(TABLE_KEYS))

    def feed(self, events: Sequence[StoredEvent]) -> None:
        cur, schema = self._cur, self._schema
        accounts, transfers = self._accounts, self._transfers
        decoded = decode(events)
        account_ids, transfer_ids = touched(decoded)
        missing = [a for a in account_ids if a not in accounts.rows]
        if missing:  # dropped earlier (or new in this batch: then not in the table either)
            loaded = load_accounts(cur, missing, schema)
            accounts.rows.update(loaded)
            accounts.stored.update(loaded)
        missing = [t for t in transfer_ids if t not in transfers.rows]
        if missing:
            loaded_t = load_transfers(cur, missing, schema)
            transfers.rows.update(loaded_t)
            transfers.stored.update(loaded_t)
        changes = project(decoded, accounts.rows, transfers.rows)
        accounts.dirty.update(changes.accounts)
        transfers.dirty.update(changes.transfers)
        write_changes(cur, changes.appended_only(), schema)
        if len(accounts.rows) + len(transfers.rows) > self._max_rows:
            self._flush()
            transfers.evict(keep=lambda t: t.state == "pending")
            if len(accounts.rows) + len(transfers.rows) > self._max_rows // 2:
                transfers.evict()
                accounts.evict()

    def _flush(self) -> None:
        new_a, old_a = self._accounts.split()
        new_t, old_t = self._transfers.split()
        write_changes(self._cur, Changes(accounts=new_a, transfers=new_t), self._schema, fresh=True)
        write_changes(self._cur, Changes(accounts=old_a, transfers=old_t), self._schema)
        self._accounts.written()
        self._transfers.written()

    def finish(self, *, indexes: bool = True) -> None:
        self._flush()
        if indexes:
            restore_indexes(self._cur, self._indexes)
        self._indexes = []
