"""``ledgerline bench api``: transfers per second over loopback HTTP, and latency percentiles.

One run: start ``ledgerline serve`` on a fresh embedded store, open accounts, then drive
``POST /v1/transfers`` from many concurrent keep-alive clients for a bounded time and record
every latency. In the same run, on the same server, measure the stock ``eventsourcing``
baseline (one event per save, 32 threads).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ledgerline.bench_append import fresh_database, plain_eventsourcing
from ledgerline.database import stop_embedded
from ledgerline.errors import LedgerlineError

ACCOUNTS = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ledgerline", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise LedgerlineError(f"ledgerline {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


async def _drive(
    url: str, token: str, clients: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    """Keep ``clients`` requests in flight; aiohttp, because the client must not be the limit."""
    import aiohttp

    latencies: list[float] = []
    counts = {"created": 0, "rejected": 0, "errors": 0}
    next_id = iter(range(10_000_000, 10**12))
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop = measure_from + seconds

        async def client() -> None:
            rng = random.Random()
            while (now := time.perf_counter()) < stop:
                a = rng.randrange(1, ACCOUNTS + 1)
                b = rng.randrange(1, ACCOUNTS)
                b = b + 1 if b >= a else b
                body = {
                    "id": next(next_id),
                    "debit_account_id": a,
                    "credit_account_id": b,
                    "amount": f"{rng.randrange(1, 10000) / 100:.2f}",
                    "ledger": 1,
                    "code": 1,
                }
                t0 = time.perf_counter()
                try:
                    async with http.post("/v1/transfers", json=body) as r:
                        await r.read()
                        status = r.status
                except aiohttp.ClientError:
                    status = 0
                t1 = time.perf_counter()
                if now < measure_from:
                    continue
                latencies.append(t1 - t0)
                if status == 201:
                    counts["created"] += 1
                elif 400 <= status < 500:
                    counts["rejected"] += 1
                else:
                    counts["errors"] += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - measure_from
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 2)

    return {
        "transfers_per_s": round(counts["created"] / elapsed, 1),
        "requests": len(latencies),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
        **counts,
    }


def run(
    *, seconds: float, clients: int, baseline_seconds: float, workers: int = 2
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ledgerline-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}
        }
        env["LEDGERLINE_DATA_DIR"] = str(data_dir)
        token = _cli("keys", "create", "--role", "operator", env=env).strip()
        port = _free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledgerline",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise LedgerlineError(
                        f"serve exited: {server.stderr.read() if server.stderr else ''}"
                    )
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise LedgerlineError("serve did not become ready within 60 s")
                time.sleep(0.2)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for account_id in range(1, ACCOUNTS + 1):
                    r = http.post(
                        "/v1/accounts",
                        json={"id": account_id, "ledger": 1, "currency": "USD", "code": 1},
                    )
                    if r.status_code not in (200, 201):
                        raise LedgerlineError(f"could not open account: {r.text}")
            result = asyncio.run(_drive(url, token, clients, seconds, warmup_s=2.0))
            admin_url = _embedded_url(data_dir)
            plain = plain_eventsourcing(
                fresh_database(admin_url, "bench_api_plain"), baseline_seconds
            )
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            stop_embedded(data_dir)  # before the temporary directory is removed
    return {
        "benchmark": "api",
        "clients": clients,
        "server_workers": workers,
        "seconds": seconds,
        "accounts": ACCOUNTS,
        **result,
        "plain_eventsourcing_commands_per_s": round(plain, 1),
        "transfers_vs_plain": round(result["transfers_per_s"] / plain, 2) if plain else None,
        "targets": {"transfers_per_s": 1000, "p99_ms": 50, "errors": 0},
        "cpu_count": os.cpu_count(),
        "note": "server, PostgreSQL and the load generator share this machine's cores",
    }


def _embedded_url(data_dir: Path) -> str:
    from ledgerline.database import embedded_server

    with embedded_server(data_dir) as url:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
        return url
