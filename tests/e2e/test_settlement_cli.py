"""``ledgerline settlement ...`` and ``ledgerline report netting|unwind`` on a real database."""

from __future__ import annotations

import json
from pathlib import Path

from ledgerline.runtime import build_runtime
from tests.e2e.test_cli import assert_one_line_error, run
from tests.integration.settlement_fixtures import Day

A, B, C = 11, 12, 13
BANXICO = [(A, B, "25"), (A, C, "7"), (B, A, "17"), (B, C, "9"), (C, A, "11"), (C, B, "14")]


def _banxico(db_url: str) -> None:
    runtime = build_runtime(db_url, sweep_interval_s=None, checkpoint_interval_s=None)
    try:
        day = Day(runtime)
        day.ledger_accounts((A, B, C), ("USD",))
        for pid in (A, B, C):
            day.participant(pid, ("USD",))
        day.scheme(1, "dns", (A, B, C))
        for k, (payer, payee, amount) in enumerate(BANXICO, start=1):
            day.obligation(k, 1, payer, payee, amount)
        day.settled_read_models()
    finally:
        runtime.close()


def test_an_operator_cuts_off_unwinds_and_settles_from_the_command_line(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    _banxico(db_url)
    db = ("--database-url", db_url)
    shown = run("settlement", "cycle", "1-1", *db, env=cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "G 83.00  B 17.00  M 13.00" in shown.stdout
    assert "E_mult 0.843373" in shown.stdout

    assert_one_line_error(run("settlement", "settle", "1-1", *db, env=cli_env), "cycle_not_cut_off")
    assert_one_line_error(run("settlement", "cycle", "one", *db, env=cli_env), "not a cycle id")
    cut = run("settlement", "cut-off", "1-1", *db, env=cli_env)
    assert cut.returncode == 0, cut.stderr
    assert "next cycle 1-2" in cut.stdout
    again = run("settlement", "cut-off", "1-1", *db, env=cli_env)
    assert again.returncode == 0 and again.stdout == cut.stdout  # the first outcome, replayed
    assert_one_line_error(
        run("settlement", "unwind", "1-1", "--participant", "99", *db, env=cli_env),
        "participant_not_found",
    )
    unwound = run("settlement", "unwind", "1-1", "--participant", str(C), *db, env=cli_env)
    assert unwound.returncode == 0, unwound.stderr
    assert f"USD participant {A}: debit 400 -> 800" in unwound.stdout
    settled = run("settlement", "settle", "1-1", *db, env=cli_env)
    assert settled.returncode == 0, settled.stderr
    assert "2 instructions posted" in settled.stdout

    for name in ("netting", "unwind"):
        out = tmp_path / name
        report = run("report", name, "--format", "json", "--out", str(out), *db, env=cli_env)
        assert report.returncode == 0, report.stderr
        rows = json.loads(out.with_suffix(".json").read_text())["rows"]
        assert rows, name
    netting = json.loads((tmp_path / "netting.json").read_text())["rows"]
    by_participant = {r["participant_id"]: r for r in netting}
    assert by_participant[str(A)]["net_minor"] in (-800, "-800")
    assert by_participant[str(A)]["instruction_state"] == "posted"
    assert by_participant[str(A)]["efficiency_multilateral_exact"] == "17/21"
