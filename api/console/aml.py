"""The console's AML pages: alerts with their evidence, cases worked to a SAR, the flow graph.

Definition
    As :mod:`api.console.routes`: every page reads through the ``/v1/aml`` route functions
    (``api.aml_routes.get_alert``, ``get_case``, ``get_neighbourhood``, ``get_cycles``) or, for
    the lists those routes do not answer in the order a person reads them, the read-model
    queries they use (``readmodels.aml.list_alerts`` newest first, ``cases_with_alerts``). A
    case is worked through the very functions the JSON routes call
    (``api.aml_routes.open_case`` and ``act_on_case``): the same commands, the same
    processor, the same named refusals.

    Pages (``/console/aml/...``; the roles are those of the JSON routes they read):

    ``/alerts``              alerts newest first, filtered by status, typology and account,
                             paginated; analysts open a case from the alerts they tick
    ``/alerts/{id}``         an alert's evidence: rule id and version, score and the features
                             behind it, accounts (linked to their graph), its transactions
                             with their log positions, business time, the cases holding it
    ``/cases``               cases (filter by status); analysts open one from alert ids
    ``/cases/{id}``          a case, its alerts, notes, evidence and audit trail, the SAR (and
                             a link to its draft); analysts work it: assign, note, attach
                             evidence, add alerts, escalate, close, reopen, file the SAR
    ``/sar/{case id}``       the case's SAR draft as the JSON API renders it (HTML or JSON)
    ``/graph``, ``/graph/{account}``
                             an account's k-hop neighbourhood (hops, since) drawn as SVG with
                             each flow's count and USD sum, the flows as a table, and the
                             cycles of flows through the account

Guarantees
    * A page takes ``min_position`` (read-your-writes) like the JSON queries; after a case
      action the console redirects to the case with the action's position, so the page shows
      what was just done.
    * A role that may not work cases (auditor, operator) sees no action forms, and a post it
      sends anyway is refused (403 ``forbidden``) before anything is submitted. An action the
      case refuses (a closed case, a missing reason) is shown on the case page with its code
      and status, and nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from api import aml_routes as ar
from api.console.charts import flow_graph
from api.console.routes import _ENV, PAGE_SIZE, _page, _param, _read, render
from api.console.session import Session, check_form
from api.ledger_routes import wait_for_position
from api.problems import Problem
from api.security import ANALYSTS
from api.types import NeighbourHops, Position
from domain.aml.cases import DISPOSITIONS
from domain.aml.rules import DETECTORS
from domain.money import format_major, parse_major
from readmodels import aml as rm

router = APIRouter(prefix="/console/aml", include_in_schema=False)

TYPOLOGIES = tuple(sorted({d.typology for d in DETECTORS.values()} | {"sanctions"}))
ALERT_STATUSES = ("open",)
CASE_STATUSES = ("open", "escalated", "closed", "sar_filed")
FILTER_MAX = 200
GRAPH_NODES = 40
CYCLE_HOPS = 7
ACTION_TITLES = {
    "opened": "Case opened",
    "assign": "Case assigned",
    "note": "Note added",
    "evidence": "Evidence attached",
    "add_alerts": "Alerts added",
    "escalate": "Case escalated",
    "close": "Case closed",
    "reopen": "Case reopened",
    "file_sar": "SAR filed",
}


def seg(value: Any) -> str:
    """One path segment: every reserved character escaped (a case id may hold ``/`` or ``?``)."""
    return quote(str(value), safe="")


_ENV.filters["seg"] = seg


def _text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name, "").strip()
    if len(raw) > FILTER_MAX:
        raise Problem(422, "invalid_request", f"{name}: at most {FILTER_MAX} characters")
    return raw or None


def _usd(cents: int) -> str:
    return format_major(int(cents), "USD")


def _may_work(s: Session) -> bool:
    return s.role in ANALYSTS


def _forbid_unless_analyst(s: Session) -> None:
    if not _may_work(s):
        raise Problem(
            403,
            "forbidden",
            f"role '{s.role.value}' may read cases but not work them; that needs one of "
            f"{', '.join(sorted(r.value for r in ANALYSTS))}",
            title="Not for your role",
        )


def _request_id() -> str:
    """A fresh id per rendered form: sending the same form twice acts once."""
    return "console-" + secrets.token_hex(8)


async def _form_lists(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def _first(form: dict[str, list[str]], name: str) -> str:
    return form.get(name, [""])[0]


def _alert_ids(form: dict[str, list[str]]) -> list[str]:
    """Ticked boxes (``alert_ids`` repeated) and typed ids (commas or spaces), in order."""
    out: list[str] = []
    for value in form.get("alert_ids", []):
        for part in value.replace(",", " ").split():
            if part not in out:
                out.append(part)
    return out


def _by(s: Session) -> str:
    return f"{s.role.value}:{s.key_id}"


# ------------------------------------------------------------------ alerts


def _cursor(request: Request) -> tuple[int, str] | None:
    raw = request.query_params.get("before", "").strip()
    if not raw:
        return None
    position, _, alert_id = raw.partition(":")
    if not position.isdigit() or len(position) > 19 or not alert_id or len(alert_id) > 64:
        raise Problem(422, "invalid_request", "before: a position and an alert id", field="before")
    return int(position), alert_id


@router.get("/alerts")
async def alerts(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        min_position = _param(request, "min_position", Position)
        await wait_for_position(request, min_position)
        filters = {
            "status": _text(request, "status"),
            "typology": _text(request, "typology"),
            "account": _text(request, "account"),
        }
        before = _cursor(request)
        rows = await asyncio.to_thread(
            _read,
            request,
            rm.list_alerts,
            **filters,
            limit=PAGE_SIZE + 1,
            newest_first=True,
            before=before,
        )
        items = rows[:PAGE_SIZE]
        given = {k: v for k, v in filters.items() if v}
        older = None
        if len(rows) > PAGE_SIZE:
            last = items[-1]
            older = urlencode({**given, "before": f"{last['position']}:{last['alert_id']}"})
        return render(
            request,
            s,
            "aml_alerts.html",
            title="AML alerts",
            items=items,
            filters=filters,
            newest=urlencode(given) if before is not None else None,
            older=older,
            typologies=TYPOLOGIES,
            statuses=ALERT_STATUSES,
            may_work=_may_work(s),
            suggested_case=f"C-{secrets.token_hex(3).upper()}",
        )

    return await _page(request, "aml-alerts", show)


def _feature_rows(features: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted(features.items()):
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        elif key.endswith("usd_minor") and isinstance(value, int):
            text = f"{_usd(value)} USD"
        else:
            text = str(value)
        rows.append((key, text))
    return rows


@router.get("/alerts/{alert_id}")
async def alert(request: Request, alert_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        min_position = _param(request, "min_position", Position)
        found = await ar.get_alert(request, alert_id, min_position, _=s.role)
        cases = []
        if s.may("aml-cases"):
            cases = await asyncio.to_thread(_read, request, rm.cases_with_alerts, [alert_id])
        positions = [t["position"] for t in found["evidence"]]
        return render(
            request,
            s,
            "aml_alert.html",
            title=f"Alert {alert_id}",
            a=found,
            features=_feature_rows(found["features"]),
            cases=cases,
            positions=(min(positions), max(positions)) if positions else None,
            may_work=_may_work(s),
            may_see_cases=s.may("aml-cases"),
            may_see_events=s.may("streams"),
            suggested_case=f"C-{secrets.token_hex(3).upper()}",
        )

    return await _page(request, "aml-alerts", show)


# ------------------------------------------------------------------ cases


@router.get("/cases")
async def cases(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        status = _text(request, "status")
        min_position = _param(request, "min_position", Position)
        found = await ar.get_cases(request, status, min_position, _=s.role)
        return render(
            request,
            s,
            "aml_cases.html",
            title="AML cases",
            items=list(reversed(found["cases"])),
            case_status=status,
            statuses=CASE_STATUSES,
            may_work=_may_work(s),
            suggested_case=f"C-{secrets.token_hex(3).upper()}",
            error=None,
        )

    return await _page(request, "aml-cases", show)


@router.post("/cases")
async def open_case(request: Request) -> Response:
    async def run(request: Request, s: Session) -> Response:
        form = await _form_lists(request)
        check_form(request, s, {"csrf": _first(form, "csrf")})
        _forbid_unless_analyst(s)
        try:
            body = ar.CaseIn.model_validate(
                {
                    "case_id": _first(form, "case_id").strip(),
                    "alert_ids": _alert_ids(form),
                    "title": _first(form, "title").strip(),
                }
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(x) for x in error.get("loc", ()))
            raise Problem(
                422, "invalid_request", f"{where}: {error.get('msg', 'invalid value')}"
            ) from None
        outcome = await ar.open_case(request, body, _by(s))
        return _to_case(body.case_id, outcome.position, "opened")

    return await _page(request, "aml-cases", run)


def _to_case(case_id: str, position: int, done: str) -> Response:
    query = urlencode({"min_position": position, "done": done})
    return RedirectResponse(f"/console/aml/cases/{seg(case_id)}?{query}", status_code=303)


async def _case_page(
    request: Request,
    s: Session,
    case_id: str,
    min_position: int | None,
    *,
    error: dict[str, Any] | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    case = await ar.get_case(request, case_id, min_position, _=s.role)
    found = await asyncio.to_thread(_read, request, rm.get_alerts, case["alert_ids"])
    by_id = {a["alert_id"]: a for a in found}
    return render(
        request,
        s,
        "aml_case.html",
        status=status,
        title=f"Case {case_id}",
        case=case,
        alerts=[by_id.get(a) or {"alert_id": a, "missing": True} for a in case["alert_ids"]],
        may_work=_may_work(s),
        workable=case["status"] in ("open", "escalated"),
        dispositions=DISPOSITIONS,
        request_id=_request_id(),
        error=error,
        done=ACTION_TITLES.get(done or ""),
        sar_href=f"/console/aml/sar/{seg(case_id)}",
    )


@router.get("/cases/{case_id:path}")
async def case(request: Request, case_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        min_position = _param(request, "min_position", Position)
        return await _case_page(
            request, s, case_id, min_position, done=request.query_params.get("done")
        )

    return await _page(request, "aml-cases", show)


@router.post("/cases/{case_id:path}")
async def act(request: Request, case_id: str) -> Response:
    async def run(request: Request, s: Session) -> Response:
        form = await _form_lists(request)
        check_form(request, s, {"csrf": _first(form, "csrf")})
        _forbid_unless_analyst(s)
        fields = (
            "request_id", "action", "assignee", "text", "kind", "reference", "sha256",
            "disposition", "filing_reference",
        )  # fmt: skip
        try:
            body = ar.CaseActionIn.model_validate(
                {
                    **{f: _first(form, f).strip() for f in fields},
                    "alert_ids": _alert_ids(form),
                }
            )
            if body.action not in ACTION_TITLES or body.action == "opened":
                raise Problem(422, "invalid_case_action", f"no case action {body.action!r}")
            outcome = await ar.act_on_case(request, case_id, body, _by(s))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(x) for x in error.get("loc", ()))
            problem = Problem(
                422, "invalid_request", f"{where}: {error.get('msg', 'invalid value')}"
            )
            return await _refused(request, s, case_id, problem)
        except Problem as problem:
            if problem.code == "case_not_found":
                raise
            return await _refused(request, s, case_id, problem)
        return _to_case(case_id, outcome.position, body.action)

    return await _page(request, "aml-cases", run)


async def _refused(request: Request, s: Session, case_id: str, problem: Problem) -> Response:
    """The case as it stands, with the refusal on top: nothing was changed."""
    return await _case_page(
        request,
        s,
        case_id,
        None,
        error=problem.body(request.url.path),
        status=problem.status,
    )


@router.get("/sar/{case_id:path}")
async def sar(request: Request, case_id: str) -> Response:
    """The SAR draft of a case, as ``GET /v1/aml/cases/{id}/sar`` answers it (HTML, or JSON
    with ``format=json``), for any case id (one holding ``/`` cannot be a ``/v1`` path)."""

    async def show(request: Request, s: Session) -> Response:
        form = request.query_params.get("format", "html")
        if form not in ("html", "json"):
            raise Problem(422, "invalid_request", "format: html or json", field="format")
        found = await ar.get_sar(request, case_id, form, None, _=s.role)
        if isinstance(found, Response):
            return found
        return JSONResponse(found, headers={"Cache-Control": "no-store"})

    return await _page(request, "aml-cases", show)


# ------------------------------------------------------------------ the graph


@router.get("/graph")
async def graph_form(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        account = _text(request, "account")
        if account:
            given = {
                k: request.query_params[k]
                for k in ("hops", "since")
                if request.query_params.get(k, "").strip()
            }
            query = f"?{urlencode(given)}" if given else ""
            return RedirectResponse(f"/console/aml/graph/{seg(account)}{query}", status_code=303)
        return render(
            request, s, "aml_graph.html", title="AML graph", account=None, hops=2, since=""
        )

    return await _page(request, "aml-graph", show)


def _graph_href(hops: int, since: str | None) -> Any:
    extra = urlencode({"hops": hops, **({"since": since} if since else {})})

    def href(account: str) -> str:
        return f"/console/aml/graph/{seg(account)}?{extra}"

    return href


@router.get("/graph/{account:path}")
async def graph(request: Request, account: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        hops = _param(request, "hops", NeighbourHops) or 2
        since = _text(request, "since")
        min_position = _param(request, "min_position", Position)
        hood = await ar.get_neighbourhood(request, account, hops, since, min_position, _=s.role)
        found = await ar.get_cycles(request, account, CYCLE_HOPS, since, None, _=s.role)
        cycles = found["cycles"]
        on_cycle = frozenset((e["from"], e["to"]) for c in cycles for e in c)
        usd = {(e["from"], e["to"]): parse_major(e["sum_usd"], "USD") for e in hood["edges"]}
        svg = flow_graph(
            account,
            hood["nodes"],
            [(e["from"], e["to"], e["count"], usd[e["from"], e["to"]]) for e in hood["edges"]],
            title=(
                f"Flows within {hops} hop{'s' if hops > 1 else ''} of {account}"
                + (f" since {since}" if since else "")
                + ": count and USD sum per flow"
            ),
            fmt=lambda cents: f"{_usd(cents)} USD",
            marked=on_cycle,
            href=_graph_href(hops, since),
            max_nodes=GRAPH_NODES,
        )
        edges = sorted(hood["edges"], key=lambda e: (-usd[e["from"], e["to"]], e["from"], e["to"]))
        return render(
            request,
            s,
            "aml_graph.html",
            title=f"AML graph of {account}",
            account=account,
            hops=hops,
            since=since or "",
            hood=hood,
            edges=edges,
            on_cycle=on_cycle,
            cycles=cycles,
            cycle_hops=CYCLE_HOPS,
            svg=svg,
            graph_nodes=GRAPH_NODES,
            alerts_href="/console/aml/alerts?" + urlencode({"account": account}),
        )

    return await _page(request, "aml-graph", show)
