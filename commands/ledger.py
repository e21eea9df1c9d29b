"""Ledger commands and their handlers: the application service of the ledger.

Command ids (the idempotency keys) are derived from the client's ids:
``account:<id>``, ``transfer:<id>``, ``post:<transfer id>``, ``void:<transfer id>``,
``linked:<digest of the member ids>``. A retry with the same body gets the first outcome; the
same id with another body gets the field-specific ``exists_with_different_*`` code (or
``id_already_failed`` when the first attempt was rejected).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.processor import (
    Command,
    CommandProcessor,
    Handler,
    RefusedWithRecord,
    Rejection,
    Store,
    UnitOfWork,
    canonical_json,
)
from domain.aggregate import Aggregate
from domain.ledger import errors as e
from domain.ledger import service
from domain.ledger.account import Account, AccountSpec
from domain.ledger.account import stream_id as account_stream
from domain.ledger.book import LedgerBook
from domain.ledger.book import stream_id as book_stream
from domain.ledger.events import (
    AccountOpened,
    ImportsAdvanced,
    IncomeStatementAccountAdded,
    LedgerEvent,
    PeriodClosed,
    SettlingTransferCreated,
    TransferCreated,
    TransferFailed,
    decode_event,
)
from domain.ledger.transfer import AMOUNT_MAX, Transfer, TransferSpec
from domain.ledger.transfer import stream_id as transfer_stream
from domain.money import MoneyError, parse_major
from eventstore.model import RecordedCommand, StoredEvent

# Ids are unsigned 128-bit; the domain refuses 0 and everything from 2^128-1 up by name.
Id = Field(ge=1)


class _Cmd(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateAccount(_Cmd):
    id: int = Id
    ledger: int = Field(ge=1, le=2**32 - 1)
    currency: str
    code: int = Field(ge=1, le=65535)
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    closed: bool = False
    user_data_128: int = Field(default=0, ge=0, le=2**128 - 1)
    user_data_64: int = Field(default=0, ge=0, le=2**64 - 1)
    user_data_32: int = Field(default=0, ge=0, le=2**32 - 1)
    account_type: str = Field(default="", max_length=20)
    parent_id: int = Field(default=0, ge=0)
    name: str = Field(default="", max_length=200)
    linked: bool = False
    imported: bool = False
    timestamp_ns: int = Field(default=0, ge=0, le=2**64 - 1)
    history: bool = False


_NEW_ACCOUNT_FIELDS: dict[str, Any] = {
    "user_data_128": 0,
    "user_data_64": 0,
    "user_data_32": 0,
    "account_type": "",
    "parent_id": 0,
    "name": "",
    "linked": False,
    "imported": False,
    "timestamp_ns": 0,
    "history": False,
}


def account_payload(cmd: CreateAccount) -> dict[str, Any]:
    payload = cmd.model_dump()
    for name, default in _NEW_ACCOUNT_FIELDS.items():
        if payload[name] == default:
            del payload[name]
    return payload


class CreateTransfer(_Cmd):
    """A transfer as TigerBeetle's ``create_transfers`` takes it. Fields left at zero are
    named by the ledger's rules (``debit_account_id_must_not_be_zero``, ...), except on a post
    or void, where they stand for the pending transfer's. ``amount`` None: the whole pending
    amount for a post, zero otherwise."""

    id: int = Id
    debit_account_id: int = Field(default=0, ge=0)
    credit_account_id: int = Field(default=0, ge=0)
    amount: str | None = Field(default=None, description="major units, a plain decimal string")
    ledger: int = Field(default=0, ge=0, le=2**32 - 1)
    code: int = Field(default=0, ge=0, le=65535)
    pending: bool = False
    timeout_s: int = Field(default=0, ge=0, le=2**32 - 1)
    pending_id: int = Field(default=0, ge=0)
    user_data_128: int = Field(default=0, ge=0, le=2**128 - 1)
    user_data_64: int = Field(default=0, ge=0, le=2**64 - 1)
    user_data_32: int = Field(default=0, ge=0, le=2**32 - 1)
    linked: bool = False
    post_pending_transfer: bool = False
    void_pending_transfer: bool = False
    balancing_debit: bool = False
    balancing_credit: bool = False
    closing_debit: bool = False
    closing_credit: bool = False
    imported: bool = False
    timestamp_ns: int = Field(default=0, ge=0, le=2**64 - 1)


# Fields added with TigerBeetle parity: left out of a command's payload while at their default,
# so a request that does not use them has the payload (and the idempotency digest) it had.
_NEW_TRANSFER_FIELDS: dict[str, Any] = {
    "pending_id": 0,
    "user_data_128": 0,
    "user_data_64": 0,
    "user_data_32": 0,
    "linked": False,
    "post_pending_transfer": False,
    "void_pending_transfer": False,
    "balancing_debit": False,
    "balancing_credit": False,
    "closing_debit": False,
    "closing_credit": False,
    "imported": False,
    "timestamp_ns": 0,
}


def canonical_amount(text: str | None) -> str | None:
    """The shortest spelling of a decimal amount (``"12.30"`` -> ``"12.3"``), so spellings of
    one amount are one payload; text that is not a plain decimal is left for the rules."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if not value.is_finite() or value.is_signed() or not text.replace(".", "", 1).isdigit():
        return text
    return format(value.normalize(), "f")


def transfer_payload(cmd: CreateTransfer) -> dict[str, Any]:
    # Every field is a scalar: the model's __dict__ is what model_dump() returns, at a tenth
    # of the cost (this runs once per transfer of every request).
    payload = dict(cmd.__dict__)
    for name, default in _NEW_TRANSFER_FIELDS.items():
        if payload[name] == default:
            del payload[name]
    payload["amount"] = canonical_amount(payload["amount"])
    return payload


class CreateLinkedTransfers(_Cmd):
    transfers: tuple[CreateTransfer, ...]


class CreateAccounts(_Cmd):
    """TigerBeetle's ``create_accounts``: one outcome per account, in order; each account's
    ``linked`` chains it to the next (a chain is applied whole or not at all, a chain left
    open at the end is ``linked_event_chain_open``).

    ``all_or_nothing``: the batch is applied whole or refused as a whole without a trace
    (an import's batch: the failing item is named, no id is spent). ``after``: a stream
    that must exist first (an import's previous batch: a batch never lands past a refused
    one)."""

    accounts: tuple[CreateAccount, ...]
    all_or_nothing: bool = False
    after: str = ""


class CreateTransfers(_Cmd):
    """TigerBeetle's ``create_transfers`` (see :class:`CreateAccounts`): per-item ``linked``
    chains; a member of a failed chain that failed for a state-dependent reason has its id
    spent, unless ``all_or_nothing``."""

    transfers: tuple[CreateTransfer, ...]
    all_or_nothing: bool = False
    after: str = ""


class PostPendingTransfer(_Cmd):
    transfer_id: int = Id
    amount: str | None = None


class VoidPendingTransfer(_Cmd):
    transfer_id: int = Id


class ExpirePendingTransfer(_Cmd):
    transfer_id: int = Id


class ReverseTransfer(_Cmd):
    """Reverse a posted transfer: a new transfer ``reversal_id`` of the same amount with the
    accounts swapped, linked to the original both ways. ``reversal_id`` 0: the ledger derives
    one from the original's id (``service.derived_id("reverse", transfer_id)``)."""

    transfer_id: int = Id
    reversal_id: int = Field(default=0, ge=0)
    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(default="", max_length=200)


class ClosePeriod(_Cmd):
    """Close a ledger's books through ``through_ns``: income and expense move to the equity
    account as one linked batch of transfers dated at the period's end (``code``); from then
    on no import may be dated in the period."""

    ledger: int = Field(ge=1, le=2**32 - 1)
    through_ns: int = Field(ge=1, le=2**63 - 1)
    equity_account_id: int = Id
    code: int = Field(ge=1, le=65535)


# Rejections that depend on state which may change later (TigerBeetle's "transient" results).
# They are recorded, so the id answers the same forever (``id_already_failed`` for another
# body). Every other rejection is a property of the request itself and is not recorded.
TRANSIENT_REJECTIONS = service.TRANSIENT | {"account_closed"}


class NotRecorded(Exception):
    """A refusal that depends on input shape or on state that may change: not logged."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


# ------------------------------------------------------------------ command construction


def account_command(cmd: CreateAccount) -> Command:
    return Command.create(f"account:{cmd.id}", "create_account", cmd, account_payload(cmd))


def transfer_command(cmd: CreateTransfer) -> Command:
    return Command.create(f"transfer:{cmd.id}", "create_transfer", cmd, transfer_payload(cmd))


def linked_command(cmd: CreateLinkedTransfers) -> Command:
    ids = ",".join(str(t.id) for t in cmd.transfers)
    digest = hashlib.sha256(ids.encode()).hexdigest()[:32]
    payload = {"transfers": [transfer_payload(t) for t in cmd.transfers]}
    return Command.create(f"linked:{digest}", "create_linked_transfers", cmd, payload)


def _batch_id(kind: str, payload: Any) -> str:
    # The whole body: a retry of the same batch is answered as first; another batch (even
    # one reusing ids) is decided by the ledger's rules, item by item (``exists``, ...).
    return f"{kind}:{hashlib.sha256(canonical_json(payload)).hexdigest()[:32]}"


def accounts_command(cmd: CreateAccounts) -> Command:
    payload = {
        "accounts": [account_payload(a) for a in cmd.accounts],
        "all_or_nothing": cmd.all_or_nothing,
        "after": cmd.after,
    }
    return Command.create(_batch_id("accounts", payload), "create_accounts", cmd, payload)


def transfers_command(cmd: CreateTransfers) -> Command:
    payload = {
        "transfers": [transfer_payload(t) for t in cmd.transfers],
        "all_or_nothing": cmd.all_or_nothing,
        "after": cmd.after,
    }
    return Command.create(_batch_id("transfers", payload), "create_transfers", cmd, payload)


def post_command(cmd: PostPendingTransfer) -> Command:
    return Command.create(f"post:{cmd.transfer_id}", "post_pending", cmd, cmd.model_dump())


def void_command(cmd: VoidPendingTransfer) -> Command:
    return Command.create(f"void:{cmd.transfer_id}", "void_pending", cmd, cmd.model_dump())


def reversal_id_of(cmd: ReverseTransfer) -> int:
    return cmd.reversal_id or service.derived_id("reverse", cmd.transfer_id)


def reverse_command(cmd: ReverseTransfer) -> Command:
    # A retry (same reversal id) is idempotent; a second reversal under another id reaches
    # the rules (transfer_already_reversed).
    command_id = f"reverse:{cmd.transfer_id}:{reversal_id_of(cmd)}"
    return Command.create(command_id, "reverse_transfer", cmd, cmd.model_dump())


def close_period_command(cmd: ClosePeriod) -> Command:
    return Command.create(
        f"close:{cmd.ledger}:{cmd.through_ns}", "close_period", cmd, cmd.model_dump()
    )


def expire_command(cmd: ExpirePendingTransfer) -> Command:
    return Command.create(f"expire:{cmd.transfer_id}", "expire_pending", cmd, cmd.model_dump())


# ------------------------------------------------------------------ views


def account_view(a: Account) -> dict[str, Any]:
    return {
        "id": a.account_id,
        "ledger": a.ledger,
        "currency": a.currency,
        "code": a.code,
        "flags": {
            "debits_must_not_exceed_credits": a.debits_must_not_exceed_credits,
            "credits_must_not_exceed_debits": a.credits_must_not_exceed_debits,
            "closed": a.closed,
            # TigerBeetle's linked and imported, only when set.
            **{
                k: True
                for k, v in (("linked", a.linked), ("history", a.history), ("imported", a.imported))
                if v
            },
        },
        "debits_pending": a.debits_pending,
        "debits_posted": a.debits_posted,
        "credits_pending": a.credits_pending,
        "credits_posted": a.credits_posted,
        # TigerBeetle's user data and the chart of accounts, only when set.
        **{
            k: v
            for k, v in (
                ("user_data_128", a.user_data_128),
                ("user_data_64", a.user_data_64),
                ("user_data_32", a.user_data_32),
                ("account_type", a.account_type),
                ("parent_id", a.parent_id),
                ("name", a.name),
            )
            if v
        },
    }


def transfer_view(t: Transfer) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": t.transfer_id,
        "debit_account_id": t.debit_account_id,
        "credit_account_id": t.credit_account_id,
        "amount": t.amount,
        "posted_amount": t.posted_amount,
        "currency": t.currency,
        "ledger": t.ledger,
        "code": t.code,
        "pending": t.pending,
        "timeout_s": t.timeout_s,
        "state": t.state,
    }
    # TigerBeetle's fields, only when they are set (the view of a plain transfer is unchanged).
    extra = {
        "pending_id": t.pending_id,
        "user_data_128": t.user_data_128,
        "user_data_64": t.user_data_64,
        "user_data_32": t.user_data_32,
        "reverses_id": t.reverses_id,
        "reversal_id": t.reversal_id,
    }
    view.update({k: v for k, v in extra.items() if v})
    flags = {
        "linked": t.linked,
        "post_pending_transfer": t.kind == "post",
        "void_pending_transfer": t.kind == "void",
        "balancing_debit": t.balancing_debit,
        "balancing_credit": t.balancing_credit,
        "closing_debit": t.closing_debit,
        "closing_credit": t.closing_credit,
        "imported": t.imported,
    }
    if any(flags.values()):
        view["flags"] = {k: v for k, v in flags.items() if v}
    return view


# ------------------------------------------------------------------ unit of work adapter


class _Source:
    """The domain's ``LedgerSource`` over the processor's unit of work."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    def get_account(self, account_id: int) -> Account | None:
        agg = self._uow.get(account_stream(account_id))
        return agg if isinstance(agg, Account) else None

    def get_transfer(self, transfer_id: int) -> Transfer | None:
        agg = self._uow.get(transfer_stream(transfer_id))
        return agg if isinstance(agg, Transfer) else None

    def get_ledger(self, ledger: int) -> LedgerBook | None:
        agg = self._uow.get(book_stream(ledger))
        return agg if isinstance(agg, LedgerBook) else None

    def add(self, aggregate: Aggregate) -> None:
        self._uow.add(aggregate)


def encode(event: LedgerEvent) -> tuple[str, bytes]:
    return event.TOPIC, canonical_json(event.to_payload())


def rebuild(aggregate: Aggregate | None, events: Sequence[StoredEvent]) -> Aggregate | None:
    decoded = [decode_event(s.topic, json.loads(s.payload)) for s in events]
    if aggregate is None and decoded:
        first = decoded[0]
        if isinstance(first, AccountOpened):
            aggregate = Account(first.account_id)
        elif isinstance(first, (TransferCreated, SettlingTransferCreated, TransferFailed)):
            aggregate = Transfer(first.transfer_id)
        elif isinstance(first, (ImportsAdvanced, IncomeStatementAccountAdded, PeriodClosed)):
            aggregate = LedgerBook(first.ledger)
        else:
            raise ValueError(f"stream {events[0].stream_id} starts with {first.TOPIC}")
    if aggregate is not None:
        aggregate.replay(decoded)
    return aggregate


def _amount(text: str, currency: str, transfer_id: int) -> int:
    try:
        return parse_major(text, currency)
    except MoneyError as exc:
        raise NotRecorded(
            {"code": exc.code, "detail": str(exc), "transfer_id": transfer_id}
        ) from None


def _currency_of(src: _Source, cmd: CreateTransfer) -> str | None:
    existing = src.get_transfer(cmd.id)
    if existing is not None and existing.currency:
        return existing.currency
    if cmd.post_pending_transfer or cmd.void_pending_transfer:
        pending = src.get_transfer(cmd.pending_id) if cmd.pending_id else None
        if pending is not None and pending.currency:
            return pending.currency
    for account_id in (cmd.debit_account_id, cmd.credit_account_id):
        account = src.get_account(account_id) if account_id else None
        if account is not None:
            return account.currency
    return None


def _spec(src: _Source, cmd: CreateTransfer, *, linked: bool | None = None) -> TransferSpec:
    """The domain spec, with the amount converted using the accounts' currency (a post or
    void: the pending transfer's)."""
    currency = _currency_of(src, cmd)
    if cmd.amount is None:
        amount = AMOUNT_MAX if cmd.post_pending_transfer else 0
    elif currency:
        amount = _amount(cmd.amount, currency, cmd.id)
    else:
        # Without any currency the amount cannot be read; the domain names what is missing.
        amount = 1
    return TransferSpec(
        cmd.id,
        cmd.debit_account_id,
        cmd.credit_account_id,
        amount,
        cmd.ledger,
        cmd.code,
        cmd.pending,
        cmd.timeout_s,
        pending_id=cmd.pending_id,
        user_data_128=cmd.user_data_128,
        user_data_64=cmd.user_data_64,
        user_data_32=cmd.user_data_32,
        linked=cmd.linked if linked is None else linked,
        post_pending_transfer=cmd.post_pending_transfer,
        void_pending_transfer=cmd.void_pending_transfer,
        balancing_debit=cmd.balancing_debit,
        balancing_credit=cmd.balancing_credit,
        closing_debit=cmd.closing_debit,
        closing_credit=cmd.closing_credit,
        imported=cmd.imported,
        timestamp_ns=cmd.timestamp_ns,
    )


def _account_spec(cmd: CreateAccount) -> AccountSpec:
    return AccountSpec(
        cmd.id,
        cmd.ledger,
        cmd.currency,
        cmd.code,
        cmd.debits_must_not_exceed_credits,
        cmd.credits_must_not_exceed_debits,
        cmd.closed,
        user_data_128=cmd.user_data_128,
        user_data_64=cmd.user_data_64,
        user_data_32=cmd.user_data_32,
        linked=cmd.linked,
        history=cmd.history,
        imported=cmd.imported,
        timestamp_ns=cmd.timestamp_ns,
        account_type=cmd.account_type,
        parent_id=cmd.parent_id,
        name=cmd.name,
    )


def _item(result: service.Result, kind: str = "transfer") -> dict[str, Any]:
    item: dict[str, Any] = {"index": result.index, "id": result.id, "status": result.status}
    if result.status in ("created", "exists"):
        view = account_view if kind == "account" else transfer_view
        item[kind] = view(result.aggregate)
        item["status"] = result.status
    elif result.error is not None:
        item["problem"] = result.error.to_outcome()
    return item


def _check_after(uow: UnitOfWork, after: str) -> None:
    """An import's batch lands only right after its predecessor (``after`` exists)."""
    agg = uow.get(after) if after else True
    if agg is None or getattr(agg, "state", "") == "failed":
        raise NotRecorded(
            {
                "code": "previous_batch_not_applied",
                "detail": f"{after} does not exist: the batch before this one was not applied",
                "after": after,
            }
        )


def _batch_answer(results: list[service.Result], kind: str, all_or_nothing: bool) -> dict[str, Any]:
    if all_or_nothing and all(r.applied for r in results):
        # An import's batch: its caller wants the outcomes, not a view of every record.
        return {
            "status": "created",
            "results": [{"index": r.index, "id": r.id, "status": r.status} for r in results],
        }
    items = [_item(r, kind) for r in results]
    if not all_or_nothing:
        return {"status": "created", "results": items}
    failed = next(
        (r for r in results if r.status != e.LinkedEventFailed.code and not r.applied),
        next(r for r in results if not r.applied),
    )
    raise NotRecorded(
        {
            "code": e.LinkedEventFailed.code,
            "detail": f"{kind} {failed.id} (index {failed.index}) failed with {failed.status}; "
            "nothing of the batch was applied",
            "failed_index": failed.index,
            "failed_code": failed.status,
            "results": items,
        }
    )


def build_handlers(clock: Callable[[], int]) -> dict[str, Handler]:  # noqa: PLR0915
    def create_accounts(uow: UnitOfWork, cmd: CreateAccounts) -> dict[str, Any]:
        _check_after(uow, cmd.after)
        # All or nothing without linking the items: linked is a stored flag, and an import
        # rerun in other batches must find its records "exists" as given.
        specs = [_account_spec(a) for a in cmd.accounts]
        results = service.create_accounts(_Source(uow), specs, clock())
        return _batch_answer(results, "account", cmd.all_or_nothing)

    def create_transfers(uow: UnitOfWork, cmd: CreateTransfers) -> dict[str, Any]:
        _check_after(uow, cmd.after)
        src = _Source(uow)
        specs: list[TransferSpec] = []
        for index, item in enumerate(cmd.transfers):
            try:
                specs.append(_spec(src, item))
            except NotRecorded as exc:  # an amount the currency cannot hold: nothing ran
                raise NotRecorded(
                    {
                        **exc.outcome,
                        "failed_index": index,
                        "failed_code": exc.outcome.get("code"),
                        "detail": f"transfer {item.id} (index {index}): "
                        f"{exc.outcome.get('detail')}; nothing of the batch was applied",
                        "code": e.LinkedEventFailed.code,
                    }
                ) from None
        results = service.create_transfers(
            src, specs, clock(), record_failures=not cmd.all_or_nothing
        )
        return _batch_answer(results, "transfer", cmd.all_or_nothing)

    def create_account(uow: UnitOfWork, cmd: CreateAccount) -> dict[str, Any]:
        src = _Source(uow)
        spec = _account_spec(cmd)
        try:
            account = service.open_account(src, spec, clock())
        except e.Exists:
            existing = src.get_account(cmd.id)
            assert existing is not None
            return {"status": "exists", "account": account_view(existing)}
        except e.LedgerRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "created", "account": account_view(account)}

    def create_transfer(uow: UnitOfWork, cmd: CreateTransfer) -> dict[str, Any]:
        src = _Source(uow)
        try:
            transfer = service.create_transfer(src, _spec(src, cmd), clock())
        except e.Exists:
            existing = src.get_transfer(cmd.id)
            assert existing is not None
            return {"status": "exists", "transfer": transfer_view(existing)}
        except e.LedgerRejection as exc:
            if exc.code not in TRANSIENT_REJECTIONS:
                raise NotRecorded(exc.to_outcome()) from None
            # The id is spent, as when it fails inside a batch: a later batch (whose command
            # id is its body's digest) finds the failed transfer and answers id_already_failed.
            service.record_failure(src, cmd.id, exc.code, clock())
            raise RefusedWithRecord(exc) from None
        return {"status": "created", "transfer": transfer_view(transfer)}

    def create_linked(uow: UnitOfWork, cmd: CreateLinkedTransfers) -> dict[str, Any]:
        """One linked chain (every member but the last has flags.linked), applied whole or
        not at all. A failed chain is an answer, not an error: ``status`` "failed" with every
        member's outcome, and a member that failed for a state-dependent reason has its id
        spent (``id_already_failed`` from then on), as in TigerBeetle."""
        src = _Source(uow)
        last = len(cmd.transfers) - 1
        specs: list[TransferSpec] = []
        for index, item in enumerate(cmd.transfers):
            try:
                specs.append(_spec(src, item, linked=index < last))
            except NotRecorded as exc:  # an amount the currency cannot hold: nothing ran
                raise NotRecorded(LinkedBatchFailed(index, cmd, exc.outcome).to_outcome()) from None
        results = service.create_transfers(src, specs, clock())
        items = [_item(r) for r in results]
        if all(r.applied for r in results):
            return {"status": "created", "results": items}
        failed = next(r for r in results if r.status != e.LinkedEventFailed.code)
        answer = {
            "status": "failed",
            "code": e.LinkedEventFailed.code,
            "detail": f"transfer {failed.id} (index {failed.index}) failed with "
            f"{failed.status}; no transfer of the linked batch was applied",
            "failed_index": failed.index,
            "failed_code": failed.status,
            "results": items,
        }
        if failed.status in TRANSIENT_REJECTIONS:
            return answer  # recorded, with the failed id spent: the batch answers so forever
        # A property of the request: nothing recorded, a corrected batch may succeed.
        raise NotRecorded({k: v for k, v in answer.items() if k != "status"})

    def post_pending(uow: UnitOfWork, cmd: PostPendingTransfer) -> dict[str, Any]:
        src = _Source(uow)
        existing = src.get_transfer(cmd.transfer_id)
        amount = (
            _amount(cmd.amount, existing.currency, cmd.transfer_id)
            if cmd.amount is not None and existing is not None
            else None
        )
        try:
            transfer = service.post_pending_transfer(src, cmd.transfer_id, amount, clock())
        except e.LedgerRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "posted", "transfer": transfer_view(transfer)}

    def void_pending(uow: UnitOfWork, cmd: VoidPendingTransfer) -> dict[str, Any]:
        try:
            transfer = service.void_pending_transfer(_Source(uow), cmd.transfer_id, clock())
        except e.LedgerRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "voided", "transfer": transfer_view(transfer)}

    def expire_pending(uow: UnitOfWork, cmd: ExpirePendingTransfer) -> dict[str, Any]:
        try:
            transfer = service.expire_pending_transfer(_Source(uow), cmd.transfer_id, clock())
        except e.LedgerRejection as exc:
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "expired", "transfer": transfer_view(transfer)}

    def reverse(uow: UnitOfWork, cmd: ReverseTransfer) -> dict[str, Any]:
        src = _Source(uow)
        reversal_id = reversal_id_of(cmd)
        try:
            reversal = service.reverse_transfer(
                src, cmd.transfer_id, reversal_id, cmd.reason, cmd.by, clock()
            )
        except e.Exists:
            existing = src.get_transfer(reversal_id)
            assert existing is not None
            return {"status": "exists", "transfer": transfer_view(existing)}
        except e.LedgerRejection as exc:
            # Never recorded: a reversal refused for want of funds may succeed later.
            raise NotRecorded(exc.to_outcome()) from None
        return {"status": "created", "transfer": transfer_view(reversal)}

    def close_period(uow: UnitOfWork, cmd: ClosePeriod) -> dict[str, Any]:
        try:
            book, transfers = service.close_period(
                _Source(uow), cmd.ledger, cmd.through_ns, cmd.equity_account_id, cmd.code, clock()
            )
        except e.LedgerRejection as exc:
            # Never recorded: a close refused for later activity may succeed another time.
            raise NotRecorded(exc.to_outcome()) from None
        return {
            "status": "closed",
            "ledger": cmd.ledger,
            "period": book.periods,
            "through_ns": cmd.through_ns,
            "equity_account_id": cmd.equity_account_id,
            "transfers": [transfer_view(t) for t in transfers],
        }

    return {
        "close_period": close_period,
        "reverse_transfer": reverse,
        "create_accounts": create_accounts,
        "create_transfers": create_transfers,
        "create_account": create_account,
        "create_transfer": create_transfer,
        "create_linked_transfers": create_linked,
        "post_pending": post_pending,
        "void_pending": void_pending,
        "expire_pending": expire_pending,
    }


class LinkedBatchFailed(Rejection):
    """One member of a linked batch failed: none is applied; the others are linked_event_failed."""

    code = "linked_event_failed"

    def __init__(self, index: int, cmd: CreateLinkedTransfers, failure: dict[str, Any]) -> None:
        items = [
            {
                "index": i,
                "id": t.id,
                "status": failure["code"] if i == index else e.LinkedEventFailed.code,
                **({"problem": failure} if i == index else {}),
            }
            for i, t in enumerate(cmd.transfers)
        ]
        super().__init__(
            f"transfer {cmd.transfers[index].id} (index {index}) failed with "
            f"{failure['code']}; no transfer of the linked batch was applied",
            failed_index=index,
            failed_code=failure["code"],
            results=items,
        )


def _streams_of(command: Command) -> list[str]:
    body = command.body
    if isinstance(body, CreateAccount):
        return [account_stream(body.id)]
    if isinstance(body, CreateTransfer):
        return _transfer_streams(body)
    if isinstance(body, (CreateLinkedTransfers, CreateTransfers)):
        after = [body.after] if isinstance(body, CreateTransfers) and body.after else []
        return [*after, *(s for t in body.transfers for s in _transfer_streams(t))]
    if isinstance(body, CreateAccounts):
        after = [body.after] if body.after else []
        books = sorted({book_stream(a.ledger) for a in body.accounts if a.imported})
        return [*after, *books, *(account_stream(a.id) for a in body.accounts)]
    if isinstance(body, ClosePeriod):
        return [book_stream(body.ledger), account_stream(body.equity_account_id)]
    if isinstance(body, ReverseTransfer):
        return [transfer_stream(body.transfer_id), transfer_stream(reversal_id_of(body))]
    return [transfer_stream(body.transfer_id)]  # the accounts are read when the transfer is


def _transfer_streams(t: CreateTransfer) -> list[str]:
    streams = [transfer_stream(t.id)]
    if t.pending_id:
        streams.append(transfer_stream(t.pending_id))
    streams.extend(account_stream(i) for i in (t.debit_account_id, t.credit_account_id) if i)
    return streams


_TRANSFER_FIELD_ORDER = (
    ("linked", "exists_with_different_flags"),
    ("pending", "exists_with_different_flags"),
    ("post_pending_transfer", "exists_with_different_flags"),
    ("void_pending_transfer", "exists_with_different_flags"),
    ("balancing_debit", "exists_with_different_flags"),
    ("balancing_credit", "exists_with_different_flags"),
    ("closing_debit", "exists_with_different_flags"),
    ("closing_credit", "exists_with_different_flags"),
    ("imported", "exists_with_different_flags"),
    ("pending_id", "exists_with_different_pending_id"),
    ("timeout_s", "exists_with_different_timeout"),
    ("debit_account_id", "exists_with_different_debit_account_id"),
    ("credit_account_id", "exists_with_different_credit_account_id"),
    ("amount", "exists_with_different_amount"),
    ("user_data_128", "exists_with_different_user_data_128"),
    ("user_data_64", "exists_with_different_user_data_64"),
    ("user_data_32", "exists_with_different_user_data_32"),
    ("ledger", "exists_with_different_ledger"),
    ("code", "exists_with_different_code"),
)
_ACCOUNT_FIELD_ORDER = (
    ("linked", "exists_with_different_flags"),
    ("history", "exists_with_different_flags"),
    ("imported", "exists_with_different_flags"),
    ("debits_must_not_exceed_credits", "exists_with_different_flags"),
    ("credits_must_not_exceed_debits", "exists_with_different_flags"),
    ("closed", "exists_with_different_flags"),
    ("user_data_128", "exists_with_different_user_data_128"),
    ("user_data_64", "exists_with_different_user_data_64"),
    ("user_data_32", "exists_with_different_user_data_32"),
    ("ledger", "exists_with_different_ledger"),
    ("currency", "exists_with_different_currency"),
    ("code", "exists_with_different_code"),
    ("account_type", "exists_with_different_account_type"),
    ("parent_id", "exists_with_different_parent_id"),
    ("name", "exists_with_different_name"),
)


class IdConflict(Rejection):
    """The id was used before with another body; ``code`` names the first differing field."""

    def __init__(self, code: str, detail: str, **ids: Any) -> None:
        super().__init__(detail, **ids)
        self.code = code


def _same_amount(first: Any, new: Any) -> bool:
    """Two spellings of one decimal amount (``"12.3"``, ``"12.30"``) are the same amount."""
    if first == new:
        return True
    try:
        return isinstance(first, str) and isinstance(new, str) and Decimal(first) == Decimal(new)
    except InvalidOperation:
        return False


def _same_post(known: RecordedCommand, new: dict[str, Any]) -> bool:
    """A retried post that states the amount it posted (or leaves it out, meaning all) is the
    same post: the resulting amounts are compared, not the bodies."""
    outcome = json.loads(known.outcome)
    view = outcome.get("transfer") if isinstance(outcome, dict) else None
    if not isinstance(view, dict) or "posted_amount" not in view:
        return False
    wanted = new.get("amount")
    if wanted is None:
        return bool(view["posted_amount"] == view["amount"])
    try:
        return bool(parse_major(wanted, view["currency"]) == view["posted_amount"])
    except MoneyError:
        return False


def on_payload_mismatch(known: RecordedCommand, command: Command) -> Rejection | None:
    """The answer to a known command id with another body: ``None`` when the body only spells
    the same command differently (the first outcome is the answer), else the first differing
    field's ``exists_with_different_*`` (``id_already_failed`` if the first was refused)."""
    first = json.loads(known.payload)
    new = json.loads(command.payload)
    ids = {"command_id": command.command_id}
    if not known.accepted:
        return IdConflict(
            "id_already_failed",
            f"{command.command_id} was rejected before; a failed id never succeeds, use a new id",
            **ids,
        )
    if known.command_type == "post_pending" and _same_post(known, new):
        return None
    if known.command_type == "create_linked_transfers":
        outcome = json.loads(known.outcome)
        if isinstance(outcome, dict) and outcome.get("status") == "failed":
            return IdConflict(
                "id_already_failed",
                f"{command.command_id} failed before; a failed id never succeeds, use new ids",
                **ids,
            )
    if known.command_type in ("create_transfer", "create_account"):
        new_fields = (
            _NEW_TRANSFER_FIELDS if known.command_type == "create_transfer" else _NEW_ACCOUNT_FIELDS
        )
        for name, default in new_fields.items():
            first.setdefault(name, default)
            new.setdefault(name, default)
        # As in the ledger's rules, an imported event's timestamp is not compared.
        first.pop("timestamp_ns")
        new.pop("timestamp_ns")
        if first.keys() == new.keys() and all(
            _same_amount(first[k], new[k]) if k == "amount" else first[k] == new[k] for k in first
        ):
            return None
    order = {
        "create_transfer": _TRANSFER_FIELD_ORDER,
        "create_account": _ACCOUNT_FIELD_ORDER,
        "post_pending": (("amount", "exists_with_different_amount"),),
    }.get(known.command_type, ())
    for field, code in order:
        if field == "amount" and _same_amount(first.get(field), new.get(field)):
            continue
        if first.get(field) != new.get(field):
            return IdConflict(code, f"{command.command_id} exists with a different {field}", **ids)
    return IdConflict(
        "exists_with_different_payload",
        f"{command.command_id} was submitted before with a different body",
        **ids,
    )


def _to_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, NotRecorded):
        return exc.outcome
    if isinstance(exc, (e.LedgerRejection, Rejection)):
        return exc.to_outcome()
    raise exc


def restore(stream_id: str, version: int, state: dict[str, Any]) -> Aggregate:
    if stream_id.startswith("ledger:"):
        return LedgerBook.from_snapshot(stream_id, version, state)
    kind = Account if stream_id.startswith("account:") else Transfer
    return kind.from_snapshot(stream_id, version, state)


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The ledger's write side: accounts and transfers."""
    return CommandContext(
        name="ledger",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=("account:", "transfer:", "ledger:"),
        short_streams=("transfer:",),  # created, then at most posted or voided and reversed
        encode=encode,
        rebuild=rebuild,
        rejection_types=(e.LedgerRejection, Rejection),
        invalid_types=(NotRecorded,),
        to_outcome=_to_outcome,
        on_payload_mismatch=on_payload_mismatch,
        restore=restore,
    )


def build_ledger_processor(
    store: Store, clock: Callable[[], int], **options: Any
) -> CommandProcessor[Aggregate]:
    """A processor for the ledger alone (tests, benches, tools)."""
    return CommandProcessor(store, [build_context(clock)], **options)
