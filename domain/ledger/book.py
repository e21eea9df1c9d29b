"""The ledger's book: what spans the accounts of one ledger.

Definition
    One per ledger (stream ``ledger:<ledger>``): how far imported accounts and transfers have
    come (their last timestamps), the ledger's income and expense accounts (the ones a period
    close moves to equity), and the time up to which its books are closed.

Guarantees
    * Imported timestamps of a ledger strictly increase, separately for accounts and for
      transfers (as TigerBeetle's do), and never fall in a closed period.
    * ``closed_through_ns`` only grows.

Rejections
    Period close, in order: ``period_must_have_ended``, ``period_already_closed``; the
    service checks the accounts (see :func:`domain.ledger.service.close_period`).
"""

from __future__ import annotations

from typing import Any

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.events import ImportsAdvanced, IncomeStatementAccountAdded, PeriodClosed


def stream_id(ledger: int) -> str:
    return f"ledger:{ledger}"


class LedgerBook(Aggregate):
    __slots__ = (
        "closed_through_ns",
        "income_statement_accounts",
        "last_account_ns",
        "last_transfer_ns",
        "ledger",
        "periods",
    )

    def __init__(self, ledger: int) -> None:
        super().__init__(stream_id(ledger))
        self.ledger = ledger
        self.last_account_ns = 0
        self.last_transfer_ns = 0
        self.closed_through_ns = 0
        self.periods = 0
        # Sorted ids of the ledger's income and expense accounts (immutable: shared by clones).
        self.income_statement_accounts: tuple[int, ...] = ()

    # ------------------------------------------------------------------ commands

    def advance_imports(
        self, last_account_ns: int, last_transfer_ns: int, accounts: int, transfers: int, now: int
    ) -> None:
        invariant(
            last_account_ns >= self.last_account_ns and last_transfer_ns >= self.last_transfer_ns,
            "imports only move forward",
        )
        if (last_account_ns, last_transfer_ns) == (self.last_account_ns, self.last_transfer_ns):
            return
        self._trigger(
            ImportsAdvanced(
                self.ledger, last_account_ns, last_transfer_ns, accounts, transfers, now
            )
        )

    def add_income_statement_account(self, account_id: int, account_type: str, now: int) -> None:
        invariant(account_type in ("income", "expense"), "only income and expense are closed")
        if account_id in self.income_statement_accounts:
            return
        self._trigger(IncomeStatementAccountAdded(self.ledger, account_id, account_type, now))

    def check_can_close(self, through_ns: int, now_ns: int) -> None:
        ids = {"ledger": self.ledger, "through_ns": through_ns}
        if through_ns >= now_ns:
            raise e.PeriodMustHaveEnded(
                "a period is closed once it has ended: its end must be before now", **ids
            )
        if through_ns <= self.closed_through_ns:
            raise e.PeriodAlreadyClosed(
                f"the books are closed through {self.closed_through_ns} already",
                closed_through_ns=self.closed_through_ns,
                **ids,
            )

    def close(
        self, period_id: int, through_ns: int, equity_account_id: int, ids: list[int], now: int
    ) -> None:
        self.check_can_close(through_ns, now)
        self._trigger(
            PeriodClosed(self.ledger, period_id, through_ns, equity_account_id, list(ids), now)
        )

    # ------------------------------------------------------------------ apply: assign only

    def apply(self, event: object) -> None:
        if isinstance(event, ImportsAdvanced):
            self.last_account_ns = event.last_account_ns
            self.last_transfer_ns = event.last_transfer_ns
        elif isinstance(event, IncomeStatementAccountAdded):
            self.income_statement_accounts = tuple(
                sorted({*self.income_statement_accounts, event.account_id})
            )
        elif isinstance(event, PeriodClosed):
            self.closed_through_ns = event.through_ns
            self.periods += 1
        else:  # pragma: no cover - a programming error
            invariant(False, f"LedgerBook cannot apply {type(event).__name__}")

    # ------------------------------------------------------------------ snapshots

    def to_snapshot(self) -> dict[str, Any]:
        state = super().to_snapshot()
        state["income_statement_accounts"] = list(self.income_statement_accounts)
        return state

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> LedgerBook:
        book = cls(int(stream_id.split(":", 1)[1]))
        for name in cls._state_slots():
            if name in state:
                setattr(book, name, state[name])
        book.income_statement_accounts = tuple(state.get("income_statement_accounts", ()))
        book.version = version
        return book

    def approx_bytes(self) -> int:
        return 400 + 40 * len(self.income_statement_accounts)
