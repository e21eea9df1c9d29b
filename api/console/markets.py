"""The console's trading and settlement pages, over the trading and settlement API's functions.

Definition
    As :mod:`api.console.routes`: every figure comes from the ``/v1`` route functions
    themselves (``api.trading_routes.book``, ``api.settlement_routes.cycle_bilateral`` ...)
    or, for the lists no route answers, from the read-model queries those routes use, shaped
    by the routes' own converters (``instrument_out``, ``scheme_out``). Charts are drawn from
    the very decimals the tables show, parsed back into whole ticks, lots and minor units.

    Pages (``/console/...``; readers see them, like the JSON routes they read):

    ``/instruments``              every listed instrument: status, sizes, last price
    ``/instruments/{id}``         the depth of book as a cumulative chart and per level, and
                                  the trade tape, newest first, paginated
    ``/schemes``                  every settlement scheme: mode, currencies, members, open cycle
    ``/schemes/{id}``             a scheme and its cycles, newest first, paginated
    ``/cycles/{scheme}-{seq}``    a cycle's totals, its bilateral matrix as a heat map (a table
                                  with the amount in every cell), bilateral nets per pair,
                                  multilateral net positions per participant and currency, and
                                  its settlement instructions; now or as of a position

Guarantees
    * A page shows the numbers the JSON API answers for the same data at the same moment.
    * A problem a reused route raises (an unknown instrument or cycle, a position past the
      head) is shown on the page with its code and status, as on the other pages.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter

from api import settlement_routes as sr
from api import trading_routes as tr
from api.console.charts import depth_chart, heat_level
from api.console.routes import PAGE_SIZE, _page, _param, _read, _validated, render
from api.console.session import Session
from api.problems import Problem
from api.types import IdParam, Position
from domain.money import format_major, is_currency, parse_major
from readmodels import settlement as rs
from readmodels import trading as rt

router = APIRouter(prefix="/console", include_in_schema=False)

BOOK_LEVELS = 50
CURSOR_DIGITS = 19

# ------------------------------------------------------------------ trading


def _units(value: str, step: str) -> int:
    """A decimal the API answered, in whole steps (ticks or lots) again."""
    return int(Decimal(value) / Decimal(step))


def _decimal(units: int, step: str) -> str:
    return format(Decimal(units) * Decimal(step), "f")


def _instruments(request: Request) -> list[tr.InstrumentOut]:
    rows = _read(request, rt.list_instruments)
    return [tr.instrument_out(request, row) for row in rows]


@router.get("/instruments")
async def instruments(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        found = _param(request, "id", IdParam)
        if found is not None:
            return RedirectResponse(f"/console/instruments/{found}", status_code=303)
        items = await asyncio.to_thread(_instruments, request)
        return render(request, s, "instruments.html", title="Instruments", items=items)

    return await _page(request, "instruments", show)


def _cursor(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > CURSOR_DIGITS:
        raise Problem(422, "invalid_request", f"{name}: a trade sequence", field=name)
    return raw


@router.get("/instruments/{instrument_id}")
async def instrument(request: Request, instrument_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        iid = TypeAdapter(IdParam).validate_python(instrument_id)
        cursor = _cursor(request, "cursor")
        spec = await tr.get_instrument(iid, request, None, _=s.role)
        book = await tr.book(iid, request, depth=BOOK_LEVELS, min_position=None, _=s.role)
        tape = await tr.trades(
            iid, request, limit=PAGE_SIZE, cursor=cursor, min_position=None, _=s.role
        )

        def levels(side: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
            total, out = 0, []
            for price, quantity, orders in side:
                total += _units(quantity, spec.lot_size)
                out.append(
                    {
                        "price": price,
                        "quantity": quantity,
                        "orders": orders,
                        "cumulative": _decimal(total, spec.lot_size),
                    }
                )
            return out

        chart = depth_chart(
            [(_units(p, spec.tick_size), _units(q, spec.lot_size)) for p, q, _ in book.bids],
            [(_units(p, spec.tick_size), _units(q, spec.lot_size)) for p, q, _ in book.asks],
            title=(
                f"Cumulative depth of the {spec.symbol} book: quantity in {spec.base_asset}"
                f" against price in {spec.quote_asset}"
            ),
            price_fmt=lambda ticks: _decimal(ticks, spec.tick_size),
            qty_fmt=lambda lots: _decimal(lots, spec.lot_size),
        )
        spread = None
        if book.bids and book.asks:
            spread = _decimal(
                _units(book.asks[0][0], spec.tick_size) - _units(book.bids[0][0], spec.tick_size),
                spec.tick_size,
            )
        return render(
            request,
            s,
            "instrument.html",
            title=f"Instrument {spec.symbol}",
            spec=spec,
            book=book,
            bids=levels(book.bids),
            asks=levels(book.asks),
            spread=spread,
            book_levels=BOOK_LEVELS,
            chart=chart,
            tape=tape,
            cursor=cursor,
        )

    return await _page(request, "instruments", _validated(show))


# ------------------------------------------------------------------ settlement


def _schemes(request: Request) -> list[dict[str, Any]]:
    return [sr.scheme_out(row) for row in _read(request, rs.list_schemes)]


@router.get("/schemes")
async def schemes(request: Request) -> Response:
    async def show(request: Request, s: Session) -> Response:
        cycle = request.query_params.get("cycle", "").strip()
        if cycle:
            sr._cycle_key(cycle)  # a malformed id is the API's own 404
            return RedirectResponse(f"/console/cycles/{cycle}", status_code=303)
        items = await asyncio.to_thread(_schemes, request)
        return render(request, s, "schemes.html", title="Settlement schemes", items=items)

    return await _page(request, "settlement", show)


def _cycle_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{r['scheme_id']}-{r['seq']}",
            "state": r["state"],
            "value_date": r["value_date"],
            "opened_position": r["opened_position"],
            "cut_position": r["cut_position"],
            "settled_position": r["settled_position"],
            "unwound": r["unwound"] or [],
            "totals": [sr._totals_out(t) for t in r["totals"]],
        }
        for r in rows
    ]


@router.get("/schemes/{scheme_id}")
async def scheme(request: Request, scheme_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        sid = TypeAdapter(IdParam).validate_python(scheme_id)
        before = _param(request, "before", Position)
        found = await sr.get_scheme(sid, request, None, _=s.role)
        rows = await asyncio.to_thread(
            _read, request, rs.scheme_cycles, sid, before_seq=before, limit=PAGE_SIZE + 1
        )
        return render(
            request,
            s,
            "scheme.html",
            title=f"Scheme {found['name']}",
            scheme=found,
            cycles=_cycle_rows(rows[:PAGE_SIZE]),
            older=rows[PAGE_SIZE - 1]["seq"] if len(rows) > PAGE_SIZE else None,
            paged=before is not None,
        )

    return await _page(request, "settlement", _validated(show))


def _minor(amount: str, currency: str) -> int:
    return parse_major(amount, currency) if is_currency(currency) else int(amount)


def _major(amount_minor: int, currency: str) -> str:
    return format_major(amount_minor, currency) if is_currency(currency) else str(amount_minor)


def matrices(pairs: list[dict[str, Any]], positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency, the gross bilateral matrix o(payer -> payee) of the route's pairs, with
    each cell's shade, and the margins (sent, received, net) from the route's positions."""
    out = []
    for currency in sorted({p["currency"] for p in pairs} | {p["currency"] for p in positions}):
        gross: dict[tuple[int, int], int] = {}
        for p in pairs:
            if p["currency"] == currency:
                a, b = p["participant_a"], p["participant_b"]
                gross[a, b] = _minor(p["a_to_b"], currency)
                gross[b, a] = _minor(p["b_to_a"], currency)
        margins = {p["participant_id"]: p for p in positions if p["currency"] == currency}
        ids = sorted({i for pair in gross for i in pair} | set(margins))
        peak = max(gross.values(), default=0)
        rows = []
        for i in ids:
            cells = []
            for j in ids:
                value = gross.get((i, j), 0)
                cells.append(
                    {
                        "payee": j,
                        "self": i == j,
                        "amount": _major(value, currency),
                        "zero": value == 0,
                        "level": heat_level(value, peak),
                    }
                )
            zero = _major(0, currency)
            m = margins.get(i, {"sent": zero, "received": zero, "net": zero})
            rows.append({"payer": i, "cells": cells, "margin": m})
        out.append({"currency": currency, "ids": ids, "rows": rows, "peak": _major(peak, currency)})
    return out


@router.get("/cycles/{cycle_id}")
async def cycle(request: Request, cycle_id: str) -> Response:
    async def show(request: Request, s: Session) -> Response:
        as_of_position = _param(request, "as_of_position", Position)
        args = (cycle_id, request, as_of_position, None, None)
        found = await sr.get_cycle(*args, _=s.role)
        positions = await sr.cycle_positions(*args, _=s.role)
        bilateral = await sr.cycle_bilateral(*args, _=s.role)
        instructions = await sr.cycle_instructions(*args, _=s.role)
        return render(
            request,
            s,
            "cycle.html",
            title=f"Cycle {found['id']}",
            cycle=found,
            positions=positions["positions"],
            pairs=bilateral["pairs"],
            matrices=matrices(bilateral["pairs"], positions["positions"]),
            instructions=instructions["instructions"],
            as_of_position=as_of_position,
        )

    return await _page(request, "settlement", _validated(show))
