"""Random command histories keep the invariants; replaying them gives the same state.

The histories mix live transfers, imported history (at past timestamps) and period closes on a
small chart of accounts: roll-ups always equal the sum of the balances of their subtree, and
a closed period never takes an import."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.ledger import errors as e
from domain.ledger import service
from domain.ledger.account import Account, AccountSpec
from domain.ledger.book import LedgerBook
from domain.ledger.chart import rollups
from domain.ledger.transfer import Transfer, TransferSpec
from tests.unit.domain.fakes import FakeLedger

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
ACCOUNTS = st.integers(1, 7)  # 6 and 7 only ever come from imports
TRANSFERS = st.integers(1, 12)
AMOUNTS = st.integers(1, 300)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = FakeLedger()
        self.now = T0
        self.outcomes: dict[tuple[object, ...], str] = {}
        self.next_id = 10_000

    @initialize(limits=st.lists(st.sampled_from(["", "d", "c"]), min_size=4, max_size=4))
    def open_accounts(self, limits: list[str]) -> None:
        # Accounts 1-4 on ledger 1 in USD (some limited), so most transfers can happen; 5 is
        # left for the open_account rule to create with any ledger or currency.
        for account, limit in enumerate(limits, start=1):
            spec = AccountSpec(account, 1, "USD", 1, limit == "d", limit == "c")
            service.open_account(self.ledger, spec, self.now)
        service.open_account(self.ledger, AccountSpec(99, 1, "USD", 1), self.now)
        self.ledger.commit()
        for account, limit in enumerate(limits, start=1):  # seed room within each limit
            debit, credit = (account, 99) if limit == "c" else (99, account)
            service.create_transfer(
                self.ledger, TransferSpec(1000 + account, debit, credit, 500, 1, 1), self.now
            )
            self.ledger.commit()

    @initialize()
    def open_chart(self) -> None:
        # Equity 50; income 60 > 61; expense 70 > 71 > 72 (a parent has its child's type).
        for account, kind, parent in (
            (50, "equity", 0),
            (60, "income", 0),
            (61, "income", 60),
            (70, "expense", 0),
            (71, "expense", 70),
            (72, "expense", 71),
        ):
            spec = AccountSpec(account, 1, "USD", 1, account_type=kind, parent_id=parent)
            service.open_account(self.ledger, spec, self.now)
            self.ledger.commit()

    def _run(self, key: tuple[object, ...], action: object) -> str:
        try:
            action()  # type: ignore[operator]
            self.ledger.commit()
            code = "ok"
        except e.LedgerRejection as exc:
            self.ledger.rollback()
            code = exc.code
        # A retry of an identical command never changes an accepted outcome into another one.
        if self.outcomes.get(key) == "ok":
            assert code in {"ok", "exists"} or key[0] in {"post", "void", "expire", "close"}
        self.outcomes.setdefault(key, code)
        return code

    def _batch(self, specs: list[TransferSpec] | list[AccountSpec]) -> None:
        """A TigerBeetle batch through the service: the first refusal is raised."""
        if isinstance(specs[0], AccountSpec):
            results = service.create_accounts(self.ledger, specs, self.now)
        else:
            results = service.create_transfers(
                self.ledger,
                specs,
                self.now,
                record_failures=False,
            )
        for result in results:
            if result.error is not None:
                raise result.error

    def _closed_through(self) -> int:
        book = self.ledger.committed.get("ledger:1")
        return book.closed_through_ns if isinstance(book, LedgerBook) else 0

    @rule(account=st.sampled_from([61, 60, 72, 71]), amount=AMOUNTS)
    def income_or_expense(self, account: int, amount: int) -> None:
        self.next_id += 1
        debit, credit = (99, account) if account in (60, 61) else (account, 99)
        spec = TransferSpec(self.next_id, debit, credit, amount, 1, 1)
        self._run(("chart", spec), lambda: service.create_transfer(self.ledger, spec, self.now))

    @rule(account=st.integers(6, 7), back_s=st.integers(0, 3))
    def import_account(self, account: int, back_s: int) -> None:
        ts = self.now - back_s * S - 1
        spec = AccountSpec(account, 1, "USD", 1, imported=True, timestamp_ns=ts)
        code = self._run(("import_account", spec), lambda: self._batch([spec]))
        if ts <= self._closed_through():
            assert code != "ok"

    @rule(debit=ACCOUNTS, credit=ACCOUNTS, amount=AMOUNTS, back_ns=st.integers(1, 3 * S))
    def import_transfer(self, debit: int, credit: int, amount: int, back_ns: int) -> None:
        self.next_id += 1
        ts = self.now - back_ns
        closed = self._closed_through()
        spec = TransferSpec(
            self.next_id, debit, credit, amount, 1, 1, imported=True, timestamp_ns=ts
        )
        code = self._run(("import", spec), lambda: self._batch([spec]))
        if ts <= closed:
            assert code != "ok", "an import landed in a closed period"
        if code == "ok":
            imported = self.ledger.committed[f"transfer:{self.next_id}"]
            assert isinstance(imported, Transfer)
            assert imported.created_at_ns == ts

    @rule(back_s=st.integers(0, 3))
    def close_period(self, back_s: int) -> None:
        through = self.now - back_s * S - 1

        def close() -> None:
            service.close_period(self.ledger, 1, through, 50, 9, self.now)

        if self._run(("close", through), close) == "ok":
            assert self._closed_through() == through
            for account in (60, 61, 70, 71, 72):
                acc = self.ledger.committed[f"account:{account}"]
                assert isinstance(acc, Account)
                assert acc.debits_posted == acc.credits_posted, account

    @rule(
        account=ACCOUNTS,
        ledger=st.integers(1, 2),
        limit=st.sampled_from(["", "d", "c"]),
        currency=st.sampled_from(["USD", "EUR"]),
    )
    def open_account(self, account: int, ledger: int, limit: str, currency: str) -> None:
        spec = AccountSpec(account, ledger, currency, 1, limit == "d", limit == "c")
        self._run(("open", spec), lambda: service.open_account(self.ledger, spec, self.now))

    @rule(
        transfer=TRANSFERS,
        debit=ACCOUNTS,
        credit=ACCOUNTS,
        amount=AMOUNTS,
        pending=st.booleans(),
        timeout=st.sampled_from([0, 0, 5]),
    )
    def transfer(
        self, transfer: int, debit: int, credit: int, amount: int, pending: bool, timeout: int
    ) -> None:
        spec = TransferSpec(
            transfer, debit, credit, amount, 1, 1, pending, timeout if pending else 0
        )
        self._run(("transfer", spec), lambda: service.create_transfer(self.ledger, spec, self.now))

    @rule(transfer=TRANSFERS, amount=st.one_of(st.none(), AMOUNTS))
    def post(self, transfer: int, amount: int | None) -> None:
        self._run(
            ("post", transfer, amount),
            lambda: service.post_pending_transfer(self.ledger, transfer, amount, self.now),
        )

    @rule(transfer=TRANSFERS)
    def void(self, transfer: int) -> None:
        self._run(
            ("void", transfer),
            lambda: service.void_pending_transfer(self.ledger, transfer, self.now),
        )

    @rule(transfer=TRANSFERS)
    def expire(self, transfer: int) -> None:
        self._run(
            ("expire", transfer),
            lambda: service.expire_pending_transfer(self.ledger, transfer, self.now),
        )

    @rule(seconds=st.integers(0, 7))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds * S

    @rule(specs=st.lists(st.tuples(TRANSFERS, ACCOUNTS, ACCOUNTS, AMOUNTS), min_size=2, max_size=4))
    def linked_batch(self, specs: list[tuple[int, int, int, int]]) -> None:
        before = {k: v.version for k, v in self.ledger.committed.items()}
        try:
            for transfer, debit, credit, amount in specs:
                service.create_transfer(
                    self.ledger, TransferSpec(transfer, debit, credit, amount, 1, 1), self.now
                )
        except e.LedgerRejection:
            self.ledger.rollback()
            assert {k: v.version for k, v in self.ledger.committed.items()} == before
            return
        self.ledger.commit()

    @invariant()
    def debits_equal_credits_per_ledger_and_currency(self) -> None:
        sums: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for agg in self.ledger.committed.values():
            if isinstance(agg, Account):
                s = sums[(agg.ledger, agg.currency)]
                s[0] += agg.debits_pending
                s[1] += agg.debits_posted
                s[2] += agg.credits_pending
                s[3] += agg.credits_posted
        for dp, dpo, cp, cpo in sums.values():
            assert dpo == cpo
            assert dp == cp

    @invariant()
    def no_limited_account_crosses_its_limit(self) -> None:
        for agg in self.ledger.committed.values():
            if isinstance(agg, Account):
                assert (
                    min(
                        agg.debits_pending,
                        agg.debits_posted,
                        agg.credits_pending,
                        agg.credits_posted,
                    )
                    >= 0
                )
                if agg.debits_must_not_exceed_credits:
                    assert agg.debits_pending + agg.debits_posted <= agg.credits_posted
                if agg.credits_must_not_exceed_debits:
                    assert agg.credits_pending + agg.credits_posted <= agg.debits_posted

    @invariant()
    def roll_ups_equal_the_sum_of_their_subtree(self) -> None:
        accounts = [a for a in self.ledger.committed.values() if isinstance(a, Account)]
        own = {
            a.account_id: (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            for a in accounts
        }
        parents = {a.account_id: a.parent_id for a in accounts}
        rolled = rollups(own, parents)
        for account in own:
            # Brute force: every account whose chain of parents passes through this one.
            subtree = []
            for other in own:
                node = other
                while node and node != account:
                    node = parents.get(node, 0)
                if node == account:
                    subtree.append(other)
            assert rolled[account] == tuple(sum(own[o][k] for o in subtree) for k in range(4)), (
                account
            )
        roots = [a for a in own if parents[a] not in own]
        assert [sum(rolled[r][k] for r in roots) for k in range(4)] == [
            sum(b[k] for b in own.values()) for k in range(4)
        ]

    @invariant()
    def replaying_every_stream_gives_the_same_state(self) -> None:
        for stream_id, events in self.ledger.history.items():
            live = self.ledger.committed[stream_id]
            kind, key = stream_id.split(":", 1)
            fresh: Account | Transfer | LedgerBook = (
                Account(int(key))
                if kind == "account"
                else LedgerBook(int(key))
                if kind == "ledger"
                else Transfer(int(key))
            )
            fresh.replay(events)
            assert fresh.version == live.version == len(events)
            for cls in type(live).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if name != "_pending":
                        assert getattr(fresh, name) == getattr(live, name), (stream_id, name)


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLedgerStateMachine = LedgerMachine.TestCase
