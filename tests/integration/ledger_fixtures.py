"""Ledger activity through the real application layer, for replay and evidence tests."""

from __future__ import annotations

import random
import time
from typing import Any

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    PostPendingTransfer,
    VoidPendingTransfer,
    account_command,
    build_ledger_processor,
    post_command,
    transfer_command,
    void_command,
)
from eventstore.store import EventStore


def run_history(store: EventStore, seed: int, transfers: int = 60, accounts: int = 6) -> None:
    """Open accounts and make a seeded mix of transfers, holds, posts and voids."""
    rng = random.Random(seed)
    p = build_ledger_processor(store.recorder, time.time_ns).start()
    try:
        for a in range(1, accounts + 1):
            p.execute(
                account_command(
                    CreateAccount(
                        id=a, ledger=1, currency="USD", code=1, debits_must_not_exceed_credits=a > 2
                    )
                )
            )
        base = store.recorder.head().position * 1000 + 1
        for n in range(transfers):
            tid = base + n
            debit, credit = rng.sample(range(1, accounts + 1), 2)
            amount = f"{rng.randint(1, 5000) / 100:.2f}"
            pending = rng.random() < 0.3
            out: Any = p.execute(
                transfer_command(
                    CreateTransfer(
                        id=tid,
                        debit_account_id=debit,
                        credit_account_id=credit,
                        amount=amount,
                        ledger=1,
                        code=1,
                        pending=pending,
                    )
                )
            )
            if pending and out.accepted:
                if rng.random() < 0.5:
                    p.execute(post_command(PostPendingTransfer(transfer_id=tid)))
                else:
                    p.execute(void_command(VoidPendingTransfer(transfer_id=tid)))
    finally:
        p.stop()


def append_an_event_the_ledger_cannot_apply(store: EventStore) -> int:
    """Commit one event of a ledger type no projection knows; return the head before it."""
    from eventstore.model import NewEvent, Submission

    good_head = store.recorder.head().position
    store.recorder.append(
        [
            Submission(
                "poison",
                "t",
                b"p",
                True,
                b"{}",
                [NewEvent("account:999", 1, "ledger.NoSuchEvent.v1", b"{}")],
            )
        ]
    )
    return good_head
