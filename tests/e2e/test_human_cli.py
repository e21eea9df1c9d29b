"""The command line for people: accounts and transfers against a running server, keys."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.conftest import Server
from tests.e2e.test_cli import assert_one_line_error


def ll(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"LEDGERLINE_URL": server.url, "LEDGERLINE_TOKEN": server.tokens["operator"]}
    return subprocess.run(
        [sys.executable, "-m", "ledgerline", *args],
        env={**(env or {}), **base, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_accounts_and_transfers_from_the_command_line(server: Server) -> None:
    for account_id in ("1", "2"):
        r = ll(
            server,
            "accounts",
            "create",
            account_id,
            "--ledger",
            "1",
            "--currency",
            "EUR",
            "--code",
            "7",
        )
        assert r.returncode == 0, r.stderr
    assert "credits posted   0.00 EUR" in r.stdout
    moved = ll(
        server,
        "transfers",
        "create",
        "10",
        "--from",
        "1",
        "--to",
        "2",
        "--amount",
        "12.50",
        "--ledger",
        "1",
        "--code",
        "1",
    )
    assert moved.returncode == 0, moved.stderr
    assert "amount           12.50 EUR" in moved.stdout
    held = ll(
        server,
        "transfers",
        "create",
        "11",
        "--from",
        "1",
        "--to",
        "2",
        "--amount",
        "5",
        "--ledger",
        "1",
        "--code",
        "1",
        "--pending",
        "--timeout-s",
        "60",
        "--json",
    )
    assert json.loads(held.stdout)["state"] == "pending"
    posted = ll(server, "transfers", "post", "11", "--amount", "2.00")
    assert posted.returncode == 0 and "state            posted" in posted.stdout
    position = json.loads(ll(server, "transfers", "show", "11", "--json").stdout)["position"]
    shown = ll(server, "accounts", "show", "2", "--json")
    assert json.loads(shown.stdout)["balances"]["credits_posted"] in ("14.50", "12.50")
    listed = ll(server, "accounts", "list", "--ledger", "1")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == [
        "account",
        "ledger",
        "cur",
        "debits",
        "credits",
        "dr",
        "pending",
        "cr",
        "pending",
    ]
    assert position > 0


def test_a_refusal_is_one_line_naming_the_rule_and_a_dead_server_another(server: Server) -> None:
    refused = ll(
        server,
        "transfers",
        "create",
        "20",
        "--from",
        "1",
        "--to",
        "1",
        "--amount",
        "1",
        "--ledger",
        "1",
        "--code",
        "1",
    )
    assert refused.returncode == 1
    assert_one_line_error(refused, "accounts_must_be_different")
    dead = ll(server, "accounts", "show", "1", "--url", "http://127.0.0.1:9")
    assert dead.returncode == 2
    assert_one_line_error(dead, "cannot reach")
    unauthorized = ll(server, "accounts", "show", "1", "--token", "ll_nope_x")
    assert_one_line_error(unauthorized, "invalid_token")


def test_keys_can_be_listed_and_revoked(
    server: Server, db_url: str, cli_env: dict[str, str]
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledgerline", *args, "--database-url", db_url],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = json.loads(run("keys", "list", "--json").stdout)
    auditor = next(k for k in listed if k["role"] == "auditor")
    assert auditor["revoked_at"] is None
    assert run("keys", "revoke", auditor["key_id"]).returncode == 0
    after = json.loads(run("keys", "list", "--json").stdout)
    assert next(k for k in after if k["key_id"] == auditor["key_id"])["revoked_at"] is not None
    assert_one_line_error(run("keys", "revoke", auditor["key_id"]), "no live API key")
    assert "auditor" in run("keys", "list").stdout


def test_completion_scripts_complete_subcommands_and_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ledgerline", "completion", "bash"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    probe = subprocess.run(
        [
            "bash",
            "-c",
            out + "\nCOMP_WORDS=(ledgerline transfers c); COMP_CWORD=2; _ledgerline; "
            'echo "${COMPREPLY[@]}"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.split() == ["create"]
    version = subprocess.run(
        [sys.executable, "-m", "ledgerline", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("ledgerline ")
