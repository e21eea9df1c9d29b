"""Ledger rules that span aggregates, checked in a documented order.

Requests are batches, as TigerBeetle's ``create_accounts`` and ``create_transfers``: every
event gets its own result, in order; events with ``linked`` form a chain with the events after
them up to the first without it, and a chain is applied whole or not at all (the first failing
event names its rule, the others answer ``linked_event_failed``). The first event decides
whether the batch imports history (``imported``): a batch does not mix the two. The event at
index ``i`` of ``n`` is stamped ``now - n + 1 + i`` (the last one ``now``), unless imported.

Create account: rules in precedence order (``CREATE_ACCOUNT_ORDER``)
    linked_event_failed, linked_event_chain_open, imported_event_expected,
    imported_event_not_expected, timestamp_must_be_zero, imported_event_timestamp_out_of_range,
    imported_event_timestamp_must_not_advance, id_must_not_be_zero, id_must_not_be_int_max,
    exists_with_different_flags, ..._user_data_128, ..._user_data_64, ..._user_data_32,
    ..._ledger, ..._currency*, ..._code, ..._account_type*, ..._parent_id*, ..._name*, exists,
    flags_are_mutually_exclusive, ledger_must_not_be_zero, code_must_not_be_zero,
    unknown_currency*, unknown_account_type*, parent_account_not_found*,
    parent_account_must_have_the_same_ledger*, ..._currency*, ..._type*,
    imported_event_timestamp_in_closed_period*, imported_event_timestamp_must_not_regress.
    (* Ledgerline's own rules.)

Create transfer (``CREATE_TRANSFER_ORDER``); a post or void continues with
``POST_OR_VOID_ORDER`` after ``id_already_failed``
    the batch rules above, id_must_not_be_zero, id_must_not_be_int_max,
    exists_with_different_flags, ..._pending_id, ..._timeout, ..._debit_account_id,
    ..._credit_account_id, ..._amount, ..._user_data_128, ..._user_data_64, ..._user_data_32,
    ..._ledger, ..._code, ..._reverses_id*, exists, id_already_failed,
    debit_account_id_must_not_be_zero, debit_account_id_must_not_be_int_max,
    credit_account_id_must_not_be_zero, credit_account_id_must_not_be_int_max,
    accounts_must_be_different, pending_id_must_be_zero,
    timeout_reserved_for_pending_transfer, closing_transfer_must_be_pending,
    ledger_must_not_be_zero, code_must_not_be_zero, debit_account_not_found,
    credit_account_not_found, accounts_must_have_the_same_ledger,
    transfer_must_have_the_same_ledger_as_accounts, currency_must_match*,
    imported_event_timestamp_in_closed_period*, imported_event_timestamp_must_not_regress,
    imported_event_timestamp_must_postdate_debit_account,
    imported_event_timestamp_must_postdate_credit_account,
    imported_event_timeout_must_be_zero, debit_account_already_closed,
    credit_account_already_closed, overflows_debits_pending, overflows_credits_pending,
    overflows_debits_posted, overflows_credits_posted, overflows_debits, overflows_credits,
    overflows_timeout, exceeds_credits, exceeds_debits.

A transfer that fails with one of ``TRANSIENT`` (they depend on state that may change) is
recorded as failed by :func:`create_transfers`: its id answers ``id_already_failed`` from then
on, also when it failed inside a linked chain that was undone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.aggregate import Aggregate
from domain.frozen import fast_frozen
from domain.invariant import invariant
from domain.ledger import errors as e
from domain.ledger.account import (
    ID_INT_MAX,
    TIMESTAMP_MAX,
    U128_MAX,
    Account,
    AccountSpec,
    check_account_shape,
)
from domain.ledger.book import LedgerBook
from domain.ledger.transfer import AMOUNT_MAX, NS_PER_S, Transfer, TransferSpec

BATCH_ORDER: tuple[str, ...] = (
    "linked_event_failed",
    "linked_event_chain_open",
    "imported_event_expected",
    "imported_event_not_expected",
    "timestamp_must_be_zero",
    "imported_event_timestamp_out_of_range",
    "imported_event_timestamp_must_not_advance",
)
CREATE_ACCOUNT_ORDER: tuple[str, ...] = (
    *BATCH_ORDER,
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "exists_with_different_flags",
    "exists_with_different_user_data_128",
    "exists_with_different_user_data_64",
    "exists_with_different_user_data_32",
    "exists_with_different_ledger",
    "exists_with_different_currency",
    "exists_with_different_code",
    "exists_with_different_account_type",
    "exists_with_different_parent_id",
    "exists_with_different_name",
    "exists",
    "flags_are_mutually_exclusive",
    "ledger_must_not_be_zero",
    "code_must_not_be_zero",
    "unknown_currency",
    "unknown_account_type",
    "parent_account_not_found",
    "parent_account_must_have_the_same_ledger",
    "parent_account_must_have_the_same_currency",
    "parent_account_must_have_the_same_type",
    "imported_event_timestamp_in_closed_period",
    "imported_event_timestamp_must_not_regress",
)
POST_OR_VOID_ORDER: tuple[str, ...] = (
    "flags_are_mutually_exclusive",
    "pending_id_must_not_be_zero",
    "pending_id_must_not_be_int_max",
    "pending_id_must_be_different",
    "timeout_reserved_for_pending_transfer",
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_has_different_debit_account_id",
    "pending_transfer_has_different_credit_account_id",
    "pending_transfer_has_different_ledger",
    "pending_transfer_has_different_code",
    "exceeds_pending_transfer_amount",
    "pending_transfer_has_different_amount",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "imported_event_timestamp_in_closed_period",
    "imported_event_timestamp_must_not_regress",
    "debit_account_already_closed",
    "credit_account_already_closed",
)
CREATE_TRANSFER_ORDER: tuple[str, ...] = (
    *BATCH_ORDER,
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "exists_with_different_flags",
    "exists_with_different_pending_id",
    "exists_with_different_timeout",
    "exists_with_different_debit_account_id",
    "exists_with_different_credit_account_id",
    "exists_with_different_amount",
    "exists_with_different_user_data_128",
    "exists_with_different_user_data_64",
    "exists_with_different_user_data_32",
    "exists_with_different_ledger",
    "exists_with_different_code",
    "exists_with_different_reverses_id",
    "exists",
    "id_already_failed",
    "debit_account_id_must_not_be_zero",
    "debit_account_id_must_not_be_int_max",
    "credit_account_id_must_not_be_zero",
    "credit_account_id_must_not_be_int_max",
    "accounts_must_be_different",
    "pending_id_must_be_zero",
    "timeout_reserved_for_pending_transfer",
    "closing_transfer_must_be_pending",
    "ledger_must_not_be_zero",
    "code_must_not_be_zero",
    "debit_account_not_found",
    "credit_account_not_found",
    "accounts_must_have_the_same_ledger",
    "transfer_must_have_the_same_ledger_as_accounts",
    "currency_must_match",
    "imported_event_timestamp_in_closed_period",
    "imported_event_timestamp_must_not_regress",
    "imported_event_timestamp_must_postdate_debit_account",
    "imported_event_timestamp_must_postdate_credit_account",
    "imported_event_timeout_must_be_zero",
    "debit_account_already_closed",
    "credit_account_already_closed",
    "overflows_debits_pending",
    "overflows_credits_pending",
    "overflows_debits_posted",
    "overflows_credits_posted",
    "overflows_debits",
    "overflows_credits",
    "overflows_timeout",
    "exceeds_credits",
    "exceeds_debits",
)
# The earlier post/void API (``post_pending_transfer``, ``void_pending_transfer``).
POST_PENDING_ORDER: tuple[str, ...] = (
    "pending_transfer_not_found",
    "pending_transfer_not_pending",
    "pending_transfer_already_posted",
    "pending_transfer_already_voided",
    "pending_transfer_expired",
    "exceeds_pending_transfer_amount",
    "debit_account_already_closed",
    "credit_account_already_closed",
)
VOID_PENDING_ORDER: tuple[str, ...] = POST_PENDING_ORDER[:5]
REVERSE_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "transfer_not_found",
    "exists",
    "pending_transfer_cannot_be_reversed",
    "void_transfer_cannot_be_reversed",
    "transfer_already_reversed",
    # then the rules of creating the reversing transfer, from debit_account_already_closed on
)
CLOSE_PERIOD_ORDER: tuple[str, ...] = (
    "ledger_must_not_be_zero",
    "period_must_have_ended",
    "period_already_closed",
    "equity_account_not_found",
    "equity_account_must_be_equity",
    "period_has_later_activity",
    "currency_must_match",
    # then the rules of creating each closing transfer (exceeds_credits, ...)
)

# TigerBeetle's transient results: they depend on state that may change, so a failed id is
# recorded and never succeeds later.
TRANSIENT: frozenset[str] = frozenset(
    {
        "debit_account_not_found",
        "credit_account_not_found",
        "pending_transfer_not_found",
        "exceeds_credits",
        "exceeds_debits",
        "debit_account_already_closed",
        "credit_account_already_closed",
    }
)


class LedgerSource(Protocol):
    """Where the service finds aggregates (a unit of work, or a dict in tests).

    Imports, the chart's income statement accounts and period closes also need
    ``get_ledger(ledger) -> LedgerBook | None``; a source without it serves everything else.
    """

    def get_account(self, account_id: int) -> Account | None: ...

    def get_transfer(self, transfer_id: int) -> Transfer | None: ...

    def add(self, aggregate: Aggregate) -> None: ...


@fast_frozen
@dataclass(frozen=True, slots=True)
class Result:
    """One event's outcome in a batch: ``created``, ``exists`` or the rule's code."""

    index: int
    id: int
    status: str
    timestamp_ns: int
    aggregate: Any = None  # the account or transfer created (or the existing one)
    error: e.LedgerRejection | None = None

    @property
    def applied(self) -> bool:
        return self.status in ("created", "exists")


def derived_id(*parts: object) -> int:
    """A 128-bit id derived from ``parts`` (the ids the ledger chooses itself: a post or void
    made through the ``/post`` and ``/void`` routes, closing and reversing transfers)."""
    digest = hashlib.sha256(("ledgerline:" + ":".join(map(str, parts))).encode()).digest()
    value = int.from_bytes(digest[:16], "big")
    return value if 0 < value < ID_INT_MAX else 1


# ------------------------------------------------------------------ scopes and imports


def _fork(aggregate: Aggregate) -> Aggregate:
    twin = aggregate.__copy__()
    twin._pending = list(aggregate._pending)
    return twin


class _Scope:
    """A linked chain's view of the source: its changes reach the source only on commit."""

    def __init__(self, parent: Any) -> None:
        self.parent = parent
        self.local: dict[str, Aggregate | None] = {}

    def _get(self, key: str, fetch: Any) -> Any:
        if key in self.local:
            return self.local[key]
        found = fetch()
        agg = _fork(found) if found is not None else None
        self.local[key] = agg
        return agg

    def get_account(self, account_id: int) -> Account | None:
        return self._get(  # type: ignore[no-any-return]
            f"account:{account_id}", lambda: self.parent.get_account(account_id)
        )

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        return self._get(  # type: ignore[no-any-return]
            f"transfer:{transfer_id}", lambda: self.parent.get_transfer(transfer_id)
        )

    def get_ledger(self, ledger: int) -> LedgerBook | None:
        return self._get(  # type: ignore[no-any-return]
            f"ledger:{ledger}", lambda: _get_book(self.parent, ledger)
        )

    def add(self, aggregate: Aggregate) -> None:
        self.local[aggregate.id] = aggregate

    def commit(self) -> None:
        for agg in self.local.values():
            if agg is not None and agg.has_pending_events():
                self.parent.add(agg)


def _get_book(src: Any, ledger: int) -> LedgerBook | None:
    getter: Any = getattr(src, "get_ledger", None)
    invariant(getter is not None, "this source serves no ledger books (imports, periods)")
    book: LedgerBook | None = getter(ledger)
    return book


def book_of(src: Any, ledger: int) -> LedgerBook:
    """The ledger's book from ``src``, or a new one added to it."""
    book = _get_book(src, ledger)
    if book is None:
        book = LedgerBook(ledger)
        src.add(book)
    return book


class _Imports:
    """How far imports have come per ledger, as the events of one request move them.

    The book gets ONE event per request (not one per imported event); a linked chain's
    advances are kept only if the chain is applied.
    """

    def __init__(self, src: Any) -> None:
        self.src = src
        self.base: dict[
            int, list[int]
        ] = {}  # ledger -> [account ns, transfer ns, accounts, transfers]
        self.chain: dict[int, list[int]] | None = None
        self.closed: dict[int, int] = {}

    def _marks(self, ledger: int) -> list[int]:
        table = self.chain if self.chain is not None else self.base
        marks = table.get(ledger)
        if marks is None:
            book = _get_book(self.src, ledger)
            marks = [book.last_account_ns, book.last_transfer_ns, 0, 0] if book else [0, 0, 0, 0]
            self.closed[ledger] = book.closed_through_ns if book else 0
            table[ledger] = marks
        return marks

    def begin_chain(self) -> None:
        self.chain = {k: list(v) for k, v in self.base.items()}

    def end_chain(self, applied: bool) -> None:
        if applied and self.chain is not None:
            self.base = self.chain
        self.chain = None

    def _closed(self, ledger: int, ts: int, ids: dict[str, Any]) -> None:
        closed = self.closed.get(ledger, 0)
        if ts <= closed:
            raise e.ImportedEventTimestampInClosedPeriod(
                f"the books of ledger {ledger} are closed through {closed}",
                closed_through_ns=closed,
                **ids,
            )

    def check_account(self, ledger: int, ts: int, ids: dict[str, Any]) -> None:
        marks = self._marks(ledger)
        self._closed(ledger, ts, ids)
        if ts <= marks[0] or ts == marks[1]:
            raise e.ImportedEventTimestampMustNotRegress(
                f"imported timestamp {ts} is not after the ledger's last imported account "
                f"({marks[0]})",
                **ids,
            )

    def check_transfer(
        self,
        ledger: int,
        ts: int,
        accounts: tuple[Account, Account],
        ids: dict[str, Any],
        *,
        settling: bool = False,
    ) -> None:
        marks = self._marks(ledger)
        self._closed(ledger, ts, ids)
        debit, credit = accounts
        if (
            ts <= marks[1]
            or ts == marks[0]
            or (not settling and ts in (debit.opened_at_ns, credit.opened_at_ns))
        ):
            raise e.ImportedEventTimestampMustNotRegress(
                f"imported timestamp {ts} is not after the ledger's last imported transfer "
                f"({marks[1]})",
                **ids,
            )
        if not settling:
            if ts <= debit.opened_at_ns:
                raise e.ImportedEventTimestampMustPostdateDebitAccount(
                    f"the debit account was opened at {debit.opened_at_ns}", **ids
                )
            if ts <= credit.opened_at_ns:
                raise e.ImportedEventTimestampMustPostdateCreditAccount(
                    f"the credit account was opened at {credit.opened_at_ns}", **ids
                )
        latest = max(debit.last_at_ns, credit.last_at_ns)
        if ts <= latest:
            # Ledgerline: an account's history stays in time order, so its balance at any
            # past time is the balance after its last change up to then.
            raise e.ImportedEventTimestampMustNotRegress(
                f"imported timestamp {ts} is not after the accounts' latest change ({latest})",
                **ids,
            )

    def note_account(self, ledger: int, ts: int) -> None:
        marks = self._marks(ledger)
        marks[0] = ts
        marks[2] += 1

    def note_transfer(self, ledger: int, ts: int) -> None:
        marks = self._marks(ledger)
        marks[1] = ts
        marks[3] += 1

    def flush(self, now_ns: int) -> None:
        for ledger, (acc_ns, tr_ns, accounts, transfers) in sorted(self.base.items()):
            if accounts or transfers:
                book_of(self.src, ledger).advance_imports(
                    acc_ns, tr_ns, accounts, transfers, now_ns
                )


def _check_batch(imported: bool, batch_imported: bool, ts: int, now_ns: int, ids: Any) -> None:
    if imported != batch_imported:
        if imported:
            raise e.ImportedEventNotExpected(
                "the batch's first event is not imported: import in a batch of its own", **ids
            )
        raise e.ImportedEventExpected(
            "the batch's first event is imported: every event of the batch must be", **ids
        )
    if imported:
        if not 0 < ts <= TIMESTAMP_MAX:
            raise e.ImportedEventTimestampOutOfRange(
                "an imported timestamp is 1..2^63-1 nanoseconds since the epoch", **ids
            )
        if ts >= now_ns:
            raise e.ImportedEventTimestampMustNotAdvance(
                f"imported timestamp {ts} is not in the past (now is {now_ns})", **ids
            )
    elif ts != 0:
        raise e.TimestampMustBeZero("only an imported event carries a timestamp", **ids)


# ------------------------------------------------------------------ batches


def _run_batch(  # noqa: PLR0912 - TigerBeetle's batch loop, in its order
    src: Any,
    specs: Sequence[Any],
    now_ns: int,
    create: Any,
    id_of: Any,
    on_failure: Any = None,
) -> list[Result]:
    """TigerBeetle's batch: per-event results, linked chains applied whole or not at all."""
    n = len(specs)
    batch_imported = n > 0 and specs[0].imported
    imports = _Imports(src)
    results: list[Result] = []
    chain_start: int | None = None
    broken = False
    scope: _Scope | None = None
    for i, spec in enumerate(specs):
        ts = now_ns - n + 1 + i
        ident = id_of(spec)
        if spec.linked and chain_start is None:
            chain_start, broken, scope = i, False, _Scope(src)
            imports.begin_chain()
        cur = scope if scope is not None else src
        error: e.LedgerRejection | None = None
        aggregate: Any = None
        status = "created"
        if spec.linked and i == n - 1:
            error = e.LinkedEventChainOpen(
                "the batch's last event is linked: its chain never closes", id=ident
            )
        elif broken:
            error = e.LinkedEventFailed(
                "another event of the linked chain failed; none was applied", id=ident
            )
        else:
            try:
                _check_batch(
                    spec.imported, batch_imported, spec.timestamp_ns, now_ns, {"id": ident}
                )
                aggregate = create(cur, spec, ts, now_ns, imports)
            except e.Exists as exists:
                error, aggregate = exists, exists_of(cur, spec)
            except e.LedgerRejection as rejection:
                error = rejection
        if error is not None:
            status = error.code
            if chain_start is not None and not broken:
                broken, scope = True, None
                imports.end_chain(False)
                for j in range(chain_start, i):
                    failed = e.LinkedEventFailed(
                        "another event of the linked chain failed; none was applied",
                        id=results[j].id,
                    )
                    results[j] = Result(
                        j, results[j].id, failed.code, results[j].timestamp_ns, None, failed
                    )
            if on_failure is not None and status in TRANSIENT:
                on_failure(src, ident, status, ts)
        results.append(Result(i, ident, status, ts, aggregate, error))
        if chain_start is not None and (not spec.linked or status == "linked_event_chain_open"):
            if not broken and scope is not None:
                scope.commit()
                imports.end_chain(True)
            chain_start, broken, scope = None, False, None
    imports.flush(now_ns)
    return results


def exists_of(src: Any, spec: Any) -> Any:
    if isinstance(spec, AccountSpec):
        return src.get_account(spec.account_id)
    return src.get_transfer(spec.transfer_id)


def create_accounts(src: Any, specs: Sequence[AccountSpec], now_ns: int) -> list[Result]:
    """TigerBeetle's ``create_accounts``: one result per account, in order."""
    return _run_batch(src, specs, now_ns, _create_account, lambda s: s.account_id)


def create_transfers(
    src: Any,
    specs: Sequence[TransferSpec],
    now_ns: int,
    *,
    record_failures: bool = True,
    timestamp_ns: int | None = None,
) -> list[Result]:
    """TigerBeetle's ``create_transfers``: one result per transfer, in order.

    ``record_failures``: a transfer that fails for a transient reason is recorded as failed
    (its id is spent). ``timestamp_ns``: stamp every (non-imported) transfer with this time
    instead of the batch's (the closing transfers of a period, dated at its end).
    """

    def create(cur: Any, spec: TransferSpec, ts: int, now: int, imports: _Imports) -> Transfer:
        return _create_transfer(
            cur, spec, ts if timestamp_ns is None else timestamp_ns, now, imports
        )

    return _run_batch(
        src,
        specs,
        now_ns,
        create,
        lambda s: s.transfer_id,
        record_failure if record_failures else None,
    )


def record_failure(src: Any, transfer_id: int, code: str, ts: int) -> None:
    """Spend ``transfer_id``: from now on it answers ``id_already_failed``."""
    if 0 < transfer_id < ID_INT_MAX and src.get_transfer(transfer_id) is None:
        src.add(Transfer.failed(transfer_id, code, ts))


def open_account(src: LedgerSource, spec: AccountSpec, now_ns: int) -> Account:
    """One account, raising its rejection (``Exists`` when it exists as given)."""
    [result] = create_accounts(src, [spec], now_ns)
    if result.error is not None:
        raise result.error
    return result.aggregate  # type: ignore[no-any-return]


def create_transfer(src: LedgerSource, spec: TransferSpec, now_ns: int) -> Transfer:
    """One transfer, raising its rejection (``Exists`` when it exists as given). A transient
    failure is not recorded here: the caller's command decides what a failure means."""
    [result] = create_transfers(src, [spec], now_ns, record_failures=False)
    if result.error is not None:
        raise result.error
    return result.aggregate  # type: ignore[no-any-return]


# ------------------------------------------------------------------ one account


def _create_account(
    src: Any, spec: AccountSpec, ts: int, now_ns: int, imports: _Imports
) -> Account:
    ids = {"account_id": spec.account_id}
    check_account_shape(spec, src.get_account(spec.account_id))
    if spec.parent_id:
        parent = src.get_account(spec.parent_id)
        if parent is None:
            raise e.ParentAccountNotFound(
                f"parent account {spec.parent_id} does not exist", parent_id=spec.parent_id, **ids
            )
        if parent.ledger != spec.ledger:
            raise e.ParentAccountMustHaveTheSameLedger(
                f"parent account {spec.parent_id} is on ledger {parent.ledger}", **ids
            )
        if parent.currency != spec.currency:
            raise e.ParentAccountMustHaveTheSameCurrency(
                f"parent account {spec.parent_id} holds {parent.currency}", **ids
            )
        if parent.account_type != spec.account_type:
            raise e.ParentAccountMustHaveTheSameType(
                f"parent account {spec.parent_id} is of type {parent.account_type or 'none'}",
                **ids,
            )
    if spec.imported:
        imports.check_account(spec.ledger, spec.timestamp_ns, ids)
        ts = spec.timestamp_ns
    account = Account.create(spec, ts)
    src.add(account)
    if spec.account_type in ("income", "expense"):
        book_of(src, spec.ledger).add_income_statement_account(
            spec.account_id, spec.account_type, ts
        )
    if spec.imported:
        imports.note_account(spec.ledger, ts)
    return account


# ------------------------------------------------------------------ one transfer


def _create_transfer(  # noqa: PLR0912, PLR0915 - the rules, in their documented order
    src: Any, spec: TransferSpec, ts: int, now_ns: int, imports: _Imports
) -> Transfer:
    ids = {"transfer_id": spec.transfer_id}
    if spec.transfer_id == 0:
        raise e.IdMustNotBeZero("transfer id 0 is reserved", **ids)
    if spec.transfer_id >= ID_INT_MAX:
        raise e.IdMustNotBeIntMax("transfer ids are below 2^128-1", **ids)
    existing = src.get_transfer(spec.transfer_id)
    if existing is not None:
        existing.check_same(spec, src.get_transfer)
        raise e.Exists(f"transfer {spec.transfer_id} exists", **ids)
    if spec.settles:
        return _settle(src, spec, ts, imports)
    if spec.debit_account_id == 0:
        raise e.DebitAccountIdMustNotBeZero("the debit account id is 0", **ids)
    if spec.debit_account_id >= ID_INT_MAX:
        raise e.DebitAccountIdMustNotBeIntMax("account ids are below 2^128-1", **ids)
    if spec.credit_account_id == 0:
        raise e.CreditAccountIdMustNotBeZero("the credit account id is 0", **ids)
    if spec.credit_account_id >= ID_INT_MAX:
        raise e.CreditAccountIdMustNotBeIntMax("account ids are below 2^128-1", **ids)
    if spec.debit_account_id == spec.credit_account_id:
        raise e.AccountsMustBeDifferent(
            "debit and credit account must differ", account_id=spec.debit_account_id, **ids
        )
    if spec.pending_id != 0:
        raise e.PendingIdMustBeZero("only a post or void names a pending transfer", **ids)
    if not spec.pending:
        if spec.timeout_s:
            raise e.TimeoutReservedForPendingTransfer("only a pending transfer may time out", **ids)
        if spec.closing_debit or spec.closing_credit:
            raise e.ClosingTransferMustBePending("a closing transfer must be pending", **ids)
    if spec.ledger == 0:
        raise e.LedgerMustNotBeZero("the transfer's ledger is 0", **ids)
    if spec.code == 0:
        raise e.CodeMustNotBeZero("the transfer's code is 0", **ids)
    debit = src.get_account(spec.debit_account_id)
    if debit is None:
        raise e.DebitAccountNotFound(
            f"debit account {spec.debit_account_id} does not exist",
            account_id=spec.debit_account_id,
            **ids,
        )
    credit = src.get_account(spec.credit_account_id)
    if credit is None:
        raise e.CreditAccountNotFound(
            f"credit account {spec.credit_account_id} does not exist",
            account_id=spec.credit_account_id,
            **ids,
        )
    if debit.ledger != credit.ledger:
        raise e.AccountsMustHaveTheSameLedger(
            f"the accounts are on ledgers {debit.ledger} and {credit.ledger}", **ids
        )
    if spec.ledger != debit.ledger:
        raise e.TransferMustHaveTheSameLedgerAsAccounts(
            f"the accounts are on ledger {debit.ledger}, the transfer on {spec.ledger}", **ids
        )
    if debit.currency != credit.currency:
        raise e.CurrencyMustMatch(
            f"cannot move {debit.currency} into a {credit.currency} account", **ids
        )
    if spec.imported:
        imports.check_transfer(spec.ledger, spec.timestamp_ns, (debit, credit), ids)
        if spec.timeout_s:
            raise e.ImportedEventTimeoutMustBeZero("an imported transfer has no timeout", **ids)
        ts = spec.timestamp_ns
    if debit.closed:
        raise e.DebitAccountAlreadyClosed(
            f"account {debit.account_id} is closed", account_id=debit.account_id, **ids
        )
    if credit.closed:
        raise e.CreditAccountAlreadyClosed(
            f"account {credit.account_id} is closed", account_id=credit.account_id, **ids
        )
    amount = spec.amount
    if spec.balancing_debit:
        amount = min(amount, debit.balancing_room("debit"))
    if spec.balancing_credit:
        amount = min(amount, credit.balancing_room("credit"))
    _check_overflows(debit, credit, amount, spec, ts, ids)
    if debit.debits_must_not_exceed_credits and (
        debit.debits_pending + debit.debits_posted + amount > debit.credits_posted
    ):
        raise e.ExceedsCredits(
            f"debiting {debit.major(amount)} would take account {debit.account_id}'s debits "
            f"past its credits ({debit.major(debit.credits_posted)} posted)",
            account_id=debit.account_id,
            **ids,
        )
    if credit.credits_must_not_exceed_debits and (
        credit.credits_pending + credit.credits_posted + amount > credit.debits_posted
    ):
        raise e.ExceedsDebits(
            f"crediting {credit.major(amount)} would take account {credit.account_id}'s "
            f"credits past its debits ({credit.major(credit.debits_posted)} posted)",
            account_id=credit.account_id,
            **ids,
        )
    # Every rule holds: from here on the transfer happens.
    transfer = Transfer.create(spec, debit.currency, ts, amount)
    if spec.pending:
        debit.reserve_amount("debit", spec.transfer_id, amount, ts, checked=True)
        credit.reserve_amount("credit", spec.transfer_id, amount, ts, checked=True)
    else:
        debit.post_amount("debit", spec.transfer_id, amount, ts, checked=True)
        credit.post_amount("credit", spec.transfer_id, amount, ts, checked=True)
    if spec.closing_debit:
        debit.close_by(spec.transfer_id, ts)
    if spec.closing_credit:
        credit.close_by(spec.transfer_id, ts)
    src.add(transfer)
    if spec.imported:
        imports.note_transfer(spec.ledger, ts)
    return transfer


def _check_overflows(
    debit: Account, credit: Account, amount: int, spec: TransferSpec, ts: int, ids: Any
) -> None:
    if spec.pending:
        if debit.debits_pending + amount > U128_MAX:
            raise e.OverflowsDebitsPending("debits_pending would pass 2^128-1", **ids)
        if credit.credits_pending + amount > U128_MAX:
            raise e.OverflowsCreditsPending("credits_pending would pass 2^128-1", **ids)
    if debit.debits_posted + amount > U128_MAX:
        raise e.OverflowsDebitsPosted("debits_posted would pass 2^128-1", **ids)
    if credit.credits_posted + amount > U128_MAX:
        raise e.OverflowsCreditsPosted("credits_posted would pass 2^128-1", **ids)
    if debit.debits_pending + debit.debits_posted + amount > U128_MAX:
        raise e.OverflowsDebits("the debit account's debits would pass 2^128-1", **ids)
    if credit.credits_pending + credit.credits_posted + amount > U128_MAX:
        raise e.OverflowsCredits("the credit account's credits would pass 2^128-1", **ids)
    if ts + spec.timeout_s * NS_PER_S > TIMESTAMP_MAX:
        raise e.OverflowsTimeout("timestamp + timeout would pass 2^63-1 ns", **ids)


def _settle(  # noqa: PLR0912, PLR0915 - the rules, in their documented order
    src: Any, spec: TransferSpec, ts: int, imports: _Imports
) -> Transfer:
    """A post or void of a pending transfer, as a transfer of its own (``POST_OR_VOID_ORDER``)."""
    ids = {"transfer_id": spec.transfer_id, "pending_id": spec.pending_id}
    if (
        (spec.post_pending_transfer and spec.void_pending_transfer)
        or spec.pending
        or spec.balancing_debit
        or spec.balancing_credit
        or spec.closing_debit
        or spec.closing_credit
    ):
        raise e.FlagsAreMutuallyExclusive(
            "a post or void is neither pending, balancing nor closing, and not both", **ids
        )
    if spec.pending_id == 0:
        raise e.PendingIdMustNotBeZero("a post or void names its pending transfer", **ids)
    if spec.pending_id >= ID_INT_MAX:
        raise e.PendingIdMustNotBeIntMax("pending ids are below 2^128-1", **ids)
    if spec.pending_id == spec.transfer_id:
        raise e.PendingIdMustBeDifferent("a post or void has an id of its own", **ids)
    if spec.timeout_s:
        raise e.TimeoutReservedForPendingTransfer("a post or void has no timeout", **ids)
    pending = src.get_transfer(spec.pending_id)
    if pending is None or pending.state == "failed":
        raise e.PendingTransferNotFound(f"transfer {spec.pending_id} does not exist", **ids)
    if not pending.pending:
        raise e.PendingTransferNotPending(
            f"transfer {spec.pending_id} was not created as pending", **ids
        )
    debit = src.get_account(pending.debit_account_id)
    credit = src.get_account(pending.credit_account_id)
    invariant(debit is not None and credit is not None, "accounts are never deleted")
    assert debit is not None
    assert credit is not None
    if spec.debit_account_id and spec.debit_account_id != pending.debit_account_id:
        raise e.PendingTransferHasDifferentDebitAccountId(
            f"the pending transfer debits {pending.debit_account_id}", **ids
        )
    if spec.credit_account_id and spec.credit_account_id != pending.credit_account_id:
        raise e.PendingTransferHasDifferentCreditAccountId(
            f"the pending transfer credits {pending.credit_account_id}", **ids
        )
    if spec.ledger and spec.ledger != pending.ledger:
        raise e.PendingTransferHasDifferentLedger(
            f"the pending transfer is on ledger {pending.ledger}", **ids
        )
    if spec.code and spec.code != pending.code:
        raise e.PendingTransferHasDifferentCode(
            f"the pending transfer has code {pending.code}", **ids
        )
    if spec.void_pending_transfer:
        amount = pending.amount if spec.amount == 0 else spec.amount
    else:
        amount = pending.amount if spec.amount == AMOUNT_MAX else spec.amount
    if amount > pending.amount:
        raise e.ExceedsPendingTransferAmount(
            f"cannot settle {amount}: transfer {pending.transfer_id} reserved {pending.amount}",
            **ids,
        )
    if spec.void_pending_transfer and amount < pending.amount:
        raise e.PendingTransferHasDifferentAmount(
            f"a void releases all {pending.amount}, or gives amount 0", **ids
        )
    pending.check_still_pending(ts)
    if spec.imported:
        imports.check_transfer(
            pending.ledger, spec.timestamp_ns, (debit, credit), ids, settling=True
        )
        ts = spec.timestamp_ns
    if spec.post_pending_transfer:
        if debit.closed:
            raise e.DebitAccountAlreadyClosed(
                f"account {debit.account_id} is closed", account_id=debit.account_id, **ids
            )
        if credit.closed:
            raise e.CreditAccountAlreadyClosed(
                f"account {credit.account_id} is closed", account_id=credit.account_id, **ids
            )
    settling = Transfer.create_settling(spec, pending, amount, ts)
    if spec.post_pending_transfer:
        pending.post(amount, ts, spec.transfer_id)
        debit.post_reservation(
            "debit", pending.transfer_id, pending.amount, amount, ts, spec.transfer_id
        )
        credit.post_reservation(
            "credit", pending.transfer_id, pending.amount, amount, ts, spec.transfer_id
        )
    else:
        _release_parts(pending, debit, credit, ts, "voided", spec.transfer_id)
    src.add(settling)
    if spec.imported:
        imports.note_transfer(pending.ledger, ts)
    return settling


def _release_parts(
    pending: Transfer, debit: Account, credit: Account, ts: int, reason: str, by: int = 0
) -> None:
    if reason == "voided":
        pending.void(ts, by)
    else:
        pending.expire(ts)
    tid = pending.transfer_id
    debit.release_reservation("debit", tid, pending.amount, reason, ts, by)
    credit.release_reservation("credit", tid, pending.amount, reason, ts, by)
    # Voiding (or the expiry of) the transfer that closed an account reopens it.
    if pending.closing_debit and debit.closed and debit.closed_by == tid:
        debit.reopen_by(tid, ts)
    if pending.closing_credit and credit.closed and credit.closed_by == tid:
        credit.reopen_by(tid, ts)


# ------------------------------------------------------------------ the earlier post/void API


def _pending(src: LedgerSource, transfer_id: int) -> tuple[Transfer, Account, Account]:
    transfer = src.get_transfer(transfer_id)
    if transfer is None or transfer.state == "failed":
        raise e.PendingTransferNotFound(
            f"transfer {transfer_id} does not exist", transfer_id=transfer_id
        )
    debit = src.get_account(transfer.debit_account_id)
    credit = src.get_account(transfer.credit_account_id)
    if debit is None or credit is None:  # accounts are never deleted
        raise e.AccountNotFound("an account of the transfer is missing", transfer_id=transfer_id)
    return transfer, debit, credit


def post_pending_transfer(
    src: LedgerSource, transfer_id: int, amount: int | None, now_ns: int
) -> Transfer:
    """Post a pending transfer without a transfer of its own (``POST_PENDING_ORDER``);
    ``amount`` None (or 2^128-1) posts all of it. A post with an id of its own is
    :func:`create_transfer` with ``post_pending_transfer``."""
    transfer, debit, credit = _pending(src, transfer_id)
    transfer.check_open(now_ns)
    posted = transfer.amount if amount is None or amount == AMOUNT_MAX else amount
    if posted > transfer.amount:
        raise e.ExceedsPendingTransferAmount(
            f"cannot post {posted}: transfer {transfer_id} reserved {transfer.amount}",
            transfer_id=transfer_id,
        )
    for account, kind in (
        (debit, e.DebitAccountAlreadyClosed),
        (credit, e.CreditAccountAlreadyClosed),
    ):
        if account.closed:
            raise kind(
                f"account {account.account_id} is closed",
                account_id=account.account_id,
                transfer_id=transfer_id,
            )
    transfer.post(posted, now_ns)
    debit.post_reservation("debit", transfer_id, transfer.amount, posted, now_ns)
    credit.post_reservation("credit", transfer_id, transfer.amount, posted, now_ns)
    return transfer


def void_pending_transfer(src: LedgerSource, transfer_id: int, now_ns: int) -> Transfer:
    return _release(src, transfer_id, now_ns, "voided")


def expire_pending_transfer(src: LedgerSource, transfer_id: int, now_ns: int) -> Transfer:
    return _release(src, transfer_id, now_ns, "expired")


def _release(src: LedgerSource, transfer_id: int, now_ns: int, reason: str) -> Transfer:
    """Void or expire a pending transfer, then release its reservation on both accounts (and
    reopen the accounts it closed)."""
    transfer, debit, credit = _pending(src, transfer_id)
    if reason == "voided":
        transfer.check_open(now_ns)
    _release_parts(transfer, debit, credit, now_ns, reason)
    return transfer


# ------------------------------------------------------------------ reversals


def reverse_transfer(
    src: LedgerSource,
    transfer_id: int,
    reversal_id: int,
    reason: str,
    by: str,
    now_ns: int,
) -> Transfer:
    """The reversing transfer of ``transfer_id``: the same amount between the same accounts,
    debit and credit swapped, linked to the original both ways (``REVERSE_ORDER``)."""
    ids = {"transfer_id": transfer_id, "reversal_id": reversal_id}
    if reversal_id == 0:
        raise e.IdMustNotBeZero("the reversal's id is 0", **ids)
    if reversal_id >= ID_INT_MAX:
        raise e.IdMustNotBeIntMax("transfer ids are below 2^128-1", **ids)
    original = src.get_transfer(transfer_id)
    if original is None or original.state == "failed":
        raise e.TransferNotFound(f"transfer {transfer_id} does not exist", **ids)
    spec = TransferSpec(
        reversal_id,
        original.credit_account_id,
        original.debit_account_id,
        original.amount,
        original.ledger,
        original.code,
        user_data_128=original.user_data_128,
        user_data_64=original.user_data_64,
        user_data_32=original.user_data_32,
        reverses_id=transfer_id,
    )
    existing = src.get_transfer(reversal_id)
    if existing is not None:
        existing.check_same(spec, src.get_transfer)
        raise e.Exists(f"reversal {reversal_id} exists", **ids)
    original.check_reversible()
    reversal = create_transfer(src, spec, now_ns)
    original.mark_reversed(reversal_id, reason, by, reversal.created_at_ns)
    return reversal


# ------------------------------------------------------------------ period close


def close_period(
    src: Any,
    ledger: int,
    through_ns: int,
    equity_account_id: int,
    code: int,
    now_ns: int,
) -> tuple[LedgerBook, list[Transfer]]:
    """Close the books through ``through_ns``: move every income and expense account's posted
    balance to the equity account, as one linked batch of transfers dated ``through_ns``
    (``CLOSE_PERIOD_ORDER``). From then on, no import may be dated in the period."""
    ids = {"ledger": ledger, "through_ns": through_ns}
    if ledger == 0:
        raise e.LedgerMustNotBeZero("the ledger is 0", **ids)
    book = book_of(src, ledger)
    book.check_can_close(through_ns, now_ns)
    equity = src.get_account(equity_account_id)
    if equity is None:
        raise e.EquityAccountNotFound(
            f"account {equity_account_id} does not exist", account_id=equity_account_id, **ids
        )
    if equity.ledger != ledger or equity.account_type != "equity":
        raise e.EquityAccountMustBeEquity(
            f"account {equity_account_id} is not an equity account of ledger {ledger}",
            account_id=equity_account_id,
            **ids,
        )
    accounts = [src.get_account(i) for i in book.income_statement_accounts]
    for account in [*accounts, equity]:
        invariant(account is not None, "accounts are never deleted")
        if account.last_at_ns > through_ns:
            raise e.PeriodHasLaterActivity(
                f"account {account.account_id} changed at {account.last_at_ns}, after the "
                "period's end",
                account_id=account.account_id,
                **ids,
            )
    period_id = book.periods + 1
    specs: list[TransferSpec] = []
    for account in accounts:
        assert account is not None
        if account.currency != equity.currency:
            raise e.CurrencyMustMatch(
                f"account {account.account_id} holds {account.currency}, the equity account "
                f"{equity.currency}",
                account_id=account.account_id,
                **ids,
            )
        net = account.credits_posted - account.debits_posted
        if net == 0:
            continue
        debit, credit = (account, equity) if net > 0 else (equity, account)
        specs.append(
            TransferSpec(
                derived_id("close", ledger, period_id, account.account_id),
                debit.account_id,
                credit.account_id,
                abs(net),
                ledger,
                code,
                linked=True,
            )
        )
    if specs:
        specs[-1] = TransferSpec(**{**_fields(specs[-1]), "linked": False})
    results = create_transfers(src, specs, now_ns, record_failures=False, timestamp_ns=through_ns)
    for result in results:
        if result.error is not None and result.status != "linked_event_failed":
            raise result.error
    book.close(period_id, through_ns, equity_account_id, [s.transfer_id for s in specs], now_ns)
    return book, [r.aggregate for r in results]


def _fields(spec: TransferSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in TransferSpec.__dataclass_fields__}
