"""``ledgerline bench settlement``: a million obligations through the command processor.

One run on a fresh database (``bench_settlement``), in one process as ``serve`` runs it (the
command processor, the in-process projection runner with the settlement projection):

* set-up (not measured): 1,000 participants (no caps: nothing queues) and one DNS scheme;
* **lag run**: the first tenth of the obligations (at least 1,000), offered open-loop at
  ``--rate`` obligations per second (default 10,000), as one batch command every 10 ms:
  ``positions_update_p99_ms`` is, per obligation, commit (``recorded_at_ns``) to the moment the
  projection's applied position covers it (its positions, pair and totals rows are then
  readable), polled every 5 ms;
* **throughput run**: the rest, as batch commands of 1,000 obligations (the API's
  ``POST /v1/obligation-batches``; one event per obligation, one command-log entry per
  batch), submitted as fast as the processor takes them (at most ``WINDOW`` obligations in
  flight): ``obligations_per_s`` is obligations committed divided by the time from the first
  submission to the last commit (durable: each commit is one fsynced transaction). Single-obligation
  commands pay the processor's per-command cost (command log, outcome, future) on every
  obligation; ``bench append`` measures that path;
* ``netting_close_ms``: the cut-off command of the whole cycle (final release search, frozen
  positions and totals, cap check, the event, the commit; the paired recomputation of the book
  included), and ``netting_close_visible_ms`` until the read model shows the frozen cycle and
  its pending instructions;
* ``unwind_ms``: the unwind of the participant with the most obligations (the head of the
  power law), same two figures;
* baseline, same run: the same netting (G, B, M, every position) from scratch over the
  obligation list with plain Python dicts (:func:`domain.settlement.netting.plain_netting`);
  ``close_vs_baseline`` is baseline time / close time;
* correctness: the read model's G, B, M and positions equal the baseline's, before and after
  the unwind (the unwind compared with a fresh netting of the remainder).

Workload: payers and payees drawn from a Zipf-like law (weight of the k-th participant
``1/k^1.1``), amounts log-uniform between 0.01 and 10,000.00 USD, seeded.
"""

from __future__ import annotations

import math
import os
import random
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

from commands import ledger as ledger_commands
from commands import settlement as sc
from commands.context import build_processor
from commands.processor import CommandProcessor, Outcome
from domain.invariant import invariant
from domain.settlement.netting import plain_netting
from eventstore.store import EventStore
from ledgerline.bench_append import fresh_database
from ledgerline.bench_projections import NS_PER_MS, Watcher, _pct
from ledgerline.errors import LedgerlineError
from ledgerline.runtime import migrate_all
from projections.runner import ProjectionRunner
from projections.settlement import SettlementProjection
from readmodels import settlement as rm

PARTICIPANTS = 1000
SCHEME = 1
WINDOW = 4_000  # obligations in flight during the throughput run
BATCH = 1_000  # obligations per batch command in the throughput run (a clearing file)
LAG_BATCH_S = 0.01  # the lag run sends one batch every 10 ms (100 obligations at 10,000/s)
SEED = 20261203
TARGETS = {
    "obligations_per_s": 10_000,
    "positions_update_p99_ms": 100,
    "netting_close_ms": 5_000,
    "unwind_ms": 2_000,
}
_APPLIED = (
    "SELECT coalesce(max(position), 0), count(*) FROM readmodels.tracking"
    " WHERE projection = 'settlement' AND source = 'store'"
)


def workload(n: int, seed: int = SEED) -> Iterator[tuple[int, int, int]]:
    """(payer, payee, amount in cents): power-law parties, log-uniform amounts."""
    rnd = random.Random(seed)
    weights = [1 / (k + 1) ** 1.1 for k in range(PARTICIPANTS)]
    cumulative = [0.0]
    for w in weights:
        cumulative.append(cumulative[-1] + w)
    total = cumulative[-1]
    ids = list(range(1, PARTICIPANTS + 1))
    chunk = 10_000
    made = 0
    while made < n:
        k = min(chunk, n - made)
        payers = rnd.choices(ids, cum_weights=cumulative[1:], k=k)
        payees = rnd.choices(ids, cum_weights=cumulative[1:], k=k)
        for payer, drawn in zip(payers, payees, strict=True):
            payee = drawn if drawn != payer else payer % PARTICIPANTS + 1
            amount = int(math.exp(rnd.uniform(0, math.log(1_000_000))))
            yield payer, payee, amount
        made += k
    invariant(total > 0, "weights are positive")


def _item(oid: int, payer: int, payee: int, cents: int) -> sc.SubmitObligation:
    return sc.SubmitObligation(
        id=oid,
        scheme_id=SCHEME,
        payer_id=payer,
        payee_id=payee,
        currency="USD",
        amount=f"{cents // 100}.{cents % 100:02d}",
    )


def _offer(
    processor: CommandProcessor[Any],
    obligations: list[tuple[int, int, int]],
    first_id: int,
    rate: float | None,
    batch: int,
) -> list[Outcome]:
    """Submit in order as batch commands of ``batch`` obligations, paced to ``rate``
    obligations/s (``None``: as fast as ``WINDOW`` obligations in flight allow); one outcome
    per batch command."""
    futures: list[Future[Outcome]] = []
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for offset in range(0, len(obligations), batch):
        if rate is not None:
            wait = start + offset / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        items = tuple(
            _item(first_id + offset + k, *o)
            for k, o in enumerate(obligations[offset : offset + batch])
        )
        command = sc.obligation_batch_command(sc.SubmitObligationBatch(obligations=items))
        futures.append(processor.submit(command))
        if len(futures) * batch >= WINDOW:
            outcomes.append(futures.pop(0).result(600))
    outcomes.extend(f.result(600) for f in futures)
    for o in outcomes:
        bad = [r for r in o.result.get("results", ()) if r.get("status") != "accepted"]
        if not o.accepted or bad:
            raise LedgerlineError(f"obligations were refused, e.g. {bad[:1] or o.result}")
    return outcomes


def _timed(
    processor: CommandProcessor[Any], command: Any, watcher: Watcher
) -> tuple[float, float, Outcome]:
    start = time.perf_counter()
    outcome = processor.execute(command, timeout_s=600)
    decided = time.perf_counter()
    if not outcome.accepted:
        raise LedgerlineError(f"{command.command_type} was rejected: {outcome.result}")
    watcher.wait_for(outcome.position or 0, 600)
    visible = time.perf_counter()
    return (decided - start) * 1000, (visible - start) * 1000, outcome


def _read_netting(url: str) -> tuple[dict[str, int], dict[int, int]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cycle = rm.get_cycle(conn, SCHEME, 1)
        positions = {
            int(r["participant_id"]): int(r["received"]) - int(r["sent"])
            for r in rm.cycle_positions(conn, SCHEME, 1)
        }
    invariant(cycle is not None, "the cycle is in the read model")
    assert cycle is not None
    t = cycle["totals"][0]
    return {"gross": t["gross"], "bilateral": t["bilateral"], "multilateral": t["multilateral"]}, {
        p: n for p, n in positions.items() if n
    }


def _set_up(processor: CommandProcessor[Any]) -> None:
    """1,000 participants (no caps) and one DNS scheme clearing USD: not measured."""
    futures = [
        processor.submit(
            sc.register_command(
                sc.RegisterParticipant(id=p, name=f"bank {p}", accounts={"USD": 1_000_000 + p})
            )
        )
        for p in range(1, PARTICIPANTS + 1)
    ]
    invariant(all(f.result(120).accepted for f in futures), "participants registered")
    created = processor.execute(
        sc.scheme_command(
            sc.CreateScheme(
                id=SCHEME,
                name="bench",
                mode="dns",
                settlement_accounts={"USD": 999},
                participants=tuple(range(1, PARTICIPANTS + 1)),
            )
        ),
        timeout_s=120,
    )
    invariant(created.accepted, f"scheme created: {created.result}")


def _stream(
    processor: CommandProcessor[Any],
    watcher: Watcher,
    work: list[tuple[int, int, int]],
    lag_n: int,
    rate: float,
    check: Callable[[], None],
) -> dict[str, Any]:
    """The paced lag run, then the rest as fast as it goes."""
    lag_batch = max(1, int(rate * LAG_BATCH_S))
    lagged = _offer(processor, work[:lag_n], 1, rate, lag_batch)
    watcher.wait_for(max(o.position or 0 for o in lagged), 600, check)
    lags = sorted(
        ((watcher.visible_at(o.position or 0) or 0) - o.recorded_at_ns) / NS_PER_MS
        for o in lagged
        for _ in o.result["results"]
    )
    batches_before = processor.batches_committed
    commands_before = processor.commands_committed
    rest = work[lag_n:] or work[:lag_n]
    first_id = 1 + lag_n if len(work) > lag_n else 1 + len(work)
    started_ns = time.time_ns()  # the store stamps commits with this process's clock
    burst = _offer(processor, rest, first_id, None, BATCH)
    span_s = (max(o.recorded_at_ns for o in burst) - started_ns) / 1e9
    mean_batch = (processor.commands_committed - commands_before) / max(
        processor.batches_committed - batches_before, 1
    )
    started = time.perf_counter()
    watcher.wait_for(max(o.position or 0 for o in burst), 1200, check)
    return {
        # From the first submission to the last commit: decided, written and fsynced.
        "obligations_per_s": round(len(rest) / span_s, 1),
        "obligations_per_batch_command": BATCH,
        "lag_run_obligations_per_batch_command": lag_batch,
        "positions_update_p99_ms": round(_pct(lags, 0.99), 1),
        "positions_update_p50_ms": round(_pct(lags, 0.50), 1),
        "positions_update_max_ms": round(lags[-1], 1),
        "mean_batch_commands_per_commit": round(mean_batch, 2),
        "projection_catch_up_after_burst_s": round(time.perf_counter() - started, 2),
    }


def _close_and_unwind(
    processor: CommandProcessor[Any], watcher: Watcher, work: list[tuple[int, int, int]], db: str
) -> dict[str, Any]:
    """The baseline, the cut-off and the largest unwind, each checked against a fresh netting."""
    baseline_start = time.perf_counter()
    gross, bilateral, multilateral, positions = plain_netting(work)
    baseline_ms = (time.perf_counter() - baseline_start) * 1000
    totals, projected = _read_netting(db)
    expected = {"gross": gross, "bilateral": bilateral, "multilateral": multilateral}
    invariant(totals == expected, f"read model {totals} != baseline {expected}")
    invariant(
        projected == {p: n for p, n in positions.items() if n},
        "read-model positions equal the baseline's",
    )
    close_ms, close_visible_ms, _ = _timed(
        processor, sc.cut_off_command(sc.CutOff(scheme_id=SCHEME, seq=1)), watcher
    )
    counts: dict[int, int] = {}
    for payer, payee, _cents in work:
        counts[payer] = counts.get(payer, 0) + 1
        counts[payee] = counts.get(payee, 0) + 1
    defaulter = max(counts, key=lambda p: (counts[p], -p))
    unwind_ms, unwind_visible_ms, unwound = _timed(
        processor,
        sc.unwind_command(sc.Unwind(scheme_id=SCHEME, seq=1, participant_id=defaulter)),
        watcher,
    )
    g2, b2, m2, p2 = plain_netting(o for o in work if defaulter not in o[:2])
    totals2, projected2 = _read_netting(db)
    invariant(
        totals2 == {"gross": g2, "bilateral": b2, "multilateral": m2},
        "after the unwind the read model equals a fresh netting of the remainder",
    )
    invariant(projected2 == {p: n for p, n in p2.items() if n}, "unwound positions")
    return {
        "netting_close_ms": round(close_ms, 1),
        "unwind_ms": round(unwind_ms, 1),
        "netting_close_visible_ms": round(close_visible_ms, 1),
        "unwind_participant": defaulter,
        "unwind_participant_obligations": counts[defaulter],
        "unwind_visible_ms": round(unwind_visible_ms, 1),
        "unwind_removed_gross_minor": unwound.result["removed_gross"]["USD"],
        "baseline_plain_dict_netting_ms": round(baseline_ms, 1),
        "close_vs_baseline": round(baseline_ms / close_ms, 2) if close_ms else None,
        "gross_minor": gross,
        "bilateral_minor": bilateral,
        "multilateral_minor": multilateral,
    }


LIMITS = {
    "obligations_per_s": "one decider thread (Python; the GIL shared with the projection "
    "runner and the submitting thread) deciding each obligation and encoding its event, and "
    "one PostgreSQL commit per batch, on the same two cores",
    "positions_update_p99_ms": "the projection runner's batch round trip (load the touched "
    "positions, pairs and totals, one upsert per table per batch) and the GIL it shares with "
    "the decider; the lag grows only when the offered rate exceeds what that sustains",
    "netting_close_ms": "O(P + Q) to freeze positions and build the event, plus the paired "
    "O(pairs) recomputation of the book; independent of the number of obligations",
    "unwind_ms": "O(d + P) for the defaulter's d counterparties, plus the paired O(pairs) "
    "recomputation of the book",
}


def run(url: str, *, obligations: int, rate: float) -> dict[str, Any]:
    if obligations < 1000 or rate <= 0:
        raise LedgerlineError("--events must be at least 1,000 and --rate positive")
    db = fresh_database(url, "bench_settlement")
    migrate_all(db)
    work = list(workload(obligations))
    lag_n = max(1000, obligations // 10)
    with EventStore(db, pool_size=8, run_migrations=False) as store:
        contexts = [ledger_commands.build_context(time.time_ns), sc.build_context(time.time_ns)]
        processor = build_processor(store.recorder, contexts).start()
        runner = ProjectionRunner(store.recorder, [SettlementProjection()]).start()
        try:
            _set_up(processor)
            with Watcher(db, _APPLIED) as watcher:
                watcher.wait_for(store.recorder.head().position, 120)

                def check() -> None:
                    if runner.failure is not None:
                        raise LedgerlineError(f"the projection stopped: {runner.failure}")

                streamed = _stream(processor, watcher, work, lag_n, rate, check)
                closed = _close_and_unwind(processor, watcher, work, db)
                check()
        finally:
            runner.stop()
            processor.stop()
    measured = {name: {**streamed, **closed}[name] for name in TARGETS}
    return {
        "benchmark": "settlement",
        "participants": PARTICIPANTS,
        "obligations": obligations,
        "lag_run_obligations": lag_n,
        "offered_per_s_in_lag_run": rate,
        **measured,
        **{k: v for k, v in streamed.items() if k not in measured},
        **{k: v for k, v in closed.items() if k not in measured},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "targets": TARGETS,
        "pass": {
            "obligations_per_s": measured["obligations_per_s"] >= TARGETS["obligations_per_s"],
            "positions_update_p99_ms": measured["positions_update_p99_ms"]
            < TARGETS["positions_update_p99_ms"],
            "netting_close_ms": measured["netting_close_ms"] < TARGETS["netting_close_ms"],
            "unwind_ms": measured["unwind_ms"] < TARGETS["unwind_ms"],
        },
        "limits": LIMITS,
        "cpu_count": os.cpu_count(),
    }
