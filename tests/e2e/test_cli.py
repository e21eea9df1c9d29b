"""The command line: one-line errors with non-zero exits, and the demo on a real database."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgerline", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ledgerline: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_an_unreachable_database_url_is_a_one_line_error(cli_env: dict[str, str]) -> None:
    result = run("verify", "--database-url", "postgresql://nobody@127.0.0.1:1/none", env=cli_env)
    assert_one_line_error(result, "cannot connect to the database")
    assert result.returncode == 2


def test_a_malformed_database_url_is_a_one_line_error(cli_env: dict[str, str]) -> None:
    result = run("demo", "--database-url", "postgresql://x:y@host:notaport/db", env=cli_env)
    assert_one_line_error(result)


def test_an_unknown_database_is_a_one_line_error(
    cli_env: dict[str, str], pg_admin_url: str
) -> None:
    url = pg_admin_url.replace("/postgres?", "/no_such_database?")
    result = run("verify", "--database-url", url, env=cli_env)
    assert_one_line_error(result, "no_such_database")


@pytest.mark.parametrize("data_dir", ["/proc/ledgerline-data", "/dev/null/data"])
def test_an_unwritable_data_dir_is_a_one_line_error(cli_env: dict[str, str], data_dir: str) -> None:
    result = run("migrate", "--data-dir", data_dir, env=cli_env)
    assert_one_line_error(result, "cannot use data directory")


def test_a_corrupted_config_file_is_a_one_line_error(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "ledgerline.toml"
    config.write_text('database_url = "postgresql://x\nport = [broken')
    result = run("verify", "--config", str(config), env=cli_env)
    assert_one_line_error(result, "is not valid TOML")
    cli_env["LEDGERLINE_CONFIG"] = str(config)
    assert_one_line_error(run("demo", env=cli_env), "is not valid TOML")


def test_an_unknown_config_key_is_named(cli_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "ledgerline.toml"
    config.write_text('databse_url = "postgresql://x"\n')
    assert_one_line_error(run("verify", "--config", str(config), env=cli_env), "databse_url")


def test_a_bad_option_is_a_one_line_usage_error(cli_env: dict[str, str]) -> None:
    result = run("bench", "append", "--events", "lots", env=cli_env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_the_demo_runs_against_an_external_server_and_its_events_verify(
    cli_env: dict[str, str], db_url: str
) -> None:
    demo = run("demo", "--database-url", db_url, env=cli_env)
    assert demo.returncode == 0, demo.stderr
    assert "chains intact, positions gapless" in demo.stdout
    assert "overdraft of 1,000,000.00 refused: exceeds_credits" in demo.stdout
    assert "retry returned the first outcome" in demo.stdout
    assert "linked batch with one bad leg: linked_event_failed" in demo.stdout
    assert " balanced " in demo.stdout
    events = re.search(r"verify: (\d+) events", demo.stdout)
    assert events is not None
    verify = run("verify", "--database-url", db_url, env=cli_env)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith(f"verified {events.group(1)} events")


def test_the_demo_runs_on_the_embedded_server_under_the_data_dir(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "embedded"
    demo = run("demo", "--data-dir", str(data_dir), env=cli_env, timeout=180)
    assert demo.returncode == 0, demo.stderr
    assert (data_dir / "pg" / "PG_VERSION").exists()
    again = run("demo", "--data-dir", str(data_dir), env=cli_env, timeout=180)
    assert again.returncode == 0, again.stderr  # a second run on the same store works too
    verify = run("verify", "--data-dir", str(data_dir), env=cli_env)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("verified ")


def test_serve_on_a_port_already_in_use_is_a_one_line_error(
    cli_env: dict[str, str], db_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("serve", "--database-url", db_url, "--port", str(port), env=cli_env)
    assert_one_line_error(result, f"127.0.0.1:{port}", "already in use")


def test_keys_create_prints_a_token_once_that_the_api_accepts(
    cli_env: dict[str, str], db_url: str
) -> None:
    result = run("keys", "create", "--role", "auditor", "--database-url", db_url, env=cli_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("ll_")
    assert "shown only once" in result.stderr
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT role, token_sha256 FROM ledgerline_api.api_keys").fetchone()
    assert row is not None
    assert row[0] == "auditor"
    assert token.encode() not in bytes(row[1])  # only a digest is stored


@contextlib.contextmanager
def _serving(
    cli_env: dict[str, str], db_url: str, *flags: str
) -> Iterator[tuple[subprocess.Popen[str], str, dict[str, str]]]:
    """``serve`` on the database, once ready: the process, its base URL and an operator's
    headers; stopped on the way out unless the test stopped it."""
    import httpx

    token = run(
        "keys", "create", "--role", "operator", "--database-url", db_url, env=cli_env
    ).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["serve", "--database-url", db_url, "--port", str(port), *flags]
    server = subprocess.Popen(
        [sys.executable, "-m", "ledgerline", *command],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield server, base, {"Authorization": f"Bearer {token}"}
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(30)


def _open_two_accounts(c: Any) -> None:
    for account_id in (1, 2):
        r = c.post(
            "/v1/accounts", json={"id": account_id, "ledger": 1, "currency": "USD", "code": 1}
        )
        assert r.status_code == 201, r.text


def _transfer(c: Any, transfer_id: int) -> int:
    """One dollar from account 1 to account 2; the position it committed at."""
    r = c.post(
        "/v1/transfers",
        json={
            "id": transfer_id,
            "debit_account_id": 1,
            "credit_account_id": 2,
            "amount": "1.00",
            "ledger": 1,
            "code": 1,
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["position"])


def test_serve_with_two_workers_shares_one_store_and_reads_its_writes(
    cli_env: dict[str, str], db_url: str
) -> None:
    import httpx

    with (
        _serving(cli_env, db_url, "--workers", "2") as (_, base, headers),
        httpx.Client(base_url=base, headers=headers, timeout=30) as c,
    ):
        _open_two_accounts(c)
        positions = []
        for n in range(20):  # requests land on both workers
            positions.append(_transfer(c, 100 + n))
            seen = c.get("/v1/accounts/2", params={"min_position": positions[-1]})
            assert seen.status_code == 200, seen.text
            assert seen.json()["balances"]["credits_posted"] == f"{n + 1}.00"
        assert positions == sorted(positions)
    verify = run("verify", "--database-url", db_url, env=cli_env)
    assert verify.returncode == 0, verify.stderr


@pytest.mark.parametrize("command", ["relay", "worker"])
def test_relay_and_worker_without_kafka_configured_are_a_one_line_error(
    cli_env: dict[str, str], command: str
) -> None:
    assert_one_line_error(run(command, env=cli_env), "KAFKA_BOOTSTRAP_SERVERS")


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("LEDGERLINE_KAFKA_PARTITIONS", "many", "is not a number"),
        ("LEDGERLINE_KAFKA_PARTITIONS", "0", "at least 1"),
        ("LEDGERLINE_KAFKA_SESSION_TIMEOUT_S", "0.1", "at least 1"),
    ],
)
def test_bad_kafka_settings_are_a_one_line_error(
    cli_env: dict[str, str], variable: str, value: str, needle: str
) -> None:
    env = {**cli_env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", variable: value}
    assert_one_line_error(run("relay", env=env), variable, needle)


@pytest.mark.parametrize(
    "command",
    [
        ["verify"],
        ["replay"],
        ["report", "trial_balance"],
        ["projections", "status"],
    ],
)
def test_read_only_commands_never_create_a_store(
    cli_env: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    empty = tmp_path / "nowhere"
    result = run(*command, "--data-dir", str(empty), env=cli_env)
    assert_one_line_error(result, "no Ledgerline store", str(empty))
    assert not (empty / "pg").exists()


def test_read_only_commands_refuse_a_database_without_a_store(
    cli_env: dict[str, str], db_url: str
) -> None:
    result = run("verify", "--database-url", db_url, env=cli_env)
    assert_one_line_error(result, "no Ledgerline store in this database")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT to_regclass('ledgerline.events')").fetchone()
    assert row is not None and row[0] is None  # nothing was created


def _projector_of(server_pid: int) -> int:
    """The pid of serve's projector process (its spawned child that is not an HTTP worker)."""
    import psutil

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for child in psutil.Process(server_pid).children():
            with contextlib.suppress(psutil.Error):
                if "spawn_main" in " ".join(child.cmdline()):
                    return int(child.pid)
        time.sleep(0.1)
    raise AssertionError("serve started no projector process")


def test_serves_projector_process_is_started_again_if_it_dies_and_never_outlives_serve(
    cli_env: dict[str, str], db_url: str
) -> None:
    import httpx
    import psutil

    def seen(c: httpx.Client, transfer_id: int, balance: str) -> None:
        position = _transfer(c, transfer_id)
        deadline = time.monotonic() + 60
        while True:  # 503 read_model_behind while the projector is (re)starting
            r = c.get("/v1/accounts/2", params={"min_position": position})
            if r.status_code == 200:
                assert r.json()["balances"]["credits_posted"] == balance
                return
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, "the read model never caught up"
            time.sleep(0.2)

    with _serving(cli_env, db_url) as (server, base, headers):
        projector = _projector_of(server.pid)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            _open_two_accounts(c)
            seen(c, 100, "1.00")
            # The projector dies: serve starts another, which carries on where it stopped.
            psutil.Process(projector).kill()
            seen(c, 101, "2.00")
            restarted = _projector_of(server.pid)
            assert restarted != projector
        # serve dies without a chance to clean up: its projector goes with it.
        server.kill()
        server.wait(30)
        _, alive = psutil.wait_procs([psutil.Process(restarted)], timeout=20)
        assert not alive, "the projector outlived serve"
