"""HTTP routes of reconciliation: bank statements matched against a nostro account.

``POST /v1/reconciliations`` takes a statement (CAMT.053 XML or the documented CSV, as text)
and the ledger account it belongs to, reads the account's postings from the ledger's read
model once it has caught up with every committed write, and records the reconciliation.
``GET /v1/reconciliations/{id}`` answers its counts, balance checks and items (the breaks with
``?status=``), ``GET /v1/reconciliations`` lists them. Amounts are signed decimal strings in
major units (money in positive); a statement the rules refuse is 409 with the rule's code.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.ledger_routes import wait_for_position
from api.problems import COMMAND_ERRORS, QUERY_ERRORS, Problem
from api.security import OPERATORS, READERS, require
from api.types import Id128, IdParam, PageLimit, Position
from commands import reconciliation as rc
from domain.money import format_major, is_currency
from domain.reconciliation import errors as re_errors
from domain.reconciliation import service
from domain.reconciliation.formats import parse_statements
from domain.reconciliation.matching import MAX_TOLERANCE_DAYS, STATUSES
from domain.reconciliation.statement import Statement
from readmodels import reconciliation as rm

router = APIRouter(prefix="/v1", tags=["reconciliation"])
Operator = Depends(require(OPERATORS))
Reader = Depends(require(READERS))
MAX_STATEMENT_CHARS = 16_000_000
ID_MAX = 2**128 - 2
RID_PATH = Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex digits")
Status = Literal["matched", "amount_break", "date_break", "unmatched_statement", "unmatched_ledger"]


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    statement: str = Field(
        min_length=1,
        max_length=MAX_STATEMENT_CHARS,
        description="the statement file's text: CAMT.053 XML (.02 to .08) or CSV with the "
        "columns date, amount, currency, direction, reference, description",
    )
    format: Literal["auto", "camt.053", "csv"] = Field(
        "auto", description="auto: XML if the text starts with '<', otherwise CSV"
    )
    account_id: Id128 | None = Field(
        None, description="the nostro account in the ledger (for every statement in the file)"
    )
    accounts: dict[Annotated[str, Field(max_length=64)], Id128] = Field(
        default_factory=dict,
        max_length=1000,
        description="the bank's account identifier (IBAN or other id, as in the statement) -> "
        "ledger account id, for files with several accounts' statements",
    )
    date_tolerance_days: int = Field(
        service.DEFAULT_TOLERANCE_DAYS,
        ge=0,
        le=MAX_TOLERANCE_DAYS,
        strict=True,
        description="business days a value date may differ from the ledger's for a match",
    )


class ReconcileOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str
    reconciliations: list[dict[str, Any]]
    position: int | None


class QueryOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    position: int | None = None


def _problem(exc: re_errors.ReconciliationRejection) -> Problem:
    extra = {k: _jsonable(v) for k, v in exc.ids.items()}
    return Problem(409, exc.code, exc.detail, **extra)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _account_of(statement: Statement, body: ReconcileIn) -> int:
    if statement.account and statement.account in body.accounts:
        return body.accounts[statement.account]
    if body.account_id is not None:
        return body.account_id
    text = statement.account
    if text.isascii() and text.isdigit() and 0 < int(text) <= ID_MAX:
        return int(text)
    raise re_errors.StatementAccountRequired(
        f"no ledger account for the statement {statement.statement_id or '(csv)'} of bank "
        f"account {statement.account or '(none)'}: give account_id or accounts",
        statement_id=statement.statement_id,
        bank_account=statement.account,
    )


def _facts(
    request: Request, statement: Statement, account_id: int, tolerance: int, position: int
) -> service.LedgerFacts:
    start, end = service.window(statement, tolerance)
    opening = service.day_start_ns(statement.period_from)
    closing = service.day_start_ns(statement.period_to) + service.NS_PER_DAY
    with request.app.state.services.store.datastore.get_connection() as conn:
        raw = rm.ledger_facts(conn, account_id, start, end, opening, closing)
    if raw is None:
        return service.LedgerFacts(None, position=position)
    a = raw["account"]
    return service.LedgerFacts(
        service.AccountFacts(a["account_id"], a["ledger"], a["currency"], a["account_type"]),
        tuple(
            service.Movement(
                m["transfer_id"], m["side"], m["amount"], m["at_ns"], m["user_data_128"]
            )
            for m in raw["movements"]
        ),
        raw["balances"][0],
        raw["balances"][1],
        position,
    )


@router.post(
    "/reconciliations",
    status_code=201,
    response_model=ReconcileOut,
    responses={
        200: {
            "model": ReconcileOut,
            "description": "every statement was reconciled before: the recorded results",
        },
        **COMMAND_ERRORS,
    },
    summary="Reconcile a bank statement (CAMT.053 or CSV) against a nostro account",
)
async def reconcile(
    body: ReconcileIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Parses the statement, reads the nostro account's posted transfers around the statement's
    period from the ledger (once the read model has applied every committed write), matches
    entries to transfers (exact, then tolerant rules; see the README) and records the result.

    201: recorded now. 200: the same statement (same content, account and tolerance) was
    reconciled before: its recorded result, unchanged, whatever the ledger holds now. 409: the
    statement is malformed (`statement_malformed`), not a supported format
    (`statement_format_unsupported`), names no ledger account (`statement_account_required`),
    the account does not exist (`account_not_found`) or is in another currency
    (`statement_currency_must_match`); nothing is recorded.
    """
    try:
        try:
            data = body.statement.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escaped in the JSON string
            raise re_errors.StatementMalformed("the statement is not valid Unicode") from None
        statements = parse_statements(data, body.format)
        accounts = [_account_of(s, body) for s in statements]
    except re_errors.ReconciliationRejection as exc:
        raise _problem(exc) from None
    services = request.app.state.services
    head = (await asyncio.to_thread(services.store.recorder.head)).position
    await wait_for_position(request, head)
    tolerance = body.date_tolerance_days
    facts = [
        await asyncio.to_thread(_facts, request, s, a, tolerance, head)
        for s, a in zip(statements, accounts, strict=True)
    ]
    cmd = rc.Reconcile(tuple(zip(statements, facts, strict=True)), tolerance)
    command = rc.reconcile_command(cmd)
    outcome = await asyncio.wrap_future(services.extra["processor"].submit(command))
    services.metrics.commands.labels(
        command.command_type,
        "accepted" if outcome.accepted else outcome.result.get("code", "rejected"),
    ).inc()
    if not outcome.accepted:
        result = outcome.result
        extra = {k: _jsonable(v) for k, v in result.items() if k not in {"code", "detail"}}
        raise Problem(409, str(result.get("code")), str(result.get("detail")), **extra)
    result = _jsonable(outcome.result)
    if outcome.replayed:  # the same file again: the first outcome, nothing recorded now
        for r in result["reconciliations"]:
            r["recorded"] = False
    recorded = any(r["recorded"] for r in result["reconciliations"])
    response.status_code = 201 if recorded else 200
    return {**result, "position": outcome.position}


def _fmt(amount: int | None, currency: str) -> str | None:
    if amount is None:
        return None
    return format_major(int(amount), currency) if is_currency(currency) else str(amount)


def _header(row: dict[str, Any]) -> dict[str, Any]:
    counts = row["counts"] or {}
    cur = row["currency"]
    return {
        "id": row["reconciliation_id"],
        "statement_id": row["statement_id"],
        "statement_digest": row["statement_digest"],
        "statement_format": row["statement_format"],
        "bank_account": row["bank_account"],
        "account_id": row["account_id"],
        "ledger": row["ledger"],
        "currency": cur,
        "nostro_view": row["nostro_view"],
        "period_from": row["period_from"],
        "period_to": row["period_to"],
        "entries": row["entries"],
        "date_tolerance_days": row["date_tolerance_days"],
        "ledger_position": row["ledger_position"],
        "counts": counts,
        "breaks": service.breaks(counts),
        "recorded_position": row["recorded_position"],
        "balances": [
            {
                "kind": b["kind"],
                "date": b["date"],
                "statement": _fmt(b["statement_minor"], cur),
                "ledger": _fmt(b["ledger_minor"], cur),
                "difference": _fmt(b["statement_minor"] - b["ledger_minor"], cur),
                "agrees": b["statement_minor"] == b["ledger_minor"],
            }
            for b in row.get("balances", ())
        ],
    }


def _item(row: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "status": row["status"],
        "rule": row["rule"],
        "entry": row["entry"],
        "statement_amount": _fmt(row["statement_amount_minor"], currency),
        "statement_date": row["statement_date"],
        "transfer_id": row["transfer_id"],
        "ledger_amount": _fmt(row["ledger_amount_minor"], currency),
        "ledger_date": row["ledger_date"],
        "difference": _fmt(row["difference_minor"], currency),
        "business_days": row["business_days"],
        "candidates": [int(c) for c in row["candidates"]],
    }


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with request.app.state.services.store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


@router.get(
    "/reconciliations/{reconciliation_id}",
    response_model=QueryOut,
    responses=QUERY_ERRORS,
    summary="A reconciliation: counts, balance checks, and its items or breaks",
)
async def get_reconciliation(
    request: Request,
    reconciliation_id: Annotated[str, RID_PATH],
    status: Annotated[
        list[Status] | None, Query(description="only items of these statuses")
    ] = None,
    breaks_only: Annotated[bool, Query(description="only the items that are not matched")] = False,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the reconciliation's statement, account and period, its counts per status
    (`matched`, `amount_break`, `date_break`, `unmatched_statement`, `unmatched_ledger`,
    `balance_break`), the opening and closing balance checks, and its items in order (each
    with the rule that decided it), as of at least `min_position`. 404: no such
    reconciliation.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rm.get_reconciliation, reconciliation_id)
    if row is None or not row["completed"]:
        raise Problem(
            404,
            "reconciliation_not_found",
            f"no reconciliation {reconciliation_id}",
            reconciliation_id=reconciliation_id,
        )
    wanted: list[str] = list(status or ())
    if breaks_only:
        wanted = [s for s in (wanted or STATUSES) if s != "matched"]
    items = await asyncio.to_thread(
        _read, request, rm.reconciliation_items, reconciliation_id, wanted or None
    )
    return {
        **_header(row),
        "items": [_item(i, row["currency"]) for i in items],
        "position": row["recorded_position"],
    }


@router.get(
    "/reconciliations",
    response_model=QueryOut,
    responses=QUERY_ERRORS,
    summary="Reconciliations, newest first, optionally of one account",
)
async def list_reconciliations(
    request: Request,
    account_id: Annotated[IdParam | None, Query()] = None,
    before_position: Annotated[
        Position | None, Query(description="keyset: older than this")
    ] = None,
    limit: Annotated[PageLimit, Query()] = 50,
    min_position: Annotated[Position | None, Query()] = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Lists reconciliations (newest first) with their counts and balance checks; page with
    `before_position` set to the last one's `recorded_position`.
    """
    await wait_for_position(request, min_position)
    rows = await asyncio.to_thread(
        _read,
        request,
        rm.list_reconciliations,
        account_id=account_id,
        before_position=before_position,
        limit=limit,
    )
    return {"reconciliations": [_header(r) for r in rows]}
