"""The console's pages: server-rendered HTML over the JSON API's own functions.

Definition
    Every page reads through the same code the ``/v1`` routes run: it calls the route
    functions themselves (``api.ledger_routes.get_account``, ``api.evidence_routes.consistency``
    ...) or, where a page needs rows no route answers, the read-model and event-store query
    functions those routes use. There is no second copy of any query, and a page meets the
    same rules (and the same named problems) as the JSON API.

    Pages (``/console/...``; the roles are :data:`api.console.session.PAGES`'s):

    ``/``                     overview: head, events/s, projection lag per projection and
                              source (partition), latest checkpoint and its age, last
                              verification (and a button to run one)
    ``/accounts``             search by id, or list by ledger, currency and code
    ``/accounts/{id}``        balances now and as of a position or time, balance chart,
                              transfers with pagination
    ``/transfers/{id}``       a transfer and its events
    ``/trial-balance``        per currency, now or as of a position
    ``/streams``              any stream's events (or the log's newest) with hashes and links
    ``/events/{position}``    one event, its chain links, and its inclusion proof checked in
                              the browser against the latest signed checkpoint
    ``/checkpoints``          signed checkpoints and a consistency proof between two of them
    ``/exports``              download an evidence bundle (``GET /v1/exports``)
    ``/keys``                 admins: list, issue (token shown once), revoke

Guarantees
    * Pages answer ``text/html`` with a strict Content-Security-Policy (scripts and styles from
      this origin only, no inline script, no framing) and ``Cache-Control: no-store``.
    * Without a session a page redirects to the sign-in page; a role without the page's grant
      gets 403; a problem a reused route raises is shown on the page with its code, and the
      page answers with the problem's status.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from api import evidence_routes as er
from api import keys_routes as kr
from api import ledger_routes as lr
from api.console.charts import step_chart
from api.console.session import (
    Session,
    check_form,
    current_session,
    safe_next,
)
from api.console.verify import VerifyRunner, latest_run
from api.keys import Role, list_keys
from api.problems import Problem
from api.security import CONSOLE_COOKIE, Caller
from api.types import CodeParam, IdParam, LedgerParam, Position, PositiveParam
from domain.money import format_major
from eventstore import canonical
from eventstore.model import StoredEvent
from projections import manage
from readmodels import ledger as rm
from replay.log import checkpoints, latest_checkpoint
from replay.verifier import ProofError, verify_consistency

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE_SIZE = 20
STREAM_PAGE = 50
CHART_POINTS = 500
RATE_WINDOW_S = 60

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

# ------------------------------------------------------------------ templates


def _ts(ns: int | None) -> str:
    if not ns:
        return ""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} days"


def _short(value: str | bytes | None, n: int = 12) -> str:
    text = value.hex() if isinstance(value, bytes) else (value or "")
    return text if len(text) <= n else text[:n] + "…"


def _thousands(value: int | float) -> str:
    return f"{value:,.0f}" if isinstance(value, int) else f"{value:,.1f}"


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("api.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(ts=_ts, when=_when, age=_age, short=_short, thousands=_thousands)

_STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "htmx.min.js": "text/javascript; charset=utf-8",
}


def render(
    request: Request,
    session: Session | None,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = _ENV.get_template(template).render(
        session=session,
        pages=session.nav() if session else [],
        current=getattr(request.state, "console_page", None),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _problem_page(request: Request, session: Session | None, problem: Problem) -> HTMLResponse:
    return render(
        request,
        session,
        "error.html",
        status=problem.status,
        title=problem.title,
        problem=problem.body(request.url.path),
    )


Handler = Callable[[Request, Session], Awaitable[Response]]


async def _page(request: Request, page: str, handler: Handler) -> Response:
    """Sign-in and role checks around a page, and problems shown as pages."""
    session = current_session(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            "/console/login?" + urlencode({"next": target}),
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )
    request.state.console_page = page
    if not session.may(page):
        return _problem_page(
            request,
            session,
            Problem(
                403,
                "forbidden",
                f"role '{session.role.value}' may not open this page",
                title="Not for your role",
            ),
        )
    try:
        return await handler(request, session)
    except Problem as problem:
        return _problem_page(request, session, problem)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _param(request: Request, name: str, kind: Any) -> Any:
    """A query parameter checked by the API's own type for it (None when absent or empty)."""
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError as exc:
        message = exc.errors()[0].get("msg", "invalid value")
        raise Problem(422, "invalid_request", f"{name}: {message}", field=name) from None


def _services(request: Request) -> Any:
    return request.app.state.services


def _read(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with _services(request).store.datastore.get_connection() as conn:
        return fn(conn, *args, **kwargs)


def _signed(amount_minor: int, currency: str) -> str:
    return format_major(amount_minor, currency)


# ------------------------------------------------------------------ sign-in


@router.get("/login")
async def login_form(request: Request) -> Response:
    session = current_session(request)
    nxt = safe_next(request.query_params.get("next"))
    if session is not None:
        return RedirectResponse(nxt, status_code=303)
    return render(request, None, "login.html", title="Sign in", next=nxt, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    nxt = safe_next(form.get("next"))
    try:
        check_form(request, None, form)
    except Problem as problem:
        return _problem_page(request, None, problem)
    token = form.get("token", "").strip()
    role = request.app.state.keys.role_of(token) if token else None
    if role is None:
        return render(
            request,
            None,
            "login.html",
            status=401,
            title="Sign in",
            next=nxt,
            error="That API key is unknown or has been revoked.",
        )
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(
        CONSOLE_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = current_session(request)
    form = await _form(request)
    try:
        check_form(request, session, form)
    except Problem as problem:
        return _problem_page(request, session, problem)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(CONSOLE_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# ------------------------------------------------------------------ overview


def _runner(request: Request) -> VerifyRunner:
    state = request.app.state
    runner: VerifyRunner | None = getattr(state, "console_verify", None)
    if runner is None:
        runner = VerifyRunner(_services(request).store)
        state.console_verify = runner
    return runner


def _overview_data(request: Request) -> dict[str, Any]:
    store = _services(request).store
    recorder = store.recorder
    now_ns = time.time_ns()
    with store.datastore.get_connection() as conn:
        statuses = manage.status(store, conn)
        last_run = latest_run(conn)
    head = recorder.head()
    first = recorder.first_position_since(now_ns - RATE_WINDOW_S * 1_000_000_000)
    in_window = head.position - first + 1 if first is not None else 0
    checkpoint = latest_checkpoint(recorder)
    checkpoint_age = (
        (dt.datetime.now(dt.UTC) - checkpoint.created_at).total_seconds()
        if checkpoint is not None and checkpoint.created_at is not None
        else None
    )
    return {
        "head": head,
        "head_age": (now_ns - head.recorded_at_ns) / 1e9 if head.recorded_at_ns else None,
        "events_per_s": in_window / RATE_WINDOW_S,
        "rate_window_s": RATE_WINDOW_S,
        "statuses": statuses,
        "checkpoint": checkpoint,
        "checkpoint_age": checkpoint_age,
        "last_run": last_run,
        "running_since": _runner(request).running_since,
    }


@router.get("")
async def console_root() -> Response:
    return RedirectResponse("/console/", status_code=308)


@router.get("/")
async def overview(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        data = await asyncio.to_thread(_overview_data, request)
        return render(request, s, "overview.html", title="Overview", **data)

    return await _page(request, "overview", show)


@router.get("/overview/stats")
async def overview_stats(request: Request) -> Response:
    """The overview's figures alone (the page refreshes them every few seconds)."""

    async def show(request: Request, s: Session) -> Response:
        data = await asyncio.to_thread(_overview_data, request)
        return render(request, s, "_stats.html", **data)

    return await _page(request, "overview", show)


@router.post("/verify")
async def start_verify(request: Request) -> Response:
    async def run(request: Request, s: Session) -> Response:
        check_form(request, s, await _form(request))
        _runner(request).start(f"{s.role.value}:{s.key_id}")
        return RedirectResponse("/console/", status_code=303)

    return await _page(request, "streams", run)


# ------------------------------------------------------------------ accounts


@router.get("/accounts")
async def accounts(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        account_id = _param(request, "id", IdParam)
        if account_id is not None:
            return RedirectResponse(f"/console/accounts/{account_id}", status_code=303)
        ledger = _param(request, "ledger", LedgerParam)
        code = _param(request, "code", CodeParam)
        cursor = _param(request, "cursor", IdParam)
        page = await lr.list_accounts(
            request,
            ledger=ledger,
            code=code,
            limit=PAGE_SIZE,
            cursor=cursor,
            reversed=False,
            min_position=None,
            _=s.role,
        )
        filters = {"ledger": ledger, "code": code}
        next_query = (
            urlencode({**{k: v for k, v in filters.items() if v}, "cursor": page.next_cursor})
            if page.next_cursor
            else None
        )
        return render(
            request,
            s,
            "accounts.html",
            title="Accounts",
            page=page,
            filters=filters,
            next_query=next_query,
        )

    return await _page(request, "accounts", show)


def _as_of_time(raw: str) -> str | None:
    """A ``datetime-local`` value is UTC here (the label says so); RFC 3339 passes as is."""
    raw = raw.strip()
    if not raw:
        return None
    if raw.endswith("Z") or "+" in raw[10:] or raw[10:].count("-") > 0:
        return raw
    return raw + ("Z" if raw.count(":") == 2 else ":00Z")


@router.get("/accounts/{account_id}")
async def account(request: Request, account_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        aid = TypeAdapter(IdParam).validate_python(account_id)
        as_of_position = _param(request, "as_of_position", Position)
        as_of = _as_of_time(request.query_params.get("as_of", ""))
        cursor = request.query_params.get("cursor") or None
        now = await lr.get_account(aid, request, None, None, None, _=s.role)
        then = None
        if as_of_position is not None or as_of is not None:
            then = await lr.get_account(aid, request, as_of_position, as_of, None, _=s.role)
        history = await lr.list_account_transfers(
            aid,
            request,
            limit=PAGE_SIZE,
            cursor=cursor if cursor and cursor.isdigit() else None,
            min_position=None,
            _=s.role,
        )
        rows = await asyncio.to_thread(
            _read, request, rm.account_transfers, aid, before_position=None, limit=CHART_POINTS
        )
        points = [
            (int(r["recorded_at_ns"]), int(r["credits_posted"]) - int(r["debits_posted"]))
            for r in reversed(rows)
        ]
        chart = step_chart(
            points,
            title=f"Net posted balance (credits minus debits) of account {aid}, {now.currency}",
            fmt=lambda v: _signed(v, now.currency),
        )
        return render(
            request,
            s,
            "account.html",
            title=f"Account {aid}",
            account=now,
            then=then,
            as_of_position=as_of_position,
            as_of=request.query_params.get("as_of", ""),
            history=history,
            chart=chart,
            chart_points=len(points),
            chart_limit=CHART_POINTS,
        )

    return await _page(request, "accounts", _validated(show))


def _validated(handler: Handler) -> Handler:
    """Path parameters checked by the API's types answer 422 pages, like the JSON API."""

    async def run(request: Request, s: Session) -> Response:
        try:
            return await handler(request, s)
        except ValidationError as exc:
            message = exc.errors()[0].get("msg", "invalid value")
            raise Problem(422, "invalid_request", f"path: {message}") from None

    return run


# ------------------------------------------------------------------ transfers and streams


def _event_view(e: StoredEvent, previous: StoredEvent | None = None) -> dict[str, Any]:
    try:
        payload: Any = json.loads(e.payload)
        pretty = json.dumps(payload, indent=2, sort_keys=True)
    except ValueError:
        pretty = e.payload.hex()
    digest = canonical.sha256(
        canonical.encode_event(
            e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
        )
    )
    return {
        "e": e,
        "payload": pretty,
        "global_ok": canonical.global_hash(e.position, e.prev_global_hash, digest) == e.global_hash,
        "stream_ok": canonical.stream_hash(e.stream_id, e.version, e.prev_stream_hash, digest)
        == e.stream_hash,
        "links_previous": None if previous is None else previous.stream_hash == e.prev_stream_hash,
    }


def _stream_views(events: list[StoredEvent], before: StoredEvent | None) -> list[dict[str, Any]]:
    views = []
    previous = before
    for e in events:
        views.append(_event_view(e, previous))
        previous = e
    return views


def _stream_page(request: Request, stream: str, after: int) -> dict[str, Any]:
    recorder = _services(request).store.recorder
    events = recorder.read_stream(stream, after, STREAM_PAGE + 1)
    before = recorder.read_stream(stream, after - 1, 1) if after > 0 else []
    views = _stream_views(events[:STREAM_PAGE], before[0] if before else None)
    return {
        "events": views,
        "next_after": events[STREAM_PAGE - 1].version if len(events) > STREAM_PAGE else None,
    }


@router.get("/transfers/{transfer_id}")
async def transfer(request: Request, transfer_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        from domain.ledger.transfer import stream_id

        tid = TypeAdapter(IdParam).validate_python(transfer_id)
        found = await lr.get_transfer(tid, request, None, _=s.role)
        stream = stream_id(tid)
        data = await asyncio.to_thread(_stream_page, request, stream, 0)
        return render(
            request,
            s,
            "transfer.html",
            title=f"Transfer {tid}",
            transfer=found,
            stream=stream,
            may_browse=s.may("streams"),
            **data,
        )

    return await _page(request, "accounts", _validated(show))


@router.get("/trial-balance")
async def trial_balance(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        ledger = _param(request, "ledger", LedgerParam) or 1
        as_of_position = _param(request, "as_of_position", Position)
        result = await lr.trial_balance(ledger, request, as_of_position, None, _=s.role)
        return render(
            request,
            s,
            "trial_balance.html",
            title="Trial balance",
            result=result,
            ledger=ledger,
            as_of_position=as_of_position,
        )

    return await _page(request, "trial-balance", show)


def _log_page(request: Request, before: int | None) -> dict[str, Any]:
    recorder = _services(request).store.recorder
    head = recorder.head().position
    upto = head if before is None else min(before - 1, head)
    start = max(0, upto - STREAM_PAGE)
    events = recorder.read_from(start, STREAM_PAGE, upto) if upto > 0 else []
    views = [_event_view(e) for e in reversed(events)]
    return {"events": views, "older": start + 1 if start > 0 else None, "head": head}


@router.get("/streams")
async def streams(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        stream = request.query_params.get("stream", "").strip()
        if stream:
            after = _param(request, "after", Position) or 0
            data = await asyncio.to_thread(_stream_page, request, stream, after)
            return render(
                request, s, "stream.html", title=f"Stream {stream}", stream=stream, **data
            )
        before = _param(request, "before", PositiveParam)
        data = await asyncio.to_thread(_log_page, request, before)
        return render(request, s, "log.html", title="Streams", stream="", **data)

    return await _page(request, "streams", show)


def _event_detail(request: Request, position: int) -> dict[str, Any] | None:
    recorder = _services(request).store.recorder
    found = recorder.read_from(position - 1, 1)
    if not found or found[0].position != position:
        return None
    e = found[0]
    previous_in_stream = (
        recorder.read_stream(e.stream_id, e.version - 2, 1) if e.version > 1 else []
    )
    previous_global = recorder.read_from(position - 2, 1) if position > 1 else []
    view = _event_view(e, previous_in_stream[0] if previous_in_stream else None)
    data = canonical.event_bytes(
        canonical.EventFields(
            e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
        )
    )
    return {
        **view,
        "event_bytes_hex": data.hex(),
        "leaf_hash": canonical.merkle_leaf_hash(data).hex(),
        "previous_in_stream": previous_in_stream[0] if previous_in_stream else None,
        "links_global": (previous_global[0].global_hash == e.prev_global_hash)
        if previous_global
        else e.prev_global_hash == canonical.GENESIS,
        "checkpoint": latest_checkpoint(recorder),
    }


@router.get("/events/{position}")
async def event(request: Request, position: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        pos = TypeAdapter(PositiveParam).validate_python(position)
        detail = await asyncio.to_thread(_event_detail, request, pos)
        if detail is None:
            raise Problem(404, "event_not_found", f"no event at position {pos}", position=pos)
        return render(request, s, "event.html", title=f"Event {pos}", **detail)

    return await _page(request, "streams", _validated(show))


# ------------------------------------------------------------------ evidence


@router.get("/checkpoints")
async def checkpoint_list(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        recorder = _services(request).store.recorder
        found = await asyncio.to_thread(checkpoints, recorder)
        from_size = _param(request, "from", PositiveParam)
        to_size = _param(request, "to", PositiveParam)
        proof = None
        server_check = None
        if from_size is not None and to_size is not None:
            by_size = {c.size: c for c in found}
            if from_size not in by_size or to_size not in by_size:
                raise Problem(
                    404,
                    "checkpoint_not_found",
                    "choose two signed checkpoints",
                    sizes=[from_size, to_size],
                )
            proof = await er.consistency(request, from_size, to_size, _=s.role)
            try:
                verify_consistency(
                    from_size,
                    to_size,
                    [bytes.fromhex(h) for h in proof.proof],
                    by_size[from_size].root,
                    by_size[to_size].root,
                )
                server_check = "consistent"
            except ProofError as exc:
                server_check = f"NOT consistent: {exc}"
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "c": c,
                "age": (now - c.created_at).total_seconds() if c.created_at else None,
            }
            for c in reversed(found)
        ]
        return render(
            request,
            s,
            "checkpoints.html",
            title="Checkpoints",
            rows=rows,
            from_size=from_size,
            to_size=to_size,
            proof=proof,
            server_check=server_check,
            roots={c.size: c.root.hex() for c in found},
        )

    return await _page(request, "checkpoints", show)


@router.get("/exports/download")
async def export_download(request: Request) -> Response:
    """The export form's target: on to ``GET /v1/exports`` with the fields that were filled
    in (an HTML form sends empty ones too, which the API rightly refuses)."""

    async def go(request: Request, s: Session) -> Response:
        names = ("from_position", "to_position", "trusted_size")
        given = {n: request.query_params[n] for n in names if request.query_params.get(n)}
        return RedirectResponse("/v1/exports?" + urlencode(given), status_code=303)

    return await _page(request, "exports", go)


@router.get("/exports")
async def exports(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        recorder = _services(request).store.recorder
        found = await asyncio.to_thread(checkpoints, recorder)
        head = await asyncio.to_thread(recorder.head)
        return render(
            request,
            s,
            "exports.html",
            title="Exports",
            checkpoints=list(reversed(found)),
            head=head.position,
            has_key=_services(request).extra.get("signing_key") is not None,
        )

    return await _page(request, "exports", show)


# ------------------------------------------------------------------ API keys


async def _keys_page(
    request: Request, s: Session, *, new: Any = None, status: int = 200, error: str | None = None
) -> Response:
    infos = await asyncio.to_thread(_read, request, list_keys)
    return render(
        request,
        s,
        "keys.html",
        status=status,
        title="API keys",
        keys=infos,
        roles=[r.value for r in Role],
        new=new,
        error=error,
    )


@router.get("/keys")
async def keys(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        return await _keys_page(request, s)

    return await _page(request, "keys", show)


@router.post("/keys")
async def issue(request: Request) -> Response:
    async def run(request: Request, s: Session) -> Response:
        form = await _form(request)
        check_form(request, s, form)
        try:
            body = kr.KeyIn.model_validate(
                {"role": form.get("role", ""), "label": form.get("label", "")}
            )
        except ValidationError as exc:
            message = exc.errors()[0].get("msg", "invalid value")
            return await _keys_page(request, s, status=422, error=message)
        info, token = await asyncio.to_thread(
            _read, request, kr._issue, body.role, body.label, s.key_id
        )
        return await _keys_page(request, s, new={"info": info, "token": token}, status=201)

    return await _page(request, "keys", run)


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, key_id: str) -> Response:
    async def run(request: Request, s: Session) -> Response:
        check_form(request, s, await _form(request))
        if not _KEY_ID.fullmatch(key_id):
            raise Problem(404, "key_not_found", f"no API key with id {key_id}", key_id=key_id)
        await kr.revoke(request, key_id, Caller(s.role, s.key_id))
        return RedirectResponse("/console/keys", status_code=303)

    return await _page(request, "keys", run)


# ------------------------------------------------------------------ static files and 404


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media = _STATIC.get(name)
    if media is None:
        raise Problem(404, "not_found", f"no console file {name}")
    data = resources.files("api.console").joinpath("static", name).read_bytes()
    return Response(
        data,
        media_type=media,
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


# The catch-all, on a router of its own that the package mounts after every page's.
fallback = APIRouter(prefix="/console", include_in_schema=False)


@fallback.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    session = current_session(request)
    return _problem_page(
        request,
        session,
        Problem(404, "not_found", f"the console has no page /console/{rest}", title="Not found"),
    )


_KEY_ID = re.compile(kr.KEY_ID_PATTERN.strip("^$"))
