"""Change events (TigerBeetle's ``get_change_events``) from the ledger's read model: the
accounts' ``closed`` flag at each event, whatever batches the projection was fed, rebuilt
identically by replay, and recovered from the read models alone by migration 31."""

from __future__ import annotations

import time
from typing import Any

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    ExpirePendingTransfer,
    VoidPendingTransfer,
    account_command,
    build_ledger_processor,
    expire_command,
    transfer_command,
    void_command,
)
from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from projections.ledger import LedgerProjection
from projections.runner import ProjectionRunner
from readmodels import ledger as rm
from replay.replay import replay

NS_PER_S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns


def _closing_history(store: EventStore) -> None:
    """Accounts closed by pending transfers, and reopened by a void with an id of its own, a
    void without one, and an expiry; ordinary transfers around them."""
    clock = Clock()
    p = build_ledger_processor(store.recorder, clock).start()

    def transfer(tid: int, dr: int, cr: int, amount: str, **flags: Any) -> None:
        cmd = CreateTransfer(
            id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, ledger=1, code=1,
            **flags,
        )  # fmt: skip
        assert p.execute(transfer_command(cmd)).accepted

    try:
        for a in range(1, 5):
            p.execute(account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1)))
        transfer(10, 1, 2, "10.00")
        transfer(11, 3, 1, "0", pending=True, closing_debit=True)
        transfer(12, 1, 4, "0", pending=True, closing_credit=True, timeout_s=1)
        transfer(13, 2, 1, "1.00", pending=True, closing_debit=True)
        transfer(14, 0, 0, "0", pending_id=11, void_pending_transfer=True)
        assert p.execute(void_command(VoidPendingTransfer(transfer_id=13))).accepted
        clock.offset_ns += 2 * NS_PER_S
        assert p.execute(expire_command(ExpirePendingTransfer(transfer_id=12))).accepted
        transfer(15, 1, 2, "2.00")
    finally:
        p.stop()


def _events(db_url: str) -> list[tuple[Any, ...]]:
    with connect_owner(db_url) as conn:
        events = rm.change_events(
            conn, timestamp_min=None, timestamp_max=None, after=None, limit=100
        )
    return [
        (
            e["type"], e["transfer_id"], e["pending_id"],
            e["debit_account"]["account_id"], e["debit_account"]["closed"],
            e["credit_account"]["account_id"], e["credit_account"]["closed"],
        )
        for e in events
    ]  # fmt: skip


EXPECTED = [
    ("single_phase", 10, None, 1, False, 2, False),
    ("two_phase_pending", 11, None, 3, True, 1, False),
    ("two_phase_pending", 12, None, 1, False, 4, True),
    ("two_phase_pending", 13, None, 2, True, 1, False),
    ("two_phase_voided", 14, 11, 3, False, 1, False),
    ("two_phase_voided", None, 13, 2, False, 1, False),
    ("two_phase_expired", None, 12, 1, False, 4, False),
    ("single_phase", 15, None, 1, False, 2, False),
]


def test_an_account_is_closed_at_the_events_of_the_transfer_that_closed_it_in_any_batching(
    db_url: str,
) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        _closing_history(store)
        # One event per batch: the closing event never shares a batch with its balance change.
        runner = ProjectionRunner(store.recorder, [LedgerProjection()], batch_size=1)
        runner.position = 0
        runner.catch_up()
        assert _events(db_url) == EXPECTED
        for batch_size in (2, 3, 10_000):
            report = replay(store.recorder, db_url, check=True, batch_size=batch_size)
            assert report.ok, report.to_json()


def test_migration_31_recovers_the_closed_flags_of_history_written_before_it(
    db_url: str,
) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        _closing_history(store)
        runner = ProjectionRunner(store.recorder, [LedgerProjection()])
        runner.position = 0
        runner.catch_up()
        with connect_owner(db_url) as conn:
            conn.execute("UPDATE readmodels.account_history SET closed = false")
            for statement in rm.CLOSED_BACKFILL:
                conn.execute(statement.replace("{schema}", "readmodels").encode())
        assert _events(db_url) == EXPECTED
        report = replay(store.recorder, db_url, check=True)
        assert report.ok, report.to_json()
