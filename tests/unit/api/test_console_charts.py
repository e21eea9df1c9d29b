"""The console's SVG charts: they say what they draw, escape what they print, never fail."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from api.console.charts import depth_chart, flow_graph, heat_level, heat_map, network, step_chart
from api.console.session import csrf_token, safe_next

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def test_a_step_chart_describes_its_range_and_draws_one_point_per_change() -> None:
    points = [(1_700_000_000_000_000_000 + i * 10**9, v) for i, v in enumerate([5, -3, 12])]
    svg = parse(step_chart(points, title="Balance", fmt=str))
    assert svg.get("role") == "img"
    assert svg.findtext(f"{SVG}title") == "Balance"
    desc = svg.findtext(f"{SVG}desc") or ""
    assert "3 balance changes" in desc and "lowest -3" in desc and "highest 12" in desc
    assert len(svg.findall(f"{SVG}circle")) == 3


def test_charts_of_nothing_draw_an_empty_frame_with_a_note() -> None:
    assert "no balance changes" in str(step_chart([], title="t", fmt=str))
    assert "empty" in str(depth_chart([], [], title="t", price_fmt=str, qty_fmt=str))
    assert "No relationships" in str(network([], [], title="t", fmt=str))
    parse(heat_map([], {}, title="t", fmt=str))


def test_every_text_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    for markup in (
        step_chart([(1, 1)], title=evil, fmt=lambda v: evil),
        heat_map([evil, "b"], {(0, 1): 5}, title=evil, fmt=str),
        network([("a", evil), ("b", "b")], [("a", "b", 3)], title=evil, fmt=str),
        flow_graph(
            evil,
            [evil, "b"],
            [(evil, "b", 1, 5), ("b", evil, 2, 7)],
            title=evil,
            fmt=lambda v: evil,
            marked=frozenset({(evil, "b")}),
            href=lambda a: "/x?" + a,
        ),
        depth_chart([(10, 1)], [(11, 2)], title=evil, price_fmt=lambda v: evil, qty_fmt=str),
    ):
        assert "<script>" not in str(markup)
        parse(markup)  # still well-formed XML


def test_a_depth_chart_accumulates_each_side_from_the_spread_outwards() -> None:
    svg = str(depth_chart([(99, 2), (98, 3)], [(101, 1), (103, 4)], title="d", price_fmt=str,
                          qty_fmt=str))  # fmt: skip
    assert "2 bid levels (best 99)" in svg and "2 ask levels (best 101)" in svg
    assert ">5<" in svg  # the deepest cumulative quantity labels the axis


def test_the_deepest_level_of_each_side_runs_on_to_the_edge_of_the_chart() -> None:
    svg = parse(depth_chart([(99, 2), (98, 3)], [(101, 1), (103, 4)], title="d",
                            price_fmt=str, qty_fmt=str))  # fmt: skip
    frame = svg.find(f"{SVG}rect")
    assert frame is not None
    left = float(frame.get("x") or 0)
    right = left + float(frame.get("width") or 0)
    paths = {p.get("class"): p.get("d") or "" for p in svg.iter(f"{SVG}path")}
    assert paths["depth bids"].endswith(f"H{left:g}V{frame_bottom(frame)}Z")
    assert paths["depth asks"].endswith(f"H{right:g}V{frame_bottom(frame)}Z")
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "best bid 99" in texts and "best ask 101" in texts


def frame_bottom(frame: ET.Element) -> str:
    return f"{float(frame.get('y') or 0) + float(frame.get('height') or 0):g}"


def test_heat_levels_run_from_none_through_five_shades_to_the_peak() -> None:
    assert [heat_level(v, 100) for v in (0, 1, 24, 25, 50, 99, 100)] == [0, 1, 1, 2, 3, 4, 5]
    assert heat_level(-100, 100) == 5 and heat_level(3, 0) == 5


def test_a_heat_map_writes_each_value_in_its_cell() -> None:
    svg = parse(heat_map(["A", "B"], {(0, 1): 700, (1, 0): 300}, title="m", fmt=str))
    titles = [t.text for t in svg.iter(f"{SVG}title")]
    assert "A owes B: 700" in titles and "B owes A: 300" in titles


def test_sign_in_returns_only_to_console_paths() -> None:
    assert safe_next("/console/accounts/1?as_of=2") == "/console/accounts/1?as_of=2"
    for hostile in ("https://evil.example/", "//evil.example", "/console//evil", "/v1/keys",
                    "/console/\\evil", None, ""):  # fmt: skip
        assert safe_next(hostile) == "/console/"


def test_the_csrf_token_is_bound_to_the_key() -> None:
    assert csrf_token("ll_a_1") == csrf_token("ll_a_1")
    assert csrf_token("ll_a_1") != csrf_token("ll_a_2")


def test_a_flow_graph_puts_each_hop_on_its_own_ring_and_labels_every_flow() -> None:
    flows = [("A", "B", 1, 500), ("B", "C", 2, 480), ("C", "A", 1, 460), ("C", "D", 3, 90)]
    markup = flow_graph("A", ["A", "B", "C", "D"], flows, title="g", fmt=str,
                        marked=frozenset({("A", "B"), ("B", "C"), ("C", "A")}))  # fmt: skip
    svg = parse(markup)
    centers = {g.get("data-account"): g.find(f"{SVG}circle") for g in svg.iter(f"{SVG}g")}
    assert set(centers) == {"A", "B", "C", "D"}

    def where(node: str) -> tuple[float, float]:
        c = centers[node]
        assert c is not None
        return float(c.get("cx") or 0), float(c.get("cy") or 0)

    frame = svg.find(f"{SVG}rect")
    assert frame is not None
    mid = (float(frame.get("width") or 0) / 2, float(frame.get("height") or 0) / 2)
    assert where("A") == mid  # the account asked about is in the middle

    # D is two hops out: farther from the middle than B and C (one hop).
    def out(node: str) -> float:
        x, y = where(node)
        return ((x - mid[0]) / mid[0]) ** 2 + ((y - mid[1]) / mid[1]) ** 2

    assert out("D") > out("B") and out("D") > out("C")
    labels = sorted(
        t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class", "").startswith("flow-label")
    )
    assert labels == ["1\u00d7 460", "1\u00d7 500", "2\u00d7 480", "3\u00d7 90"]
    paths = {
        (p.get("data-from"), p.get("data-to")): p.get("class")
        for p in svg.iter(f"{SVG}path")
        if p.get("data-from")
    }
    assert paths[("C", "D")] == "flow" and paths[("A", "B")] == "flow marked"
    assert "3 flows on cycles" in (svg.findtext(f"{SVG}desc") or "")
    # Deterministic: the same graph, given in another order, is the same drawing.
    again = flow_graph("A", ["D", "C", "B", "A"], list(reversed(flows)), title="g", fmt=str,
                       marked=frozenset({("C", "A"), ("B", "C"), ("A", "B")}))  # fmt: skip
    assert str(again) == str(markup)


def test_a_flow_graph_draws_at_most_its_cap_nearest_first_and_says_so() -> None:
    nodes = ["H", *(f"S{i:02}" for i in range(50))]
    flows = [(f"S{i:02}", "H", 1, 100) for i in range(50)]
    svg = parse(flow_graph("H", nodes, flows, title="g", fmt=str, max_nodes=10))
    drawn = [g.get("data-account") for g in svg.iter(f"{SVG}g") if g.get("data-account")]
    assert len(drawn) == 10 and "H" in drawn
    assert "41 more accounts are not drawn" in (svg.findtext(f"{SVG}desc") or "")


def test_a_flow_graph_of_a_lone_account_says_there_are_no_flows() -> None:
    svg = str(flow_graph("C", ["C"], [], title="g", fmt=str))
    assert "no flows in this window" in svg and "C alone" in svg
    assert "no flows" in str(flow_graph("C", [], [], title="g", fmt=str))
