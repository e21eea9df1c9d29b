"""``ledgerline demo``: a small bank's day on the ledger, then verify the whole log."""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

from commands.ledger import (
    CreateAccount,
    CreateLinkedTransfers,
    CreateTransfer,
    PostPendingTransfer,
    account_command,
    linked_command,
    post_command,
    transfer_command,
)
from commands.processor import Outcome
from domain.money import format_major
from eventstore.verify import verify_store
from ledgerline.runtime import build_runtime
from readmodels import ledger as rm
from replay.log import make_checkpoint

CUSTOMERS = 20
PAYMENTS = 2000
WRITERS = 16


def run_demo(url: str, out: TextIO, signing_key: Any = None) -> int:  # noqa: PLR0915 - one scenario, told in order
    started = time.perf_counter()
    runtime = build_runtime(url, sweep_interval_s=None, signing_key=signing_key)
    base = runtime.store.recorder.head().position * 10 + 1_000_000  # fresh ids on every run
    p = runtime.processor

    def do(cmd: Any) -> Outcome:
        return p.execute(cmd)

    def say(text: str) -> None:
        out.write(text + "\n")

    try:
        bank, fees = base + 1, base + 2
        customers = [base + 100 + n for n in range(CUSTOMERS)]
        ledger = 7
        do(account_command(CreateAccount(id=bank, ledger=ledger, currency="EUR", code=1)))
        do(account_command(CreateAccount(id=fees, ledger=ledger, currency="EUR", code=2)))
        for c in customers:
            do(
                account_command(
                    CreateAccount(
                        id=c,
                        ledger=ledger,
                        currency="EUR",
                        code=10,
                        debits_must_not_exceed_credits=True,
                    )
                )
            )
        tid = iter(range(base + 10_000, base + 10**7))

        def move(debit: int, credit: int, amount: str, **kw: Any) -> Outcome:
            return do(
                transfer_command(
                    CreateTransfer(
                        id=next(tid),
                        debit_account_id=debit,
                        credit_account_id=credit,
                        amount=amount,
                        ledger=ledger,
                        code=1,
                        **kw,
                    )
                )
            )

        for c in customers:  # salaries in
            move(bank, c, "1000.00")
        say(f"Ledgerline demo: ledger {ledger}, {CUSTOMERS} customers with 1000.00 EUR each")

        accepted = [0] * WRITERS

        def payments(k: int) -> None:
            for i in range(k, PAYMENTS, WRITERS):
                a, b = customers[i % CUSTOMERS], customers[(i * 7 + 3) % CUSTOMERS]
                if a != b and move(a, b, f"{i % 50 + 1}.{i % 100:02d}").accepted:
                    accepted[k] += 1

        threads = [threading.Thread(target=payments, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        say(
            f"  {sum(accepted)} payments between customers from {WRITERS} concurrent clients, "
            f"{p.batches_committed} commits for {p.commands_committed} commands (group commit)"
        )

        over = move(customers[0], customers[1], "1000000.00")
        say(f"  overdraft of 1,000,000.00 refused: {over.result['code']}")
        retry_id = next(tid)
        cmd = CreateTransfer(
            id=retry_id,
            debit_account_id=customers[2],
            credit_account_id=fees,
            amount="2.50",
            ledger=ledger,
            code=3,
        )
        first, again = do(transfer_command(cmd)), do(transfer_command(cmd))
        say(
            f"  fee charged once although sent twice: position {first.position}, "
            f"retry returned {'the first outcome' if again.replayed else 'something new'}"
        )

        hold = move(customers[3], bank, "300.00", pending=True, timeout_s=3600)
        hold_id = hold.result["transfer"]["id"]
        posted = do(post_command(PostPendingTransfer(transfer_id=hold_id, amount="120.00")))
        say(
            f"  card hold of 300.00 placed, then posted for "
            f"{format_major(posted.result['transfer']['posted_amount'], 'EUR')} (rest released)"
        )

        linked = do(
            linked_command(
                CreateLinkedTransfers(
                    transfers=(
                        CreateTransfer(
                            id=next(tid),
                            debit_account_id=customers[4],
                            credit_account_id=customers[5],
                            amount="10.00",
                            ledger=ledger,
                            code=4,
                        ),
                        CreateTransfer(
                            id=next(tid),
                            debit_account_id=customers[5],
                            credit_account_id=customers[4],
                            amount="999999.00",
                            ledger=ledger,
                            code=4,
                        ),
                    )
                )
            )
        )
        say(
            f"  linked batch with one bad leg: {linked.result['code']} "
            f"(failed leg: {linked.result['failed_code']}), nothing applied"
        )

        head = runtime.store.recorder.head().position
        runtime.wait_for_position(head, 30)
        with runtime.store.datastore.get_connection() as conn:
            say("\n  account        debits posted   credits posted   pending")
            for account_id in (bank, fees, *customers[:5]):
                a = rm.get_account(conn, account_id)
                assert a is not None
                pending = a["debits_pending"] + a["credits_pending"]
                say(
                    f"  {account_id:<12} {format_major(a['debits_posted'], 'EUR'):>15} "
                    f"{format_major(a['credits_posted'], 'EUR'):>16} "
                    f"{format_major(pending, 'EUR'):>9}"
                )
            say("\n  trial balance, ledger 7:")
            for line in rm.trial_balance(conn, ledger):
                ok = line["debits_posted"] == line["credits_posted"]
                say(
                    f"  {line['currency']}  debits {format_major(line['debits_posted'], 'EUR')}"
                    f"  credits {format_major(line['credits_posted'], 'EUR')}"
                    f"  {'balanced' if ok else 'NOT BALANCED'}  ({line['accounts']} accounts)"
                )
        report = verify_store(runtime.store.recorder)
        checkpoint = make_checkpoint(runtime.store.recorder, signing_key) if signing_key else None
    finally:
        runtime.close()
    verdict = "chains intact, positions gapless" if report.ok else f"BROKEN: {report.first_break}"
    say(
        f"\n  verify: {report.events_checked} events in {report.streams_checked} streams, {verdict}"
    )
    say(f"  head: position {report.head_position}, hash {report.head_hash.hex()[:16]}...")
    if checkpoint is not None:
        say(
            f"  signed checkpoint: {checkpoint.size} events, root {checkpoint.root.hex()[:16]}..."
            f" (key {checkpoint.key_name})"
        )
    say(f"  took {time.perf_counter() - started:.1f} s")
    return 0 if report.ok else 1
