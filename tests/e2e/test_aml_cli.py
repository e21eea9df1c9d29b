"""``ledgerline aml``: ingest files line by line, alerts out, drafts, simulate and score."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.e2e.test_cli import assert_one_line_error, run


def record(tx_id: str, amount: str = "100.00", **kw: Any) -> str:
    rec = {
        "id": tx_id,
        "timestamp": "2026-11-02T10:00:00-05:00",
        "from_account": "A",
        "to_account": "B",
        "amount": amount,
        "currency": "USD",
        "channel": "ach",
        "kind": "transfer",
        **kw,
    }
    return json.dumps(rec)


def test_ingest_names_bad_lines_by_number_and_ingests_the_rest_once(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "tx.jsonl"
    path.write_text(
        "\n".join(
            [
                record("t1"),
                "{not json",
                record("t2"),
                record("t3", amount="12.345"),
                "",
                record("t4", currency="GBP"),
                "[1, 2]",
                record("t5"),
            ]
        )
        + "\n"
    )
    first = run("aml", "ingest", str(path), "--batch-size", "2", env=cli_env, timeout=300)
    assert first.returncode == 1
    errors = first.stderr.strip().splitlines()
    assert errors[:4] == [
        "ledgerline: line 2: not JSON: Expecting property name enclosed in double quotes"
        " (column 2)",
        "ledgerline: line 4: invalid_amount: amount 12.345 has 3 decimal places; USD allows 2",
        "ledgerline: line 6: currency_without_rate: no USD rate is loaded for GBP; load rates"
        " first",
        "ledgerline: line 7: not a JSON object",
    ]
    assert errors[-1] == f"ledgerline: error: 4 line(s) of {path} were not ingested"
    assert "transactions: 3 recorded, 0 already known, 4 line(s) not ingested" in first.stdout
    again = run("aml", "ingest", str(path), env=cli_env, timeout=300)
    assert "transactions: 0 recorded, 3 already known" in again.stdout
    missing = run("aml", "ingest", str(tmp_path / "nope.jsonl"), env=cli_env)
    assert_one_line_error(missing, "cannot read")


def test_simulate_ingest_alerts_score_and_drafts_from_the_command_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The commands fit together: simulate's files ingest, ``aml alerts`` output scores.

    One business day of the simulated stream is ingested (the whole stream's recall and
    precision through the projection are the bench's test), the day of a planted CTR
    obligation, so its CTR alert, CSV line and HTML draft are checked.
    """
    sim = tmp_path / "sim"
    made = run(
        "aml", "simulate", "--seed", "4", "--out", str(sim), "--accounts", "2000", "--days", "60",
        "--patterns", "1", env=cli_env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["transactions"] > 10_000
    truth = json.loads((sim / "truth.json").read_text())
    obligation = truth["ctr_obligations"][0]
    day = obligation["business_day"]
    zone = ZoneInfo(truth["timezone"])
    one_day = tmp_path / "day.jsonl"
    with (sim / "transactions.jsonl").open() as fh, one_day.open("w") as sink:
        for line in fh:
            moment = dt.datetime.fromisoformat(json.loads(line)["timestamp"])
            if moment.astimezone(zone).date().isoformat() == day:
                sink.write(line)
    for command, path in (
        ("ingest-rates", sim / "rates.json"),
        ("ingest-accounts", sim / "accounts.jsonl"),
        ("ingest", one_day),
    ):
        done = run("aml", command, str(path), env=cli_env, timeout=600)
        assert done.returncode == 0, done.stderr
    alerts = tmp_path / "alerts.jsonl"
    out = run("aml", "alerts", "--out", str(alerts), env=cli_env, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in alerts.read_text().splitlines()]
    fields = {
        "alert_id", "typology", "rule_id", "rule_version", "score", "account_ids",
        "transaction_ids", "raised_event_ts", "position",
    }  # fmt: skip
    assert rows and all(set(r) >= fields for r in rows)
    assert all(r["raised_event_ts"].endswith("Z") for r in rows)
    ctr = [r for r in rows if r["typology"] == "ctr"]
    assert any(
        obligation["subject"] in r["account_ids"]
        and set(obligation["transaction_ids"]) <= set(r["transaction_ids"])
        for r in ctr
    )
    scored = run(
        "aml", "score", "--truth", str(sim / "truth.json"), "--alerts", str(alerts), "--json",
        env=cli_env,
    )  # fmt: skip
    result = json.loads(scored.stdout)
    assert {"recall", "precision", "per_typology", "lookalikes", "ctr"} <= set(result)
    assert result["ctr"]["precision"] == 1.0 and result["ctr"]["recall"] > 0
    csv_out = run("aml", "alerts", "--format", "csv", "--typology", "ctr", env=cli_env)
    header, *lines = csv_out.stdout.splitlines()
    assert header.startswith("alert_id,typology,rule_id,rule_version,score,account_ids")
    assert len(lines) == len(ctr) and all(",ctr,ctr,1," in r for r in lines)
    html = run("aml", "report", "ctr", "--date", day, "--format", "html", env=cli_env)
    assert html.returncode == 0 and "Currency Transaction Report" in html.stdout
    assert obligation["transaction_ids"][0] in html.stdout
    assert_one_line_error(run("aml", "report", "sar", "NO-SUCH-CASE", env=cli_env), "no case")
