"""Runs TigerBeetle's state-machine test tables against Ledgerline's ledger domain.

The table format is TigerBeetle's (``src/testing/table.zig``): one action per line, values
separated by spaces, ``_`` for a default, a leading letter as a visual label (``A1`` is 1),
``-N`` for the largest unsigned value minus N. Each ``commit create_accounts`` or
``commit create_transfers`` submits the lines before it as ONE batch (linked chains, imports)
through :func:`domain.ledger.service.create_accounts` / ``create_transfers`` and compares
every result's status; ``lookup_account`` / ``lookup_transfer`` compare what the ledger holds.

What the domain cannot be asked is left out, by name: ``reserved_field``/``reserved_flag``
(a JSON request has no reserved bytes) and ``*_must_be_zero`` balances at opening (an account
request carries no balances). ``tick`` moves the ledger's clock and then expires what is due,
as TigerBeetle's pulse does (Ledgerline's expiry sweep). ``setup`` sets balances directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.ledger import service
from domain.ledger.account import Account, AccountSpec
from domain.ledger.transfer import NS_PER_S, Transfer, TransferSpec
from tests.unit.domain.fakes import FakeLedger

U128 = 2**128 - 1
U64 = 2**64 - 1
TIMESTAMP_MAX = 2**63 - 1
NOT_EXPRESSIBLE = frozenset(
    {
        "reserved_field",
        "reserved_flag",
        "debits_pending_must_be_zero",
        "debits_posted_must_be_zero",
        "credits_pending_must_be_zero",
        "credits_posted_must_be_zero",
    }
)


def number(token: str, maximum: int = U128) -> int:
    """TigerBeetle's integer column: ``A1`` -> 1, ``-0`` -> max, ``-9`` -> max - 9."""
    if token == "_":
        return 0
    body = token[1:] if token[0].isalpha() else token
    if body.startswith("-"):
        return maximum - int(body[1:])
    return int(body)


def flag(token: str) -> bool:
    return token != "_"


@dataclass
class Mismatch:
    line: str
    expected: str
    actual: str


@dataclass
class Runner:
    ledger: FakeLedger = field(default_factory=FakeLedger)
    now: int = 0
    batch: list[tuple[str, Any, str]] = field(default_factory=list)  # (line, spec, status)
    lookups: list[tuple[str, Any]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ actions

    def run(self, table: str) -> None:
        for raw in table.splitlines():
            line = raw.strip()
            if not line:
                continue
            words = line.split()
            getattr(self, f"_{words[0]}")(line, words[1:])

    def _account(self, line: str, w: list[str]) -> None:
        status = w[19]
        if status in NOT_EXPRESSIBLE:
            self.skipped.append(line)
            return
        spec = AccountSpec(
            number(w[0]),
            number(w[9], 2**32 - 1),
            "USD",
            number(w[10], 2**16 - 1),
            debits_must_not_exceed_credits=flag(w[12]),
            credits_must_not_exceed_debits=flag(w[13]),
            closed=flag(w[16]),
            user_data_128=number(w[5]),
            user_data_64=number(w[6], U64),
            user_data_32=number(w[7], 2**32 - 1),
            linked=flag(w[11]),
            history=flag(w[14]),
            imported=flag(w[15]),
            timestamp_ns=number(w[18], U64),
        )
        self.batch.append((line, spec, status))

    def _transfer(self, line: str, w: list[str]) -> None:
        status = w[22]
        if status in NOT_EXPRESSIBLE:
            self.skipped.append(line)
            return
        spec = TransferSpec(
            number(w[0]),
            number(w[1]),
            number(w[2]),
            number(w[3]),
            number(w[9], 2**32 - 1),
            number(w[10], 2**16 - 1),
            pending=flag(w[12]),
            timeout_s=number(w[8], 2**32 - 1),
            pending_id=number(w[4]),
            user_data_128=number(w[5]),
            user_data_64=number(w[6], U64),
            user_data_32=number(w[7], 2**32 - 1),
            linked=flag(w[11]),
            post_pending_transfer=flag(w[13]),
            void_pending_transfer=flag(w[14]),
            balancing_debit=flag(w[15]),
            balancing_credit=flag(w[16]),
            imported=flag(w[17]),
            closing_debit=flag(w[18]),
            closing_credit=flag(w[19]),
            timestamp_ns=number(w[21], U64),
        )
        self.batch.append((line, spec, status))

    def _setup(self, line: str, w: list[str]) -> None:
        account = self.ledger.committed[f"account:{number(w[0])}"]
        assert isinstance(account, Account)
        account.debits_pending = number(w[1])
        account.debits_posted = number(w[2])
        account.credits_pending = number(w[3])
        account.credits_posted = number(w[4])

    def _tick(self, line: str, w: list[str]) -> None:
        value = int(w[0])
        interval = abs(value) * (NS_PER_S if w[1] == "seconds" else 1)
        self.now += interval if value > 0 else TIMESTAMP_MAX - interval
        self._expire_due()

    def _lookup_account(self, line: str, w: list[str]) -> None:
        self.lookups.append((line, ("account", w)))

    def _lookup_transfer(self, line: str, w: list[str]) -> None:
        self.lookups.append((line, ("transfer", w)))

    def _commit(self, line: str, w: list[str]) -> None:
        operation = w[0]
        if operation in ("create_accounts", "create_transfers"):
            self._commit_batch(operation)
        elif operation in ("lookup_accounts", "lookup_transfers"):
            self._check_lookups()
        else:  # queries run against the read model, elsewhere
            self.skipped.append(line)
            self.lookups.clear()

    # ------------------------------------------------------------------ commits

    def _commit_batch(self, operation: str) -> None:
        specs = [spec for _, spec, _ in self.batch]
        self.now += 1 + len(specs)
        create = (
            service.create_accounts if operation == "create_accounts" else service.create_transfers
        )
        results = create(self.ledger, specs, self.now)
        self.ledger.commit()
        for (line, _, expected), result in zip(self.batch, results, strict=True):
            if result.status != expected:
                self.mismatches.append(Mismatch(line, expected, result.status))
        self.batch.clear()

    def _expire_due(self) -> None:
        due = sorted(
            (t.deadline_ns or 0, t.created_at_ns, t.transfer_id)
            for t in self.ledger.committed.values()
            if isinstance(t, Transfer) and t.is_expired_at(self.now)
        )
        for _, _, transfer_id in due:
            service.expire_pending_transfer(self.ledger, transfer_id, self.now)
            self.ledger.commit()

    def _check_lookups(self) -> None:
        for line, (kind, w) in self.lookups:
            if kind == "account":
                self._check_account(line, w)
            else:
                self._check_transfer(line, w)
        self.lookups.clear()

    def _check_account(self, line: str, w: list[str]) -> None:
        account = self.ledger.committed.get(f"account:{number(w[0])}")
        if w[1] == "_":
            if account is not None:
                self.mismatches.append(Mismatch(line, "no account", "an account"))
            return
        if not isinstance(account, Account):
            self.mismatches.append(Mismatch(line, "an account", "none"))
            return
        expected = (*(number(x) for x in w[1:5]), flag(w[5]) if len(w) > 5 else False)
        actual = (
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
            account.closed,
        )
        if expected != actual:
            self.mismatches.append(Mismatch(line, str(expected), str(actual)))

    def _check_transfer(self, line: str, w: list[str]) -> None:
        transfer = self.ledger.committed.get(f"transfer:{number(w[0])}")
        exists = isinstance(transfer, Transfer) and transfer.state != "failed"
        what, value = w[1], w[2]
        if what == "exists":
            if exists != (value == "true"):
                self.mismatches.append(Mismatch(line, value, str(exists)))
            return
        if not exists:
            self.mismatches.append(Mismatch(line, "a transfer", "none"))
            return
        assert isinstance(transfer, Transfer)
        actual = transfer.amount if what == "amount" else transfer.created_at_ns
        if actual != number(value, U128 if what == "amount" else U64):
            self.mismatches.append(Mismatch(line, value, str(actual)))


def run_table(table: str) -> Runner:
    runner = Runner()
    runner.run(table)
    return runner
