"""Random command histories keep the invariants; replaying them gives the same state."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from domain.ledger import errors as e
from domain.ledger import service
from domain.ledger.account import Account, AccountSpec
from domain.ledger.transfer import Transfer, TransferSpec
from tests.unit.domain.fakes import FakeLedger

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
ACCOUNTS = st.integers(1, 5)
TRANSFERS = st.integers(1, 12)
AMOUNTS = st.integers(1, 300)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = FakeLedger()
        self.now = T0
        self.outcomes: dict[tuple[object, ...], str] = {}

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

    def _run(self, key: tuple[object, ...], action: object) -> None:
        try:
            action()  # type: ignore[operator]
            self.ledger.commit()
            code = "ok"
        except e.LedgerRejection as exc:
            self.ledger.rollback()
            code = exc.code
        # A retry of an identical command never changes an accepted outcome into another one.
        if self.outcomes.get(key) == "ok":
            assert code in {"ok", "exists"} or key[0] in {"post", "void", "expire"}
        self.outcomes.setdefault(key, code)

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
    def replaying_every_stream_gives_the_same_state(self) -> None:
        for stream_id, events in self.ledger.history.items():
            live = self.ledger.committed[stream_id]
            fresh: Account | Transfer = (
                Account(int(stream_id.split(":")[1]))
                if stream_id.startswith("account:")
                else Transfer(int(stream_id.split(":")[1]))
            )
            fresh.replay(events)
            assert fresh.version == live.version == len(events)
            for cls in type(live).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if name != "_pending":
                        assert getattr(fresh, name) == getattr(live, name), (stream_id, name)


LedgerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLedgerStateMachine = LedgerMachine.TestCase
