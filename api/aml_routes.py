"""HTTP routes of AML monitoring: ingest, reference data, rules, alerts, the graph, cases, reports.

Roles: ``operator`` ingests transactions and reference data and reads alerts and the graph
(never rules: only ``admin`` changes them); ``analyst`` works alerts and cases; ``auditor``
reads alerts, cases and reports; ``admin`` may do everything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from api.keys import Role
from api.ledger_routes import wait_for_position
from api.problems import COMMAND_ERRORS, QUERY_ERRORS, Problem, problem_responses
from api.security import (
    AML_READERS,
    ANALYSTS,
    CASE_READERS,
    OPERATORS,
    RULE_CHANGERS,
    actor,
    require,
)
from api.types import AlertLimit, CycleHops, NeighbourHops, PathHops, Position
from commands.aml import (
    MAX_BATCH,
    CaseAction,
    ChangeRule,
    LoadSanctions,
    OpenCase,
    accounts_command,
    batch_command,
    case_action_command,
    open_case_command,
    rates_command,
    rule_command,
    sanctions_command,
    transaction_command,
)
from domain.aml.sanctions import parse_json_list, parse_sdn_csv
from readmodels import aml as rm
from replay import aml_reports

router = APIRouter(prefix="/v1/aml", tags=["aml"])
Operator = Depends(require(OPERATORS))
Reader = Depends(require(AML_READERS))
Analyst = Depends(require(ANALYSTS))
CaseReader = Depends(require(CASE_READERS))
RuleChanger = Depends(require(RULE_CHANGERS))
MinPosition = Query(None, description="wait until the read model has applied this position")
NS = 1_000_000_000

# Rejection code -> HTTP status; every other rule is 409 (a request the schema allows is never
# 400 or 422: those are the body's and the schema's own refusals).
STATUS_OF = {
    "case_not_found": 404,
    "case_exists": 409,
    "case_closed": 409,
    "case_not_closed": 409,
    "case_already_escalated": 409,
    "case_not_escalated": 409,
    "sar_already_filed": 409,
    "already_assigned": 409,
    "rule_exists": 409,
    "rule_unchanged": 409,
    "unknown_rule": 404,
    "exists_with_different_payload": 409,
}


def _status(code: str) -> int:
    if code.startswith("exists_with_different_"):
        return 409
    return STATUS_OF.get(code, 409)


def _problem(result: dict[str, Any]) -> Problem:
    code = str(result.get("code", "rejected"))
    extra = {k: v for k, v in result.items() if k not in {"code", "detail"}}
    return Problem(_status(code), code, str(result.get("detail", code)), **extra)


async def _run(request: Request, command: Any) -> Any:
    services = request.app.state.services
    outcome = await asyncio.wrap_future(services.extra["processor"].submit(command))
    services.metrics.commands.labels(
        command.command_type,
        outcome.result.get("status", "accepted")
        if outcome.accepted
        else outcome.result.get("code", "rejected"),
    ).inc()
    if not outcome.accepted:
        raise _problem(outcome.result)
    return outcome


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with request.app.state.services.store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


def _applied(request: Request) -> int:
    return int(request.app.state.services.extra["applied_position"]())


# ------------------------------------------------------------------ models


class TransactionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class AccountsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class RatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rates: dict[str, str] = Field(min_length=1, description='USD per unit: {"EUR": "1.0842"}')
    source: str = ""


class RuleChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1)
    detector: str | None = Field(None, description="define a new rule running this detector")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool | None = None
    weight: int | None = Field(None, ge=0, le=100)


class SanctionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = ""
    entries: list[dict[str, Any]] | None = None
    sdn_csv: str | None = Field(None, description="OFAC SDN.CSV content")


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str = Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")
    alert_ids: list[str] = Field(min_length=1)
    title: str = ""


class CaseActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=128)
    action: str = Field(
        description="assign, note, evidence, add_alerts, escalate, close, reopen, file_sar"
    )
    assignee: str = ""
    text: str = Field("", description="the note, or the reason, or the SAR narrative")
    kind: str = ""
    reference: str = ""
    sha256: str = ""
    disposition: str = ""
    alert_ids: list[str] = Field(default_factory=list)
    filing_reference: str = ""
    details: dict[str, Any] = Field(default_factory=dict)


# ------------------------------------------------------------------ ingest and reference data


# Writes answer 201 when they changed something and 200 for a retry or an unchanged record; a
# body that is not readable JSON text (not UTF-8, say) is FastAPI's 400 problem.
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "a retry with the same body, or nothing to change"},
    **COMMAND_ERRORS,
    **problem_responses(404),
}
QUERY_RESPONSES = QUERY_ERRORS


# A report is JSON, or HTML with ?format=html.
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the draft", "content": {"application/json": {}, "text/html": {}}},
    **QUERY_RESPONSES,
}


def _created(response: Response, outcome: Any, created: bool) -> None:
    response.status_code = 201 if created and not outcome.replayed else 200


@router.post(
    "/transactions",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Ingest one transaction (idempotent by id)",
)
async def post_transaction(
    body: dict[str, Any], request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Record one transaction from outside the ledger (card, ACH, instant, wire, cash) for
    monitoring. The body has `id`, `timestamp` (RFC 3339 business time), `from_account`,
    `to_account`, `amount` (decimal string), `currency`, `channel`, `kind`, `from_country`,
    `to_country`, and for cash `conducted_by` and `branch`; unknown fields are kept. A retry
    with the same body answers 200; the same id with another body is 409
    `exists_with_different_<field>`; a refused field is 409 naming the rule."""
    if not isinstance(body.get("id"), str | int) or isinstance(body.get("id"), bool):
        raise Problem(409, "invalid_transaction_id", "the body needs an id (string or integer)")
    outcome = await _run(request, transaction_command(body))
    item = outcome.result["results"][0]
    _created(response, outcome, item["status"] == "created")
    return {"id": item["id"], "status": item["status"], "position": outcome.position}


@router.post(
    "/transaction-batches",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Ingest many transactions; each is recorded once by its id",
)
async def post_transaction_batch(
    body: TransactionsIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Record many transactions in one command: each is recorded once by its id, and the
    answer lists every item's outcome in order (`created`, the first outcome again for a
    retry, or the code of the rule that refused it); the valid items are recorded."""
    outcome = await _run(request, batch_command(body.transactions))
    response.status_code = 200 if outcome.replayed else 201
    return {
        "created": outcome.result["created"],
        "results": outcome.result["results"],
        "position": outcome.position,
    }


@router.post("/accounts", status_code=201, responses=WRITE_RESPONSES, summary="A KYC record")
async def post_account(
    body: dict[str, Any], request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Record an account's KYC profile (`account`, `country`, `segment`, `business_type`,
    `opened`, `risk_rating`); detectors use it from this position on."""
    outcome = await _run(request, accounts_command([body]))
    item = outcome.result["results"][0]
    _created(response, outcome, item["status"] == "recorded")
    return {**item, "position": outcome.position}


@router.post("/account-batches", status_code=201, responses=WRITE_RESPONSES, summary="KYC records")
async def post_account_batch(
    body: AccountsIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Record many KYC profiles in one command (all or nothing)."""
    outcome = await _run(request, accounts_command(body.accounts))
    response.status_code = 200 if outcome.replayed else 201
    return {"results": outcome.result["results"], "position": outcome.position}


@router.post("/rates", status_code=201, responses=WRITE_RESPONSES, summary="Load USD rates")
async def post_rates(
    body: RatesIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Load USD conversion rates (`{"EUR": "1.0842"}`: USD per unit), in force from this
    position on; a transaction in a currency without a rate is refused (`unknown_currency`)."""
    outcome = await _run(request, rates_command(body.rates, body.source))
    _created(response, outcome, outcome.result["status"] == "loaded")
    return {**outcome.result, "position": outcome.position}


@router.post(
    "/sanctions-lists/{list_id}",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Load a version of a sanctions list (JSON entries or OFAC SDN CSV)",
)
async def post_sanctions(
    body: SanctionsIn,
    request: Request,
    response: Response,
    list_id: str = Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$"),
    _: Any = Operator,
) -> dict[str, Any]:
    """Load a new version of a sanctions list: `entries` (JSON: `uid`, `name`, `aliases`,
    `kind`, `programs`, `country`) or `sdn_csv` (the content of OFAC's SDN.CSV). Account
    holders and counterparties are screened against it by fuzzy name matching."""
    if (body.entries is None) == (body.sdn_csv is None):
        raise Problem(409, "invalid_request", "send either entries or sdn_csv")
    try:
        entries = (
            parse_sdn_csv(body.sdn_csv)
            if body.sdn_csv is not None
            else parse_json_list(body.entries)
        )
    except Exception as exc:
        raise Problem(409, "invalid_sanctions_entry", str(exc)) from None
    if not entries:
        raise Problem(409, "sanctions_list_empty", "the list holds no entries")
    cmd = LoadSanctions(list_id=list_id, source=body.source, entries=tuple(entries))
    outcome = await _run(request, sanctions_command(cmd))
    _created(response, outcome, outcome.result["status"] == "loaded")
    return {**outcome.result, "position": outcome.position}


# ------------------------------------------------------------------ rules


@router.get("/rules", summary="Every rule's current version", responses=QUERY_RESPONSES)
async def get_rules(
    request: Request, min_position: Position | None = MinPosition, _: Any = Reader
) -> dict[str, Any]:
    """Every detection rule's current version: detector, thresholds and windows (`params`),
    enabled, weight, author, reason and the position it took effect."""
    from domain.aml.rules import DEFAULT_RULES

    await wait_for_position(request, min_position)
    stored = await asyncio.to_thread(_read, request, rm.list_rules)
    rules: dict[str, Any] = {k: {**v.to_payload(), "position": 0} for k, v in DEFAULT_RULES.items()}
    for rule_id, row in stored.items():
        rules[rule_id] = {
            k: row[k]
            for k in (
                "rule_id", "detector", "version", "enabled", "weight", "params", "author",
                "reason", "position",
            )
        }  # fmt: skip
    return {"rules": rules, "position": _applied(request)}


@router.put(
    "/rules/{rule_id}",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Change (or define) a rule: a new version from this position on",
)
async def put_rule(
    body: RuleChangeIn,
    request: Request,
    response: Response,
    rule_id: str = Path(pattern=r"^[a-z0-9_]{1,64}$"),
    role: Role = RuleChanger,
) -> dict[str, Any]:
    """Change a rule (thresholds, windows, enabled, weight) or define a new one running a
    detector: a new version with its author and reason, applied from its position on (admin
    only). `request_id` makes a retry idempotent."""
    cmd = ChangeRule(
        rule_id=rule_id,
        request_id=body.request_id,
        detector=body.detector,
        params=body.params,
        enabled=body.enabled,
        weight=body.weight,
        author=actor(request, role),
        reason=body.reason,
    )
    outcome = await _run(request, rule_command(cmd))
    response.status_code = 200 if outcome.replayed else 201
    return {**outcome.result, "position": outcome.position}


# ------------------------------------------------------------------ alerts and the graph


@router.get(
    "/alerts",
    summary="Alerts, oldest first; filter by status, typology, account",
    responses=QUERY_RESPONSES,
)
async def get_alerts(
    request: Request,
    status: str | None = None,
    typology: str | None = None,
    account: str | None = None,
    after_position: Annotated[
        Position, Query(description="alerts written after this position")
    ] = 0,
    limit: Annotated[AlertLimit, Query()] = 500,
    min_position: Position | None = MinPosition,
    _: Any = Reader,
) -> dict[str, Any]:
    """Alerts in the order they were written, filtered by `status`, `typology` and `account`;
    page with `after_position` (the last alert's `position`)."""
    await wait_for_position(request, min_position)
    alerts = await asyncio.to_thread(
        _read,
        request,
        rm.list_alerts,
        status=status,
        typology=typology,
        account=account,
        after_position=after_position,
        limit=limit,
    )
    return {"alerts": alerts, "position": _applied(request)}


@router.get("/alerts/{alert_id}", summary="One alert", responses=QUERY_RESPONSES)
async def get_alert(
    request: Request, alert_id: str, min_position: Position | None = MinPosition, _: Any = Reader
) -> dict[str, Any]:
    """One alert with its rule id and version, score and features, and the transactions it
    cites (the evidence)."""
    await wait_for_position(request, min_position)
    found = await asyncio.to_thread(_read, request, rm.get_alerts, [alert_id])
    if not found:
        raise Problem(404, "alert_not_found", f"no alert {alert_id}")
    return {**found[0], "evidence": await _transactions(request, found[0]["transaction_ids"])}


async def _transactions(request: Request, tx_ids: list[str]) -> list[dict[str, Any]]:
    rows = await asyncio.to_thread(_read, request, rm.get_transactions, tx_ids)
    return [aml_reports._tx_out(r) for r in rows]


def _since_day(since: str | None) -> int:
    if not since:
        return 0
    try:
        moment = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(422, "invalid_since", f"since {since!r} is not an RFC 3339 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) // 86_400


def _edge(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "from": e["src"],
        "to": e["dst"],
        "count": int(e["tx_count"]),
        "sum_usd": aml_reports._usd(int(e["usd_minor"])),
        "first": aml_reports._iso(int(e["first_ts"])),
        "last": aml_reports._iso(int(e["last_ts"])),
    }


@router.get(
    "/graph/paths", summary="Paths of flows from one account to another", responses=QUERY_RESPONSES
)
async def get_paths(
    request: Request,
    source: str = Query(alias="from", min_length=1),
    target: str = Query(alias="to", min_length=1),
    max_hops: Annotated[PathHops, Query()] = 4,
    since: str | None = None,
    min_position: Position | None = MinPosition,
    _: Any = Reader,
) -> dict[str, Any]:
    """Paths of aggregated flows from one account to another, at most `max_hops` long,
    through flows last seen on or after `since`."""
    await wait_for_position(request, min_position)
    found = await asyncio.to_thread(
        _read, request, rm.paths, source, target, max_hops, _since_day(since)
    )
    return {
        "from": source,
        "to": target,
        "paths": [[_edge(e) for e in p] for p in found],
        "position": _applied(request),
    }


@router.get(
    "/graph/{account}",
    summary="The k-hop neighbourhood of an account, with flows",
    responses=QUERY_RESPONSES,
)
async def get_neighbourhood(
    request: Request,
    account: str,
    hops: Annotated[NeighbourHops, Query()] = 2,
    since: str | None = None,
    min_position: Position | None = MinPosition,
    _: Any = Reader,
) -> dict[str, Any]:
    """The accounts within `hops` flows of an account and the flows between them (count, sum
    in USD, first and last time), through flows last seen on or after `since`."""
    await wait_for_position(request, min_position)
    nodes, edges, truncated = await asyncio.to_thread(
        _read, request, rm.neighbourhood, account, hops, _since_day(since)
    )
    return {
        "account": account,
        "hops": hops,
        "nodes": nodes,
        "edges": [_edge(e) for e in edges],
        "truncated": truncated,
        "position": _applied(request),
    }


@router.get(
    "/graph/{account}/cycles", summary="Flows that return to an account", responses=QUERY_RESPONSES
)
async def get_cycles(
    request: Request,
    account: str,
    max_hops: Annotated[CycleHops, Query()] = 7,
    since: str | None = None,
    min_position: Position | None = MinPosition,
    _: Any = Reader,
) -> dict[str, Any]:
    """Cycles of flows that leave an account and return to it within `max_hops` hops."""
    await wait_for_position(request, min_position)
    found = await asyncio.to_thread(_read, request, rm.cycles, account, max_hops, _since_day(since))
    return {
        "account": account,
        "cycles": [[_edge(e) for e in c] for c in found],
        "position": _applied(request),
    }


# ------------------------------------------------------------------ cases and reports


@router.post("/cases", status_code=201, responses=WRITE_RESPONSES, summary="Open a case")
async def post_case(
    body: CaseIn, request: Request, response: Response, role: Role = Analyst
) -> dict[str, Any]:
    """Open a case from one or more alerts (analyst)."""
    outcome = await open_case(request, body, actor(request, role))
    response.status_code = 200 if outcome.replayed else 201
    return {**outcome.result["case"], "position": outcome.position}


async def open_case(request: Request, body: CaseIn, by: str) -> Any:
    """Open a case as ``by`` (``<role>:<key id>``): the one path to the processor that
    ``POST /v1/aml/cases`` and the console's case form share."""
    cmd = OpenCase(case_id=body.case_id, alert_ids=tuple(body.alert_ids), title=body.title, by=by)
    return await _run(request, open_case_command(cmd))


async def act_on_case(request: Request, case_id: str, body: CaseActionIn, by: str) -> Any:
    """Work a case as ``by``: the one path to the processor that
    ``POST /v1/aml/cases/{id}/actions`` and the console's case page share."""
    cmd = CaseAction(
        case_id=case_id, by=by, **{**body.model_dump(), "alert_ids": tuple(body.alert_ids)}
    )
    return await _run(request, case_action_command(cmd))


@router.post(
    "/cases/{case_id}/actions",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Assign, note, attach evidence, escalate, close, reopen or file the SAR",
)
async def post_case_action(
    body: CaseActionIn,
    request: Request,
    response: Response,
    case_id: str = Path(max_length=128, pattern=r"^[!-~]+$"),
    role: Role = Analyst,
) -> dict[str, Any]:
    """Work a case (analyst): `assign`, `note`, `evidence`, `add_alerts`, `escalate`,
    `close` (with a disposition), `reopen` or `file_sar`; every action is kept in the case's
    trail. `request_id` makes a retry idempotent."""
    outcome = await act_on_case(request, case_id, body, actor(request, role))
    response.status_code = 200 if outcome.replayed else 201
    return {**outcome.result["case"], "position": outcome.position}


@router.get("/cases", summary="Cases", responses=QUERY_RESPONSES)
async def get_cases(
    request: Request,
    status: str | None = None,
    min_position: Position | None = MinPosition,
    _: Any = CaseReader,
) -> dict[str, Any]:
    """Cases, filtered by `status`."""
    await wait_for_position(request, min_position)
    cases = await asyncio.to_thread(_read, request, rm.list_cases, status)
    return {"cases": cases, "position": _applied(request)}


@router.get(
    "/cases/{case_id}",
    summary="A case with its notes, evidence and trail",
    responses=QUERY_RESPONSES,
)
async def get_case(
    request: Request, case_id: str, min_position: Position | None = MinPosition, _: Any = CaseReader
) -> dict[str, Any]:
    """A case with its alerts, notes, evidence and trail."""
    await wait_for_position(request, min_position)
    case = await asyncio.to_thread(_read, request, rm.get_case, case_id)
    if case is None:
        raise Problem(404, "case_not_found", f"no case {case_id}")
    return {**case, "position": _applied(request)}


def _report(request: Request, fn: Any, *args: Any) -> dict[str, Any]:
    services = request.app.state.services
    with services.store.datastore.get_connection() as conn:
        try:
            result: dict[str, Any] = fn(conn, services.store.recorder, *args)
        except aml_reports.ReportError as exc:
            raise Problem(404, "report_not_available", str(exc)) from None
    return result


@router.get(
    "/cases/{case_id}/sar",
    summary="The SAR draft of a case (JSON or ?format=html)",
    responses=REPORT_RESPONSES,
)
async def get_sar(
    request: Request,
    case_id: str,
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
    min_position: Position | None = MinPosition,
    _: Any = CaseReader,
) -> Any:
    """The SAR draft of a case (subject, amounts, dates, activity, narrative skeleton), citing
    its transactions, log positions and signed checkpoint: JSON, or HTML with `format=html`."""
    await wait_for_position(request, min_position)
    report = await asyncio.to_thread(_report, request, aml_reports.sar_draft, case_id)
    if format == "html":
        return HTMLResponse(aml_reports.render_html(report))
    return report


@router.get(
    "/reports/ctr",
    summary="The CTR drafts of one business day (JSON or ?format=html)",
    responses=REPORT_RESPONSES,
)
async def get_ctr(
    request: Request,
    date: str = Query(pattern=r"^\d{4}-\d{2}-\d{2}$"),
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
    min_position: Position | None = MinPosition,
    _: Any = CaseReader,
) -> Any:
    """The CTR drafts of one business day (cash over 10,000 USD per person), citing their
    transactions, log positions and signed checkpoint: JSON, or HTML with `format=html`."""
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise Problem(422, "invalid_date", f"date {date!r} is not a calendar date") from None
    await wait_for_position(request, min_position)
    report = await asyncio.to_thread(_report, request, aml_reports.ctr_draft, date)
    if format == "html":
        return HTMLResponse(aml_reports.render_html(report))
    return report
