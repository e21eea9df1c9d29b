"""The cycle page's heat map: the route's pairs and positions laid out as a matrix."""

from __future__ import annotations

from typing import Any

from api.console.markets import matrices


def pair(cur: str, a: int, b: int, a_to_b: str, b_to_a: str) -> dict[str, Any]:
    return {"currency": cur, "participant_a": a, "participant_b": b, "a_to_b": a_to_b,
            "b_to_a": b_to_a}  # fmt: skip


def position(cur: str, pid: int, sent: str, received: str, net: str) -> dict[str, Any]:
    return {"currency": cur, "participant_id": pid, "sent": sent, "received": received,
            "net": net}  # fmt: skip


def test_each_ordered_pair_lands_in_its_row_and_column_with_the_margins_beside_it() -> None:
    pairs = [pair("USD", 11, 12, "25.00", "17.00"), pair("USD", 11, 13, "7.00", "0.00")]
    positions = [
        position("USD", 11, "32.00", "17.00", "-15.00"),
        position("USD", 12, "17.00", "25.00", "8.00"),
        position("USD", 13, "0.00", "7.00", "7.00"),
    ]
    [usd] = matrices(pairs, positions)
    assert usd["ids"] == [11, 12, 13] and usd["peak"] == "25.00"
    grid = {(r["payer"], c["payee"]): c for r in usd["rows"] for c in r["cells"]}
    assert grid[11, 12]["amount"] == "25.00" and grid[11, 12]["level"] == 5
    assert grid[12, 11]["amount"] == "17.00" and grid[12, 11]["level"] == 3
    assert grid[13, 11]["amount"] == "0.00" and grid[13, 11]["level"] == 0
    assert grid[12, 13]["zero"] and all(grid[i, i]["self"] for i in (11, 12, 13))
    assert [r["margin"]["net"] for r in usd["rows"]] == ["-15.00", "8.00", "7.00"]


def test_each_currency_has_its_own_matrix_and_a_missing_margin_is_zero() -> None:
    pairs = [pair("EUR", 1, 2, "10.50", "3.00"), pair("JPY", 1, 2, "500", "0")]
    eur, jpy = matrices(pairs, [position("EUR", 1, "10.50", "3.00", "-7.50")])
    assert (eur["currency"], jpy["currency"]) == ("EUR", "JPY")
    assert eur["rows"][1]["margin"] == {"sent": "0.00", "received": "0.00", "net": "0.00"}
    assert jpy["rows"][0]["cells"][1]["amount"] == "500" and jpy["peak"] == "500"


def test_a_cycle_with_nothing_netted_has_no_matrix() -> None:
    assert matrices([], []) == []
