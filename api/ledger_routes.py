"""HTTP routes of the ledger: accounts, transfers, batches, balances, trial balance.

Amounts are decimal strings in major units ("12.34") on the wire, integer minor units inside.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.metrics import note
from api.problems import COMMAND_ERRORS, QUERY_ERRORS, Problem, problem_responses
from api.security import OPERATORS, READERS, Caller, require, require_caller
from api.types import (
    ID_PATTERN,
    Amount,
    Code,
    CodeParam,
    Id128,
    IdParam,
    Ledger,
    LedgerParam,
    PageLimit,
    Position,
    StrictFlag,
    TimeoutSeconds,
)
from commands.ledger import (
    ClosePeriod,
    CreateAccount,
    CreateAccounts,
    CreateLinkedTransfers,
    CreateTransfer,
    CreateTransfers,
    PostPendingTransfer,
    ReverseTransfer,
    VoidPendingTransfer,
    account_command,
    accounts_command,
    close_period_command,
    linked_command,
    post_command,
    reverse_command,
    transfer_command,
    transfers_command,
    void_command,
)
from domain.ledger import chart as chart_rules
from domain.money import CURRENCIES, format_major
from readmodels import ledger as rm


def _known_currency(value: Any) -> Any:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise PydanticCustomError(
            "unknown_currency", "{value!r} is not an active ISO 4217 code", {"value": value}
        )
    return value


class Flags(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            # The two limits exclude each other (flags_are_mutually_exclusive).
            "not": {
                "required": ["debits_must_not_exceed_credits", "credits_must_not_exceed_debits"],
                "properties": {
                    "debits_must_not_exceed_credits": {"const": True},
                    "credits_must_not_exceed_debits": {"const": True},
                },
            }
        },
    )
    debits_must_not_exceed_credits: StrictFlag = False
    credits_must_not_exceed_debits: StrictFlag = False
    closed: StrictFlag = False
    linked: StrictFlag = Field(
        default=False, description="chains this account to the next one of its batch"
    )
    imported: StrictFlag = Field(
        default=False, description="imported history: `timestamp` says when it was opened"
    )
    history: StrictFlag = Field(
        default=False,
        description="keep its balance after every transfer for GET /v1/accounts/{id}/balances "
        "(TigerBeetle's get_account_balances)",
    )

    @model_validator(mode="after")
    def _exclusive(self) -> Flags:
        if self.debits_must_not_exceed_credits and self.credits_must_not_exceed_debits:
            raise PydanticCustomError(
                "flags_are_mutually_exclusive",
                "an account cannot limit both its debits and its credits",
            )
        return self


Currency = Annotated[
    str,
    BeforeValidator(_known_currency),
    WithJsonSchema(
        {"type": "string", "enum": sorted(CURRENCIES), "description": "an active ISO 4217 code"}
    ),
]


AccountType = Literal["asset", "liability", "equity", "income", "expense"]


class AccountIn(BaseModel):
    """An account. TigerBeetle's ``user_data_*`` are yours to index by; ``account_type``,
    ``parent_id`` and ``name`` place it in the ledger's chart of accounts (a parent is an
    account of the same ledger, currency and type; income and expense accounts are the ones
    a period close moves to equity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id128
    ledger: Ledger
    currency: Currency
    code: Code
    flags: Flags = Flags()
    user_data_128: UInt128 = 0
    user_data_64: UInt64 = 0
    user_data_32: UInt32 = 0
    account_type: AccountType | None = None
    parent_id: AccountRef = 0
    name: str = Field(default="", max_length=200)
    timestamp: UInt64 = Field(
        default=0,
        description="only with flags.imported: when the account was opened, in nanoseconds "
        "since the Unix epoch (strictly after the ledger's last imported account, before now)",
    )


class Balances(BaseModel):
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str


class AccountOut(BaseModel):
    id: int
    ledger: int
    currency: str
    code: int
    flags: Flags
    balances: Balances
    user_data_128: str | None = None
    user_data_64: str | None = None
    user_data_32: int | None = None
    account_type: str | None = None
    parent_id: str | None = None
    name: str | None = None
    timestamp: str | None = Field(
        default=None, description="when it was opened, ns since the epoch (read models)"
    )
    position: int = Field(description="global position this view reflects")


_ID_RE = re.compile(ID_PATTERN)


def _parse_uint(value: Any) -> Any:
    if type(value) is int:
        return value
    if isinstance(value, str) and (value == "0" or _ID_RE.match(value)):
        return int(value)
    raise ValueError("a JSON integer or canonical decimal digits (no sign or leading zeros)")


# The largest value of a wide field at the edge. Many tools read a JSON Schema maximum as a
# double (and print it shortest-first), so past 2^53 the schema states a round number a double
# holds at or below itself, and exactly that is accepted: 1.8e19 (64 bits), 3.4e38 (128 bits).
_WIDE_MAX = {64: 18 * 10**18, 128: 34 * 10**37}


def _max(bits: int) -> int:
    return _WIDE_MAX.get(bits, (1 << bits) - 1)


def _at_most(bits: int | None) -> AfterValidator:
    top = _max(bits) if bits is not None else None

    def _range(value: int) -> int:
        if value < 0 or (top is not None and value > top):
            raise ValueError(f"must be between 0 and {top}")
        return value

    return AfterValidator(_range)


def _uint_schema(bits: int | None, description: str) -> WithJsonSchema:
    """An unsigned integer: a JSON integer or canonical decimal digits; 0 allowed. Without
    ``bits`` (an id) it has no maximum: the ledger refuses ids from 2^128-1 up by name."""
    if bits is None:
        integer: dict[str, Any] = {"type": "integer", "minimum": 0}
        digits = 39
    else:
        integer = {"type": "integer", "minimum": 0, "maximum": _max(bits)}
        # Fewer digits than the maximum has: every string the schema allows is in range.
        digits = len(str(_max(bits))) - 1
    return WithJsonSchema(
        {
            "anyOf": [
                integer,
                {"type": "string", "pattern": rf"^(?:0|[1-9][0-9]{{0,{digits - 1}}})$"},
            ],
            "description": description,
        }
    )


_INHERITED = "; 0 on a post or void stands for the pending transfer's"
UInt128 = Annotated[
    int, BeforeValidator(_parse_uint), _at_most(128), _uint_schema(128, "unsigned 128-bit")
]
UInt64 = Annotated[
    int, BeforeValidator(_parse_uint), _at_most(64), _uint_schema(64, "unsigned 64-bit")
]
UInt32 = Annotated[
    int, BeforeValidator(_parse_uint), _at_most(32), _uint_schema(32, "unsigned 32-bit")
]
AccountRef = Annotated[
    int,
    BeforeValidator(_parse_uint),
    _at_most(None),
    _uint_schema(None, "an account id" + _INHERITED),
]
TransferRef = Annotated[
    int,
    BeforeValidator(_parse_uint),
    _at_most(None),
    _uint_schema(None, "the id of the pending transfer a post or void settles"),
]


def _json_int(value: Any) -> Any:
    if type(value) is int:
        return value
    raise ValueError("must be a JSON integer")


ZeroOrLedger = Annotated[
    int,
    BeforeValidator(_json_int),
    _at_most(32),
    WithJsonSchema(
        {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "description": "the ledger"}
    ),
]
ZeroOrCode = Annotated[
    int,
    BeforeValidator(_json_int),
    _at_most(16),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": 65535, "description": "the code"}),
]
# Zero is an amount (TigerBeetle allows it: posting 0 releases the whole hold).
AmountOrZero = Annotated[
    str,
    Strict(),
    Field(
        pattern=r"^(?:0(?:\.0{1,4})?|[1-9][0-9]{0,38}(?:\.[0-9]{1,4})?|0\.[0-9]{1,4})$",
        description='major units as a decimal string, e.g. "12.34"; zero allowed',
        examples=["12.34"],
    ),
]


class TransferIn(BaseModel):
    """A transfer, with TigerBeetle's fields and flags (``pending_id`` names the pending
    transfer a post or void settles). Fields a post or void leaves at 0 stand for the pending
    transfer's; ``amount`` left out posts all of it (a post) or is 0."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id128
    debit_account_id: AccountRef = 0
    credit_account_id: AccountRef = 0
    amount: AmountOrZero | None = None
    ledger: ZeroOrLedger = 0
    code: ZeroOrCode = 0
    pending: StrictFlag = False
    timeout_s: TimeoutSeconds = 0
    pending_id: TransferRef = 0
    user_data_128: UInt128 = 0
    user_data_64: UInt64 = 0
    user_data_32: UInt32 = 0
    linked: StrictFlag = False
    post_pending_transfer: StrictFlag = False
    void_pending_transfer: StrictFlag = False
    balancing_debit: StrictFlag = False
    balancing_credit: StrictFlag = False
    closing_debit: StrictFlag = False
    closing_credit: StrictFlag = False
    imported: StrictFlag = Field(
        default=False, description="imported history: `timestamp` says when it happened"
    )
    timestamp: UInt64 = Field(
        default=0,
        description="only with imported: when the transfer happened, in nanoseconds since the "
        "Unix epoch (strictly after the ledger's last imported transfer and its accounts' "
        "latest change, before now)",
    )


class TransferOut(BaseModel):
    id: int
    debit_account_id: int
    credit_account_id: int
    amount: str
    posted_amount: str | None = None
    currency: str
    ledger: int
    code: int
    pending: bool
    timeout_s: int
    state: str
    pending_id: str | None = None
    user_data_128: str | None = None
    user_data_64: str | None = None
    user_data_32: int | None = None
    flags: dict[str, bool] | None = None
    reverses_id: str | None = Field(default=None, description="the transfer this one reverses")
    reversal_id: str | None = Field(default=None, description="the transfer that reversed it")
    timestamp: str | None = Field(
        default=None, description="the transfer's time, ns since the epoch (read models)"
    )
    position: int


class BatchIn(BaseModel):
    """Transfers in one request. ``linked`` (the batch): one chain, all or nothing. An item's
    own ``linked`` chains it to the next item (TigerBeetle's chains), and ``imported`` items
    make an import batch (every item imported)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    linked: StrictFlag = False
    transfers: list[TransferIn] = Field(min_length=1, max_length=8189)


class AccountBatchIn(BaseModel):
    """Accounts in one request (TigerBeetle's ``create_accounts``): ``linked`` (the batch) makes
    it one chain, all or nothing; an item's ``flags.linked`` chains it to the next item."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    linked: StrictFlag = False
    accounts: list[AccountIn] = Field(min_length=1, max_length=8189)


class ItemOutcome(BaseModel):
    index: int
    id: int
    status: str = Field(description='"created", "exists", or a rejection code')
    transfer: TransferOut | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    linked: bool
    results: list[ItemOutcome]
    position: int | None


class AccountItemOutcome(BaseModel):
    index: int
    id: int
    status: str = Field(description='"created", "exists", or a rejection code')
    account: AccountOut | None = None
    problem: dict[str, Any] | None = None


class AccountBatchOut(BaseModel):
    linked: bool
    results: list[AccountItemOutcome]
    position: int | None


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    amount: Amount | None = None


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Id128 | None = Field(
        default=None,
        description="the reversing transfer's id; left out, the ledger derives one from the "
        "original's id (the same every time, so a retry is the same reversal)",
    )
    reason: str = Field(min_length=1, max_length=500, description="why, for the audit trail")


class TrialBalanceLine(BaseModel):
    currency: str
    accounts: int
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str
    balanced: bool


class TrialBalanceOut(BaseModel):
    ledger: int
    position: int
    lines: list[TrialBalanceLine]


class HistoryItem(BaseModel):
    position: int
    change: str
    transfer: TransferOut | None
    balances_after: Balances


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None


def parse_as_of(value: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, "invalid_as_of", f"as_of {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise Problem(
            422, "invalid_as_of", "as_of must carry a UTC offset, e.g. 2026-01-31T23:59:59Z"
        )
    return int(moment.timestamp() * 1_000_000) * 1000


async def require_committed(request: Request, position: int | None, name: str) -> None:
    """A point in history must exist: a position past the head is refused, never echoed."""
    if position is None:
        return
    services = request.app.state.services
    head = (await asyncio.to_thread(services.store.recorder.head)).position
    if position > head:
        raise Problem(
            422,
            f"{name}_not_committed",
            f"position {position} has not been committed (the store is at {head})",
            **{name: position, "head_position": head},
        )


async def wait_for_position(request: Request, min_position: int | None) -> None:
    """Read-your-writes: wait (bounded) until the read model has applied ``min_position``."""
    if min_position is None:
        return
    services = request.app.state.services
    head = (await asyncio.to_thread(services.store.recorder.head)).position
    if min_position > head:
        # Positions come from committed writes; one past the head was never handed out.
        raise Problem(
            422,
            "min_position_not_committed",
            f"position {min_position} has not been committed (the store is at {head})",
            min_position=min_position,
            head_position=head,
        )
    waiter = services.extra["wait_for_position"]
    timeout_s: float = services.extra.get("read_wait_s", 2.0)
    if not await asyncio.to_thread(waiter, min_position, timeout_s):
        raise Problem(
            503,
            "read_model_behind",
            f"the read model has not yet applied position {min_position}; retry shortly",
            headers={"Retry-After": "1"},
            min_position=min_position,
        )


# ------------------------------------------------------------------ rejection -> HTTP status

# A request that matches the schema is never answered 400 or 422: what the ledger refuses
# after reading it is a rule of the ledger or a conflict with its state, answered 409 with
# the rule's code. Only a command's own target named in the path answers 404.
NOT_FOUND_CODES = frozenset({"pending_transfer_not_found", "transfer_not_found"})


def status_of(code: str, *, target_in_path: bool = False) -> int:
    return 404 if target_in_path and code in NOT_FOUND_CODES else 409


def rejection(result: dict[str, Any], *, target_in_path: bool = False) -> Problem:
    """The problem for a refused command. A missing pending transfer is 404 only when the
    path names it (``/transfers/{id}/post``); named in a body (``pending_id``) it is 409."""
    code = str(result.get("code", "rejected"))
    extra = {k: v for k, v in result.items() if k not in {"code", "detail"}}
    status = status_of(code, target_in_path=target_in_path)
    return Problem(status, code, str(result.get("detail", code)), **extra)


# ------------------------------------------------------------------ formatting


def _fmt(amount_minor: int, currency: str) -> str:
    return format_major(int(amount_minor), currency)


def _user_data(row: dict[str, Any]) -> dict[str, Any]:
    """TigerBeetle's user data as the API writes it: 128- and 64-bit values as decimal text
    (JSON numbers lose them), 32-bit as a number, and 0 (none) as null."""
    return {
        "user_data_128": str(row["user_data_128"]) if row.get("user_data_128") else None,
        "user_data_64": str(row["user_data_64"]) if row.get("user_data_64") else None,
        "user_data_32": int(row["user_data_32"]) if row.get("user_data_32") else None,
    }


def account_out(view: dict[str, Any], position: int) -> AccountOut:
    cur = view["currency"]
    return AccountOut(
        id=int(view["id"]),
        ledger=view["ledger"],
        currency=cur,
        code=view["code"],
        flags=Flags(**view["flags"]),
        balances=Balances(
            debits_pending=_fmt(view["debits_pending"], cur),
            debits_posted=_fmt(view["debits_posted"], cur),
            credits_pending=_fmt(view["credits_pending"], cur),
            credits_posted=_fmt(view["credits_posted"], cur),
        ),
        **_user_data(view),
        account_type=view.get("account_type") or None,
        parent_id=str(view["parent_id"]) if view.get("parent_id") else None,
        name=view.get("name") or None,
        timestamp=str(view["opened_at_ns"]) if view.get("opened_at_ns") else None,
        position=position,
    )


def transfer_out(view: dict[str, Any], position: int) -> TransferOut:
    cur = view["currency"]
    return TransferOut(
        id=int(view["id"]),
        debit_account_id=int(view["debit_account_id"]),
        credit_account_id=int(view["credit_account_id"]),
        amount=_fmt(view["amount"], cur),
        posted_amount=_fmt(view["posted_amount"], cur) if view.get("pending") else None,
        currency=cur,
        ledger=view["ledger"],
        code=view["code"],
        pending=view["pending"],
        timeout_s=view["timeout_s"],
        state=view["state"],
        pending_id=str(view["pending_id"]) if view.get("pending_id") else None,
        **_user_data(view),
        flags=view.get("flags") or None,
        reverses_id=str(view["reverses_id"]) if view.get("reverses_id") else None,
        reversal_id=str(view["reversal_id"]) if view.get("reversal_id") else None,
        timestamp=str(view["created_at_ns"]) if view.get("created_at_ns") else None,
        position=position,
    )


def _row_account(row: dict[str, Any]) -> dict[str, Any]:
    chart = ("user_data_128", "user_data_64", "user_data_32", "account_type", "parent_id", "name")
    return {
        **{k: row[k] for k in chart if row.get(k)},
        "id": row["account_id"],
        "opened_at_ns": row.get("opened_at_ns"),
        "ledger": row["ledger"],
        "currency": row["currency"],
        "code": row["code"],
        "flags": {
            "debits_must_not_exceed_credits": row["debits_must_not_exceed_credits"],
            "credits_must_not_exceed_debits": row["credits_must_not_exceed_debits"],
            "closed": row["closed"],
            **{k: True for k in ("linked", "history", "imported") if row.get(k)},
        },
        **{
            k: row[k]
            for k in ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
        },
    }


def _row_transfer(row: dict[str, Any]) -> dict[str, Any]:
    # The flags as a transfer's view shows them: by name, without ``pending`` (a field).
    flags = rm.transfer_flags(int(row.get("flags") or 0))
    flags.pop("pending", None)
    return {"id": row["transfer_id"], **row, "flags": flags}


# ------------------------------------------------------------------ routes

router = APIRouter(prefix="/v1", tags=["ledger"])
Operator = Depends(require(OPERATORS))
OperatorCaller = Depends(require_caller(OPERATORS))
Reader = Depends(require(READERS))
COMMAND_RESPONSES = COMMAND_ERRORS
PATH_COMMAND_RESPONSES = {**COMMAND_ERRORS, **problem_responses(404)}


def _created(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"model": model, "description": "a retry with the same body: the first outcome"},
        **COMMAND_RESPONSES,
    }


async def _run(request: Request, command: Any) -> Any:
    services = request.app.state.services
    outcome = await asyncio.wrap_future(services.extra["ledger"].submit(command))
    _count(services, command, outcome)
    return outcome


async def _run_all(request: Request, commands: list[Any]) -> list[Any]:
    """Many commands, one wake-up of this request when the last is answered."""
    services = request.app.state.services
    outcomes: list[Any] = await asyncio.wrap_future(services.extra["ledger"].submit_all(commands))
    for command, outcome in zip(commands, outcomes, strict=True):
        _count(services, command, outcome)
    return outcomes


def _count(services: Any, command: Any, outcome: Any) -> None:
    result = (
        outcome.result.get("status", "accepted")
        if outcome.accepted
        else outcome.result.get("code", "rejected")
    )
    services.metrics.commands.labels(command.command_type, result).inc()
    note(command_id=command.command_id, outcome=result, position=outcome.position)


def _created_or_replayed(response: Response, outcome: Any) -> None:
    response.status_code = (
        200 if outcome.replayed or outcome.result.get("status") == "exists" else 201
    )


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses=_created(AccountOut),
    summary="Open an account",
)
async def create_account(
    body: AccountIn, request: Request, response: Response, _: Any = Operator
) -> AccountOut:
    """Open an account on a ledger, in one currency, with optional balance limits.

    The id is yours and is the idempotency key: the same body again answers 200 with the first
    outcome; another body under the same id is `exists_with_different_*`. Example:
    `{"id": "1001", "ledger": 1, "currency": "USD", "code": 10,
    "flags": {"debits_must_not_exceed_credits": true}}`."""
    cmd = _account_cmd(body)
    outcome = await _run(request, account_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result)
    _created_or_replayed(response, outcome)
    return account_out(outcome.result["account"], outcome.position or 0)


def _account_cmd(body: AccountIn) -> CreateAccount:
    return CreateAccount(
        id=body.id,
        ledger=body.ledger,
        currency=body.currency,
        code=body.code,
        **body.flags.model_dump(),
        user_data_128=body.user_data_128,
        user_data_64=body.user_data_64,
        user_data_32=body.user_data_32,
        account_type=body.account_type or "",
        parent_id=body.parent_id,
        name=body.name,
        timestamp_ns=body.timestamp,
    )


def _transfer_cmd(body: TransferIn) -> Any:
    fields = dict(body.__dict__)  # its fields are all scalars: the same as model_dump(), faster
    fields["timestamp_ns"] = fields.pop("timestamp")
    return CreateTransfer(**fields)


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferOut,
    responses=_created(TransferOut),
    summary="Create a transfer (single-phase or pending)",
)
async def create_transfer(
    body: TransferIn, request: Request, response: Response, _: Any = Operator
) -> TransferOut:
    """Move an amount from the debit account to the credit account, or reserve it (`pending`).

    Both accounts must exist on the transfer's ledger, in one currency. A pending transfer
    holds the amount until it is posted (in full or in part), voided, or expires after
    `timeout_s`. The id is the idempotency key (see *Open an account*). Answers 201 with the
    transfer and the log `position` of its events."""
    outcome = await _run(request, transfer_command(_transfer_cmd(body)))
    if not outcome.accepted:
        raise rejection(outcome.result)
    _created_or_replayed(response, outcome)
    return transfer_out(outcome.result["transfer"], outcome.position or 0)


@router.post(
    "/transfer-batches",
    status_code=201,
    response_model=BatchOut,
    responses=_created(BatchOut),
    summary="Create many transfers; linked: all succeed or none does",
)
async def create_batch(
    body: BatchIn, request: Request, response: Response, _: Any = Operator
) -> BatchOut:
    """Many transfers in one request.

    `linked: true`: all are applied or none is (the failing one is named, the others are
    `linked_event_failed`); otherwise each stands alone. Every item gets its own outcome, in
    order.

    A linked batch that failed as a whole answers **409** (nothing was applied): a problem
    `linked_event_failed` naming the failing item (`failed_index`, `failed_code`) that also
    carries every item's outcome in `results`, the failing one with its problem. A member
    that failed for a reason that depends on the ledger's state (`debit_account_not_found`,
    `exceeds_credits`, ...) has its id spent: it answers `id_already_failed` from then on, as
    in TigerBeetle.

    Without the batch's `linked`, items with their own `linked` form chains with the items
    after them up to the first without it, each chain applied whole or not at all (the
    failing item names its rule, the others of its chain `linked_event_failed`; a chain
    left open by the last item is `linked_event_chain_open`), exactly as TigerBeetle's
    `create_transfers`. `imported` items carry their `timestamp`: a batch whose first item
    is imported imports every item (`imported_event_expected` / `imported_event_not_expected`
    otherwise), and imported timestamps strictly increase."""
    if body.linked:
        cmd = CreateLinkedTransfers(transfers=tuple(_transfer_cmd(t) for t in body.transfers))
        outcome = await _run(request, linked_command(cmd))
        position = outcome.position
        if outcome.accepted:
            items = [
                ItemOutcome(
                    index=r["index"],
                    id=r["id"],
                    status=r["status"],
                    transfer=transfer_out(r["transfer"], position or 0)
                    if "transfer" in r
                    else None,
                    problem=rejection(r["problem"]).body() if "problem" in r else None,
                )
                for r in outcome.result["results"]
            ]
            if outcome.result.get("status") == "failed":
                raise _batch_failed(outcome.result, items, position)
        elif "results" in outcome.result:
            items = [
                ItemOutcome(
                    index=r["index"],
                    id=r["id"],
                    status=r["status"],
                    problem=rejection(r["problem"]).body() if "problem" in r else None,
                )
                for r in outcome.result["results"]
            ]
        else:  # the batch id was reused with other members
            raise rejection(outcome.result)
        if not outcome.accepted:  # a failed batch recorded before failures were answers
            raise _batch_failed(outcome.result, items, position)
        _created_or_replayed(response, outcome)
        return BatchOut(linked=True, results=items, position=position)
    if any(t.linked or t.imported for t in body.transfers):
        # TigerBeetle's batch: chains by the items' own flags, imports; one command.
        tcmd = CreateTransfers(transfers=tuple(_transfer_cmd(t) for t in body.transfers))
        outcome = await _run(request, transfers_command(tcmd))
        if not outcome.accepted:  # an amount the currency cannot hold: nothing ran
            raise rejection(outcome.result)
        position = outcome.position
        _created_or_replayed(response, outcome)
        return BatchOut(
            linked=False,
            results=[
                ItemOutcome(
                    index=r["index"],
                    id=r["id"],
                    status=r["status"],
                    transfer=transfer_out(r["transfer"], position or 0)
                    if "transfer" in r
                    else None,
                    problem=rejection(r["problem"]).body() if "problem" in r else None,
                )
                for r in outcome.result["results"]
            ],
            position=position,
        )
    outcomes = await _run_all(request, [transfer_command(_transfer_cmd(t)) for t in body.transfers])
    items = []
    for index, (t, o) in enumerate(zip(body.transfers, outcomes, strict=True)):
        if o.accepted:
            items.append(
                ItemOutcome(
                    index=index,
                    id=t.id,
                    status=o.result["status"],
                    transfer=transfer_out(o.result["transfer"], o.position or 0),
                )
            )
        else:
            items.append(
                ItemOutcome(
                    index=index,
                    id=t.id,
                    status=o.result["code"],
                    problem=rejection(o.result).body(),
                )
            )
    positions = [o.position for o in outcomes if o.position]
    return BatchOut(linked=False, results=items, position=max(positions) if positions else None)


@router.post(
    "/account-batches",
    status_code=201,
    response_model=AccountBatchOut,
    responses=_created(AccountBatchOut),
    summary="Open many accounts; linked chains: all succeed or none does",
)
async def create_account_batch(
    body: AccountBatchIn, request: Request, response: Response, _: Any = Operator
) -> AccountBatchOut:
    """TigerBeetle's `create_accounts`: every account gets its own outcome, in order.

    An account with `flags.linked` is chained to the next one (a chain is applied whole or
    not at all: the failing account names its rule, the others `linked_event_failed`; a
    chain left open by the last account is `linked_event_chain_open`). `linked: true` makes
    the whole batch one chain, and a failure of it answers **409** `linked_event_failed`
    with every item's outcome in `results`. `flags.imported` accounts carry their
    `timestamp` (a batch imports all its accounts or none). Ids are idempotency keys: an
    account that exists as given answers `exists`."""
    n = len(body.accounts)
    cmds = tuple(
        _account_cmd(a).model_copy(update={"linked": i < n - 1}) if body.linked else _account_cmd(a)
        for i, a in enumerate(body.accounts)
    )
    outcome = await _run(request, accounts_command(CreateAccounts(accounts=cmds)))
    if not outcome.accepted:  # pragma: no cover - a batch of accounts is always answered
        raise rejection(outcome.result)
    position = outcome.position
    items = [
        AccountItemOutcome(
            index=r["index"],
            id=r["id"],
            status=r["status"],
            account=account_out(r["account"], position or 0) if "account" in r else None,
            problem=rejection(r["problem"]).body() if "problem" in r else None,
        )
        for r in outcome.result["results"]
    ]
    if body.linked and any(i.status not in ("created", "exists") for i in items):
        failed = next(
            i for i in items if i.status not in ("created", "exists", "linked_event_failed")
        )
        raise Problem(
            409,
            "linked_event_failed",
            f"account {failed.id} (index {failed.index}) failed with {failed.status}; no "
            "account of the linked batch was applied",
            failed_index=failed.index,
            failed_code=failed.status,
            linked=True,
            results=[i.model_dump(exclude_none=True) for i in items],
            position=position,
        )
    _created_or_replayed(response, outcome)
    return AccountBatchOut(linked=body.linked, results=items, position=position)


def _batch_failed(
    result: dict[str, Any], items: list[ItemOutcome], position: int | None
) -> Problem:
    index = int(result.get("failed_index", 0))
    code = str(result.get("failed_code", "linked_event_failed"))
    return Problem(
        409,
        "linked_event_failed",
        f"transfer {items[index].id} (index {index}) failed with {code}; no transfer of the "
        "linked batch was applied",
        failed_index=index,
        failed_code=code,
        linked=True,
        results=[i.model_dump(exclude_none=True) for i in items],
        position=position,
    )


@router.post(
    "/transfers/{transfer_id}/post",
    response_model=TransferOut,
    responses=PATH_COMMAND_RESPONSES,
    summary="Post a pending transfer, in full or in part",
)
async def post_transfer(
    transfer_id: Annotated[IdParam, Path()],
    request: Request,
    response: Response,
    body: PostIn | None = None,
    _: Any = Operator,
) -> TransferOut:
    """Post a pending transfer: move all of its amount, or the `amount` given (the rest is
    released). A transfer is posted or voided once."""
    cmd = PostPendingTransfer(transfer_id=transfer_id, amount=body.amount if body else None)
    outcome = await _run(request, post_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result, target_in_path=True)
    response.status_code = 200
    return transfer_out(outcome.result["transfer"], outcome.position or 0)


@router.post(
    "/transfers/{transfer_id}/void",
    response_model=TransferOut,
    responses=PATH_COMMAND_RESPONSES,
    summary="Void a pending transfer",
)
async def void_transfer(
    transfer_id: Annotated[IdParam, Path()], request: Request, _: Any = Operator
) -> TransferOut:
    """Void a pending transfer: release all of its reserved amount."""
    outcome = await _run(request, void_command(VoidPendingTransfer(transfer_id=transfer_id)))
    if not outcome.accepted:
        raise rejection(outcome.result, target_in_path=True)
    return transfer_out(outcome.result["transfer"], outcome.position or 0)


@router.post(
    "/transfers/{transfer_id}/reverse",
    status_code=201,
    response_model=TransferOut,
    responses={**_created(TransferOut), **problem_responses(404)},
    summary="Reverse a posted transfer",
)
async def reverse_transfer(
    transfer_id: Annotated[IdParam, Path()],
    body: ReverseIn,
    request: Request,
    response: Response,
    caller: Caller = OperatorCaller,
) -> TransferOut:
    """Create the reversing transfer of a posted one: the same amount with the debit and
    credit accounts swapped, linked to the original both ways (its `reverses_id`; the
    original's `reversal_id`), with the reason and the key that asked. A transfer is reversed
    once (`transfer_already_reversed`); a pending transfer is voided instead
    (`pending_transfer_cannot_be_reversed`), and a void moved nothing
    (`void_transfer_cannot_be_reversed`). The reversal obeys every rule of a transfer (for
    example `exceeds_credits` when the money has moved on); such a refusal is not recorded."""
    cmd = ReverseTransfer(
        transfer_id=transfer_id,
        reversal_id=body.id or 0,
        reason=body.reason,
        by=caller.key_id or caller.role,
    )
    outcome = await _run(request, reverse_command(cmd))
    if not outcome.accepted:
        code = outcome.result.get("code")
        raise rejection(outcome.result, target_in_path=code == "transfer_not_found")
    _created_or_replayed(response, outcome)
    return transfer_out(outcome.result["transfer"], outcome.position or 0)


QUERY_RESPONSES = QUERY_ERRORS


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    services = request.app.state.services
    with services.store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


@router.get(
    "/accounts",
    response_model=AccountPage,
    responses=QUERY_RESPONSES,
    summary="Accounts in id order, by ledger and code",
)
async def list_accounts(
    request: Request,
    ledger: Annotated[LedgerParam | None, Query()] = None,
    code: Annotated[CodeParam | None, Query()] = None,
    limit: Annotated[PageLimit, Query()] = 50,
    cursor: Annotated[IdParam | None, Query(description="the last id of the previous page")] = None,
    reversed: Annotated[bool, Query(description="newest ids first")] = False,
    user_data_128: Annotated[UInt128 | None, Query()] = None,
    user_data_64: Annotated[UInt64 | None, Query()] = None,
    user_data_32: Annotated[UInt32 | None, Query()] = None,
    timestamp_min: Annotated[Position | None, Query(description="opened at or after, ns")] = None,
    timestamp_max: Annotated[Position | None, Query(description="opened at or before, ns")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> AccountPage:
    """Accounts in id order (`reversed`: highest first), by ledger, code, user data and the
    time they were opened (`timestamp_min`, `timestamp_max`, inclusive; TigerBeetle's
    `query_accounts`), a page at a time (`next_cursor`)."""
    await wait_for_position(request, min_position)
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.list_accounts,
        ledger=ledger,
        code=code,
        after_id=cursor,
        limit=limit + 1,
        reversed_order=reversed,
        user_data={
            "user_data_128": user_data_128,
            "user_data_64": user_data_64,
            "user_data_32": user_data_32,
        },
        timestamp_min=timestamp_min,
        timestamp_max=timestamp_max,
    )
    items = [account_out(_row_account(r), int(r["last_position"])) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1]["account_id"]) if len(rows) > limit else None
    return AccountPage(items=items, next_cursor=next_cursor)


class TransferPage(BaseModel):
    items: list[TransferOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


_CURSOR = re.compile(r"^(0|[1-9][0-9]{0,18})-([1-9][0-9]{0,38})$")


def _after(cursor: str | None) -> tuple[int, int] | None:
    """The (timestamp, position) a page cursor names: the page goes on after it."""
    if cursor is None:
        return None
    match = _CURSOR.match(cursor)
    assert match is not None  # the query's pattern checked it
    return int(match.group(1)), int(match.group(2))


@router.get(
    "/transfers",
    response_model=TransferPage,
    responses=QUERY_RESPONSES,
    summary="Transfers by user data, ledger, code and time (TigerBeetle's query_transfers)",
)
async def query_transfers(
    request: Request,
    user_data_128: Annotated[UInt128 | None, Query()] = None,
    user_data_64: Annotated[UInt64 | None, Query()] = None,
    user_data_32: Annotated[UInt32 | None, Query()] = None,
    ledger: Annotated[LedgerParam | None, Query()] = None,
    code: Annotated[CodeParam | None, Query()] = None,
    timestamp_min: Annotated[Position | None, Query(description="ns since the epoch")] = None,
    timestamp_max: Annotated[Position | None, Query(description="ns since the epoch")] = None,
    limit: Annotated[PageLimit, Query()] = 50,
    reversed: Annotated[bool, Query(description="newest first")] = False,
    cursor: Annotated[
        str | None,
        Query(pattern=_CURSOR.pattern, description="`next_cursor` of the previous page"),
    ] = None,
    account_id: Annotated[
        IdParam | None, Query(description="only transfers that debit or credit this account")
    ] = None,
    debits: Annotated[bool, Query(description="with account_id: those that debit it")] = True,
    credits: Annotated[bool, Query(description="with account_id: those that credit it")] = True,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> TransferPage:
    """Transfers whose fields equal every filter given, in time order (`reversed`: newest
    first), between `timestamp_min` and `timestamp_max` (inclusive; the transfers' own
    timestamps), a page at a time (`next_cursor`). With `account_id`, TigerBeetle's
    `get_account_transfers`: the account's transfers on the sides asked (`debits`,
    `credits`; neither: none)."""
    await wait_for_position(request, min_position)
    after = _after(cursor)
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.query_transfers,
        user_data={
            "user_data_128": user_data_128,
            "user_data_64": user_data_64,
            "user_data_32": user_data_32,
        },
        ledger=ledger,
        code=code,
        timestamp_min=timestamp_min,
        timestamp_max=timestamp_max,
        after=after,
        limit=limit + 1,
        reversed_order=reversed,
        account_id=account_id,
        debits=debits,
        credits=credits,
    )
    items = [transfer_out(_row_transfer(r), int(r["last_position"])) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = f"{last['created_at_ns']}-{last['transfer_id']}" if last else None
    return TransferPage(items=items, next_cursor=next_cursor)


@router.get(
    "/accounts/{account_id}",
    response_model=AccountOut,
    responses=QUERY_RESPONSES,
    summary="An account and its balances, now or at a past position or time",
)
async def get_account(
    account_id: Annotated[IdParam, Path()],
    request: Request,
    as_of_position: Annotated[Position | None, Query()] = None,
    as_of: Annotated[str | None, Query(description="RFC 3339 time")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> AccountOut:
    """An account and its four balances now, or as they were at a log position
    (`as_of_position`) or a time (`as_of`, RFC 3339)."""
    if as_of_position is not None and as_of is not None:
        raise Problem(422, "conflicting_as_of", "give as_of_position or as_of, not both")
    await require_committed(request, as_of_position, "as_of_position")
    await wait_for_position(request, min_position)
    as_of_ns = parse_as_of(as_of) if as_of is not None else None
    row = await asyncio.to_thread(
        _read, request, rm.get_account, account_id, as_of_position=as_of_position, as_of_ns=as_of_ns
    )
    if row is None:
        raise Problem(
            404,
            "account_not_found",
            f"account {account_id} does not exist"
            + (" at that point" if as_of_position is not None or as_of else ""),
            account_id=account_id,
        )
    return account_out(_row_account(row), int(row.get("as_of_position", row["last_position"])))


@router.get(
    "/accounts/{account_id}/transfers",
    response_model=HistoryPage,
    responses=QUERY_RESPONSES,
    summary="The account's transfers, newest first",
)
async def list_account_transfers(
    account_id: Annotated[IdParam, Path()],
    request: Request,
    limit: Annotated[PageLimit, Query()] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,19}$")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> HistoryPage:
    """Every change to the account's balances, newest first, with its transfer and the
    balances right after it."""
    await wait_for_position(request, min_position)
    account = await asyncio.to_thread(_read, request, rm.get_account, account_id)
    if account is None:
        raise Problem(
            404, "account_not_found", f"account {account_id} does not exist", account_id=account_id
        )
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.account_transfers,
        account_id,
        before_position=int(cursor) if cursor else None,
        limit=limit + 1,
    )
    cur = account["currency"]
    items = [
        HistoryItem(
            position=r["position"],
            change=r["change"],
            transfer=transfer_out(
                _row_transfer(
                    {
                        k: r[k]
                        for k in r
                        if k
                        not in {
                            "position",
                            "change",
                            "recorded_at_ns",
                            "debits_pending",
                            "debits_posted",
                            "credits_pending",
                            "credits_posted",
                        }
                    }
                ),
                r["last_position"],
            )
            if r.get("transfer_id") is not None
            else None,
            balances_after=Balances(
                debits_pending=_fmt(r["debits_pending"], cur),
                debits_posted=_fmt(r["debits_posted"], cur),
                credits_pending=_fmt(r["credits_pending"], cur),
                credits_posted=_fmt(r["credits_posted"], cur),
            ),
        )
        for r in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1]["position"]) if len(rows) > limit else None
    return HistoryPage(items=items, next_cursor=next_cursor)


class BalanceAfter(BaseModel):
    transfer_id: str = Field(description="the transfer that changed the balances")
    timestamp: str = Field(description="its time, ns since the epoch")
    balances: Balances = Field(description="the account's balances right after it")
    position: int


class BalancesPage(BaseModel):
    items: list[BalanceAfter]


@router.get(
    "/accounts/{account_id}/balances",
    response_model=BalancesPage,
    responses=QUERY_RESPONSES,
    summary="The account's balances after each of its transfers (TigerBeetle's "
    "get_account_balances)",
)
async def account_balances(
    account_id: Annotated[IdParam, Path()],
    request: Request,
    user_data_128: Annotated[UInt128 | None, Query()] = None,
    user_data_64: Annotated[UInt64 | None, Query()] = None,
    user_data_32: Annotated[UInt32 | None, Query()] = None,
    code: Annotated[CodeParam | None, Query()] = None,
    timestamp_min: Annotated[Position | None, Query(description="ns since the epoch")] = None,
    timestamp_max: Annotated[Position | None, Query(description="ns since the epoch")] = None,
    debits: Annotated[bool, Query(description="after transfers that debit it")] = True,
    credits: Annotated[bool, Query(description="after transfers that credit it")] = True,
    limit: Annotated[PageLimit, Query()] = 50,
    reversed: Annotated[bool, Query(description="newest first")] = False,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> BalancesPage:
    """For an account opened with `flags.history`: its four balances right after each of its
    transfers that match the filters (the transfer's user data and code, its time between
    `timestamp_min` and `timestamp_max`, the sides asked), in time order. An account without
    `history` answers no items, as in TigerBeetle; every account's full history of changes is
    `GET /v1/accounts/{id}/transfers`."""
    await wait_for_position(request, min_position)
    account = await asyncio.to_thread(_read, request, rm.get_account, account_id)
    if account is None:
        raise Problem(
            404, "account_not_found", f"account {account_id} does not exist", account_id=account_id
        )
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.account_balances,
        account_id,
        user_data={
            "user_data_128": user_data_128,
            "user_data_64": user_data_64,
            "user_data_32": user_data_32,
        },
        code=code,
        timestamp_min=timestamp_min,
        timestamp_max=timestamp_max,
        debits=debits,
        credits=credits,
        limit=limit,
        reversed_order=reversed,
    )
    cur = account["currency"]
    return BalancesPage(
        items=[
            BalanceAfter(
                transfer_id=str(r["transfer_id"]),
                timestamp=str(r["timestamp"]),
                balances=_balances(
                    (
                        r["debits_pending"],
                        r["debits_posted"],
                        r["credits_pending"],
                        r["credits_posted"],
                    ),
                    cur,
                ),
                position=r["position"],
            )
            for r in rows
        ]
    )


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferOut,
    responses=QUERY_RESPONSES,
    summary="A transfer",
)
async def get_transfer(
    transfer_id: Annotated[IdParam, Path()],
    request: Request,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> TransferOut:
    """A transfer: its accounts, amount, state (pending, posted, voided, expired), flags, the
    reversal link (`reverses_id` on a reversal, `reversal_id` on the transfer it reversed)
    and the position of its latest event. A transfer that failed for a reason that depends on
    the ledger's state answers 404 with `failed_code`: its id is spent."""
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rm.get_transfer, transfer_id)
    if row is None:
        failed = await asyncio.to_thread(_read, request, rm.get_failed_transfer, transfer_id)
        if failed is not None:
            # A failed id is spent (it answers id_already_failed): say so where one looks.
            raise Problem(
                404,
                "transfer_not_found",
                f"transfer {transfer_id} failed with {failed['code']}; its id is spent",
                transfer_id=transfer_id,
                failed_code=failed["code"],
                failed_position=failed["position"],
            )
        raise Problem(
            404,
            "transfer_not_found",
            f"transfer {transfer_id} does not exist",
            transfer_id=transfer_id,
        )
    return transfer_out(_row_transfer(row), row["last_position"])


class ChangeEventAccount(BaseModel):
    id: int
    balances: Balances = Field(description="its balances right after the event")
    closed: bool = Field(description="whether it was closed right after the event")


class ChangeEventOut(BaseModel):
    type: Literal[
        "single_phase",
        "two_phase_pending",
        "two_phase_posted",
        "two_phase_voided",
        "two_phase_expired",
    ]
    timestamp: str = Field(description="the event's time, ns since the epoch")
    transfer_id: str | None = Field(
        description="the transfer of the event; none for an expiry, or for a post or void made "
        "without an id of its own (`/transfers/{id}/post|void`)"
    )
    pending_id: str | None = Field(
        description="the pending transfer a post, void or expiry settles"
    )
    amount: str = Field(
        description="moved or reserved; posted (a post); released (a void or an expiry)"
    )
    ledger: int
    currency: str
    code: int = Field(description="the transfer's (the pending transfer's, for an expiry)")
    user_data_128: str | None = None
    user_data_64: str | None = None
    user_data_32: int | None = None
    debit_account: ChangeEventAccount
    credit_account: ChangeEventAccount
    position: int = Field(description="the log position of the event's debit side")


class ChangeEventPage(BaseModel):
    items: list[ChangeEventOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


def change_event_out(event: dict[str, Any]) -> ChangeEventOut:
    cur = event["currency"]

    def side(account: dict[str, Any]) -> ChangeEventAccount:
        return ChangeEventAccount(
            id=account["account_id"],
            balances=_balances(
                (
                    account["debits_pending"],
                    account["debits_posted"],
                    account["credits_pending"],
                    account["credits_posted"],
                ),
                cur,
            ),
            closed=account["closed"],
        )

    return ChangeEventOut(
        type=event["type"],
        timestamp=str(event["timestamp"]),
        transfer_id=str(event["transfer_id"]) if event["transfer_id"] is not None else None,
        pending_id=str(event["pending_id"]) if event["pending_id"] else None,
        amount=_fmt(event["amount"], cur),
        ledger=event["ledger"],
        currency=cur,
        code=event["code"],
        **_user_data(event),
        debit_account=side(event["debit_account"]),
        credit_account=side(event["credit_account"]),
        position=event["position"],
    )


@router.get(
    "/change-events",
    response_model=ChangeEventPage,
    responses=QUERY_RESPONSES,
    summary="Every balance-changing event in time order (TigerBeetle's get_change_events)",
)
async def change_events(
    request: Request,
    timestamp_min: Annotated[
        Position | None, Query(description="at or after, ns since the epoch; 0: unbounded")
    ] = None,
    timestamp_max: Annotated[
        Position | None, Query(description="at or before, ns since the epoch; 0: unbounded")
    ] = None,
    limit: Annotated[PageLimit, Query()] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=_CURSOR.pattern, description="`next_cursor` of the previous page"),
    ] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> ChangeEventPage:
    """One record per event that changed balances: a single-phase transfer, a pending one,
    and the post, void or expiry of a pending one, in time order (then log position), between
    `timestamp_min` and `timestamp_max` (inclusive; 0 or absent: unbounded, as in
    TigerBeetle), a page at a time (`next_cursor`). Each carries the transfer, its amount,
    and the debit and the credit account with their balances and `closed` flag right after
    the event."""
    await wait_for_position(request, min_position)
    after = _after(cursor)
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.change_events,
        timestamp_min=timestamp_min or None,
        timestamp_max=timestamp_max or None,
        after=after,
        limit=limit + 1,
    )
    items = [change_event_out(r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = f"{last['timestamp']}-{last['position']}" if last else None
    return ChangeEventPage(items=items, next_cursor=next_cursor)


@router.get(
    "/ledgers/{ledger}/trial-balance",
    response_model=TrialBalanceOut,
    responses=QUERY_RESPONSES,
    summary="Sums of every balance per currency",
)
async def trial_balance(
    ledger: Annotated[LedgerParam, Path()],
    request: Request,
    as_of_position: Annotated[Position | None, Query()] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> TrialBalanceOut:
    """Per currency on the ledger: the sums of every account's balances, and whether debits
    equal credits (they always do; this is how you check)."""
    await require_committed(request, as_of_position, "as_of_position")
    await wait_for_position(request, min_position)
    rows = await asyncio.to_thread(
        _read, request, rm.trial_balance, ledger, as_of_position=as_of_position
    )
    position = (
        as_of_position
        if as_of_position is not None
        else (request.app.state.services.extra["applied_position"]())
    )
    return TrialBalanceOut(
        ledger=ledger,
        position=position,
        lines=[
            TrialBalanceLine(
                currency=r["currency"],
                accounts=r["accounts"],
                debits_pending=_fmt(r["debits_pending"], r["currency"]),
                debits_posted=_fmt(r["debits_posted"], r["currency"]),
                credits_pending=_fmt(r["credits_pending"], r["currency"]),
                credits_posted=_fmt(r["credits_posted"], r["currency"]),
                balanced=r["debits_posted"] == r["credits_posted"]
                and r["debits_pending"] == r["credits_pending"],
            )
            for r in rows
        ],
    )


# ------------------------------------------------------------------ period close and the chart


_NS_MAX = 9 * 10**18  # a round bound below 2^63-1 that a double holds exactly


def _ns_range(value: int) -> int:
    if not 1 <= value <= _NS_MAX:
        raise ValueError(f"must be between 1 and {_NS_MAX}")
    return value


TimestampNs = Annotated[
    int,
    BeforeValidator(_parse_uint),
    AfterValidator(_ns_range),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": _NS_MAX},
                {"type": "string", "pattern": r"^[1-9][0-9]{0,17}$"},
            ],
            "description": "nanoseconds since the Unix epoch",
        }
    ),
]


class PeriodCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    through_ns: TimestampNs = Field(
        description="the period's end (inclusive), ns since the epoch: it must have passed",
        examples=[1775001599999999999],
    )
    equity_account_id: Id128 = Field(description="the equity account that takes the result")
    code: Code = Field(description="the code of the closing transfers")


class PeriodCloseOut(BaseModel):
    ledger: int
    period: int = Field(description="the number of the period closed (1, 2, ...)")
    through_ns: str
    equity_account_id: str
    transfers: list[TransferOut] = Field(description="the closing transfers, one linked batch")
    position: int


@router.post(
    "/ledgers/{ledger}/period-closes",
    status_code=201,
    response_model=PeriodCloseOut,
    responses=_created(PeriodCloseOut),
    summary="Close the books of a period",
)
async def close_period(
    ledger: Annotated[LedgerParam, Path()],
    body: PeriodCloseIn,
    request: Request,
    response: Response,
    _: Any = Operator,
) -> PeriodCloseOut:
    """Close the ledger's books through `through_ns`: the posted balance of every income and
    expense account moves to the equity account, as one linked batch of transfers dated at the
    period's end. From then on an import dated in the period is refused
    (`imported_event_timestamp_in_closed_period`). Refusals, in order: `period_must_have_ended`,
    `period_already_closed`, `equity_account_not_found`, `equity_account_must_be_equity`,
    `period_has_later_activity` (an account of the close changed after the period's end),
    `currency_must_match`; then the rules of each closing transfer. The same close again
    answers 200 with the first outcome."""
    cmd = ClosePeriod(
        ledger=ledger,
        through_ns=body.through_ns,
        equity_account_id=body.equity_account_id,
        code=body.code,
    )
    outcome = await _run(request, close_period_command(cmd))
    if not outcome.accepted:
        raise rejection(outcome.result)
    _created_or_replayed(response, outcome)
    position = outcome.position or 0
    result = outcome.result
    return PeriodCloseOut(
        ledger=ledger,
        period=result["period"],
        through_ns=str(result["through_ns"]),
        equity_account_id=str(result["equity_account_id"]),
        transfers=[transfer_out(t, position) for t in result["transfers"]],
        position=position,
    )


class ChartNode(BaseModel):
    id: str
    parent_id: str | None
    account_type: str | None
    name: str | None
    currency: str
    code: int
    balances: Balances = Field(description="the account's own balances")
    rollup: Balances = Field(description="its own balances plus every descendant's")
    children: list[str]


class TypeTotal(BaseModel):
    account_type: str = Field(description='the type of the accounts ("" when they have none)')
    currency: str
    accounts: int
    debits_pending: str
    debits_posted: str
    credits_pending: str
    credits_posted: str


class ChartOut(BaseModel):
    ledger: int
    position: int
    nodes: list[ChartNode] = Field(description="every account of the ledger, in id order")
    trial_balance: list[TypeTotal] = Field(description="sums of the balances per type")
    balanced: bool = Field(description="posted debits equal posted credits in every currency")


def _balances(values: tuple[int, int, int, int], currency: str) -> Balances:
    dp, dpo, cp, cpo = values
    return Balances(
        debits_pending=_fmt(dp, currency),
        debits_posted=_fmt(dpo, currency),
        credits_pending=_fmt(cp, currency),
        credits_posted=_fmt(cpo, currency),
    )


def chart_of(rows: list[dict[str, Any]]) -> tuple[list[ChartNode], list[TypeTotal], bool]:
    """Roll-ups (each node: its own balances plus its descendants') and the totals per type."""
    fields = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
    own: dict[int, chart_rules.Balances] = {
        int(r["account_id"]): (
            int(r[fields[0]]),
            int(r[fields[1]]),
            int(r[fields[2]]),
            int(r[fields[3]]),
        )
        for r in rows
    }
    parents = {int(r["account_id"]): int(r["parent_id"] or 0) for r in rows}
    rolled = chart_rules.rollups(own, parents)
    children = chart_rules.children_of(own, parents)
    nodes = []
    by_type: dict[tuple[str, str], list[int]] = {}
    per_currency: dict[str, list[int]] = {}
    for r in rows:
        account_id, cur = int(r["account_id"]), r["currency"]
        nodes.append(
            ChartNode(
                id=str(account_id),
                parent_id=str(r["parent_id"]) if r["parent_id"] else None,
                account_type=r["account_type"] or None,
                name=r["name"] or None,
                currency=cur,
                code=r["code"],
                balances=_balances(own[account_id], cur),
                rollup=_balances(rolled[account_id], cur),
                children=[str(c) for c in children[account_id]],
            )
        )
        line = by_type.setdefault((r["account_type"] or "", cur), [0, 0, 0, 0, 0])
        line[0] += 1
        for k, v in enumerate(own[account_id]):
            line[k + 1] += v
        cur_sum = per_currency.setdefault(cur, [0, 0])
        cur_sum[0] += own[account_id][1]
        cur_sum[1] += own[account_id][3]
    totals = [
        TypeTotal(
            account_type=account_type,
            currency=cur,
            accounts=line[0],
            debits_pending=_fmt(line[1], cur),
            debits_posted=_fmt(line[2], cur),
            credits_pending=_fmt(line[3], cur),
            credits_posted=_fmt(line[4], cur),
        )
        for (account_type, cur), line in sorted(by_type.items())
    ]
    return nodes, totals, all(d == c for d, c in per_currency.values())


@router.get(
    "/charts/{ledger}",
    response_model=ChartOut,
    responses=QUERY_RESPONSES,
    summary="The chart of accounts with roll-up balances, and the trial balance by type",
)
async def chart(
    ledger: Annotated[LedgerParam, Path()],
    request: Request,
    as_of_position: Annotated[Position | None, Query()] = None,
    as_of: Annotated[str | None, Query(description="RFC 3339 time")] = None,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> ChartOut:
    """Every account of the ledger as a node of its chart (its type, parent and name) with
    its own balances and its roll-up (its own plus every descendant's), now, at a log
    position (`as_of_position`) or at a time (`as_of`, RFC 3339: imported history counts at
    its own timestamps); and the trial balance grouped by type and currency."""
    if as_of_position is not None and as_of is not None:
        raise Problem(422, "conflicting_as_of", "give as_of_position or as_of, not both")
    await require_committed(request, as_of_position, "as_of_position")
    await wait_for_position(request, min_position)
    as_of_ns = parse_as_of(as_of) if as_of is not None else None
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.chart_accounts,
        ledger,
        as_of_position=as_of_position,
        as_of_ns=as_of_ns,
    )
    nodes, totals, balanced = chart_of(rows)
    position = (
        as_of_position
        if as_of_position is not None
        else request.app.state.services.extra["applied_position"]()
    )
    return ChartOut(
        ledger=ledger, position=position, nodes=nodes, trial_balance=totals, balanced=balanced
    )
