"""``ledgerline bench settlement`` runs end to end, scaled down: every figure, the baseline
and the verdicts are printed, and the netting it measured checks out (no timing thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

from domain.settlement.netting import plain_netting
from ledgerline.bench_settlement import TARGETS, workload
from tests.e2e.test_cli import assert_one_line_error, run


def test_bench_settlement_prints_every_figure_with_its_baseline_and_verdict(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("bench", "settlement", "--json", "--data-dir", str(tmp_path / "d"))
    result = run(*args, "--events", "3000", "--rate", "5000", env=cli_env, timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["obligations"] == 3000
    for name, target in TARGETS.items():
        assert data[name] > 0, name
        assert data["targets"][name] == target
        assert isinstance(data["pass"][name], bool)
        assert data["limits"][name]
    # Both times are printed rounded to 0.1 ms and the ratio is taken before rounding, so the
    # printed ratio lies within what the printed times allow (3.8 / 152.6 can print 0.03).
    baseline_ms, close_ms = data["baseline_plain_dict_netting_ms"], data["netting_close_ms"]
    lowest = (baseline_ms - 0.05) / (close_ms + 0.05) - 0.005
    highest = (baseline_ms + 0.05) / max(close_ms - 0.05, 1e-9) + 0.005
    assert lowest <= data["close_vs_baseline"] <= highest
    gross, bilateral, multilateral, _ = plain_netting(workload(3000))
    assert (data["gross_minor"], data["bilateral_minor"], data["multilateral_minor"]) == (
        gross,
        bilateral,
        multilateral,
    )
    assert data["unwind_participant_obligations"] > 0
    assert data["peak_rss_mb"] > 0
    assert_one_line_error(run(*args, "--events", "10", env=cli_env), "--events must be at least")
