"""Logs and metrics that tell the truth: one access line per request with its request id,
command and outcome; a 5xx logged with its traceback and never shown to the client."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx
import pytest

from ledgerline.logs import JsonFormatter
from ledgerline.runtime import METRICS_REFRESH_S
from tests.e2e.conftest import Server
from tests.faults.harness import Cluster
from tests.http_server import free_port


def test_every_request_gets_an_access_line_with_its_id_command_and_outcome(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ledgerline.access")
    with server.client() as c:
        opened = c.post("/v1/accounts", json={"id": 1, "ledger": 1, "currency": "USD", "code": 1})
        c.get("/v1/accounts/1", params={"min_position": opened.json()["position"]})
        r = c.post(
            "/v1/accounts",
            json={"id": 1, "ledger": 1, "currency": "EUR", "code": 1},
            headers={"X-Request-Id": "req-42"},
        )
        assert r.headers["x-request-id"] == "req-42"
        generated = c.get("/v1/accounts/1").headers["x-request-id"]
        assert len(generated) == 32
        bad = c.get("/v1/accounts/1", headers={"X-Request-Id": "no spaces allowed"})
        assert bad.headers["x-request-id"] != "no spaces allowed"
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    refused = next(line for line in lines if line.get("request_id") == "req-42")
    assert refused["route"] == "/v1/accounts"
    assert refused["status"] == 409
    assert refused["command_id"] == "account:1"
    assert refused["outcome"] == "exists_with_different_currency"
    assert refused["latency_ms"] > 0
    assert any(line.get("request_id") == generated and line["status"] == 200 for line in lines)


def test_an_unexpected_error_is_logged_with_its_traceback_and_answered_without_one(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    app = server.runtime.app

    async def broken() -> None:
        raise RuntimeError("the secret internals")

    app.add_api_route("/v1/test-broken", broken, methods=["GET"])
    caplog.set_level(logging.INFO)
    with server.client() as c:
        r = c.get("/v1/test-broken")
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text and "Traceback" not in r.text
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors and errors[0].exc_info is not None
    assert "the secret internals" in JsonFormatter().format(errors[0])


def test_metrics_add_up_across_the_workers_of_serve(db_url: str, tmp_path: Path) -> None:
    cluster = Cluster(db_url, tmp_path, free_port(), workers=2)
    cluster.start("serve")
    try:
        token = cluster.token()
        # A connection per request (no keep-alive), so the kernel hands requests to both workers.
        headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
        with httpx.Client(base_url=cluster.url, headers=headers, timeout=10) as c:
            for account_id in range(1, 41):
                r = c.post(
                    "/v1/accounts",
                    json={"id": account_id, "ledger": 1, "currency": "USD", "code": 1},
                )
                assert r.status_code == 201
            # Every worker refreshes its in-memory figures on a timer, so even the first scrape,
            # whichever worker answers it, counts the other's cache as it is now (it once
            # added the other worker's figures from that worker's last scrape: none yet).
            time.sleep(3 * METRICS_REFRESH_S)
            first = c.get("/metrics").text
            assert _sample(first, "ledgerline_aggregate_cache_entries") == 40
            # Each worker registers its own process figures when it starts; a loaded machine
            # may start the second one late, so scrape until both are there (bounded).
            deadline = time.monotonic() + 30
            scrapes = [c.get("/metrics").text for _ in range(6)]
            while _pids(scrapes[-1]) != 2 and time.monotonic() < deadline:
                time.sleep(0.2)
                scrapes.append(c.get("/metrics").text)
        assert _pids(scrapes[-1]) == 2  # each worker's own process figures
        for text in scrapes:  # whichever worker answers, it counts all of them
            created = _sample(
                text,
                'ledgerline_command_outcomes_total{command="create_account",outcome="created"}',
            )
            assert created == 40
    finally:
        cluster.stop()


def _pids(text: str) -> int:
    return len(
        {
            line.split('pid="')[1].split('"')[0]
            for line in text.splitlines()
            if line.startswith("ledgerline_process_resident_memory_bytes{")
        }
    )


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing from /metrics")
