"""Charts drawn on the server as SVG: no chart library, no script, readable without colour.

Definition
    Each function takes plain numbers and returns an ``<svg>`` element (as ``Markup``) with
    ``role="img"``, a ``<title>`` and a ``<desc>`` summarising what it shows, so a screen
    reader gets the gist and the page's table gives the detail. Values are integers (minor
    units, lots, ticks); labels are formatted by the caller's ``fmt``.

Guarantees
    Every text that reaches the SVG is escaped. Empty input draws an empty frame with a note,
    never an error. Output is deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

Fmt = Callable[[int], str]


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _time_label(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _frame(width: int, height: int, title: str, desc: str, body: str, cls: str) -> Markup:
    # Every interpolated text is escaped here or by the caller that built ``body``.
    return Markup(  # noqa: S704
        f'<svg class="chart {escape(cls)}" viewBox="0 0 {width} {height}" width="100%"'
        f' role="img" aria-labelledby="{escape(cls)}-title {escape(cls)}-desc"'
        ' xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{escape(cls)}-title">{escape(title)}</title>'
        f'<desc id="{escape(cls)}-desc">{escape(desc)}</desc>{body}</svg>'
    )


def step_chart(
    points: Sequence[tuple[int, int]],
    *,
    title: str,
    fmt: Fmt,
    width: int = 720,
    height: int = 220,
    cls: str = "balance-chart",
) -> Markup:
    """A value over time as a step line: ``points`` are ``(time_ns, value)`` in time order;
    the value holds until the next point."""
    left, right, top, bottom = 110, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    if not points:
        body = (
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>'
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
            "no balance changes yet</text>"
        )
        return _frame(width, height, title, "No balance changes yet.", body, cls)
    times = [t for t, _ in points]
    values = [v for _, v in points]
    lo, hi = min(*values, 0), max(*values, 0)
    if lo == hi:
        hi = lo + 1
    t0, t1 = times[0], times[-1]
    if t0 == t1:
        t1 = t0 + 1

    def x(t: int) -> float:
        return left + (t - t0) / (t1 - t0) * plot_w

    def y(v: int) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    path = [f"M{_n(x(times[0]))},{_n(y(values[0]))}"]
    for t, v in points[1:]:
        path.append(f"H{_n(x(t))}V{_n(y(v))}")
    path.append(f"H{_n(left + plot_w)}")
    ticks = sorted({lo, hi, 0})
    grid = "".join(
        f'<line x1="{left}" x2="{left + plot_w}" y1="{_n(y(v))}" y2="{_n(y(v))}"'
        f' class="{"zero" if v == 0 else "grid"}"/>'
        f'<text x="{left - 6}" y="{_n(y(v) + 4)}" text-anchor="end">{escape(fmt(v))}</text>'
        for v in ticks
    )
    dots = "".join(
        f'<circle cx="{_n(x(t))}" cy="{_n(y(v))}" r="2.5" class="point"/>' for t, v in points
    )
    axis = (
        f'<text x="{left}" y="{height - 10}">{escape(_time_label(times[0]))} UTC</text>'
        f'<text x="{left + plot_w}" y="{height - 10}" text-anchor="end">'
        f"{escape(_time_label(times[-1]))} UTC</text>"
    )
    body = (
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>'
        f'{grid}<path d="{"".join(path)}" class="line"/>{dots}{axis}'
    )
    desc = (
        f"{len(points)} balance changes from {_time_label(times[0])} to "
        f"{_time_label(times[-1])} UTC; lowest {fmt(min(values))}, highest {fmt(max(values))}, "
        f"last {fmt(values[-1])}."
    )
    return _frame(width, height, title, desc, body, cls)


def depth_chart(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    *,
    title: str,
    price_fmt: Fmt,
    qty_fmt: Fmt,
    width: int = 720,
    height: int = 240,
    cls: str = "depth-chart",
) -> Markup:
    """An order book's cumulative depth: ``bids`` and ``asks`` are ``(price, quantity)``
    levels (any order). Bids step down to the left of the spread, asks up to the right; the
    two sides differ in fill pattern as well as colour."""
    left, right, top, bottom = 80, 16, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    if not bids and not asks:
        body = (
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>'
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
            "the book is empty</text>"
        )
        return _frame(width, height, title, "The book is empty.", body, cls)
    bid_levels = sorted(bids, key=lambda level: -level[0])
    ask_levels = sorted(asks, key=lambda level: level[0])

    def cumulative(levels: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        total, out = 0, []
        for price, qty in levels:
            total += qty
            out.append((price, total))
        return out

    cum_bids, cum_asks = cumulative(bid_levels), cumulative(ask_levels)
    prices = [p for p, _ in cum_bids + cum_asks]
    # The range is padded by a tenth (at least one price unit) on each side, so the outermost
    # level of each side has a width: each side's deepest total runs on to the edge.
    pad = max(1, (max(prices) - min(prices)) // 10)
    p_lo, p_hi = min(prices) - pad, max(prices) + pad
    q_hi = max(q for _, q in cum_bids + cum_asks) or 1

    def x(p: int) -> float:
        return left + (p - p_lo) / (p_hi - p_lo) * plot_w

    def y(q: int) -> float:
        return top + (q_hi - q) / q_hi * plot_h

    base = _n(y(0))

    def area(levels: list[tuple[int, int]], side: str, edge: int) -> str:
        # From the best price outwards: each level's total holds until the next level.
        if not levels:
            return ""
        d = [f"M{_n(x(levels[0][0]))},{base}"]
        for price, qty in levels:
            d.append(f"H{_n(x(price))}V{_n(y(qty))}")
        d.append(f"H{_n(x(edge))}V{base}Z")
        return f'<path d="{"".join(d)}" class="depth {side}"><title>{side}</title></path>'

    label_y = height - 10

    def span(at: float, text: str, anchor: str) -> tuple[float, float]:
        wide = 6.5 * len(text)  # about the width of an 11 px label
        return (at, at + wide) if anchor == "start" else (at - wide, at)

    # Best bid (ending at its price) and best ask (starting at its): they never meet. The
    # range's ends are labelled where they do not collide with those two.
    inner = []
    if bid_levels:
        text = f"best bid {price_fmt(bid_levels[0][0])}"
        inner.append((*span(x(bid_levels[0][0]), text, "end"), text, "end"))
    if ask_levels:
        text = f"best ask {price_fmt(ask_levels[0][0])}"
        inner.append((*span(x(ask_levels[0][0]), text, "start"), text, "start"))
    axis: list[tuple[float, str, str]] = []
    for at, text, anchor in (
        (left, price_fmt(p_lo), "start"),
        (left + plot_w, price_fmt(p_hi), "end"),
    ):
        lo, hi = span(at, text, anchor)
        if all(hi + 8 < a or lo - 8 > b for a, b, _, _ in inner):
            axis.append((at, text, anchor))
    axis += [(b if anchor == "end" else a, text, anchor) for a, b, text, anchor in inner]
    ticks = "".join(
        f'<text x="{_n(at)}" y="{label_y}" text-anchor="{anchor}">{escape(text)}</text>'
        for at, text, anchor in axis
    )
    marks = "".join(
        f'<line x1="{_n(x(levels[0][0]))}" x2="{_n(x(levels[0][0]))}" y1="{base}"'
        f' y2="{_n(y(0) + 5)}" class="tick"/>'
        for levels in (bid_levels, ask_levels)
        if levels
    )
    # The legend sits over the spread, where both sides are lowest.
    legend_x = min(
        max(
            (x(bid_levels[0][0]) + x(ask_levels[0][0])) / 2
            if bid_levels and ask_levels
            else left + plot_w / 2,
            left + 110,
        ),
        left + plot_w - 110,
    )
    labels = (
        f'<text x="{left - 6}" y="{_n(y(q_hi) + 4)}" text-anchor="end">{escape(qty_fmt(q_hi))}'
        f'</text><text x="{left - 6}" y="{_n(y(0))}" text-anchor="end">0</text>{ticks}'
        f'<text x="{_n(legend_x)}" y="{top + 14}" text-anchor="middle" class="legend">'
        "← bids (hatched) · asks (solid) →</text>"
    )
    defs = (
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" class="hatch"/>'
        "</pattern></defs>"
    )
    body = (
        f'{defs}<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>'
        f"{area(cum_bids, 'bids', p_lo)}{area(cum_asks, 'asks', p_hi)}{marks}{labels}"
    )
    best_bid = price_fmt(bid_levels[0][0]) if bid_levels else "none"
    best_ask = price_fmt(ask_levels[0][0]) if ask_levels else "none"
    desc = (
        f"{len(bid_levels)} bid levels (best {best_bid}) and {len(ask_levels)} ask levels "
        f"(best {best_ask})."
    )
    return _frame(width, height, title, desc, body, cls)


def heat_level(value: int, peak: int) -> int:
    """The shade of a heat-map cell: 0 for nothing, 1 (least) to 5 (the peak) otherwise."""
    if value == 0:
        return 0
    return 1 + min(4, int(4 * abs(value) / (peak or 1)))


def heat_map(
    labels: Sequence[str],
    cells: dict[tuple[int, int], int],
    *,
    title: str,
    fmt: Fmt,
    cls: str = "heat-map",
    cell: int = 56,
) -> Markup:
    """A square matrix (row ``i`` owes column ``j`` ``cells[i, j]``) as shaded cells, each
    with its value written in it: the shade helps, the number tells."""
    n = len(labels)
    left, top = 120, 110
    width, height = left + n * cell + 10, top + n * cell + 10
    peak = max((abs(v) for v in cells.values()), default=0) or 1
    parts = []
    for j, name in enumerate(labels):
        cx = left + j * cell + cell / 2
        parts.append(
            f'<text x="{_n(cx)}" y="{top - 8}" transform="rotate(-45 {_n(cx)} {top - 8})">'
            f"{escape(name)}</text>"
        )
    for i, name in enumerate(labels):
        cy = top + i * cell
        parts.append(
            f'<text x="{left - 6}" y="{_n(cy + cell / 2 + 4)}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        for j in range(n):
            value = cells.get((i, j), 0)
            level = heat_level(value, peak)
            parts.append(
                f"<g><title>{escape(name)} owes {escape(labels[j])}: {escape(fmt(value))}"
                f'</title><rect x="{left + j * cell}" y="{cy}" width="{cell}" height="{cell}"'
                f' class="cell h{level}"/><text x="{_n(left + j * cell + cell / 2)}"'
                f' y="{_n(cy + cell / 2 + 4)}" text-anchor="middle"'
                f' class="{"on-dark" if level >= 4 else ""}">'
                f"{escape(fmt(value)) if value else '·'}</text></g>"
            )
    total = sum(cells.values())
    desc = f"{n} by {n} matrix; rows owe columns; total {fmt(total)}."
    return _frame(width, height, title, desc, "".join(parts), cls)


def network(
    nodes: Sequence[tuple[str, str]],
    edges: Sequence[tuple[str, str, int]],
    *,
    title: str,
    fmt: Fmt,
    highlight: frozenset[str] = frozenset(),
    width: int = 720,
    height: int = 480,
    cls: str = "network",
) -> Markup:
    """A directed graph on a circle: ``nodes`` are ``(id, label)``, ``edges`` are
    ``(from, to, amount)``; highlighted nodes are drawn larger and marked with a ring and
    an asterisk in their label (not only a colour)."""
    if not nodes:
        body = '<text x="20" y="30">no relationships to draw</text>'
        return _frame(width, height, title, "No relationships.", body, cls)
    cx, cy = width / 2, height / 2
    radius = min(width, height) / 2 - 60
    where: dict[str, tuple[float, float]] = {}
    for k, (node_id, _) in enumerate(nodes):
        angle = 2 * math.pi * k / len(nodes) - math.pi / 2
        where[node_id] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    peak = max((a for _, _, a in edges), default=1) or 1
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="18" refY="5" markerWidth="6"'
        ' markerHeight="6" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"'
        ' class="arrowhead"/></marker></defs>'
    ]
    for src, dst, amount in edges:
        if src not in where or dst not in where:
            continue
        (x1, y1), (x2, y2) = where[src], where[dst]
        stroke = 1 + 4 * amount / peak
        parts.append(
            f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" class="edge"'
            f' stroke-width="{_n(stroke)}" marker-end="url(#arrow)">'
            f"<title>{escape(src)} to {escape(dst)}: {escape(fmt(amount))}</title></line>"
        )
    for node_id, label in nodes:
        px, py = where[node_id]
        marked = node_id in highlight
        parts.append(
            f'<g class="node{" flagged" if marked else ""}"><title>{escape(label)}</title>'
            f'<circle cx="{_n(px)}" cy="{_n(py)}" r="{12 if marked else 8}"/>'
            f'<text x="{_n(px)}" y="{_n(py - 16)}" text-anchor="middle">'
            f"{escape(label)}{' *' if marked else ''}</text></g>"
        )
    desc = f"{len(nodes)} accounts and {len(edges)} money flows between them."
    return _frame(width, height, title, desc, "".join(parts), cls)


Flow = tuple[str, str, int, int]  # from, to, number of transactions, sum (minor units)


def _rings(center: str, nodes: Sequence[str], flows: Sequence[Flow]) -> list[list[str]]:
    """Nodes by their distance from ``center`` (flows taken in either direction); each ring
    ordered by where its neighbours sit in the ring inside it, then by id, so linked nodes
    stay near each other and the same graph always lands the same way."""
    known = set(nodes)
    near: dict[str, set[str]] = {n: set() for n in known}
    for src, dst, _, _ in flows:
        if src in known and dst in known and src != dst:
            near[src].add(dst)
            near[dst].add(src)
    rings: list[list[str]] = [[center]] if center in known else []
    placed = set(rings[0]) if rings else set()
    while rings:
        inner = {n: i for i, n in enumerate(rings[-1])}
        ring = sorted(
            {m for n in rings[-1] for m in near[n] if m not in placed},
            key=lambda m: (min(inner[n] for n in near[m] if n in inner), m),
        )
        if not ring:
            break
        rings.append(ring)
        placed.update(ring)
    rest = sorted(known - placed)  # not linked to the center (cut off by a cap): outermost
    if rest:
        rings.append(rest)
    return rings


def _layout(
    center: str,
    nodes: Sequence[str],
    flows: Sequence[Flow],
    max_nodes: int,
    width: int,
    height: int,
) -> tuple[list[list[str]], dict[str, tuple[float, float]]]:
    """The rings drawn (at most ``max_nodes`` accounts, nearest first) and where each
    account sits: the center in the middle, ring ``d`` on an ellipse ``d`` steps out,
    its accounts evenly spread (over at least three slots), every other ring turned half a
    slot."""
    drawn: list[list[str]] = []
    budget = max_nodes
    for ring in _rings(center, nodes, flows):
        if budget <= 0:
            break
        drawn.append(ring[:budget])
        budget -= len(drawn[-1])
    cx, cy = width / 2, height / 2
    # Rings are ellipses filling the frame (labels need room sideways more than up and down).
    rings = max(1, len(drawn) - 1)
    step_x, step_y = (width / 2 - 90) / rings, (height / 2 - 45) / rings
    where: dict[str, tuple[float, float]] = {}
    for d, ring in enumerate(drawn):
        turn = 0.5 if d % 2 == 0 else 0.0
        for k, node in enumerate(ring):
            if d == 0 and len(ring) == 1:
                where[node] = (cx, cy)
                continue
            # At least three slots a ring: two accounts never face each other across the
            # center (a flow between them would run through it).
            angle = 2 * math.pi * (k + turn) / max(3, len(ring)) - math.pi / 2
            out = max(d, 1)
            where[node] = (
                cx + step_x * out * math.cos(angle),
                cy + step_y * out * math.sin(angle),
            )
    return drawn, where


def _toward(px: float, py: float, fx: float, fy: float, gap: float) -> tuple[float, float]:
    """The point ``gap`` away from ``(px, py)`` in the direction of ``(fx, fy)``."""
    vx, vy = fx - px, fy - py
    n = math.hypot(vx, vy) or 1.0
    return px + vx / n * gap, py + vy / n * gap


def flow_graph(
    center: str,
    nodes: Sequence[str],
    flows: Sequence[Flow],
    *,
    title: str,
    fmt: Fmt,
    marked: frozenset[tuple[str, str]] = frozenset(),
    href: Callable[[str], str] | None = None,
    max_nodes: int = 40,
    width: int = 900,
    height: int = 640,
    cls: str = "flow-graph",
) -> Markup:
    """Accounts as circles on rings around ``center`` (one ring per hop), flows as arrows
    labelled with their count and sum (``fmt``); flows in ``marked`` (a cycle's) are drawn
    thick and dashed, not only in another colour. The two flows between a pair bend apart;
    a lone flow bends away from the center. At most ``max_nodes`` accounts are drawn, nearest first;
    the description says how many were left out. Each account links to ``href(account)``
    when given."""
    drawn, where = _layout(center, nodes, flows, max_nodes, width, height)
    shown = set(where)
    if not shown:
        body = (
            f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "no flows in this window</text>"
        )
        return _frame(width, height, title, "No flows in this window.", body, cls)
    cx, cy = width / 2, height / 2
    radius = {n: (16.0 if n == center else 11.0) for n in shown}
    pairs = {(f[0], f[1]) for f in flows}
    visible = [f for f in flows if f[0] in shown and f[1] in shown and f[0] != f[1]]
    peak = max((f[3] for f in visible), default=1) or 1
    parts = [
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11"'
        ' markerHeight="11" markerUnits="userSpaceOnUse" orient="auto"><path'
        ' d="M0,0L10,5L0,10z" class="arrowhead"/></marker><marker id="flow-arrow-marked"'
        ' viewBox="0 0 10 10" refX="10" refY="5" markerWidth="12" markerHeight="12"'
        ' markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0L10,5L0,10z"'
        ' class="arrowhead marked"/></marker></defs>',
        f'<rect x="0" y="0" width="{width}" height="{height}" class="frame"/>',
    ]
    labels = []
    for src, dst, count, total in sorted(visible):
        (x1, y1), (x2, y2) = where[src], where[dst]
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy) or 1.0
        ux, uy = dx / length, dy / length
        # Every flow bends: A->B and B->A each to their right, so they part; a lone flow
        # away from the center, so it passes the center by and keeps out of the middle.
        bend = 0.22 * length
        if (dst, src) not in pairs:
            mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
            outward = (mid_x - cx) * -uy + (mid_y - cy) * ux
            bend = -bend if outward < -1e-6 else bend
        qx, qy = (x1 + x2) / 2 - uy * bend, (y1 + y2) / 2 + ux * bend
        sx, sy = _toward(x1, y1, qx, qy, radius[src] + 2)
        ex, ey = _toward(x2, y2, qx, qy, radius[dst] + 3)
        is_marked = (src, dst) in marked
        stroke = 1.2 + 3.3 * total / peak
        label = f"{count}\u00d7 {fmt(total)}"
        parts.append(
            f'<path d="M{_n(sx)},{_n(sy)}Q{_n(qx)},{_n(qy)} {_n(ex)},{_n(ey)}"'
            f' class="flow{" marked" if is_marked else ""}" stroke-width="{_n(stroke)}"'
            f' marker-end="url(#flow-arrow{"-marked" if is_marked else ""})"'
            f' data-from="{escape(src)}" data-to="{escape(dst)}">'
            f"<title>{escape(src)} to {escape(dst)}: {escape(label)}"
            f"{' (on a cycle)' if is_marked else ''}</title></path>"
        )
        # The label sits just outside the bend and grows away from it, so the labels of
        # A->B and B->A never cover each other.
        nx, ny = (-uy, ux) if bend >= 0 else (uy, -ux)
        mx = 0.25 * x1 + 0.5 * qx + 0.25 * x2 + nx * 6
        my = 0.25 * y1 + 0.5 * qy + 0.25 * y2 + ny * 8 + 4
        anchor = "start" if nx > 0.3 else "end" if nx < -0.3 else "middle"
        labels.append(
            f'<text x="{_n(mx)}" y="{_n(my)}" text-anchor="{anchor}"'
            f' class="flow-label{" marked" if is_marked else ""}">{escape(label)}</text>'
        )
    parts.extend(labels)
    if not visible:
        parts.append(
            f'<text x="{width / 2}" y="{height - 24}" text-anchor="middle">'
            "no flows in this window</text>"
        )
    on_cycle = {n for pair in marked for n in pair}
    for node in sorted(shown):
        px, py = where[node]
        kind = "center" if node == center else ("flagged" if node in on_cycle else "")
        short = node if len(node) <= 18 else node[:17] + "…"
        above = py <= cy
        ty = py - radius[node] - 6 if above else py + radius[node] + 14
        inner = (
            f"<title>{escape(node)}</title>"
            f'<circle cx="{_n(px)}" cy="{_n(py)}" r="{_n(radius[node])}"/>'
            f'<text x="{_n(px)}" y="{_n(ty)}" text-anchor="middle">{escape(short)}</text>'
        )
        if href is not None:
            inner = f'<a href="{escape(href(node))}">{inner}</a>'
        parts.append(f'<g class="node {kind}" data-account="{escape(node)}">{inner}</g>')
    left_out = len(nodes) - len(shown)
    if not visible:
        return _frame(
            width, height, title, f"{center} alone: no flows in this window.", "".join(parts), cls
        )
    desc = (
        f"{len(shown)} accounts around {center} on {len(drawn) - 1} rings (one per hop) and "
        f"{len(visible)} flows between them, each labelled with its number of transactions "
        f"and sum; {len([f for f in visible if (f[0], f[1]) in marked])} flows on cycles "
        "through the account drawn thick and dashed."
        + (f" {left_out} more accounts are not drawn (see the table)." if left_out > 0 else "")
    )
    return _frame(width, height, title, desc, "".join(parts), cls)
