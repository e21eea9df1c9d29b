"""Reconciling a statement: check the request, match, record.

Definition
    :func:`reconcile` takes one parsed statement, the facts the ledger's read model gave
    about its account (the account, its postings around the period, its posted balances
    before and after the period, and the position they were read at) and the options, and
    records a :class:`~domain.reconciliation.reconciliation.Reconciliation` in ``source``;
    if that reconciliation is already recorded it is returned unchanged (nothing is written).

    Nostro view: a nostro account is our asset, so money in (the bank credits us, ``CRDT``)
    is a *debit* of the account in the ledger and its balance is debits minus credits. An
    account whose chart type is ``liability`` is read the other way round (money in is a
    credit). Balances compare posted amounts only.

Rejections (in precedence order, ``RECONCILE_ORDER``)
    ``date_tolerance_out_of_range``, ``account_not_found``, ``statement_currency_must_match``
    (the statement, then each balance, then each entry, against the account's currency).
    The parsers' ``statement_malformed`` and ``statement_format_unsupported`` and the
    edge's ``statement_account_required`` come before all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.reconciliation import errors as e
from domain.reconciliation.events import BalanceChecked, ReconciliationOpened
from domain.reconciliation.matching import (
    MAX_TOLERANCE_DAYS,
    Posting,
    counts_of,
    ledger_references,
    match,
)
from domain.reconciliation.reconciliation import Reconciliation, reconciliation_id
from domain.reconciliation.statement import Statement

RECONCILE_ORDER = (
    "statement_malformed",
    "statement_format_unsupported",
    "statement_account_required",
    "date_tolerance_out_of_range",
    "account_not_found",
    "statement_currency_must_match",
)
DEFAULT_TOLERANCE_DAYS = 2
NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class AccountFacts:
    account_id: int
    ledger: int
    currency: str
    account_type: str = ""


@dataclass(frozen=True, slots=True)
class Movement:
    """A ledger transfer's posted effect on the account: ``side`` is the account's side."""

    transfer_id: int
    side: str  # debit | credit
    amount_minor: int
    at_ns: int
    user_data_128: int = 0


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    account: AccountFacts | None
    movements: tuple[Movement, ...] = ()
    # (debits_posted, credits_posted) before the period's first day and after its last day.
    opening_posted: tuple[int, int] = (0, 0)
    closing_posted: tuple[int, int] = (0, 0)
    position: int = 0


class ReconciliationSource(Protocol):
    def get_reconciliation(self, rid: str) -> Reconciliation | None: ...

    def add(self, aggregate: Reconciliation) -> None: ...


def day_of(at_ns: int) -> str:
    return dt.datetime.fromtimestamp(at_ns // 10**9, dt.UTC).date().isoformat()


def day_start_ns(date: str) -> int:
    """00:00 UTC of ``date`` in nanoseconds since the epoch."""
    return (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days * NS_PER_DAY


def window(statement: Statement, tolerance_days: int) -> tuple[int, int]:
    """[from, to) in ns: the period widened by enough calendar days to hold every posting a
    tolerant rule may pair with an entry of the period (``tolerance`` business days)."""
    pad = 2 * tolerance_days + 3
    return (
        day_start_ns(statement.period_from) - pad * NS_PER_DAY,
        day_start_ns(statement.period_to) + (pad + 1) * NS_PER_DAY,
    )


def nostro_view(account: AccountFacts) -> str:
    return "liability" if account.account_type == "liability" else "asset"


def _signed(view: str, debits: int, credits: int) -> int:
    return debits - credits if view == "asset" else credits - debits


def check(statement: Statement, tolerance_days: int, facts: LedgerFacts) -> AccountFacts:
    """The rules, in ``RECONCILE_ORDER``; the account when all hold."""
    if not 0 <= tolerance_days <= MAX_TOLERANCE_DAYS:
        raise e.DateToleranceOutOfRange(
            f"date tolerance {tolerance_days} is outside 0..{MAX_TOLERANCE_DAYS} business days",
            date_tolerance_days=tolerance_days,
        )
    account = facts.account
    if account is None:
        raise e.AccountNotFound("the statement's ledger account does not exist")
    ids = {"account_id": account.account_id, "account_currency": account.currency}
    for what, currency in (
        ("the statement", statement.currency),
        *(
            (f"the {b} balance", x.currency)
            for b, x in (("opening", statement.opening), ("closing", statement.closing))
            if x is not None
        ),
        *((f"entry {x.booking_date} {x.amount_minor}", x.currency) for x in statement.entries),
    ):
        if currency != account.currency:
            raise e.StatementCurrencyMustMatch(
                f"{what} is in {currency}; account {account.account_id} is in {account.currency}",
                currency=currency,
                **ids,
            )
    return account


def postings(facts: LedgerFacts, view: str) -> list[Posting]:
    out = []
    for m in facts.movements:
        money_in = (m.side == "debit") == (view == "asset")
        out.append(
            Posting(
                m.transfer_id,
                m.amount_minor if money_in else -m.amount_minor,
                day_of(m.at_ns),
                ledger_references(m.transfer_id, m.user_data_128),
            )
        )
    return out


def reconcile(
    source: ReconciliationSource,
    statement: Statement,
    facts: LedgerFacts,
    tolerance_days: int,
    now_ns: int,
) -> tuple[Reconciliation, bool]:
    """(the reconciliation, whether this call recorded it)."""
    account = check(statement, tolerance_days, facts)
    rid = reconciliation_id(statement.digest(), account.account_id, tolerance_days)
    known = source.get_reconciliation(rid)
    if known is not None and known.version > 0:
        return known, False
    view = nostro_view(account)
    items = match(
        statement.entries,
        postings(facts, view),
        statement.period_from,
        statement.period_to,
        tolerance_days,
    )
    balances: list[BalanceChecked] = []
    if statement.opening is not None:
        balances.append(
            BalanceChecked(
                rid,
                "opening",
                statement.period_from,
                statement.opening.amount_minor,
                _signed(view, *facts.opening_posted),
            )
        )
    if statement.closing is not None:
        balances.append(
            BalanceChecked(
                rid,
                "closing",
                statement.period_to,
                statement.closing.amount_minor,
                _signed(view, *facts.closing_posted),
            )
        )
    counts = counts_of(items)
    counts["balance_break"] = sum(b.statement_minor != b.ledger_minor for b in balances)
    opened = ReconciliationOpened(
        rid,
        statement.statement_id,
        statement.digest(),
        statement.format,
        statement.account,
        account.account_id,
        account.ledger,
        account.currency,
        view,
        statement.period_from,
        statement.period_to,
        len(statement.entries),
        tolerance_days,
        facts.position,
        now_ns,
    )
    reconciliation = Reconciliation(rid)
    reconciliation.record(opened, items, balances, counts, now_ns)
    source.add(reconciliation)
    return reconciliation, True


def breaks(counts: dict[str, int]) -> int:
    return sum(v for k, v in counts.items() if k != "matched")


def items_total(items: Sequence[object]) -> int:
    return len(items)
