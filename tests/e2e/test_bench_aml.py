"""``ledgerline bench aml`` runs end to end on a small world and reports consistent figures.

No timing thresholds (shared, noisy machines): only that every figure is measured in the one
run, beside its baseline and target, and that detection found what the simulator planted.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli import run


def test_bench_aml_measures_ingest_detection_lag_and_quality_against_targets(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        "bench", "aml", "--json", "--events", "20000", "--data-dir", str(tmp_path / "d"),
        env=cli_env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["accounts"] == 2_000 and data["transactions"] >= 20_000
    for key in (
        "ingest_events_per_s",
        "detect_transactions_per_s",
        "baseline_transactions_per_s",
        "alert_lag_p50_ms",
        "alert_lag_p99_ms",
        "peak_rss_mb",
    ):
        assert data[key] > 0, key
    assert data["alert_lag_p50_ms"] <= data["alert_lag_p99_ms"]
    ratio = data["detect_transactions_per_s"] / data["baseline_transactions_per_s"]
    assert abs(data["detect_vs_baseline"] - ratio) < 0.001
    assert set(data["targets"]) == {
        "detect_transactions_per_s", "ingest_events_per_s", "alert_lag_p99_ms", "recall",
        "precision",
    }  # fmt: skip
    for name, target in data["targets"].items():
        assert target["measured"] == data[name]
        assert target["pass"] == (
            target["measured"] < target["target"]
            if name.endswith("_ms")
            else target["measured"] >= target["target"]
        )
    assert data["recall"] >= 0.9 and data["precision"] >= 0.7
    assert set(data["limits"]) >= {"detect_transactions_per_s", "ingest_events_per_s"}
