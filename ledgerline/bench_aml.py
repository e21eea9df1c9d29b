"""``ledgerline bench aml``: AML ingest, detection and alert lag against their targets.

One run, on a fresh database, over a simulated stream (``aml simulate``: by default 20,000
accounts, 90 days, about 250,000 transactions with planted typologies and look-alikes):

* ``ingest_events_per_s``: the stream ingested through the command processor in batches of
  1,000 transactions (each one event, hash-chained and committed: durable), a few batches in
  flight;
* ``detect_transactions_per_s``: the AML projection rebuilt from the stored events into a
  fresh schema (detectors, alerts and the flow graph, as a replay does), per monitored
  transaction;
* ``baseline_transactions_per_s``: one pass over the same decoded stream that only sums
  amounts per account in a dict, and the ratio;
* ``alert_lag_p99_ms``: live, in-process: the time from the commit of the transaction that
  completes a pattern (the fifth new sender of a fan-in) to the alert being queryable;
* recall, precision and look-alike false alerts of the alerts against the simulator's truth;
* ``peak_rss_mb`` of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from commands.aml import accounts_command, batch_command, rates_command
from commands.context import build_processor
from eventstore.store import EventStore, connect_owner
from ledgerline import aml_score
from ledgerline.aml_simulate import simulate
from ledgerline.bench_append import fresh_database
from ledgerline.contexts import command_contexts
from ledgerline.runtime import migrate_all
from projections.registry import PROJECTIONS, rebuild_into
from projections.runner import ProjectionRunner
from readmodels import aml as rm
from readmodels.schema import SCHEMA, all_migrations

TARGETS = {
    "detect_transactions_per_s": 50_000,
    "ingest_events_per_s": 20_000,
    "alert_lag_p99_ms": 1_000,
    "recall": 0.9,
    "precision": 0.7,
}
LAG_TRIALS = 40


def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline.cli_common import settings_from_args
    from ledgerline.database import database_url

    events = getattr(args, "events", None)
    accounts = max(2_000, round(events / 12.5)) if events else 20_000
    with database_url(settings_from_args(args)) as url:
        return run(url, accounts=accounts)


def run(admin_url: str, *, accounts: int = 20_000, days: int = 90, seed: int = 1) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ledgerline-bench-aml-"))
    try:
        started = time.perf_counter()
        summary = simulate(work, seed=seed, accounts=accounts, days=days)
        simulate_s = time.perf_counter() - started
        records = [json.loads(line) for line in (work / "transactions.jsonl").open()]
        baseline = _baseline(records)
        url = fresh_database(admin_url, "bench_aml")
        migrate_all(url)
        with EventStore(url, pool_size=4, run_migrations=False) as store:
            ingest = _ingest(store, work, records)
            detect = _detect(store, url)
            lag = _alert_lag(store, url)
            with connect_owner(url) as conn:
                alerts = rm.list_alerts(conn, limit=10**9)
        scores = aml_score.score(json.loads((work / "truth.json").read_text()), alerts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "detect_transactions_per_s": detect["transactions_per_s"],
        "ingest_events_per_s": ingest["events_per_s"],
        "alert_lag_p99_ms": lag["p99_ms"],
        "recall": scores["recall"],
        "precision": scores["precision"],
    }
    return {
        "benchmark": "aml",
        "transactions": summary["transactions"],
        "accounts": summary["accounts"],
        "days": days,
        "simulate_seconds": round(simulate_s, 1),
        "ingest_events_per_s": ingest["events_per_s"],
        "ingest_seconds": ingest["seconds"],
        "detect_transactions_per_s": detect["transactions_per_s"],
        "detect_seconds": detect["seconds"],
        "baseline_transactions_per_s": baseline,
        "detect_vs_baseline": round(detect["transactions_per_s"] / baseline, 4),
        "alert_lag_p50_ms": lag["p50_ms"],
        "alert_lag_p99_ms": lag["p99_ms"],
        "alerts": scores["alerts"],
        "recall": scores["recall"],
        "recall_any": scores["recall_any"],
        "precision": scores["precision"],
        "per_typology_recall": {k: v["recall"] for k, v in scores["per_typology"].items()},
        "lookalike_false_alerts": scores["lookalike_false_alerts"],
        "lookalikes": scores["lookalikes"],
        "ctr": scores["ctr"],
        "time_to_alert_s": scores["time_to_alert_s"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": {
            name: {
                "target": target,
                "measured": figures[name],
                "pass": figures[name] is not None
                and (figures[name] < target if name.endswith("_ms") else figures[name] >= target),
            }
            for name, target in TARGETS.items()
        },
        "limits": {
            "detect_transactions_per_s": "one Python thread runs every detector and the graph "
            "deltas per transaction (about 15 detectors, each a few dict and bisect "
            "operations), plus decoding each stored event and copying the transaction rows "
            "(the engine alone runs at about 1.5-2x this figure)",
            "ingest_events_per_s": "the single decider thread: pydantic and the domain's "
            "validation of each record, its canonical JSON, hashing and the COPY, per event",
            "alert_lag_p99_ms": "the projector's wake-up (LISTEN/NOTIFY) and its 20 ms "
            "coalescing of commits, then one projection transaction",
            "recall_precision": "measured on our own simulator, whose planted patterns are "
            "built to the definitions the detectors use; data from other generators will "
            "score lower",
        },
        "cpu_count": os.cpu_count(),
    }


def _baseline(records: list[dict[str, Any]]) -> float:
    """One pass summing amounts per account in a dict (the records already decoded)."""
    started = time.perf_counter()
    sums: dict[str, int] = {}
    for r in records:
        whole, _, frac = r["amount"].partition(".")
        cents = int(whole) * 100 + int((frac + "00")[:2])
        sums[r["from_account"]] = sums.get(r["from_account"], 0) - cents
        sums[r["to_account"]] = sums.get(r["to_account"], 0) + cents
    return round(len(records) / (time.perf_counter() - started), 1)


def _ingest(store: EventStore, work: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
    try:
        rates = json.loads((work / "rates.json").read_text())["rates"]
        processor.execute(rates_command(rates, "bench"))
        profiles = [json.loads(line) for line in (work / "accounts.jsonl").open()]
        for i in range(0, len(profiles), 1000):
            processor.execute(accounts_command(profiles[i : i + 1000]))
        started = time.perf_counter()
        in_flight = []
        for i in range(0, len(records), 1000):
            in_flight.append(processor.submit(batch_command(records[i : i + 1000])))
            if len(in_flight) > 4:
                in_flight.pop(0).result(300)
        for f in in_flight:
            f.result(300)
        elapsed = time.perf_counter() - started
    finally:
        processor.stop()
    return {"events_per_s": round(len(records) / elapsed, 1), "seconds": round(elapsed, 2)}


def _detect(store: EventStore, url: str) -> dict[str, Any]:
    """The AML projection rebuilt from the log into a fresh schema (as a replay does), then
    swapped in as the live tables so the rest of the bench reads them."""
    from eventstore.schema import migrate

    spec = PROJECTIONS["aml"]
    upto = store.recorder.head().position
    scratch = f"bench_aml_{secrets.token_hex(4)}"
    with connect_owner(url) as conn:
        migrate(conn, scratch, all_migrations())
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            rebuild_into(store.recorder, cur, scratch, upto, [spec])
        elapsed = time.perf_counter() - started
        monitored = conn.execute(f"SELECT count(*) FROM {scratch}.aml_transactions").fetchone()
        count = int(monitored[0]) if monitored else 0
        with conn.transaction():
            for table in [*spec.tables, "aml_inbox"]:
                conn.execute(f"DROP TABLE {SCHEMA}.{table}")
                conn.execute(f"ALTER TABLE {scratch}.{table} SET SCHEMA {SCHEMA}")
            conn.execute(
                f"INSERT INTO {SCHEMA}.tracking (projection, source, position) VALUES"
                " ('aml', 'store', %s), ('ledger', 'store', %s)",
                (upto, upto),
            )
        conn.execute(f'DROP SCHEMA "{scratch}" CASCADE')
    return {"transactions_per_s": round(count / elapsed, 1), "seconds": round(elapsed, 2)}


def _alert_lag(store: EventStore, url: str) -> dict[str, Any]:
    """Fan-ins completed one at a time while the in-process projector runs: commit to alert.

    A first round, not measured, lets the projector rebuild its windows from the journal (as
    a server does once after it starts)."""
    runner = ProjectionRunner(
        store.recorder, [spec.create(SCHEMA) for spec in PROJECTIONS.values()]
    ).start()
    processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
    lags: list[float] = []
    try:
        now_s = int(time.time())
        for trial in range(-1, LAG_TRIALS):
            hub = f"LAG-{trial}-{secrets.token_hex(3)}"
            ts = now_s - 3600 + trial * 10

            def record(i: int, hub: str = hub, ts: int = ts) -> dict[str, Any]:
                return {
                    "id": f"{hub}-{i}",
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts + i)),
                    "from_account": f"{hub}-S{i}",
                    "to_account": hub,
                    "amount": "2000.00",
                    "currency": "USD",
                    "channel": "ach",
                    "kind": "transfer",
                }

            processor.execute(batch_command([record(i) for i in range(4)]))
            outcome = processor.execute(batch_command([record(4)]))
            committed = time.perf_counter()
            while True:
                with connect_owner(url) as conn:
                    found = rm.list_alerts(conn, typology="fan_in", account=hub, limit=1)
                if found:
                    break
                if time.perf_counter() - committed > 120:
                    raise RuntimeError(f"no alert for {hub} within 120 s")
                runner.wait_for(outcome.position or 0, 0.005)
            if trial >= 0:
                lags.append((time.perf_counter() - committed) * 1000)
    finally:
        processor.stop()
        runner.stop()
    lags.sort()
    return {
        "p50_ms": round(lags[len(lags) // 2], 1),
        "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
    }
