"""Given a statement and the ledger's facts, when reconciled, then the events or the rejection."""

from __future__ import annotations

import pytest

from domain.reconciliation import errors as e
from domain.reconciliation import service
from domain.reconciliation.events import (
    AmountBreakFound,
    BalanceChecked,
    EntryMatched,
    LedgerTransferUnmatched,
    ReconciliationCompleted,
    ReconciliationOpened,
)
from domain.reconciliation.reconciliation import Reconciliation
from domain.reconciliation.statement import Balance, Entry, Statement

NS = 10**9
MON_NOON = service.day_start_ns("2026-03-02") + 12 * 3600 * NS
EUR = service.AccountFacts(1001, 7, "EUR")


class FakeSource:
    def __init__(self) -> None:
        self.stored: dict[str, Reconciliation] = {}
        self.added: list[Reconciliation] = []

    def get_reconciliation(self, rid: str) -> Reconciliation | None:
        return self.stored.get(rid)

    def add(self, aggregate: Reconciliation) -> None:
        self.added.append(aggregate)

    def commit(self) -> list[object]:
        events = []
        for agg in self.added:
            events.extend(agg.collect_events())
            self.stored[agg.reconciliation_id] = agg
        self.added = []
        return events


def entry(amount: int, ref: str, currency: str = "EUR") -> Entry:
    d = "credit" if amount > 0 else "debit"
    return Entry(abs(amount), d, currency, "2026-03-02", "2026-03-02", (ref,) if ref else ())


def statement(*entries: Entry, currency: str = "EUR", closing: int | None = None) -> Statement:
    bal = Balance(closing, currency, "2026-03-02") if closing is not None else None
    return Statement("S1", "DE00", currency, "2026-03-02", "2026-03-02", entries, None, bal)


def facts(*movements: service.Movement, account: service.AccountFacts | None = EUR,
          closing: tuple[int, int] = (0, 0)) -> service.LedgerFacts:  # fmt: skip
    return service.LedgerFacts(account, movements, (0, 0), closing, 55)


def inflow(tid: int, amount: int, side: str = "debit") -> service.Movement:
    return service.Movement(tid, side, amount, MON_NOON)


def test_a_reconciliation_records_each_item_the_balances_and_the_counts_in_order() -> None:
    src = FakeSource()
    s = statement(entry(500, "1"), entry(300, "2"), closing=900)
    rec, recorded = service.reconcile(
        src, s, facts(inflow(1, 500), inflow(2, 350), inflow(3, 50), closing=(900, 0)), 2, 7
    )
    assert recorded
    events = src.commit()
    assert [type(ev) for ev in events] == [
        ReconciliationOpened,
        AmountBreakFound,  # entries in their canonical order: 3.00 before 5.00
        EntryMatched,
        LedgerTransferUnmatched,
        BalanceChecked,
        ReconciliationCompleted,
    ]
    opened = events[0]
    assert isinstance(opened, ReconciliationOpened)
    assert (opened.account_id, opened.ledger_position, opened.nostro_view) == (1001, 55, "asset")
    assert [getattr(ev, "seq", None) for ev in events[1:4]] == [0, 1, 2]
    balance = events[4]
    assert isinstance(balance, BalanceChecked) and balance.ledger_minor == 900
    assert dict(rec.counts) == {
        "matched": 1,
        "amount_break": 1,
        "date_break": 0,
        "unmatched_statement": 0,
        "unmatched_ledger": 1,
        "balance_break": 0,
    }


def test_reconciling_the_same_statement_again_records_nothing_and_answers_the_same() -> None:
    src = FakeSource()
    s = statement(entry(500, "1"))
    first, _ = service.reconcile(src, s, facts(inflow(1, 500)), 2, 7)
    src.commit()
    again, recorded = service.reconcile(src, s, facts(inflow(1, 500), inflow(2, 1)), 2, 8)
    assert not recorded and again is first and src.commit() == []


def test_the_id_depends_on_the_content_the_account_and_the_tolerance() -> None:
    src = FakeSource()
    s = statement(entry(500, "1"), entry(1, ""))
    reordered = statement(entry(1, ""), entry(500, "1"))
    ids = {
        service.reconcile(src, st, facts(account=acct), tol, 7)[0].reconciliation_id
        for st, acct, tol in ((s, EUR, 2), (reordered, EUR, 2))
    }
    assert len(ids) == 1
    others = {
        service.reconcile(src, st, facts(account=acct), tol, 7)[0].reconciliation_id
        for st, acct, tol in (
            (s, EUR, 1),
            (s, service.AccountFacts(1002, 7, "EUR"), 2),
            (statement(entry(501, "1"), entry(1, "")), EUR, 2),
        )
    }
    assert len(others) == 3 and not ids & others


def test_a_liability_nostro_reads_money_in_as_a_credit() -> None:
    src = FakeSource()
    acct = service.AccountFacts(1001, 7, "EUR", "liability")
    s = statement(entry(500, "1"), closing=500)
    rec, _ = service.reconcile(
        src, s, facts(inflow(1, 500, side="credit"), account=acct, closing=(0, 500)), 2, 7
    )
    assert dict(rec.counts)["matched"] == 1 and dict(rec.counts)["balance_break"] == 0


@pytest.mark.parametrize(
    ("given", "tolerance", "rule"),
    [
        # precedence: the tolerance, then the account, then currencies
        ((statement(entry(1, "", "USD")), facts(account=None)), 11, e.DateToleranceOutOfRange),
        ((statement(entry(1, "", "USD")), facts(account=None)), 2, e.AccountNotFound),
        ((statement(currency="USD"), facts()), 2, e.StatementCurrencyMustMatch),
        ((statement(entry(1, "", "USD")), facts()), 2, e.StatementCurrencyMustMatch),
        (
            (
                statement(closing=5).__class__(
                    "S", "", "EUR", "2026-03-02", "2026-03-02", (), Balance(5, "USD", "2026-03-02")
                ),
                facts(),
            ),
            2,
            e.StatementCurrencyMustMatch,
        ),
    ],
)
def test_rejections_come_in_their_documented_order_and_record_nothing(
    given: tuple[Statement, service.LedgerFacts], tolerance: int, rule: type[Exception]
) -> None:
    src = FakeSource()
    with pytest.raises(rule):
        service.reconcile(src, given[0], given[1], tolerance, 7)
    assert src.added == []


def test_every_rule_has_a_place_in_the_documented_order() -> None:
    codes = {
        cls.code
        for cls in vars(e).values()
        if isinstance(cls, type) and issubclass(cls, e.ReconciliationRejection)
    } - {"reconciliation_rejection"}
    assert codes == set(service.RECONCILE_ORDER)


def test_a_snapshot_of_a_reconciliation_restores_it() -> None:
    src = FakeSource()
    rec, _ = service.reconcile(src, statement(entry(500, "1")), facts(inflow(1, 500)), 2, 7)
    events = src.commit()
    replayed = Reconciliation(rec.reconciliation_id).replay(events)
    restored = Reconciliation.from_snapshot(rec.id, rec.version, rec.to_snapshot())
    assert restored.to_snapshot() == replayed.to_snapshot() == rec.to_snapshot()
    assert restored.is_final and restored.version == len(events)
