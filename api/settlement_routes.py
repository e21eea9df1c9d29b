"""HTTP routes of clearing and settlement: participants, schemes, obligations, cycles.

Amounts are decimal strings in major units ("12.34") on the wire, integer minor units inside.
Ids are JSON integers or canonical decimal strings, 1..2^127-1. Cycles are named
``<scheme id>-<seq>``. Every query takes ``min_position`` (read-your-writes) and
``as_of_position`` or ``as_of`` (RFC 3339) to read the state at a past point.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.ledger_routes import parse_as_of, wait_for_position
from api.problems import COMMAND_ERRORS, QUERY_ERRORS, Problem, problem_responses
from api.security import OPERATORS, READERS, require
from api.types import Id128, IdParam, Position
from commands import settlement as sc
from domain.money import format_major, is_currency
from domain.settlement.netting import efficiency, efficiency_text, fraction_text
from domain.settlement.scheme import cycle_id as make_cycle_id
from readmodels import settlement as rm
from replay.replay import position_as_of

SEQ_MAX = 2**63 - 1
Id = Id128
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
SIGNED_DECIMAL = r"^-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,18})?$"
Amount = Annotated[str, Field(pattern=SIGNED_DECIMAL, description='major units, e.g. "12.34"')]
RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
# Maps keyed by currency accept any key: a key that is not an ISO 4217 code is the rule
# ``unknown_currency`` (409), which the schema does not try to express.
AccountsByCurrency = dict[str, Id]
AmountsByCurrency = dict[str, Amount]
CYCLE_PATH = Path(pattern=r"^[1-9][0-9]{0,38}-[1-9][0-9]{0,18}$", description="<scheme>-<seq>")
IdPath = Annotated[IdParam, Path()]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParticipantIn(_In):
    id: Id
    name: Text
    accounts: AccountsByCurrency = Field(description="settlement account per currency")
    caps: AmountsByCurrency = Field(default_factory=dict, description="net debit caps")
    min_positions: AmountsByCurrency = Field(default_factory=dict)
    max_positions: AmountsByCurrency = Field(default_factory=dict)


class LimitsIn(_In):
    caps: AmountsByCurrency = Field(default_factory=dict)
    min_positions: AmountsByCurrency = Field(default_factory=dict)
    max_positions: AmountsByCurrency = Field(default_factory=dict)
    request_id: RequestId | None = None


class StatusIn(_In):
    status: Annotated[str, Field(max_length=20)]
    reason: Text = ""
    request_id: RequestId | None = None


class SchemeIn(_In):
    id: Id
    name: Text
    mode: Annotated[str, Field(max_length=10, description="dns | rtgs")]
    settlement_accounts: AccountsByCurrency = Field(description="the hub account per currency")
    cut_off_times: list[Annotated[str, Field(pattern=r"^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$")]] = Field(
        default_factory=list, max_length=48, description="UTC times of day, HH:MM[:SS]"
    )
    participants: list[Id] = Field(default_factory=list, max_length=10_000)


class AdmitIn(_In):
    participant_id: Id


class ObligationIn(_In):
    id: Id
    scheme_id: Id
    payer_id: Id
    payee_id: Id
    currency: Currency
    amount: Amount
    value_date: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")] | None = None
    reference: Text = ""
    cycle_id: Annotated[str, Field(max_length=80)] | None = None


class ObligationBatchIn(_In):
    obligations: list[ObligationIn] = Field(min_length=1, max_length=8189)


class UnwindIn(_In):
    participant_id: Id


class ReleaseIn(_In):
    request_id: RequestId | None = None


class CommandOut(BaseModel):
    """A command's outcome: what changed, and the position to read it back at."""

    model_config = ConfigDict(extra="allow")
    status: str
    position: int | None


class ItemOutcome(BaseModel):
    index: int
    id: int
    status: str = Field(description='"accepted", "queued", "released", or a rejection code')
    obligation: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[ItemOutcome]
    position: int | None


class QueryOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    position: int


# ------------------------------------------------------------------ rejection -> HTTP status


def rejection(result: dict[str, Any], not_found: frozenset[str] = frozenset()) -> Problem:
    """A recorded or refused outcome as problem+json. A request its schema allows is never
    answered 400 or 422: what the settlement rules refuse after reading it is 409 with the
    rule's code; only the command's own target named in the path (``not_found``) is 404."""
    code = str(result.get("code", "rejected"))
    extra = {k: _jsonable(v) for k, v in result.items() if k not in {"code", "detail"}}
    return Problem(
        404 if code in not_found else 409, code, str(result.get("detail", code)), **extra
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


PATH_SCHEME = frozenset({"scheme_not_found"})
PATH_CYCLE = frozenset({"scheme_not_found", "cycle_not_found"})

# ------------------------------------------------------------------ helpers

router = APIRouter(prefix="/v1", tags=["settlement"])
Operator = Depends(require(OPERATORS))
Reader = Depends(require(READERS))
COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandOut, "description": "a retry with the same body: the first outcome"},
    **COMMAND_ERRORS,
    **problem_responses(404),
}
QUERY_RESPONSES: dict[int | str, dict[str, Any]] = QUERY_ERRORS
AsOfPosition = Annotated[Position | None, Query()]
AsOf = Annotated[str | None, Query(max_length=64, description="RFC 3339 time")]
MinPosition = Annotated[Position | None, Query()]


async def _run(request: Request, command: Any) -> Any:
    services = request.app.state.services
    outcome = await asyncio.wrap_future(services.extra["processor"].submit(command))
    services.metrics.commands.labels(
        command.command_type,
        outcome.result.get("status", "accepted")
        if outcome.accepted
        else outcome.result.get("code", "rejected"),
    ).inc()
    return outcome


def _answer(
    response: Response,
    outcome: Any,
    not_found: frozenset[str] = frozenset(),
    created: bool = True,
) -> dict[str, Any]:
    if not outcome.accepted:
        raise rejection(outcome.result, not_found)
    response.status_code = 200 if outcome.replayed or not created else 201
    return {**_jsonable(outcome.result), "position": outcome.position}


def _cycle_key(cycle_id: str) -> tuple[int, int]:
    parsed = sc.parse_cycle(cycle_id)
    if parsed is None or not 0 < parsed[1] <= SEQ_MAX:
        raise Problem(404, "cycle_not_found", f"no cycle {cycle_id!r}", cycle_id=cycle_id)
    return parsed


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with request.app.state.services.store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


async def _point(
    request: Request, min_position: int | None, as_of_position: int | None, as_of: str | None
) -> int | None:
    """Wait for ``min_position``, then the position to read at (``None``: now)."""
    if as_of_position is not None and as_of is not None:
        raise Problem(422, "conflicting_as_of", "give as_of_position or as_of, not both")
    await wait_for_position(request, min_position)
    if as_of is not None:
        recorder = request.app.state.services.store.recorder
        return int(await asyncio.to_thread(position_as_of, recorder, parse_as_of(as_of)))
    return as_of_position


def _now_position(request: Request) -> int:
    return int(request.app.state.services.extra["applied_position"]())


def _fmt(amount_minor: int, currency: str) -> str:
    return format_major(int(amount_minor), currency) if is_currency(currency) else str(amount_minor)


def _seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    hours, minutes, seconds = (*parts, 0)[:3]
    if hours > 23 or minutes > 59 or seconds > 59:
        raise Problem(
            409, "cut_off_time_invalid", f"{text} is not a time of day", cut_off_time=text
        )
    return hours * 3600 + minutes * 60 + seconds


def _iso(ns: int | None) -> str | None:
    if not ns:
        return None
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ participants


@router.post(
    "/participants",
    status_code=201,
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Register a participant: settlement accounts, net debit caps, RTGS bounds",
)
async def register_participant(
    body: ParticipantIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Registers a participant with one settlement account per currency, its net debit caps and its
    RTGS position bounds. Retrying the same request id answers 200 with the first outcome; a
    different body under that id is 409.
    """
    cmd = sc.RegisterParticipant(**body.model_dump())
    return _answer(response, await _run(request, sc.register_command(cmd)))


@router.post(
    "/participants/{participant_id}/limits",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Change a participant's caps and RTGS bounds (replaces them)",
)
async def change_limits(
    participant_id: IdPath,
    body: LimitsIn,
    request: Request,
    response: Response,
    _: Any = Operator,
) -> dict[str, Any]:
    """Replaces the participant's net debit caps and RTGS bounds. Queued obligations are released
    by the next release search if the new limits allow them.
    """
    cmd = sc.ChangeLimits(
        participant_id=participant_id,
        caps=body.caps,
        min_positions=body.min_positions,
        max_positions=body.max_positions,
        request_id=body.request_id or sc.new_request_id(),
    )
    outcome = await _run(request, sc.limits_command(cmd))
    return _answer(response, outcome, frozenset({"participant_not_found"}), created=False)


@router.post(
    "/participants/{participant_id}/status",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Suspend, reinstate or declare a participant in default",
)
async def change_status(
    participant_id: IdPath,
    body: StatusIn,
    request: Request,
    response: Response,
    _: Any = Operator,
) -> dict[str, Any]:
    """Moves the participant between active, suspended and defaulted. A suspended participant's new
    obligations are refused; a defaulter can be unwound from an open or cut-off cycle.
    """
    cmd = sc.ChangeStatus(
        participant_id=participant_id,
        status=body.status,
        reason=body.reason,
        request_id=body.request_id or sc.new_request_id(),
    )
    outcome = await _run(request, sc.status_command(cmd))
    return _answer(response, outcome, frozenset({"participant_not_found"}), created=False)


@router.get(
    "/participants/{participant_id}",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="A participant: accounts, limits, status and schemes",
)
async def get_participant(
    participant_id: IdPath,
    request: Request,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the participant's settlement accounts, limits, status and the schemes it belongs to,
    as of at least `min_position`.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rm.get_participant, participant_id)
    if row is None:
        raise Problem(
            404,
            "participant_not_found",
            f"participant {participant_id} is not registered",
            participant_id=participant_id,
        )
    return {
        "id": row["participant_id"],
        "name": row["name"],
        "status": row["status"],
        "accounts": row["accounts"],
        "caps": {c: _fmt(v, c) for c, v in row["caps"].items()},
        "min_positions": {c: _fmt(v, c) for c, v in row["min_positions"].items()},
        "max_positions": {c: _fmt(v, c) for c, v in row["max_positions"].items()},
        "schemes": row["schemes"],
        "position": row["last_position"],
    }


@router.get(
    "/participants/{participant_id}/position",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="Live position in each scheme's open cycle, with cap and bound headroom",
)
async def participant_position(
    participant_id: IdPath,
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the participant's live multilateral position in each scheme's open cycle, per
    currency, with the headroom left under its cap and RTGS bounds.
    """
    point = await _point(request, min_position, as_of_position, as_of)
    participant = await asyncio.to_thread(_read, request, rm.get_participant, participant_id)
    if participant is None or (point is not None and participant["registered_position"] > point):
        raise Problem(
            404,
            "participant_not_found",
            f"participant {participant_id} is not registered"
            + (" at that point" if point is not None else ""),
            participant_id=participant_id,
        )
    rows = await asyncio.to_thread(_read, request, rm.participant_positions, participant_id, point)
    caps, mins, maxs = (
        participant["caps"],
        participant["min_positions"],
        participant["max_positions"],
    )
    positions = []
    for r in rows:
        cur = r["currency"]
        net = r["received"] - r["sent"]
        cap = caps.get(cur)
        low = mins.get(cur, 0)
        high = maxs.get(cur)
        entry: dict[str, Any] = {
            "scheme_id": r["scheme_id"],
            "mode": r["mode"],
            "cycle_id": make_cycle_id(r["scheme_id"], r["seq"]),
            "currency": cur,
            "sent": _fmt(r["sent"], cur),
            "received": _fmt(r["received"], cur),
            "net": _fmt(net, cur),
            "debit": _fmt(max(0, -net), cur),
        }
        if r["mode"] == "dns":
            entry["cap"] = _fmt(cap, cur) if cap is not None else None
            entry["cap_headroom"] = _fmt(cap + net, cur) if cap is not None else None
        else:
            entry["min_position"] = _fmt(low, cur)
            entry["max_position"] = _fmt(high, cur) if high is not None else None
            entry["debit_headroom"] = _fmt(net - low, cur)
            entry["credit_headroom"] = _fmt(high - net, cur) if high is not None else None
        positions.append(entry)
    return {
        "participant_id": participant_id,
        "status": participant["status"],
        "positions": positions,
        "position": point if point is not None else _now_position(request),
    }


# ------------------------------------------------------------------ schemes


@router.post(
    "/schemes",
    status_code=201,
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Create a scheme (dns or rtgs) and open its first cycle",
)
async def create_scheme(
    body: SchemeIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Creates a deferred net (dns) or real-time gross (rtgs) scheme with its currencies, hub
    accounts and cut-off schedule, and opens its first cycle.
    """
    cmd = sc.CreateScheme(
        id=body.id,
        name=body.name,
        mode=body.mode,
        settlement_accounts=body.settlement_accounts,
        cut_off_times_s=tuple(_seconds(t) for t in body.cut_off_times),
        participants=tuple(body.participants),
    )
    return _answer(response, await _run(request, sc.scheme_command(cmd)))


@router.post(
    "/schemes/{scheme_id}/participants",
    status_code=201,
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Admit a registered participant to the scheme",
)
async def admit_participant(
    scheme_id: IdPath,
    body: AdmitIn,
    request: Request,
    response: Response,
    _: Any = Operator,
) -> dict[str, Any]:
    """Admits a registered participant to the scheme; only members may be payer or payee of the
    scheme's obligations.
    """
    cmd = sc.AdmitParticipant(scheme_id=scheme_id, participant_id=body.participant_id)
    return _answer(response, await _run(request, sc.admit_command(cmd)), PATH_SCHEME)


@router.get(
    "/schemes/{scheme_id}",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="A scheme: mode, currencies, hub accounts, schedule, members, open cycle",
)
async def get_scheme(
    scheme_id: IdPath,
    request: Request,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the scheme's mode, currencies, hub accounts, schedule, members and open cycle, as of
    at least `min_position`.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rm.get_scheme, scheme_id)
    if row is None:
        raise Problem(
            404, "scheme_not_found", f"scheme {scheme_id} does not exist", scheme_id=scheme_id
        )
    return scheme_out(row)


def scheme_out(row: dict[str, Any]) -> dict[str, Any]:
    """A scheme's read-model row as the API answers it."""
    return {
        "id": row["scheme_id"],
        "name": row["name"],
        "mode": row["mode"],
        "currencies": row["currencies"],
        "settlement_accounts": row["settlement_accounts"],
        "cut_off_times": [
            f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}" for t in row["cut_off_times_s"]
        ],
        "participants": row["participants"],
        "open_cycle_id": make_cycle_id(row["scheme_id"], row["open_seq"]),
        "position": row["last_position"],
    }


@router.post(
    "/schemes/{scheme_id}/release",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Run the release search on the open cycle's queue now",
)
async def release(
    scheme_id: IdPath,
    request: Request,
    response: Response,
    body: ReleaseIn | None = None,
    _: Any = Operator,
) -> dict[str, Any]:
    """Runs the release search on the open cycle's queue now (it also runs after every change that
    can free a queued obligation) and answers which obligations it released.
    """
    request_id = (body.request_id if body else None) or sc.new_request_id()
    cmd = sc.Release(scheme_id=scheme_id, request_id=request_id)
    outcome = await _run(request, sc.release_command(cmd))
    return _answer(response, outcome, PATH_SCHEME, created=False)


@router.get(
    "/schemes/{scheme_id}/queue",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="The queued obligations of the scheme's open cycle, in arrival order",
)
async def scheme_queue(
    scheme_id: IdPath,
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Lists the queued obligations of the scheme's open cycle in arrival order, each with the
    reason it waits (cap or bounds).
    """
    point = await _point(request, min_position, as_of_position, as_of)
    seq = await asyncio.to_thread(_read, request, rm.open_seq_at, scheme_id, point)
    if seq is None:
        raise Problem(
            404,
            "scheme_not_found",
            f"scheme {scheme_id} does not exist" + (" at that point" if point else ""),
            scheme_id=scheme_id,
        )
    rows = await asyncio.to_thread(_read, request, rm.queue, scheme_id, seq, point)
    return {
        "scheme_id": scheme_id,
        "cycle_id": make_cycle_id(scheme_id, seq),
        "queue": [
            {
                "obligation_id": r["obligation_id"],
                "payer_id": r["payer_id"],
                "payee_id": r["payee_id"],
                "currency": r["currency"],
                "amount": _fmt(r["amount"], r["currency"]),
                "reason": r["reason"],
                "queued_position": r["submitted_position"],
            }
            for r in rows
        ],
        "position": point if point is not None else _now_position(request),
    }


# ------------------------------------------------------------------ obligations


def _obligation_cmd(body: ObligationIn) -> sc.SubmitObligation:
    return sc.SubmitObligation(**body.model_dump())


def _obligation_out(result: dict[str, Any], body: ObligationIn) -> dict[str, Any]:
    return {
        "id": body.id,
        "status": result["status"],
        "cycle_id": result["cycle_id"],
        "scheme_id": body.scheme_id,
        "payer_id": body.payer_id,
        "payee_id": body.payee_id,
        "currency": body.currency,
        "amount": _fmt(result["amount_minor"], body.currency),
        "value_date": result["value_date"],
        "reference": body.reference,
        "released": result["released"],
        "late_cut_off": result["late_cut_off"],
    }


@router.post(
    "/obligations",
    status_code=201,
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Submit an obligation: accepted, queued (cap or bounds), or a named rejection",
)
async def submit_obligation(
    body: ObligationIn, request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Submits one obligation to the scheme's open cycle. It is accepted, queued when the payer's
    cap or RTGS bounds do not allow it yet, or refused with a named rule; a retry with the
    same id answers 200 with the first outcome.
    """
    outcome = await _run(request, sc.obligation_command(_obligation_cmd(body)))
    if not outcome.accepted:
        raise rejection(outcome.result)
    response.status_code = 200 if outcome.replayed else 201
    return {**_obligation_out(outcome.result, body), "position": outcome.position}


@router.post(
    "/obligation-batches",
    status_code=201,
    response_model=BatchOut,
    responses={
        **COMMAND_RESPONSES,
        200: {"model": BatchOut, "description": "a retry with the same body: the first outcome"},
    },
    summary="Submit many obligations in order as one command; each has its own outcome",
)
async def submit_batch(
    body: ObligationBatchIn, request: Request, response: Response, _: Any = Operator
) -> BatchOut:
    """Submits many obligations in order as one command; each has its own outcome, and later
    obligations see the effect of earlier accepted ones.
    """
    cmd = sc.SubmitObligationBatch(obligations=tuple(_obligation_cmd(o) for o in body.obligations))
    outcome = await _run(request, sc.obligation_batch_command(cmd))
    if not outcome.accepted:  # the batch's id (its obligation ids) reused with other bodies
        raise rejection(outcome.result)
    response.status_code = 200 if outcome.replayed else 201
    items = []
    for o, r in zip(body.obligations, outcome.result["results"], strict=True):
        if "status" in r:
            items.append(
                ItemOutcome(
                    index=r["index"], id=o.id, status=r["status"], obligation=_obligation_out(r, o)
                )
            )
        else:
            problem = {k: v for k, v in r.items() if k != "index"}
            items.append(
                ItemOutcome(
                    index=r["index"],
                    id=o.id,
                    status=str(r["code"]),
                    problem=rejection(problem).body(),
                )
            )
    return BatchOut(results=items, position=outcome.position)


@router.get(
    "/obligations/{obligation_id}",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="An obligation and its state (accepted, queued, netted, settled, unwound, ...)",
)
async def get_obligation(
    obligation_id: IdPath,
    request: Request,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns one obligation with its state (accepted, queued, netted, settled, unwound or
    refused) and the cycle it belongs to.
    """
    await wait_for_position(request, min_position)
    row = await asyncio.to_thread(_read, request, rm.get_obligation, obligation_id)
    if row is None:
        raise Problem(
            404,
            "obligation_not_found",
            f"obligation {obligation_id} was not accepted or queued",
            obligation_id=obligation_id,
        )
    return {
        "id": row["obligation_id"],
        "state": effective_state(row),
        "status": row["status"],
        "reason": row["reason"] or None,
        "cycle_id": make_cycle_id(row["scheme_id"], row["seq"]),
        "scheme_id": row["scheme_id"],
        "payer_id": row["payer_id"],
        "payee_id": row["payee_id"],
        "currency": row["currency"],
        "amount": _fmt(row["amount"], row["currency"]),
        "value_date": row["value_date"],
        "reference": row["reference"],
        "position": row["decided_position"] or row["submitted_position"],
    }


def effective_state(row: dict[str, Any]) -> str:
    """accepted | queued | rejected (dropped at cut-off) | netted | settled | unwound."""
    if row["status"] == "queued":
        return "queued"
    if row["status"] == "dropped":
        return "rejected"
    if row["payer_id"] in row["unwound"] or row["payee_id"] in row["unwound"]:
        return "unwound"
    if row["cycle_state"] == "settled":
        return "settled"
    if row["cycle_state"] == "cut_off":
        return "netted"
    return "released" if row["status"] == "released" else "accepted"


# ------------------------------------------------------------------ cycles


@router.post(
    "/cycles/{cycle_id}/cut-off",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Cut the cycle off: freeze positions, check caps, open the next cycle",
)
async def cut_off(
    cycle_id: Annotated[str, CYCLE_PATH], request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Cuts the cycle off: positions are frozen and checked against the caps, and the scheme's next
    cycle opens for new obligations.
    """
    scheme_id, seq = _cycle_key(cycle_id)
    cmd = sc.CutOff(scheme_id=scheme_id, seq=seq)
    return _answer(response, await _run(request, sc.cut_off_command(cmd)), PATH_CYCLE, False)


@router.post(
    "/cycles/{cycle_id}/settle",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Post the cycle's hub instructions to the ledger (all currencies, or nothing)",
)
async def settle(
    cycle_id: Annotated[str, CYCLE_PATH], request: Request, response: Response, _: Any = Operator
) -> dict[str, Any]:
    """Posts the cut-off cycle's hub instructions into the ledger in one atomic command: every
    currency settles, or nothing does.
    """
    scheme_id, seq = _cycle_key(cycle_id)
    cmd = sc.Settle(scheme_id=scheme_id, seq=seq)
    return _answer(response, await _run(request, sc.settle_command(cmd)), PATH_CYCLE, False)


@router.post(
    "/cycles/{cycle_id}/unwind",
    response_model=CommandOut,
    responses=COMMAND_RESPONSES,
    summary="Unwind a defaulter: delete its obligations, recompute, report who is worse off",
)
async def unwind(
    cycle_id: Annotated[str, CYCLE_PATH],
    body: UnwindIn,
    request: Request,
    response: Response,
    _: Any = Operator,
) -> dict[str, Any]:
    """Unwinds a defaulting participant from the cycle: its obligations are removed, positions are
    recomputed, and the answer names every participant left worse off.
    """
    scheme_id, seq = _cycle_key(cycle_id)
    cmd = sc.Unwind(scheme_id=scheme_id, seq=seq, participant_id=body.participant_id)
    return _answer(response, await _run(request, sc.unwind_command(cmd)), PATH_CYCLE, False)


async def _cycle_row(
    request: Request, cycle_id: str, point: int | None
) -> tuple[int, int, dict[str, Any]]:
    scheme_id, seq = _cycle_key(cycle_id)
    row = await asyncio.to_thread(_read, request, rm.get_cycle, scheme_id, seq, point)
    if row is None:
        raise Problem(
            404,
            "cycle_not_found",
            f"no cycle {cycle_id}" + (" at that point" if point is not None else ""),
            cycle_id=cycle_id,
        )
    return scheme_id, seq, row


def _totals_out(t: dict[str, Any]) -> dict[str, Any]:
    cur, gross = t["currency"], t["gross"]
    e_bil, e_mult = efficiency(t["bilateral"], gross), efficiency(t["multilateral"], gross)
    return {
        "currency": cur,
        "gross": _fmt(gross, cur),
        "bilateral": _fmt(t["bilateral"], cur),
        "multilateral": _fmt(t["multilateral"], cur),
        "accepted": t["accepted"],
        "queued": t["queued"],
        "efficiency_bilateral": efficiency_text(e_bil),
        "efficiency_multilateral": efficiency_text(e_mult),
        "efficiency_bilateral_exact": fraction_text(e_bil),
        "efficiency_multilateral_exact": fraction_text(e_mult),
    }


@router.get(
    "/cycles/{cycle_id}",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="A cycle: state, and per currency G, B, M and the netting efficiencies",
)
async def get_cycle(
    cycle_id: Annotated[str, CYCLE_PATH],
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the cycle's state and, per currency, the gross value G, the bilateral net B, the
    multilateral net M and the netting efficiencies.
    """
    point = await _point(request, min_position, as_of_position, as_of)
    scheme_id, seq, row = await _cycle_row(request, cycle_id, point)
    return {
        "id": make_cycle_id(scheme_id, seq),
        "scheme_id": scheme_id,
        "seq": seq,
        "mode": row["mode"],
        "state": row["state"],
        "value_date": row["value_date"],
        "cut_off_at": _iso(row["cut_off_at_ns"]),
        "opened_position": row["opened_position"],
        "cut_position": row["cut_position"],
        "cut_trigger": row["cut_trigger"],
        "settled_position": row["settled_position"],
        "unwound": row["unwound"],
        "breaches": [
            {
                "currency": b[0],
                "participant_id": b[1],
                "debit": _fmt(b[2], b[0]),
                "cap": _fmt(b[3], b[0]),
            }
            for b in row["breaches"] or []
        ],
        "totals": [_totals_out(t) for t in row["totals"]],
        "position": point if point is not None else _now_position(request),
    }


@router.get(
    "/cycles/{cycle_id}/positions",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="Multilateral net positions per participant and currency",
)
async def cycle_positions(
    cycle_id: Annotated[str, CYCLE_PATH],
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Lists the multilateral net position (received minus sent) of each participant per currency
    in the cycle, now or as of an earlier position or time.
    """
    point = await _point(request, min_position, as_of_position, as_of)
    scheme_id, seq, _row = await _cycle_row(request, cycle_id, point)
    rows = await asyncio.to_thread(_read, request, rm.cycle_positions, scheme_id, seq, point)
    return {
        "cycle_id": make_cycle_id(scheme_id, seq),
        "positions": [
            {
                "currency": r["currency"],
                "participant_id": r["participant_id"],
                "sent": _fmt(r["sent"], r["currency"]),
                "received": _fmt(r["received"], r["currency"]),
                "net": _fmt(r["received"] - r["sent"], r["currency"]),
            }
            for r in rows
        ],
        "position": point if point is not None else _now_position(request),
    }


@router.get(
    "/cycles/{cycle_id}/bilateral",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="The bilateral matrix: per pair, both gross flows and b(i,j)",
)
async def cycle_bilateral(
    cycle_id: Annotated[str, CYCLE_PATH],
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Returns the bilateral matrix of the cycle: per pair of participants, both gross flows and
    their bilateral net b(i,j).
    """
    point = await _point(request, min_position, as_of_position, as_of)
    scheme_id, seq, _row = await _cycle_row(request, cycle_id, point)
    rows = await asyncio.to_thread(_read, request, rm.cycle_pairs, scheme_id, seq, point)
    gross = {(r["currency"], r["payer_id"], r["payee_id"]): r["gross"] for r in rows}
    pairs = []
    for cur, i, j in sorted({(c, min(a, b), max(a, b)) for c, a, b in gross}):
        o_ij, o_ji = gross.get((cur, i, j), 0), gross.get((cur, j, i), 0)
        net = o_ij - o_ji
        pairs.append(
            {
                "currency": cur,
                "participant_a": i,
                "participant_b": j,
                "a_to_b": _fmt(o_ij, cur),
                "b_to_a": _fmt(o_ji, cur),
                "net_a_to_b": _fmt(net, cur),
                "payer_id": i if net > 0 else j if net < 0 else None,
                "payee_id": j if net > 0 else i if net < 0 else None,
                "amount": _fmt(abs(net), cur),
            }
        )
    return {
        "cycle_id": make_cycle_id(scheme_id, seq),
        "pairs": pairs,
        "position": point if point is not None else _now_position(request),
    }


@router.get(
    "/cycles/{cycle_id}/instructions",
    response_model=QueryOut,
    responses=QUERY_RESPONSES,
    summary="Settlement instructions (hub model): pending after cut-off, posted when settled",
)
async def cycle_instructions(
    cycle_id: Annotated[str, CYCLE_PATH],
    request: Request,
    as_of_position: AsOfPosition = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
    _: Any = Reader,
) -> dict[str, Any]:
    """Lists the cycle's hub settlement instructions: pending after cut-off, posted once the cycle
    settles, with their ledger transfer ids.
    """
    point = await _point(request, min_position, as_of_position, as_of)
    scheme_id, seq, _row = await _cycle_row(request, cycle_id, point)
    rows = await asyncio.to_thread(_read, request, rm.cycle_instructions, scheme_id, seq, point)
    return {
        "cycle_id": make_cycle_id(scheme_id, seq),
        "instructions": [
            {
                "currency": r["currency"],
                "participant_id": r["participant_id"],
                "direction": r["direction"],
                "amount": _fmt(r["amount"], r["currency"]),
                "state": r["state"],
                "debit_account_id": r["debit_account_id"],
                "credit_account_id": r["credit_account_id"],
                "transfer_id": r["transfer_id"],
                "valid_from_position": r["valid_from"],
            }
            for r in rows
        ],
        "position": point if point is not None else _now_position(request),
    }
