"""A log and a witness run as separate processes: the witness cosigns what the log's
``checkpoint`` command sends, rotated keys keep everything verifiable, and a regulator's
``verify-bundle`` asks for the witness and for the post-quantum signature."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from eventstore.store import EventStore
from ledgerline.cli import main
from tests.e2e.test_cli import run
from tests.http_server import free_port
from tests.integration.ledger_fixtures import run_history

EM_DASH = "\u2014"


def test_a_witness_process_cosigns_the_logs_checkpoints_end_to_end(
    cli_env: dict[str, str],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    cli_env["LEDGERLINE_SIGNING_KEY"] = str(tmp_path / "keys" / "log.key")
    created = run("keys", "signing-create", env=cli_env)
    assert created.returncode == 0, created.stderr
    log_keys = created.stdout.splitlines()
    assert len(log_keys) == 2  # Ed25519, then ML-DSA-65
    (tmp_path / "log.pub").write_text(created.stdout)

    made = run(
        "witness", "init", "--dir", str(tmp_path / "w"), "--name", "w.example/w1", env=cli_env
    )
    assert made.returncode == 0, made.stderr
    witness_key = made.stdout.strip()
    assert main(["witness", "init", "--dir", str(tmp_path / "w"), "--name", "w.example/w1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["witness", "serve", "--dir", str(tmp_path / "w")]) != 0
    assert "--log-key" in capsys.readouterr().err
    port = free_port()
    witness = subprocess.Popen(
        [sys.executable, "-m", "ledgerline", "witness", "serve", "--dir", str(tmp_path / "w"),
         "--log-key", str(tmp_path / "log.pub"), "--port", str(port)],
        env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert witness.poll() is None and time.monotonic() < deadline, "no witness"
            time.sleep(0.1)

        with EventStore(db_url) as store:
            run_history(store, seed=1, transfers=10)
        added = run(
            "witness", "add", "--public-key", witness_key, "--url", url, "--database-url", db_url,
            env=cli_env,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert main(["witness", "list", "--database-url", db_url]) == 0
        assert capsys.readouterr().out.strip() == f"{witness_key} {url}"
        assert main(["witness", "add", "--public-key", log_keys[0], "--url", url,
                     "--database-url", db_url]) != 0  # fmt: skip
        assert "type 0x04" in capsys.readouterr().err

        first = run("checkpoint", "--database-url", db_url, env=cli_env)
        assert first.returncode == 0, first.stderr
        signers = [line.split(" ")[1] for line in first.stdout.splitlines() if line[:1] == EM_DASH]
        assert signers.count("w.example/w1") == 1 and len(signers) == 3

        with EventStore(db_url) as store:
            run_history(store, seed=2, transfers=5)
        rotated = run("keys", "rotate", "--overlap-s", "600", "--database-url", db_url, env=cli_env)
        assert rotated.returncode == 0, rotated.stderr
        assert len(rotated.stdout.splitlines()) == 2

        bundle = tmp_path / "bundle"
        exported = run("export", "--out", str(bundle), "--from-position", "5",
                       "--database-url", db_url, env=cli_env)  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        note = (bundle / "checkpoint").read_text()
        assert note.count(EM_DASH) == 4  # both generations of Ed25519 + ML-DSA-65 (overlap)
    finally:
        witness.terminate()
        witness.wait(20)

    ok = run(
        "verify-bundle", str(bundle), "--public-key", str(tmp_path / "log.pub"),
        "--require", "ed25519,ml-dsa-65", "--witness", witness_key, env=cli_env,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "cosigned at size" in ok.stdout and "w.example/w1" in ok.stdout
    refused = main(["verify-bundle", str(bundle), "--public-key", str(tmp_path / "log.pub"),
                    "--witness", witness_key, "--witness-quorum", "2"])  # fmt: skip
    assert refused == 1
    assert "quorum of 2 cannot be met" in capsys.readouterr().err
