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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from commands.context import CommandContext
from commands.processor import (
    Command,
    CommandProcessor,
    Handler,
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
from domain.ledger.events import AccountOpened, LedgerEvent, TransferCreated, decode_event
from domain.ledger.transfer import Transfer, TransferSpec
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


class CreateTransfer(_Cmd):
    id: int = Id
    debit_account_id: int = Id
    credit_account_id: int = Id
    amount: str = Field(description="major units, a plain decimal string")
    ledger: int = Field(ge=1, le=2**32 - 1)
    code: int = Field(ge=1, le=65535)
    pending: bool = False
    timeout_s: int = Field(default=0, ge=0, le=2**32 - 1)


class CreateLinkedTransfers(_Cmd):
    transfers: tuple[CreateTransfer, ...]


class PostPendingTransfer(_Cmd):
    transfer_id: int = Id
    amount: str | None = None


class VoidPendingTransfer(_Cmd):
    transfer_id: int = Id


class ExpirePendingTransfer(_Cmd):
    transfer_id: int = Id


# Rejections that depend on state which may change later (TigerBeetle's "transient" results).
# They are recorded, so the id answers the same forever (``id_already_failed`` for another
# body). Every other rejection is a property of the request itself and is not recorded.
TRANSIENT_REJECTIONS = frozenset(
    {
        "debit_account_not_found",
        "credit_account_not_found",
        "exceeds_credits",
        "exceeds_debits",
        "account_closed",
    }
)


def _recorded_only_if_transient(exc: e.LedgerRejection) -> Exception:
    return exc if exc.code in TRANSIENT_REJECTIONS else NotRecorded(exc.to_outcome())


class NotRecorded(Exception):
    """A refusal that depends on input shape or on state that may change: not logged."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome.get("detail", ""))
        self.outcome = outcome


# ------------------------------------------------------------------ command construction


def account_command(cmd: CreateAccount) -> Command:
    return Command.create(f"account:{cmd.id}", "create_account", cmd, cmd.model_dump())


def transfer_command(cmd: CreateTransfer) -> Command:
    return Command.create(f"transfer:{cmd.id}", "create_transfer", cmd, cmd.model_dump())


def linked_command(cmd: CreateLinkedTransfers) -> Command:
    ids = ",".join(str(t.id) for t in cmd.transfers)
    digest = hashlib.sha256(ids.encode()).hexdigest()[:32]
    return Command.create(f"linked:{digest}", "create_linked_transfers", cmd, cmd.model_dump())


def post_command(cmd: PostPendingTransfer) -> Command:
    return Command.create(f"post:{cmd.transfer_id}", "post_pending", cmd, cmd.model_dump())


def void_command(cmd: VoidPendingTransfer) -> Command:
    return Command.create(f"void:{cmd.transfer_id}", "void_pending", cmd, cmd.model_dump())


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
        },
        "debits_pending": a.debits_pending,
        "debits_posted": a.debits_posted,
        "credits_pending": a.credits_pending,
        "credits_posted": a.credits_posted,
    }


def transfer_view(t: Transfer) -> dict[str, Any]:
    return {
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
        elif isinstance(first, TransferCreated):
            aggregate = Transfer(first.transfer_id)
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


def _spec(src: _Source, cmd: CreateTransfer) -> TransferSpec:
    """The domain spec, with the amount converted using the accounts' currency."""
    existing = src.get_transfer(cmd.id)
    debit = src.get_account(cmd.debit_account_id)
    credit = src.get_account(cmd.credit_account_id)
    currency = (
        existing.currency
        if existing
        else debit.currency
        if debit
        else credit.currency
        if credit
        else None
    )
    # Without any currency the amount cannot be read; the domain then names the missing account.
    amount = _amount(cmd.amount, currency, cmd.id) if currency else 1
    return TransferSpec(
        cmd.id,
        cmd.debit_account_id,
        cmd.credit_account_id,
        amount,
        cmd.ledger,
        cmd.code,
        cmd.pending,
        cmd.timeout_s,
    )


def build_handlers(clock: Callable[[], int]) -> dict[str, Handler]:  # noqa: PLR0915
    def create_account(uow: UnitOfWork, cmd: CreateAccount) -> dict[str, Any]:
        src = _Source(uow)
        spec = AccountSpec(
            cmd.id,
            cmd.ledger,
            cmd.currency,
            cmd.code,
            cmd.debits_must_not_exceed_credits,
            cmd.credits_must_not_exceed_debits,
            cmd.closed,
        )
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
            raise _recorded_only_if_transient(exc) from None
        return {"status": "created", "transfer": transfer_view(transfer)}

    def create_linked(uow: UnitOfWork, cmd: CreateLinkedTransfers) -> dict[str, Any]:
        src = _Source(uow)
        now = clock()
        results: list[dict[str, Any]] = []
        for index, item in enumerate(cmd.transfers):
            try:
                transfer = service.create_transfer(src, _spec(src, item), now)
                results.append(
                    {
                        "index": index,
                        "id": item.id,
                        "status": "created",
                        "transfer": transfer_view(transfer),
                    }
                )
            except e.Exists:
                existing = src.get_transfer(item.id)
                assert existing is not None
                results.append(
                    {
                        "index": index,
                        "id": item.id,
                        "status": "exists",
                        "transfer": transfer_view(existing),
                    }
                )
            except (e.LedgerRejection, NotRecorded) as exc:
                outcome = exc.to_outcome() if isinstance(exc, e.LedgerRejection) else exc.outcome
                failed = LinkedBatchFailed(index, cmd, outcome)
                if outcome["code"] in TRANSIENT_REJECTIONS:
                    raise failed from None
                raise NotRecorded(failed.to_outcome()) from None
        return {"status": "created", "results": results}

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

    return {
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
    if isinstance(body, CreateLinkedTransfers):
        return [s for t in body.transfers for s in _transfer_streams(t)]
    return [transfer_stream(body.transfer_id)]  # the accounts are read when the transfer is


def _transfer_streams(t: CreateTransfer) -> list[str]:
    return [
        transfer_stream(t.id),
        account_stream(t.debit_account_id),
        account_stream(t.credit_account_id),
    ]


_TRANSFER_FIELD_ORDER = (
    ("pending", "exists_with_different_flags"),
    ("timeout_s", "exists_with_different_timeout"),
    ("debit_account_id", "exists_with_different_debit_account_id"),
    ("credit_account_id", "exists_with_different_credit_account_id"),
    ("amount", "exists_with_different_amount"),
    ("ledger", "exists_with_different_ledger"),
    ("code", "exists_with_different_code"),
)
_ACCOUNT_FIELD_ORDER = (
    ("debits_must_not_exceed_credits", "exists_with_different_flags"),
    ("credits_must_not_exceed_debits", "exists_with_different_flags"),
    ("closed", "exists_with_different_flags"),
    ("ledger", "exists_with_different_ledger"),
    ("currency", "exists_with_different_currency"),
    ("code", "exists_with_different_code"),
)


class IdConflict(Rejection):
    """The id was used before with another body; ``code`` names the first differing field."""

    def __init__(self, code: str, detail: str, **ids: Any) -> None:
        super().__init__(detail, **ids)
        self.code = code


def on_payload_mismatch(known: RecordedCommand, command: Command) -> Rejection:
    first = json.loads(known.payload)
    new = json.loads(command.payload)
    ids = {"command_id": command.command_id}
    if not known.accepted:
        return IdConflict(
            "id_already_failed",
            f"{command.command_id} was rejected before; a failed id never succeeds, use a new id",
            **ids,
        )
    order = {
        "create_transfer": _TRANSFER_FIELD_ORDER,
        "create_account": _ACCOUNT_FIELD_ORDER,
        "post_pending": (("amount", "exists_with_different_amount"),),
    }.get(known.command_type, ())
    for field, code in order:
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
    kind = Account if stream_id.startswith("account:") else Transfer
    return kind.from_snapshot(stream_id, version, state)


def build_context(clock: Callable[[], int]) -> CommandContext:
    """The ledger's write side: accounts and transfers."""
    return CommandContext(
        name="ledger",
        handlers=build_handlers(clock),
        streams_of=_streams_of,
        stream_prefixes=("account:", "transfer:"),
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
