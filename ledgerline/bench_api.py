"""``ledgerline bench api``: transfers per second over loopback HTTP, and latency percentiles.

One run: start ``ledgerline serve`` on a fresh embedded store, open accounts, then drive
``POST /v1/transfers`` from many concurrent keep-alive clients for a bounded time and record
every latency. In the same run, on the same server, measure the stock ``eventsourcing``
baseline (one event per save, 32 threads).

The single transfers are sent by ``wrk`` (C, Debian's package ``wrk``) when it is installed:
the server, PostgreSQL and the load generator share the machine, and aiohttp's event loop
took 0.22 of a core to send 1,900 requests a second where wrk takes 0.06. Without it, or
with ``--load-generator aiohttp``, aiohttp sends them. The JSON names the generator and its
share of the cores.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ledgerline.bench_append import fresh_database, plain_eventsourcing
from ledgerline.bench_support import (
    Tree,
    cli,
    cpu_us_by_part,
    embedded_url,
    fresh_store,
    import_file,
    postmaster_pid,
    serving,
)
from ledgerline.errors import LedgerlineError

ACCOUNTS = 1000

# wrk's script: each request a new transfer id (a block of ids per thread) between two
# distinct random accounts; statuses counted per thread and summed, with the latency
# percentiles, into one JSON line when the run ends. Arguments: first id, accounts; the token
# comes in the environment (not on a command line anyone may list).
_WRK_SCRIPT = r"""
local threads = {}
local count = 0

function setup(thread)
  thread:set("index", count)
  count = count + 1
  table.insert(threads, thread)
end

function init(args)
  local first = tonumber(args[1])
  accounts = tonumber(args[2])
  next_id = first + index * 1000000000
  math.randomseed(first + index)
  created, rejected, failed = 0, 0, 0
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("LEDGERLINE_BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  local a = math.random(1, accounts)
  local b = math.random(1, accounts - 1)
  if b >= a then b = b + 1 end
  next_id = next_id + 1
  local body = string.format(
    '{"id":%d,"debit_account_id":%d,"credit_account_id":%d,"amount":"%d.%02d",'
    .. '"ledger":1,"code":1}', next_id, a, b, math.random(0, 99), math.random(1, 99))
  return wrk.format("POST", "/v1/transfers", headers, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status >= 400 and status < 500 then rejected = rejected + 1
  else failed = failed + 1 end
end

function done(summary, latency, requests)
  local c, r, f = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    r = r + t:get("rejected")
    f = f + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    '{"created":%d,"rejected":%d,"failed":%d,"requests":%d,"socket_errors":%d,'
    .. '"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    c, r, f, summary.requests, e.connect + e.read + e.write + e.timeout + e.status,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def wrk_path() -> str | None:
    """The installed ``wrk``, if any."""
    return shutil.which("wrk")


def _drive_wrk(
    url: str, token: str, clients: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    """Keep ``clients`` requests in flight with ``wrk``: a warm-up run, then the measured one.

    The generator's CPU is its children's rusage across the measured run (nothing else this
    process waits for ends in it)."""
    wrk = wrk_path()
    if wrk is None:
        raise LedgerlineError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="ledgerline-wrk-") as tmp:
        script = os.path.join(tmp, "transfers.lua")
        with open(script, "w", encoding="utf-8") as f:
            f.write(_WRK_SCRIPT)

        def run_wrk(run_s: float, first_id: int) -> dict[str, Any]:
            out = subprocess.run(
                [
                    wrk,
                    f"-t{min(2, clients)}",
                    f"-c{clients}",
                    f"-d{max(1, round(run_s))}s",
                    "--timeout",
                    "30s",
                    "-s",
                    script,
                    url,
                    "--",
                    str(first_id),
                    str(ACCOUNTS),
                ],
                capture_output=True,
                text=True,
                timeout=run_s + 60,
                check=False,
                env={**os.environ, "LEDGERLINE_BENCH_TOKEN": token},
            )
            lines = out.stdout.strip().splitlines()
            if out.returncode != 0 or not lines or not lines[-1].startswith("{"):
                raise LedgerlineError(f"wrk failed: {(out.stderr or out.stdout).strip()[:300]}")
            result: dict[str, Any] = json.loads(lines[-1])
            return result

        warmup = run_wrk(warmup_s, 30_000_000_000)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_wrk(seconds, 50_000_000_000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = result["duration_us"] / 1e6
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "transfers_per_s": round(result["created"] / elapsed, 1),
        "requests": result["requests"],
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "max_ms": round(result["max_us"] / 1000, 2),
        "created": result["created"],
        "rejected": result["rejected"],
        "errors": result["failed"] + result["socket_errors"],
        "load_generator": "wrk",
        "load_generator_cores": round(cpu / elapsed, 2),
        "requests_with_warmup": warmup["requests"] + result["requests"],
        "created_with_warmup": warmup["created"] + result["created"],
    }


async def _drive(
    url: str, token: str, clients: int, seconds: float, warmup_s: float
) -> dict[str, Any]:
    """Keep ``clients`` requests in flight; aiohttp, because the client must not be the limit."""
    import aiohttp

    latencies: list[float] = []
    counts = {"created": 0, "rejected": 0, "errors": 0}
    sent = created_all = 0
    next_id = iter(range(10_000_000, 10**12))
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as http:
        start, own0 = time.perf_counter(), time.process_time()
        measure_from = start + warmup_s
        stop = measure_from + seconds

        async def client() -> None:
            nonlocal sent, created_all
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
                sent += 1
                created_all += status == 201
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
        # This process is the generator: its CPU over the whole drive, warm-up included.
        cores = (time.process_time() - own0) / (time.perf_counter() - start)
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
        "load_generator": "aiohttp",
        "load_generator_cores": round(cores, 2),
        "requests_with_warmup": sent,
        "created_with_warmup": created_all,
    }


def _measure_idle(
    serve_tree: Tree, pg_tree: Tree, admin_url: str, seconds: float
) -> dict[str, float]:
    """Nothing is asked of the server: its CPU, the database's CPU and commits per second.

    PostgreSQL reports a backend's commits up to 10 s late, so the window opens after that;
    a window in which PostgreSQL's own autovacuum ran is measured again (up to three times).
    """
    _wait_for_checkpoint(admin_url)
    time.sleep(11.0)
    idle: dict[str, float] = {}
    # The measurement's own session is in another database (its reads commit too, and their
    # counts reach the statistics late: template1, which exists everywhere and which the
    # server never uses), and only the server's database is counted.
    server_db = str(psycopg.conninfo.conninfo_to_dict(admin_url).get("dbname"))
    own = psycopg.conninfo.make_conninfo(admin_url, dbname="template1")
    with psycopg.connect(own, autocommit=True) as conn:
        for _attempt in range(3):
            opened = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            cpu0, pg0, commits0 = serve_tree.cpu_s(), pg_tree.cpu_s(), _commits(conn, server_db)
            time.sleep(seconds)
            commits1 = _commits(conn, server_db)
            idle = {
                "serve_cpu_percent": round(100 * (serve_tree.cpu_s() - cpu0) / seconds, 2),
                "postgres_cpu_percent": round(100 * (pg_tree.cpu_s() - pg0) / seconds, 2),
                "commits_per_s": round((commits1 - commits0) / seconds, 2),
                "seconds": seconds,
            }
            if not _autovacuumed_since(admin_url, opened):
                break
    return idle


def _wait_for_checkpoint(url: str, timeout_s: float = 60.0) -> None:
    """Until the server has signed a checkpoint of the whole log: the signing is the last
    work that the writes before an idle period leave behind (it runs within its interval)."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                'SELECT (SELECT position FROM "ledgerline".chain_head),'
                ' (SELECT max(tree_size) FROM "ledgerline".checkpoints)'
            ).fetchone()
            if row is not None and row[0] is not None and row[0] == row[1]:
                return
            time.sleep(0.5)


def _autovacuumed_since(url: str, since: Any) -> bool:
    """Whether PostgreSQL's own housekeeping (autovacuum, autoanalyze) ran in the server's
    database since ``since``; read after the window, so this session is not counted in it."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT max(greatest(last_autovacuum, last_autoanalyze)) FROM pg_stat_all_tables"
        ).fetchone()
    return bool(row and row[0] is not None and row[0] >= since)


def _commits(conn: psycopg.Connection[Any], datname: str) -> int:
    row = conn.execute(
        "SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = %s", (datname,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def _drive_batches(
    url: str, token: str, clients: int, seconds: float, per_request: int, linked: bool
) -> dict[str, Any]:
    """``clients`` keep one batch of ``per_request`` transfers each in flight."""
    import aiohttp

    created = 0
    requests = 0
    errors = 0
    # Each run its own ids: a linked run after a plain one must not meet its transfers.
    base = 10**13 * (2 if linked else 1)
    next_id = iter(range(base, base + 10**13))
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as http:
        start = time.perf_counter()
        stop = start + seconds

        async def client() -> None:
            nonlocal created, requests, errors
            rng = random.Random()
            while time.perf_counter() < stop:
                items = []
                for _ in range(per_request):
                    a = rng.randrange(1, ACCOUNTS + 1)
                    b = rng.randrange(1, ACCOUNTS)
                    items.append(
                        {
                            "id": next(next_id),
                            "debit_account_id": a,
                            "credit_account_id": b + 1 if b >= a else b,
                            "amount": "1.00",
                            "ledger": 1,
                            "code": 1,
                        }
                    )
                try:
                    async with http.post(
                        "/v1/transfer-batches", json={"linked": linked, "transfers": items}
                    ) as r:
                        body = await r.json(content_type=None)
                        ok = r.status == 201
                except aiohttp.ClientError:
                    ok, body = False, {}
                requests += 1
                if ok:
                    created += sum(1 for item in body["results"] if item["status"] == "created")
                else:
                    errors += 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {
        "transfers_per_s": round(created / elapsed, 1),
        "requests": requests,
        "transfers_per_request": per_request,
        "linked": linked,
        "errors": errors,
    }


def _import(env: dict[str, str], tmp: Path, transfers: int) -> dict[str, Any]:
    """``ledgerline import`` of a generated file beside the running server: its own rate."""
    path = tmp / "history.jsonl"
    import_file(path, transfers)
    out = json.loads(
        cli("import", str(path), "--batch-size", "2000", "--no-catch-up", "--json", env=env)
    )
    return {
        "import_transfers_per_s": out["transfers_per_s"],
        "imported_transfers": out["transfers"],
        "import_seconds": out["seconds"],
    }


def run(
    *,
    seconds: float,
    clients: int,
    baseline_seconds: float,
    load_generator: str | None = None,
    workers: int = 1,
    batch_clients: int = 4,
    batch_size: int = 1000,
    idle_seconds: float = 5.0,
    import_transfers: int = 100_000,
) -> dict[str, Any]:
    generator = load_generator or ("wrk" if wrk_path() else "aiohttp")
    if generator not in ("wrk", "aiohttp"):
        raise LedgerlineError(f"--load-generator must be wrk or aiohttp, not {generator!r}")
    if generator == "wrk" and wrk_path() is None:
        raise LedgerlineError("--load-generator wrk: wrk is not installed (apt-get install wrk)")
    with fresh_store() as (data_dir, env):
        token = cli("keys", "create", "--role", "operator", env=env).strip()
        with serving(env, workers) as (server, url):
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for account_id in range(1, ACCOUNTS + 1):
                    r = http.post(
                        "/v1/accounts",
                        json={"id": account_id, "ledger": 1, "currency": "USD", "code": 1},
                    )
                    if r.status_code not in (200, 201):
                        raise LedgerlineError(f"could not open account: {r.text}")
            admin_url = embedded_url(data_dir)
            serve_tree, pg_tree = Tree(server.pid), Tree(postmaster_pid(data_dir))
            idle = _measure_idle(serve_tree, pg_tree, admin_url, idle_seconds)
            # Single transfers, one per request.
            cpu0, pg0, parts0 = serve_tree.cpu_s(), pg_tree.cpu_s(), serve_tree.cpu_s_by_part()
            if generator == "wrk":
                result = _drive_wrk(url, token, clients, seconds, warmup_s=2.0)
            else:
                result = asyncio.run(_drive(url, token, clients, seconds, warmup_s=2.0))
            # The server's CPU is read across the warm-up too: per request it sent.
            requests = max(1, result.pop("requests_with_warmup"))
            del result["created_with_warmup"]  # for the drivers' test: the store's count
            single_cpu = {
                "server_cpu_us_per_request": round((serve_tree.cpu_s() - cpu0) / requests * 1e6),
                "postgres_cpu_us_per_request": round((pg_tree.cpu_s() - pg0) / requests * 1e6),
                "server_cpu_us_per_request_by_part": cpu_us_by_part(
                    parts0, serve_tree.cpu_s_by_part(), requests
                ),
            }
            # Batches through POST /v1/transfer-batches.
            cpu0, pg0, parts0 = serve_tree.cpu_s(), pg_tree.cpu_s(), serve_tree.cpu_s_by_part()
            batched = asyncio.run(
                _drive_batches(url, token, batch_clients, seconds, batch_size, linked=False)
            )
            transfers = max(1, batched["transfers_per_s"] * seconds)
            server_s, pg_s = serve_tree.cpu_s() - cpu0, pg_tree.cpu_s() - pg0
            batched["server_cpu_us_per_transfer"] = round(server_s / transfers * 1e6)
            batched["server_cpu_us_per_transfer_by_part"] = cpu_us_by_part(
                parts0, serve_tree.cpu_s_by_part(), transfers
            )
            batched["postgres_cpu_us_per_transfer"] = round(pg_s / transfers * 1e6)
            # Linked batches of 100: all or nothing per request.
            linked = asyncio.run(
                _drive_batches(url, token, batch_clients * 4, seconds, 100, linked=True)
            )
            imported = _import(env, data_dir.parent, import_transfers)
            plain = plain_eventsourcing(
                fresh_database(admin_url, "bench_api_plain"), baseline_seconds
            )
    targets = {
        "transfers_per_s": 2100,
        "p99_ms": 50,
        "errors": 0,
        "batched_transfers_per_s": 30000,
        "import_transfers_per_s": 20000,
        "linked_batches_errors": 0,
    }
    return {
        "benchmark": "api",
        "clients": clients,
        "server_workers": workers,
        "seconds": seconds,
        "accounts": ACCOUNTS,
        **result,
        **single_cpu,
        "batched": batched,
        "linked_batches_of_100": linked,
        **imported,
        "import_vs_single": round(imported["import_transfers_per_s"] / result["transfers_per_s"], 2)
        if result["transfers_per_s"]
        else None,
        "idle": idle,
        "peak_rss_mb": {
            "serve": round(serve_tree.peak_rss_mb, 1),
            "postgres": round(pg_tree.peak_rss_mb, 1),
        },
        "plain_eventsourcing_commands_per_s": round(plain, 1),
        "transfers_vs_plain": round(result["transfers_per_s"] / plain, 2) if plain else None,
        "targets": targets,
        "pass": {
            "transfers_per_s": result["transfers_per_s"] >= targets["transfers_per_s"],
            "p99_ms": result["p99_ms"] < targets["p99_ms"],
            "errors": result["errors"] == 0,
            "batched_transfers_per_s": batched["transfers_per_s"]
            >= targets["batched_transfers_per_s"],
            "import_transfers_per_s": imported["import_transfers_per_s"]
            >= targets["import_transfers_per_s"],
            "linked_batches_errors": linked["errors"] == 0,
            "idle": idle["serve_cpu_percent"] + idle["postgres_cpu_percent"] < 2
            and idle["commits_per_s"] == 0,
        },
        "cpu_count": os.cpu_count(),
        "note": "server, PostgreSQL and the load generator share this machine's cores "
        "(load_generator_cores is the single transfers' generator's own share: wrk, in C, "
        "when installed; aiohttp otherwise). by_part splits the server's CPU by thread: http "
        "(uvicorn's event loop), decider (the command processor), projector (its process), "
        "other",
    }
