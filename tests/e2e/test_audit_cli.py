"""The audit commands end to end: checkpoint, replay, report, export, verify-bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from tests.e2e.test_cli import assert_one_line_error, run


def test_a_regulator_round_trip_through_the_command_line(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    cli_env["LEDGERLINE_SIGNING_KEY"] = str(tmp_path / "keys" / "log.key")
    assert_one_line_error(
        run("checkpoint", "--database-url", db_url, env=cli_env), "signing-create"
    )
    # A configured key that is missing is an error, never quietly replaced by a new identity.
    assert_one_line_error(run("demo", "--database-url", db_url, env=cli_env), "log.key")
    created = run("keys", "signing-create", env=cli_env)
    assert created.returncode == 0, created.stderr
    pinned = created.stdout.strip()
    assert (tmp_path / "keys" / "log.key").stat().st_mode & 0o777 == 0o600
    assert_one_line_error(run("keys", "signing-create", env=cli_env), "already exists")
    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0

    held = run("checkpoint", "--database-url", db_url, env=cli_env)
    assert held.returncode == 0, held.stderr
    held_note = tmp_path / "held.note"
    held_note.write_text(held.stdout)
    held_size = int(held.stdout.splitlines()[1])
    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0

    replayed = run("replay", "--check", "--json", "--database-url", db_url, env=cli_env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    body = json.loads(replayed.stdout)
    assert body["ok"] and body["digests"] == body["live_digests"]
    again = json.loads(
        run(
            "replay",
            "--json",
            "--to-position",
            str(body["upto_position"]),
            "--database-url",
            db_url,
            env=cli_env,
        ).stdout
    )
    assert again["digests"] == body["digests"]

    report = run(
        "report",
        "trial_balance",
        "--format",
        "json",
        "--out",
        str(tmp_path / "tb"),
        "--database-url",
        db_url,
        env=cli_env,
    )
    assert report.returncode == 0, report.stderr
    tb = json.loads((tmp_path / "tb.json").read_text())
    assert all(row["balanced"] for row in tb["rows"])
    # the demo signs a checkpoint of what it wrote: the report cites the newest one
    assert tb["meta"]["checkpoint"]["size"] == body["upto_position"] > held_size

    bundle = tmp_path / "bundle"
    exported = run(
        "export",
        "--out",
        str(bundle),
        "--trusted-size",
        str(held_size),
        "--database-url",
        db_url,
        env=cli_env,
    )
    assert exported.returncode == 0, exported.stderr
    assert pq.read_table(bundle / "reports" / "trial_balance.parquet").num_rows >= 1
    pub = tmp_path / "pinned.pub"
    pub.write_text(pinned + "\n")
    ok = subprocess.run(  # the standalone file, as a regulator runs it
        [
            sys.executable,
            str(Path(__file__).resolve().parents[2] / "replay" / "verifier.py"),
            str(bundle),
            "--public-key",
            str(pub),
            "--trusted-checkpoint",
            str(held_note),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "verify-bundle: OK" in ok.stdout
    (bundle / "checkpoint").write_text((bundle / "checkpoint").read_text().replace("\n", "\n\n", 1))
    bad = run("verify-bundle", str(bundle), "--public-key", str(pub), env=cli_env)
    assert bad.returncode == 1
    assert "checkpoint: SHA-256 or size differs" in bad.stderr


def test_replay_check_exits_1_when_a_read_model_row_was_changed(
    cli_env: dict[str, str], db_url: str
) -> None:
    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE readmodels.transfers SET amount = amount + 1"
            " WHERE transfer_id = (SELECT min(transfer_id) FROM readmodels.transfers)"
        )
    result = run("replay", "--check", "--database-url", db_url, env=cli_env)
    assert result.returncode == 1
    assert "transfers: 1 rows differ" in result.stdout


def test_audit_commands_refuse_bad_input_in_one_line(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    assert run("migrate", "--database-url", db_url, env=cli_env).returncode == 0
    assert_one_line_error(
        run("replay", "--to-position", "-5", "--database-url", db_url, env=cli_env), "--to-position"
    )
    assert_one_line_error(
        run(
            "report", "trial_balance", "--as-of", "yesterday", "--database-url", db_url, env=cli_env
        ),
        "RFC 3339",
    )
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    cli_env["LEDGERLINE_SIGNING_KEY"] = str(tmp_path / "k.key")
    assert run("keys", "signing-create", env=cli_env).returncode == 0
    assert_one_line_error(
        run("export", "--out", str(tmp_path / "full"), "--database-url", db_url, env=cli_env),
        "not empty",
    )
    assert_one_line_error(
        run(
            "export",
            "--out",
            str(tmp_path / "b"),
            "--from-position",
            "99",
            "--database-url",
            db_url,
            env=cli_env,
        ),
        "not within the log",
    )
    (tmp_path / "k.key").chmod(0o644)
    assert_one_line_error(run("checkpoint", "--database-url", db_url, env=cli_env), "chmod 600")


def test_verify_bundle_refuses_without_a_pinned_key_unless_told_to_trust_the_bundle(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0
    bundle = tmp_path / "bundle"
    exported = run("export", "--out", str(bundle), "--database-url", db_url, env=cli_env)
    assert exported.returncode == 0, exported.stderr
    refused = run("verify-bundle", str(bundle), env=cli_env)
    assert refused.returncode == 2
    assert "no --public-key given" in refused.stderr
    assert "verify-bundle: OK" not in refused.stdout
    trusted = run("verify-bundle", str(bundle), "--trust-bundled-key", env=cli_env)
    assert trusted.returncode == 0, trusted.stderr
    assert "NOT its origin" in trusted.stderr
    assert "verify-bundle: OK" in trusted.stdout and "UNPINNED KEY" in trusted.stdout


def test_a_report_shows_a_summary_in_major_units_and_goes_to_a_dated_folder(
    cli_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    import datetime as dt

    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0
    command = ["report", "trial_balance", "--format", "json", "--database-url", db_url]
    shown = subprocess.run(
        [sys.executable, "-m", "ledgerline", *command],
        capture_output=True,
        text=True,
        env=cli_env,
        timeout=120,
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    header, _rule, *rows, last = shown.stdout.splitlines()
    assert header.split()[:5] == ["ledger", "currency", "accounts", "debits_pending",
                                  "debits_pending_minor"]  # fmt: skip
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    target = tmp_path / "reports" / day / "trial_balance.json"
    assert last.endswith(f"-> {Path('reports') / day / 'trial_balance.json'}")
    written = json.loads(target.read_text())["rows"]
    assert len(rows) == len(written) >= 1
    for line, row in zip(rows, written, strict=True):
        cells = line.split()
        assert cells[1] == row["currency"]
        assert (cells[3], cells[4]) == (row["debits_pending"], str(row["debits_pending_minor"]))
        major, minor = row["debits_posted"], row["debits_posted_minor"]
        assert int(major.replace(".", "")) == int(minor)  # USD and EUR: two decimals


def test_long_jobs_show_progress_on_a_terminal_and_stay_quiet_in_a_pipe(
    cli_env: dict[str, str], db_url: str
) -> None:
    import os
    import pty

    assert run("demo", "--database-url", db_url, env=cli_env).returncode == 0
    for command in (["verify"], ["replay"]):
        primary, secondary = pty.openpty()
        done = subprocess.run(
            [sys.executable, "-m", "ledgerline", *command, "--database-url", db_url],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=cli_env,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        drawn = b""
        try:
            while chunk := os.read(primary, 65536):
                drawn += chunk
        except OSError:  # the terminal closed: everything was read
            pass
        os.close(primary)
        assert done.returncode == 0
        text = drawn.decode()
        assert f"\r{command[0]}: " in text and "(100%)" in text and "/s" in text, text
        piped = run(*command, "--database-url", db_url, env=cli_env)
        assert piped.returncode == 0 and "\r" not in piped.stderr + piped.stdout
