"""``ledgerline bench memory``: how much memory ``serve`` holds on a large store, under load.

One run: a fresh embedded store gets ``accounts`` accounts and ``transfers`` transfers through
``ledgerline import`` of a generated file (written to disk line by line; the import projects
the read models before it returns). ``ledgerline serve --workers N`` starts on that store; its
resident set right after it answers is the baseline. One transfer is then written and read
back, so the in-process projector rebuilds its state (it does on the first event it applies:
the AML engine loads its checkpoint, which the import wrote, into its spill file, and keeps
at most ``HOT_ACCOUNTS`` accounts' windows in memory) and that memory is reported on its own,
not as growth per account touched. Then,
for ``seconds``, a few concurrent clients touch accounts drawn uniformly from the whole id
range: single transfers
(``POST /v1/transfers``) and reads of an account, of its transfers and of its balances. The
resident sets of the server's process tree (every worker) and of PostgreSQL's are sampled
every half second throughout.

The run checks itself: every request answered and none with an error, the ledger's trial
balance balanced at exactly the loaded amounts plus the accepted ones, and the read model
holding the loaded transfers plus the accepted ones.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import resource
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ledgerline.bench_support import (
    IMPORT_ACCOUNT_BASE,
    IMPORT_LEDGER,
    Tree,
    cli,
    embedded_url,
    fresh_store,
    import_file,
    postmaster_pid,
    serving,
)
from ledgerline.config import load_settings
from ledgerline.errors import LedgerlineError
from projections.aml import HOT_ACCOUNTS
from readmodels.schema import SCHEMA

DEFAULT_ACCOUNTS = 1_000_000
DEFAULT_TRANSFERS = 10_000_000
CATCH_UP_S = 300.0  # how long the checks wait for the read model to hold the load's writes
TARGET_SERVE_PEAK_RSS_MB = 2048
SAMPLE_EVERY_S = 0.5
IMPORTED_AMOUNT_MINOR = 100  # every imported transfer moves 1.00
LIVE_TRANSFER_BASE = 7 * 10**13  # above every imported transfer's id
WARM_TRANSFER_ID = LIVE_TRANSFER_BASE - 1  # the one transfer before the load
# What a client asks next: a transfer, or one of the three reads of an account.
OPERATIONS = ("transfer", "account", "account_transfers", "account_balances")
WEIGHTS = (4, 2, 2, 2)
# The first few unexpected answers are printed, to say what went wrong.
KEPT_FAILURES = 5


def _minor(amount: str) -> int:
    return int(Decimal(amount) * 100)


class _Load:
    """What the clients did and saw, summed over all of them."""

    def __init__(self) -> None:
        self.requests = dict.fromkeys(OPERATIONS, 0)
        self.answers = {"ok": 0, "client_errors": 0, "server_errors": 0, "unanswered": 0}
        self.accepted_transfers = 0
        self.accepted_minor = 0
        self.position = 0
        self.touched: set[int] = set()
        self.failures: list[str] = []
        # (seconds into the load, serve's resident set in MiB, accounts touched so far)
        self.timeline: list[tuple[float, float, int]] = []

    def accepted(self, minor: int, body: bytes) -> None:
        """A transfer of ``minor`` cents answered 201 with ``body``."""
        self.accepted_transfers += 1
        self.accepted_minor += minor
        self.position = max(self.position, int(json.loads(body)["position"]))

    def answered(self, op: str, status: int, body: bytes) -> None:
        self.requests[op] += 1
        if 200 <= status < 300:
            self.answers["ok"] += 1
            return
        kind = "unanswered" if status == 0 else "client_errors" if status < 500 else "server_errors"
        self.answers[kind] += 1
        if len(self.failures) < KEPT_FAILURES:
            self.failures.append(f"{op}: {status} {body[:200].decode(errors='replace')}")


def _transfer(transfer_id: int, debit: int, credit: int, minor: int) -> dict[str, Any]:
    """``POST /v1/transfers`` body: ``minor`` cents between the imported accounts numbered
    ``debit`` and ``credit`` (0-based)."""
    return {
        "id": transfer_id,
        "debit_account_id": IMPORT_ACCOUNT_BASE + debit,
        "credit_account_id": IMPORT_ACCOUNT_BASE + credit,
        "amount": f"{minor // 100}.{minor % 100:02d}",
        "ledger": IMPORT_LEDGER,
        "code": 1,
    }


async def _drive(
    url: str,
    token: str,
    load: _Load,
    *,
    accounts: int,
    clients: int,
    seconds: float,
    serve: Tree,
    pg: Tree,
) -> float:
    """``clients`` keep one request each in flight for ``seconds``, on accounts drawn
    uniformly from all of them, adding to ``load``; both trees are sampled every
    ``SAMPLE_EVERY_S`` meanwhile. Returns the seconds the load took."""
    import aiohttp

    next_id = itertools.count(LIVE_TRANSFER_BASE)
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as http:
        start = time.perf_counter()
        stop = start + seconds

        async def sample() -> None:
            while (now := time.perf_counter()) < stop:
                rss = serve.rss_mb()
                load.timeline.append((round(now - start, 1), round(rss, 1), len(load.touched)))
                pg.rss_mb()
                await asyncio.sleep(SAMPLE_EVERY_S)

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.perf_counter() < stop:
                (op,) = rng.choices(OPERATIONS, WEIGHTS)
                a = rng.randrange(accounts)
                load.touched.add(a)
                account = IMPORT_ACCOUNT_BASE + a
                minor = 0
                if op == "transfer":
                    b = rng.randrange(accounts - 1)
                    b = b + 1 if b >= a else b
                    load.touched.add(b)
                    minor = rng.randrange(1, 10_000)
                    request = http.post("/v1/transfers", json=_transfer(next(next_id), a, b, minor))
                elif op == "account":
                    request = http.get(f"/v1/accounts/{account}")
                elif op == "account_transfers":
                    request = http.get(f"/v1/accounts/{account}/transfers", params={"limit": 10})
                else:
                    request = http.get(f"/v1/accounts/{account}/balances", params={"limit": 10})
                try:
                    async with request as r:
                        body, status = await r.read(), r.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    body, status = repr(exc).encode(), 0
                load.answered(op, status, body)
                if op == "transfer" and status == 201:
                    load.accepted(minor, body)

        await asyncio.gather(sample(), *(client(seed) for seed in range(clients)))
        return time.perf_counter() - start


def _warm_projector(http: httpx.Client, load: _Load) -> float:
    """One transfer, read back through the read model: the projector rebuilds its state (the
    AML engine replays its journal) on the first event it applies after start, so its memory
    is counted before the load, not as growth per account touched. Returns the seconds it took.
    """
    minor = 1
    r = http.post("/v1/transfers", json=_transfer(WARM_TRANSFER_ID, 0, 1, minor))
    load.answered("transfer", r.status_code, r.content)
    if r.status_code != 201:
        raise LedgerlineError(f"the warm-up transfer answered {r.status_code}: {r.text[:300]}")
    load.accepted(minor, r.content)
    load.touched.update((0, 1))
    _, waited = _trial_balance(http, load.position)
    return waited


def _trial_balance(http: httpx.Client, position: int) -> tuple[dict[str, Any], float]:
    """The import ledger's trial balance once the read model holds ``position``: the server
    answers 503 with Retry-After while its projector is still behind, and the bench asks
    again, as a client should, for up to ``CATCH_UP_S``. Returns it and the seconds waited."""
    started = time.monotonic()
    while True:
        r = http.get(
            f"/v1/ledgers/{IMPORT_LEDGER}/trial-balance", params={"min_position": position}
        )
        if r.status_code != 503 or time.monotonic() - started > CATCH_UP_S:
            break
        time.sleep(float(r.headers.get("Retry-After", "1")))
    waited = time.monotonic() - started
    if r.status_code != 200:
        raise LedgerlineError(
            f"the trial balance at position {position} answered {r.status_code} after "
            f"{waited:.0f} s: {r.text[:300]}"
        )
    return dict(r.json()), waited


def _load_store(env: dict[str, str], work: Path, accounts: int, transfers: int) -> dict[str, Any]:
    """The generated history, through ``ledgerline import`` (which projects it as well), and
    the import's own peak resident set: the largest of this process's children so far (the
    ones before it are small commands)."""
    path = work / "history.jsonl"
    started = time.perf_counter()
    import_file(path, transfers, accounts)
    generated_s = time.perf_counter() - started
    started = time.perf_counter()
    out = json.loads(
        cli("import", str(path), "--batch-size", "2000", "--json", env=env, timeout=None)
    )
    load_s = time.perf_counter() - started
    path.unlink()
    if out["accounts"] != accounts or out["transfers"] != transfers:
        raise LedgerlineError(
            f"import loaded {out['accounts']} accounts and {out['transfers']} transfers, "
            f"not {accounts} and {transfers}"
        )
    return {
        "generate_seconds": round(generated_s, 1),
        "load_seconds": round(load_s, 1),
        "load_transfers_per_s": round(transfers / load_s, 1),
        "import_seconds": out["seconds"],
        "import_transfers_per_s": out["transfers_per_s"],
        # the rest of the load: opening the store, then projecting what was imported
        "project_seconds": round(load_s - out["seconds"] - out["session_open_seconds"], 1),
        "import_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }


def _growth(timeline: list[tuple[float, float, int]], points: int = 10) -> dict[str, Any]:
    """How serve's resident set followed the accounts the load touched: about ``points``
    samples of the timeline, and the growth per newly touched account over its second half
    (after the first requests' one-off allocations)."""
    if not timeline:
        return {"timeline": [], "kb_per_new_account_second_half": None}
    step = max(1, len(timeline) // points)
    shown = [*timeline[::step][: points - 1], timeline[-1]] if len(timeline) > 1 else timeline
    mid, end = timeline[len(timeline) // 2], timeline[-1]
    new_accounts = end[2] - mid[2]
    return {
        "timeline": [{"s": t, "serve_rss_mb": rss, "accounts_touched": n} for t, rss, n in shown],
        "kb_per_new_account_second_half": round((end[1] - mid[1]) * 1024 / new_accounts, 2)
        if new_accounts > 0
        else None,
    }


def _baseline_rss_mb(tree: Tree, samples: int = 5) -> float:
    """The server's resident set right after it answers (the largest of a few samples a
    fifth of a second apart: its workers finish starting meanwhile)."""
    figures = []
    for _ in range(samples):
        figures.append(tree.rss_mb())
        time.sleep(0.2)
    return max(figures)


def _aml_checkpoint(admin_url: str) -> dict[str, Any]:
    """Where the AML engine's checkpoint stands (the import writes one when it is done)."""
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            f"SELECT c.position, c.windows, h.position FROM {SCHEMA}.aml_checkpoint c,"
            ' "ledgerline".chain_head h'
        ).fetchone()
        size = conn.execute(
            f"SELECT pg_total_relation_size('{SCHEMA}.aml_checkpoint_windows')"
        ).fetchone()
    if row is None:
        return {"position": None}
    return {
        "position": int(row[0]),
        "windows": int(row[1]),
        "log_head": int(row[2]),
        "windows_table_mb": round(int(size[0]) / 2**20, 1) if size else None,
    }


def _cache_metrics(http: httpx.Client, metrics_token: str | None) -> dict[str, float]:
    """The command processors' caches as ``/metrics`` reports them (summed over workers)."""
    headers = {"Authorization": f"Bearer {metrics_token}"} if metrics_token else {}
    r = http.get("/metrics", headers=headers)
    names = {
        "ledgerline_aggregate_cache_bytes": "cache_mb",
        "ledgerline_aggregate_cache_entries": "cache_entries",
        "ledgerline_aggregate_cache_evictions": "cache_evictions",
    }
    found: dict[str, float] = {}
    for line in r.text.splitlines() if r.status_code == 200 else []:
        name, _, value = line.partition(" ")
        if name in names:
            found[names[name]] = float(value)
    if "cache_mb" in found:
        found["cache_mb"] = round(found["cache_mb"] / 2**20, 1)
    return found


def _check(
    http: httpx.Client, admin_url: str, load: _Load, accounts: int, transfers: int
) -> dict[str, Any]:
    """The ledger-wide invariants after the load: what was loaded plus what was accepted,
    read once the read model holds the load's last write."""
    balance, caught_up_s = _trial_balance(http, load.position)
    (line,) = balance["lines"]
    expected_minor = transfers * IMPORTED_AMOUNT_MINOR + load.accepted_minor
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.transfers WHERE ledger = %s",
            (IMPORT_LEDGER,),
        ).fetchone()
    stored = int(row[0]) if row else 0
    return {
        "read_model_caught_up_seconds": round(caught_up_s, 1),
        "no_errors": load.answers["ok"] == sum(load.answers.values()),
        "balanced": bool(line["balanced"])
        and _minor(line["debits_posted"]) == _minor(line["credits_posted"]) == expected_minor,
        "accounts_add_up": line["accounts"] == accounts,
        "transfers_add_up": stored == transfers + load.accepted_transfers,
        "stored_transfers": stored,
        "posted_minor": _minor(line["debits_posted"]),
        "expected_posted_minor": expected_minor,
    }


def run(
    *,
    accounts: int = DEFAULT_ACCOUNTS,
    transfers: int = DEFAULT_TRANSFERS,
    seconds: float = 30.0,
    clients: int = 8,
    workers: int = 1,
) -> dict[str, Any]:
    if accounts < 2 or transfers < 1:
        raise LedgerlineError("bench memory needs at least 2 accounts and 1 transfer")
    with fresh_store("ledgerline-bench-memory-") as (data_dir, env):
        settings = load_settings(environ=env)
        token = cli("keys", "create", "--role", "operator", env=env).strip()
        loaded = _load_store(env, data_dir.parent, accounts, transfers)
        admin_url = embedded_url(data_dir)
        checkpoint = _aml_checkpoint(admin_url)
        pg_tree = Tree(postmaster_pid(data_dir))
        with serving(env, workers) as (server, url):
            serve_tree = Tree(server.pid)
            baseline = _baseline_rss_mb(serve_tree)
            pg_tree.rss_mb()
            headers = {"Authorization": f"Bearer {token}"}
            load = _Load()
            with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
                warm_s = _warm_projector(http, load)
            warm = _baseline_rss_mb(serve_tree)
            elapsed = asyncio.run(
                _drive(
                    url,
                    token,
                    load,
                    accounts=accounts,
                    clients=clients,
                    seconds=seconds,
                    serve=serve_tree,
                    pg=pg_tree,
                )
            )
            with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
                checks = _check(http, admin_url, load, accounts, transfers)
                cache = _cache_metrics(http, settings.metrics_token)
            serve_end = serve_tree.rss_mb()
            pg_tree.rss_mb()
    requests = sum(load.requests.values())
    import_peak = loaded.pop("import_peak_rss_mb")
    peak = round(serve_tree.peak_rss_mb, 1)
    targets = {"serve_peak_rss_mb": TARGET_SERVE_PEAK_RSS_MB}
    checks_passed = all(checks[k] for k in ("no_errors", "balanced", "accounts_add_up",
                                            "transfers_add_up"))  # fmt: skip
    at_scale = accounts >= DEFAULT_ACCOUNTS and transfers >= DEFAULT_TRANSFERS
    return {
        "benchmark": "memory",
        "accounts": accounts,
        "transfers": transfers,
        **loaded,
        "seconds": seconds,
        "clients": clients,
        "server_workers": workers,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "requests_by_kind": load.requests,
        "answers": load.answers,
        "accepted_transfers": load.accepted_transfers,
        "accounts_touched": len(load.touched),
        "peak_rss_mb": {
            "serve": peak,
            "postgres": round(pg_tree.peak_rss_mb, 1),
            "import": import_peak,
        },
        "serve_rss_after_start_mb": round(baseline, 1),
        # The projector's own state, rebuilt on the first event after start (see _warm_projector)
        "serve_rss_after_projector_warm_mb": round(warm, 1),
        "projector_warm_seconds": round(warm_s, 1),
        "serve_rss_at_end_mb": round(serve_end, 1),
        "serve_peak_vs_after_start": round(peak / baseline, 2) if baseline else None,
        "serve_rss_under_load": _growth(load.timeline),
        "aml_engine": {"hot_accounts": HOT_ACCOUNTS, "checkpoint_after_import": checkpoint},
        "cache_max_mb": settings.cache_max_mb,
        "cache_at_end": cache,
        "checks": checks,
        "failures": load.failures,
        "targets": targets,
        "pass": {
            "serve_peak_rss_mb": peak < TARGET_SERVE_PEAK_RSS_MB,
            "checks": checks_passed,
        },
        "cpu_count": os.cpu_count(),
        "note": "at the target's scale"
        if at_scale
        else f"ran at {accounts:,} accounts and {transfers:,} transfers, below the target's "
        f"{DEFAULT_ACCOUNTS:,} and {DEFAULT_TRANSFERS:,}: the peak says how memory grows, "
        "not that the target is met",
    }
