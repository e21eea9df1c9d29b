"""The benchmark commands run end to end and print their figures with the baseline beside them.

No timing thresholds here (shared, noisy machines): only that each command measures both
sides in one run and reports consistent JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli import run


def test_bench_append_prints_both_figures_and_their_ratios(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        "bench",
        "append",
        "--json",
        "--seconds",
        "0.5",
        "--events",
        "2000",
        "--history",
        "3000",
        "--data-dir",
        str(tmp_path / "d"),
        env=cli_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in (
        "plain_eventsourcing_commands_per_s",
        "ledgerline_commands_per_s",
        "raw_copy_events_per_s",
        "ledgerline_batched_events_per_s",
    ):
        assert data[key] > 0, key
    # A cold account with a long history answers both ways, and the snapshot is the faster.
    cold = data["cold_start_ms"]
    assert cold["without_snapshot"] > 0 and cold["with_snapshot"] > 0
    assert data["cold_start_history_events"] == 3000
    assert set(data["pass"]) == set(data["targets"])
    assert data["peak_rss_mb"]["bench"] > 20  # a Python process with psycopg loaded
    stages = data["ledgerline_stage_us_per_command"]
    assert set(stages) == {"prefetch", "read", "handle", "encode", "decide_other", "plan",
                           "write", "commit", "answer"}  # fmt: skip
    # Each command opens a new tally: a batch's few cold streams are read with it under the
    # lock (in ``read``), so nothing is read before the lock.
    assert stages["prefetch"] == 0, stages
    assert all(us > 0 for name, us in stages.items() if name != "prefetch"), stages
    # Its own work is every stage but the three that wait on PostgreSQL.
    own = sum(us for name, us in stages.items() if name not in ("prefetch", "read", "commit"))
    assert data["ledgerline_decider_own_us_per_command"] == pytest.approx(own, abs=0.1)
    assert data["pass"]["decider_own_us_per_command"] == (
        data["ledgerline_decider_own_us_per_command"]
        < data["targets"]["decider_own_us_per_command"]
    )
    # the decider's stages cannot add up to more than the wall time per command it served
    assert sum(stages.values()) < 1e6 / data["ledgerline_commands_per_s"] * 1.05
    # The figures are printed rounded to 0.1/s and the ratio to 0.01, taken before rounding:
    # within 1%, or within the ratio's own rounding when it is small.
    assert data["group_commit_speedup"] == pytest.approx(
        data["ledgerline_commands_per_s"] / data["plain_eventsourcing_commands_per_s"],
        rel=0.01,
        abs=0.006,
    )
    assert (
        abs(
            data["batched_vs_copy"]
            - data["ledgerline_batched_events_per_s"] / data["raw_copy_events_per_s"]
        )
        < 0.01
    )


def test_bench_replay_generates_once_then_reuses_the_events(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("bench", "replay", "--json", "--events", "3000", "--data-dir", str(tmp_path / "d"))
    first = json.loads(run(*args, env=cli_env, timeout=300).stdout)
    second = json.loads(run(*args, env=cli_env, timeout=300).stdout)
    assert first["events"] == second["events"] == 3000
    assert second["generated_events_per_s"] == "reused"
    assert first["digests"] == second["digests"]  # replay is deterministic
    assert first["merkle_root"] == second["merkle_root"]
    assert first["replay_events_per_s"] > 0
    assert first["raw_read_events_per_s"] > 0
    assert first["peak_rss_mb"]["children"] > 20  # the replay's verifying worker process
    assert set(first["pass"]) == set(first["targets"])
    assert first["pass"]["replay_events_per_s"] == (first["replay_events_per_s"] >= 70_000)


def test_bench_replay_repeated_prints_the_median_run_and_every_runs_figures(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("bench", "replay", "--json", "--events", "1000", "--data-dir", str(tmp_path / "d"))
    data = json.loads(run(*args, "--repeat", "3", env=cli_env, timeout=300).stdout)
    runs = data["repeat"]["figures"]["replay_events_per_s"]
    assert data["repeat"]["runs"] == 3 and len(runs) == 3
    assert data["replay_events_per_s"] == sorted(runs)[1]  # the median run is the one printed
    assert runs[data["repeat"]["median_run"] - 1] == data["replay_events_per_s"]
    assert len(data["repeat"]["pass"]) == 3


def test_bench_refuses_a_repeat_below_one_or_on_a_bench_without_it(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    zero = run("bench", "replay", "--repeat", "0", env=cli_env, timeout=60)
    assert zero.returncode != 0
    assert zero.stderr.startswith("ledgerline: error: ") and "--repeat" in zero.stderr
    other = run("bench", "append", "--repeat", "2", "--data-dir", str(tmp_path / "d"),
                env=cli_env, timeout=60)  # fmt: skip
    assert other.returncode != 0
    assert "--repeat is supported by" in other.stderr and "Traceback" not in other.stderr


def test_bench_api_serves_real_http_and_reports_latency_and_the_baseline(
    cli_env: dict[str, str],
) -> None:
    result = run(
        "bench",
        "api",
        "--json",
        "--seconds",
        "1",
        "--clients",
        "4",
        "--workers",
        "1",
        env=cli_env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] > 0
    assert data["errors"] == 0
    assert 0 < data["p50_ms"] <= data["p99_ms"] <= data["max_ms"]
    assert data["plain_eventsourcing_commands_per_s"] > 0
    # The server's own cost, batches, idleness and memory are measured in the same run.
    assert data["server_cpu_us_per_request"] > 0
    assert data["batched"]["transfers_per_s"] > 0 and data["batched"]["errors"] == 0
    # Split by thread: the event loop, the decider and the projector each did their part,
    # and the parts add up to the server's whole.
    for whole, parts in (
        (data["server_cpu_us_per_request"], data["server_cpu_us_per_request_by_part"]),
        (
            data["batched"]["server_cpu_us_per_transfer"],
            data["batched"]["server_cpu_us_per_transfer_by_part"],
        ),
    ):
        assert set(parts) == {"http", "decider", "projector", "other"}
        assert parts["http"] > 0 and parts["decider"] > 0 and parts["projector"] > 0
        assert abs(sum(parts.values()) - whole) <= 0.1 * whole + 50
    assert data["batched"]["postgres_cpu_us_per_transfer"] > 0
    linked = data["linked_batches_of_100"]
    assert linked["transfers_per_s"] > 0 and linked["errors"] == 0
    # ledgerline import of a generated file, beside the server: every transfer imported.
    assert data["import_transfers_per_s"] > 0 and data["imported_transfers"] == 10_000
    assert data["idle"]["commits_per_s"] >= 0 and data["peak_rss_mb"]["serve"] > 0
    assert set(data["pass"]) == set(data["targets"]) | {"idle"}


def test_a_bench_server_that_logs_every_request_keeps_answering(
    cli_env: dict[str, str],
) -> None:
    """With ``LEDGERLINE_LOG_LEVEL=info`` in the caller's environment the benches' server logs
    each request; a few hundred lines used to fill the pipe it logged to, and it stopped
    answering mid-bench. Its log must never hold it up."""
    import httpx

    from ledgerline.bench_support import serving
    from ledgerline.database import stop_embedded

    env = dict(cli_env, LEDGERLINE_LOG_LEVEL="info", LEDGERLINE_LOG_FORMAT="json")
    try:
        with serving(env, 1) as (_server, url), httpx.Client(base_url=url, timeout=10) as http:
            for n in range(1500):  # well over a pipe's 64 KiB of access-log lines
                assert http.get("/healthz").status_code == 200, n
    finally:
        stop_embedded(Path(env["LEDGERLINE_DATA_DIR"]))


def test_bench_memory_loads_a_store_drives_serve_and_reports_its_memory_and_its_checks(
    cli_env: dict[str, str],
) -> None:
    args = ("bench", "memory", "--json", "--accounts", "300", "--transfers", "2000",
            "--seconds", "3", "--clients", "4")  # fmt: skip
    result = run(*args, env=cli_env, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["accounts"], data["transfers"]) == (300, 2000)
    assert data["load_seconds"] > 0 and data["load_transfers_per_s"] > 0
    # The import alone is part of the load: its rate is its own transfers over its own time.
    assert 0 < data["import_seconds"] <= data["load_seconds"]
    assert data["import_transfers_per_s"] == pytest.approx(2000 / data["import_seconds"], rel=0.1)
    assert data["import_transfers_per_s"] >= data["load_transfers_per_s"]
    # Every worker of serve, every backend of PostgreSQL, the import: all hold some memory.
    assert all(data["peak_rss_mb"][k] > 20 for k in ("serve", "postgres", "import"))
    assert 20 < data["serve_rss_after_start_mb"] <= data["peak_rss_mb"]["serve"]
    # The projector's state is built by the one transfer before the load, and counted apart.
    assert 20 < data["serve_rss_after_projector_warm_mb"] <= data["peak_rss_mb"]["serve"]
    assert 0 <= data["projector_warm_seconds"] < 300
    assert data["serve_peak_vs_after_start"] == pytest.approx(
        data["peak_rss_mb"]["serve"] / data["serve_rss_after_start_mb"], abs=0.01
    )
    assert data["cache_max_mb"] == 512
    # The import ends with a checkpoint of the AML engine at the head of the log (serve's
    # projector starts from it), holding a window for every account with a transfer.
    aml = data["aml_engine"]
    assert aml["hot_accounts"] == 30_000
    checkpoint = aml["checkpoint_after_import"]
    assert checkpoint["position"] == checkpoint["log_head"] > 2000
    assert checkpoint["windows"] == 300 and checkpoint["windows_table_mb"] > 0
    # Sampled every half second under load: serve's memory beside the accounts touched so far.
    timeline = data["serve_rss_under_load"]["timeline"]
    assert 2 <= len(timeline) <= 10
    assert all(20 < p["serve_rss_mb"] <= data["peak_rss_mb"]["serve"] for p in timeline)
    touched = [p["accounts_touched"] for p in timeline]
    assert touched == sorted(touched) and touched[-1] <= data["accounts_touched"]
    # The load touched accounts across the whole range, with writes and every kind of read.
    assert all(n > 0 for n in data["requests_by_kind"].values()), data["requests_by_kind"]
    assert data["requests"] == sum(data["requests_by_kind"].values()) == data["answers"]["ok"]
    assert data["accepted_transfers"] == data["requests_by_kind"]["transfer"] > 0
    assert data["accounts_touched"] > 150
    checks = data["checks"]
    assert 0 <= checks["read_model_caught_up_seconds"] < 300
    assert checks["stored_transfers"] == 2000 + data["accepted_transfers"]
    assert checks["posted_minor"] == checks["expected_posted_minor"] > 2000 * 100
    assert all(checks[k] is True for k in ("no_errors", "balanced", "accounts_add_up",
                                           "transfers_add_up")), checks  # fmt: skip
    assert data["failures"] == []
    assert data["targets"] == {"serve_peak_rss_mb": 2048}
    assert data["pass"] == {"serve_peak_rss_mb": data["peak_rss_mb"]["serve"] < 2048,
                            "checks": True}  # fmt: skip
    assert "300 accounts and 2,000 transfers" in data["note"]


def test_bench_memory_refuses_a_store_without_two_accounts_and_a_transfer(
    cli_env: dict[str, str],
) -> None:
    for args in (("--accounts", "1"), ("--transfers", "0")):
        result = run("bench", "memory", *args, env=cli_env, timeout=60)
        assert result.returncode != 0, args
        assert result.stderr.startswith("ledgerline: error: ") and args[0] in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.kafka
def test_bench_projections_measures_both_read_paths_and_loses_or_doubles_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        "bench",
        "projections",
        "--json",
        "--events",
        "300",
        "--rate",
        "300",
        "--seconds",
        "1",
        "--data-dir",
        str(tmp_path / "d"),
        env=cli_env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["events_per_transfer"] == 3  # TransferCreated and two balance changes
    assert data["events"] == 900
    for path in ("in_process", "kafka"):
        figures = data[path]
        assert 0 < figures["lag_p50_ms"] <= figures["lag_p99_ms"] <= figures["lag_max_ms"], path
        assert figures["events_per_s"] > 0, path
        # A second at the write side's full rate: the burst's own rate on this path.
        sustained = figures["sustained"]
        assert sustained["seconds"] == 1, path
        assert sustained["offered_events_per_s"] == figures["burst_written_events_per_s"] > 0, path
        assert abs(sustained["transfers"] - sustained["offered_events_per_s"] / 3) <= 2, path
        trend = sustained["lag_p50_ms_by_fifth"]
        assert len(trend) == 5 and all(v > 0 for v in trend), path
        assert sustained["lag_bounded"] == (trend[-1] <= 2 * trend[0] + 100), path
        assert data["pass"][f"{path}_sustained_lag_bounded"] == sustained["lag_bounded"], path
        # the warm-up, the paced run, the burst and the sustained run
        accepted = figures["warmup_transfers"] + 600 + sustained["transfers"]
        assert figures["accepted_transfers"] == accepted, path
        assert figures["lost"] == figures["duplicated"] == 0, path
        assert figures["balances_match"] is True, path
        assert figures["digest_matches"] is True, path
    assert data["raw_consume_msgs_per_s"] > 0
    assert data["raw_consume_messages"] >= 1000 + 600 * 3  # accounts, transfers, watermarks
    assert (
        abs(
            data["kafka_vs_raw_consume"]
            - data["kafka"]["events_per_s"] / data["raw_consume_msgs_per_s"]
        )
        < 0.001
    )
    assert set(data["pass"]) == set(data["targets"])
    assert data["pass"]["kafka_p99_ms"] == (data["kafka"]["lag_p99_ms"] < 500)


def test_bench_evidence_measures_every_figure_at_both_sizes_with_targets(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("bench", "evidence", "--json", "--sizes", "2000,4000", "--proofs", "3",
            "--seconds", "0.05", "--data-dir", str(tmp_path / "d"))  # fmt: skip
    first = run(*args, env=cli_env, timeout=600)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["sizes"] == [2000, 4000]
    for name in (
        "checkpoint_ms", "inclusion_proof_ms", "consistency_proof_ms", "export_last_1000_ms",
        "api_rss_mb", "replay_rss_mb", "sweeper_ms", "tile_append_overhead",
        "cold_pair_transfer_ms",
    ):  # fmt: skip
        figure = data[name]
        assert figure["2000"] > 0 and figure["4000"] > 0, name
        assert figure["ratio"] == round(figure["4000"] / figure["2000"], 3), name
        assert isinstance(figure["pass"], bool) and figure["target"], name
    assert data["details"]["4000"]["sweeper_due_holds"] > 0
    assert data["peak_rss_mb"] > 0
    assert data["details"]["2000"]["store"]["generated_events_per_s"] != "reused"


def test_bench_evidence_builds_each_store_once_then_reuses_it(pg_admin_url: str) -> None:
    from ledgerline import bench_evidence
    from ledgerline.errors import LedgerlineError

    size = 1500 + time.time_ns() % 1000  # a database of its own on the session's server
    _, built = bench_evidence.build_store(pg_admin_url, size)
    assert built["events"] >= size and built["generated_events_per_s"] != "reused"
    _, reused = bench_evidence.build_store(pg_admin_url, size)
    assert reused["generated_events_per_s"] == "reused" and reused["events"] == built["events"]
    with pytest.raises(LedgerlineError, match="two different sizes"):
        bench_evidence.parse_sizes("5000")
    assert bench_evidence.parse_sizes("5_000_000,1000000") == [1_000_000, 5_000_000]


@pytest.mark.parametrize("generator", ["wrk", "aiohttp"])
def test_bench_apis_load_generators_send_what_the_ledger_records(
    cli_env: dict[str, str], generator: str
) -> None:
    """Both of bench api's load generators (wrk, in C, and aiohttp) count as created the
    transfers the command log holds, and time every request they count. wrk ends a run by
    closing its connections, so the requests then in flight (at most one per client, at the
    end of the warm-up and of the run) may commit uncounted; aiohttp waits for them."""
    import asyncio

    import httpx
    import psycopg

    from ledgerline import bench_api
    from ledgerline.bench_support import cli, embedded_url, serving
    from ledgerline.database import stop_embedded

    data_dir = Path(cli_env["LEDGERLINE_DATA_DIR"])
    try:
        with serving(cli_env, 1) as (_server, url):
            token = cli("keys", "create", "--role", "operator", env=cli_env).strip()
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for account_id in range(1, bench_api.ACCOUNTS + 1):
                    body = {"id": account_id, "ledger": 1, "currency": "USD", "code": 1}
                    assert http.post("/v1/accounts", json=body).status_code == 201
            if generator == "wrk":
                result = bench_api._drive_wrk(url, token, 4, 1.0, warmup_s=1.0)
            else:
                result = asyncio.run(bench_api._drive(url, token, 4, 1.0, warmup_s=0.5))
            with psycopg.connect(embedded_url(data_dir)) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM ledgerline.commands"
                    " WHERE command_type = 'create_transfer' AND accepted"
                ).fetchone()
    finally:
        stop_embedded(data_dir)
    assert result["load_generator"] == generator
    assert result["errors"] == 0 and result["rejected"] == 0
    assert 0 < result["created"] <= result["created_with_warmup"]
    assert row is not None
    in_flight = 2 * 4 if generator == "wrk" else 0
    assert result["created_with_warmup"] <= row[0] <= result["created_with_warmup"] + in_flight
    assert result["requests"] == result["created"]
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["transfers_per_s"] > 0
