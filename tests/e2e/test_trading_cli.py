"""``ledgerline trading``, ``report trades|orders`` and ``bench matching`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.e2e.test_cli import assert_one_line_error, run


def test_instruments_and_orders_from_the_command_line_then_the_trading_reports(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    db = ("--database-url", db_url)
    created = run(
        "trading", "instruments", "create", "--id", "1", "--symbol", "EUR/USD", "--base", "EUR",
        "--quote", "USD", "--tick-size", "0.0001", "--lot-size", "1000", *db, env=cli_env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["instrument"]["symbol"] == "EUR/USD"
    for oid, side, price in ((1, "sell", "1.0850"), (2, "buy", "1.0852")):
        placed = run(
            "trading", "orders", "place", "--instrument", "1", "--id", str(oid), "--account",
            str(oid * 10), "--side", side, "--price", price, "--quantity", "3000", *db, env=cli_env,
        )  # fmt: skip
        assert placed.returncode == 0, placed.stderr
    last = json.loads(placed.stdout)
    assert last["order"]["status"] == "filled"
    assert last["order"]["trades"][0]["price"] == "1.0850"
    shown = run("trading", "orders", "show", "2", *db, env=cli_env)
    assert json.loads(shown.stdout)["filled_quantity"] == "3000"
    missing = run("trading", "orders", "cancel", "--id", "99", "--account", "5", *db, env=cli_env)
    assert_one_line_error(missing, "order_not_found")
    bad = run(
        "trading", "orders", "place", "--instrument", "1", "--id", "3", "--account", "5",
        "--side", "buy", "--price", "1.00005", "--quantity", "1000", *db, env=cli_env,
    )  # fmt: skip
    assert_one_line_error(bad, "price_not_on_tick")
    assert bad.returncode == 1
    for name in ("trades", "orders"):
        out = tmp_path / name
        report = run("report", name, "--out", str(out), *db, env=cli_env)
        assert report.returncode == 0, report.stderr
        rows = pq.read_table(out.with_suffix(".parquet")).to_pylist()
        if name == "trades":
            assert len(rows) == 1
            assert (rows[0]["volume"], rows[0]["vwap"], rows[0]["trades"]) == (
                "3000", "1.08500000", 1,
            )  # fmt: skip
        else:
            assert [(r["order_id"], r["event"]) for r in rows] == [
                ("1", "accepted"),
                ("2", "accepted"),
                ("1", "traded"),
                ("2", "traded"),
            ]


def test_bench_matching_measures_the_engine_and_its_reference_in_one_run(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        "bench", "matching", "--json", "--events", "2000", "--seconds", "0.3", "--clients", "4",
        "--data-dir", str(tmp_path / "d"), env=cli_env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["books_equal_reference"] is True
    for key in (
        "engine_orders_per_s",
        "reference_orders_per_s",
        "durable_orders_per_s",
        "http_orders_per_s",
        "batched_http_orders_per_s",
        "peak_rss_mb",
    ):
        assert data[key] > 0, key
    assert (
        abs(
            data["engine_vs_reference"]
            - data["engine_orders_per_s"] / data["reference_orders_per_s"]
        )
        < 0.01
    )
    assert set(data["targets"]) == {
        "engine_orders_per_s",
        "engine_vs_reference",
        "durable_orders_per_s",
        "book_lag_p99_ms",
    }
    assert all(isinstance(t["pass"], bool) for t in data["targets"].values())
    assert data["http_errors"] == 0 and data["batched_http_errors"] == 0
    assert set(data["limits"]) >= set(data["targets"])
