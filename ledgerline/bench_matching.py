"""``ledgerline bench matching``: the order books' throughput, from the engine to HTTP.

One run, on one seeded order stream (several instruments; mostly limit orders near the
touch, cancels of resting orders, some IOC and market orders), measures:

* ``engine_orders_per_s``: the domain alone (``OrderBook`` in memory: rules, matching and
  its events, collected after every command as the processor does), and on the same stream
  ``reference_orders_per_s``, the minimal reference engine (sorted price list, deque per
  level, dict index, no events: ``domain.trading.reference``) and their ratio. Best of three
  alternating runs each, so both see the same machine.
* ``durable_orders_per_s``: the stream's first orders through the command processor into
  PostgreSQL (group commit) from many concurrent submitters (1,024 commands in flight);
  ``book_lag_p99_ms``: from a command's commit to the in-process book read model holding it,
  while orders arrive at ``--rate`` per second (1,000 by default).
* ``http_orders_per_s`` (p50/p99 latency) over loopback HTTP, one order per request, and
  ``batched_http_orders_per_s`` through ``POST /v1/order-batches``, against ``ledgerline
  serve`` in its own processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.trading.book import OrderBook
from domain.trading.instrument import InstrumentSpec
from domain.trading.orders import NewOrder
from domain.trading.reference import ReferenceBook

BOOKS = 4
T0 = 1_700_000_000_000_000_000
TARGETS = {
    "engine_orders_per_s": 150_000,
    "engine_vs_reference": 0.5,
    "durable_orders_per_s": 10_000,
    "book_lag_p99_ms": 100,
}


@dataclass(frozen=True, slots=True)
class Step:
    """One command of the stream."""

    book: int  # 0..BOOKS-1
    kind: str  # "limit" (gtc), "ioc", "market" or "cancel"
    order_id: int
    account_id: int
    is_buy: bool
    price_ticks: int | None
    lots: int


def stream(n: int, seed: int = 7) -> list[Step]:
    """``n`` commands: 50% limit near the touch (10% of them marketable), 35% cancels of a
    resting order, 8% IOC at the touch, 7% market. Cancels name orders that rest at that
    point (a reference book follows the stream), as traders cancel their open orders."""
    rng = random.Random(seed)
    mids = [10_000] * BOOKS
    shadow = [ReferenceBook() for _ in range(BOOKS)]
    resting: list[list[int]] = [[] for _ in range(BOOKS)]
    owner: dict[int, int] = {}
    out: list[Step] = []
    oid = 0
    while len(out) < n:
        b = rng.randrange(BOOKS)
        if rng.random() < 0.05:
            mids[b] += rng.choice((-1, 1))
        roll = rng.random()
        if roll < 0.35:
            ids, index = resting[b], shadow[b].index
            while ids:
                j = rng.randrange(len(ids))
                ids[j], ids[-1] = ids[-1], ids[j]
                target = ids.pop()
                if target in index:
                    shadow[b].cancel(target)
                    out.append(Step(b, "cancel", target, owner[target], False, None, 0))
                    break
            continue
        oid += 1
        account = owner[oid] = rng.randint(1, 1000)
        is_buy = rng.random() < 0.5
        lots = rng.randint(1, 50)
        mid = mids[b]
        if roll < 0.85:
            off = -rng.randint(1, 3) if rng.random() < 0.1 else int(rng.expovariate(0.35))
            price = mid - 1 - off if is_buy else mid + 1 + off
            out.append(Step(b, "limit", oid, account, is_buy, price, lots))
            if shadow[b].add(oid, is_buy, price, lots):
                resting[b].append(oid)
        elif roll < 0.93:
            price = mid + 1 if is_buy else mid - 1
            out.append(Step(b, "ioc", oid, account, is_buy, price, lots))
            shadow[b].add(oid, is_buy, price, lots, rest=False)
        else:
            out.append(Step(b, "market", oid, account, is_buy, None, lots))
            shadow[b].add(oid, is_buy, None, lots, rest=False)
    return out


def _spec(book: int) -> InstrumentSpec:
    return InstrumentSpec(
        book + 1, f"BENCH{book}", f"B{book}", "USD", "0.01", "1", self_trade_prevention="none"
    )


def _new_order(s: Step) -> NewOrder:
    side = "buy" if s.is_buy else "sell"
    if s.kind == "limit":
        return NewOrder(s.order_id, s.account_id, side, s.price_ticks, s.lots)
    if s.kind == "ioc":
        return NewOrder(s.order_id, s.account_id, side, s.price_ticks, s.lots, "limit", "ioc")
    return NewOrder(s.order_id, s.account_id, side, None, s.lots, "market", "ioc")


def engine_run(steps: list[Step]) -> tuple[float, list[OrderBook], int]:
    """Seconds for the stream on fresh books (commands built beforehand), the books, events."""
    books = [OrderBook.list_instrument(_spec(b), T0) for b in range(BOOKS)]
    for book in books:
        book.collect_events()
    commands = [(books[s.book], _new_order(s) if s.kind != "cancel" else None, s) for s in steps]
    events = 0
    start = time.perf_counter()
    for book, order, s in commands:
        if order is not None:
            book.place(order, T0)
        else:  # the stream cancels resting orders only: a refusal here is a bug
            book.cancel(s.order_id, s.account_id, T0)
        events += len(book.collect_events())
    return time.perf_counter() - start, books, events


def reference_run(steps: list[Step]) -> tuple[float, list[ReferenceBook]]:
    books = [ReferenceBook() for _ in range(BOOKS)]
    commands = [(books[s.book], s) for s in steps]
    start = time.perf_counter()
    for book, s in commands:
        if s.kind == "cancel":
            book.cancel(s.order_id)
        else:
            book.add(s.order_id, s.is_buy, s.price_ticks, s.lots, s.kind == "limit")
    return time.perf_counter() - start, books


def measure_engine(n: int, seed: int) -> dict[str, Any]:
    steps = stream(n, seed)
    engine_s, reference_s = [], []
    for _ in range(3):  # alternate, so a noisy moment hurts both alike
        seconds, books, events = engine_run(steps)
        engine_s.append(seconds)
        ref_seconds, refs = reference_run(steps)
        reference_s.append(ref_seconds)
    same = all(b.depth() == r.depth() for b, r in zip(books, refs, strict=True))
    engine = n / min(engine_s)
    reference = n / min(reference_s)
    kinds = {k: sum(1 for s in steps if s.kind == k) for k in ("limit", "cancel", "ioc", "market")}
    return {
        "stream": {"commands": n, "books": BOOKS, "seed": seed, **kinds},
        "trades": sum(len(r.trades) for r in refs),
        "events_per_command": round(events / n, 3),
        "books_equal_reference": same,
        "engine_orders_per_s": round(engine),
        "reference_orders_per_s": round(reference),
        "engine_vs_reference": round(engine / reference, 3),
    }


# ------------------------------------------------------------------ durable and lag


class _Watcher:
    """Polls the projector's position; tells when a position became visible."""

    def __init__(self, position: Callable[[], int]) -> None:
        self._position = position
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            p = self._position()
            if p != last:
                self.seen.append((time.perf_counter(), p))
                last = p
            time.sleep(0.001)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def visible_at(self, position: int) -> float | None:
        for at, p in self.seen:
            if p >= position:
                return at
        return None


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))], 2)


def _list_books(processor: Any) -> None:
    from commands import trading as tc

    for b in range(BOOKS):
        spec = _spec(b)
        processor.execute(
            tc.list_instrument_command(
                tc.ListInstrument(
                    id=spec.instrument_id,
                    symbol=spec.symbol,
                    base_asset=spec.base_asset,
                    quote_asset=spec.quote_asset,
                    tick_size=spec.tick_size,
                    lot_size=spec.lot_size,
                    self_trade_prevention="none",
                )
            )
        )


def measure_durable(url: str, n: int, seed: int, submitters: int) -> dict[str, Any]:
    """The stream through the processor into the store as fast as it goes (no projector)."""
    from commands import trading as tc
    from commands.context import build_processor
    from eventstore.store import EventStore
    from ledgerline import contexts
    from ledgerline.runtime import migrate_all

    migrate_all(url)
    with EventStore(url, pool_size=4, run_migrations=False) as store:
        processor = build_processor(store.recorder, contexts.command_contexts(time.time_ns))
        processor.start()
        try:
            _list_books(processor)
            steps = stream(n, seed + 1)
            # A few threads keep many commands in flight (as an API's event loops do); one
            # thread per in-flight command would fight the decider for the GIL.
            in_flight = max(1, 1024 // submitters)
            lanes: list[list[Any]] = [[] for _ in range(submitters)]
            for s in steps:  # an account's commands stay in order, on its submitter
                lanes[s.account_id % submitters].append(_durable_command(tc, s))

            def submit(lane: list[Any]) -> None:
                window: list[Any] = []
                for command in lane:
                    window.append(processor.submit(command))
                    if len(window) >= in_flight:
                        window.pop(0).result(120)
                for f in window:
                    f.result(120)

            threads = [threading.Thread(target=submit, args=(lane,)) for lane in lanes]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
            return {
                "durable_commands": n,
                "durable_orders_per_s": round(n / elapsed),
                "durable_submitters": submitters,
                "durable_in_flight": in_flight * submitters,
                "durable_commands_per_commit": round(n / max(1, processor.batches_committed), 1),
            }
        finally:
            processor.stop()


def measure_lag(url: str, seconds: float, rate: float, seed: int) -> dict[str, Any]:
    """Commit to the book read model, in-process, while orders arrive at ``rate`` per second."""
    from commands import trading as tc
    from ledgerline.runtime import build_runtime

    runtime = build_runtime(url, sweep_interval_s=None, checkpoint_interval_s=None)
    try:
        processor, projector = runtime.processor, runtime.projector
        assert projector is not None
        _list_books(processor)
        steps = stream(max(1, int(seconds * rate)), seed + 2)
        commands = [_durable_command(tc, s) for s in steps]
        commits: list[tuple[float, int]] = []
        lock = threading.Lock()
        watcher = _Watcher(lambda: projector.position)

        def stamp(f: Any) -> None:
            outcome = f.result()
            if outcome.position:
                with lock:
                    commits.append((time.perf_counter(), outcome.position))

        start = time.perf_counter()
        futures = []
        for k, command in enumerate(commands):
            due = start + k / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            future = processor.submit(command)
            future.add_done_callback(stamp)
            futures.append(future)
        for f in futures:
            f.result(120)
        projector.wait_for(runtime.store.recorder.head().position, 60)
        time.sleep(0.05)
        watcher.stop()
        lags = [
            max(0.0, (visible - at) * 1000)
            for at, position in commits
            if (visible := watcher.visible_at(position)) is not None
        ]
        return {
            "book_lag_offered_orders_per_s": rate,
            "book_lag_p50_ms": _pct(lags, 0.50),
            "book_lag_p99_ms": _pct(lags, 0.99),
            "book_lag_samples": len(lags),
        }
    finally:
        runtime.close()


def _durable_command(tc: Any, s: Step) -> Any:
    instrument = s.book + 1
    if s.kind == "cancel":
        return tc.cancel_command(
            tc.CancelOrder(
                instrument_id=instrument, order_id=s.order_id, account_id=s.account_id, key="b"
            )
        )
    price = None if s.price_ticks is None else f"{s.price_ticks // 100}.{s.price_ticks % 100:02d}"
    return tc.place_command(
        tc.PlaceOrder(
            instrument_id=instrument,
            id=s.order_id,
            account_id=s.account_id,
            side="buy" if s.is_buy else "sell",
            type="market" if s.kind == "market" else "limit",
            time_in_force="gtc" if s.kind == "limit" else "ioc",
            price=price,
            quantity=str(s.lots),
        )
    )


# ------------------------------------------------------------------ over HTTP


def _serve(url: str, workers: int) -> tuple[subprocess.Popen[str], str, str]:
    from ledgerline.bench_support import cli, start_serve

    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS"}}
    env["DATABASE_URL"] = url
    token = cli("keys", "create", "--role", "operator", env=env).strip()
    server, base = start_serve(env, workers)
    return server, base, token


async def _http(base: str, token: str, clients: int, seconds: float, batch: int) -> dict[str, Any]:
    import aiohttp

    rng = random.Random(11)
    counter = iter(range(50_000_000, 10**12))
    latencies: list[float] = []
    counts = {"orders": 0, "errors": 0}
    headers = {"Authorization": f"Bearer {token}"}

    def order() -> dict[str, Any]:
        is_buy = rng.random() < 0.5
        off = int(rng.expovariate(0.35)) - (rng.randint(1, 3) if rng.random() < 0.1 else 0)
        ticks = 10_000 - 1 - off if is_buy else 10_000 + 1 + off
        return {
            "id": next(counter),
            "instrument_id": 1,
            "account_id": rng.randint(1, 1000),
            "side": "buy" if is_buy else "sell",
            "price": f"{ticks // 100}.{ticks % 100:02d}",
            "quantity": str(rng.randint(1, 50)),
        }

    async with aiohttp.ClientSession(base, headers=headers) as session:
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if batch == 1:
                    async with session.post("/v1/orders", json=order()) as r:
                        await r.read()
                        ok = r.status in (200, 201, 409)
                    n = 1
                else:
                    async with session.post(
                        "/v1/order-batches", json={"orders": [order() for _ in range(batch)]}
                    ) as r:
                        await r.read()
                        ok = r.status in (200, 201)
                    n = batch
                latencies.append(time.perf_counter() - started)
                counts["orders" if ok else "errors"] += n if ok else 1

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {
        "orders_per_s": round(counts["orders"] / elapsed, 1),
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "errors": counts["errors"],
    }


def measure_http(url: str, seconds: float, clients: int, workers: int) -> dict[str, Any]:
    import httpx

    from ledgerline.bench_support import stop_serve

    server, base, token = _serve(url, workers)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.post(
                "/v1/instruments",
                json={
                    "id": 1,
                    "symbol": "HTTP",
                    "base_asset": "H",
                    "quote_asset": "USD",
                    "tick_size": "0.01",
                    "lot_size": "1",
                    "self_trade_prevention": "none",
                },
            )
            if r.status_code not in (200, 201):
                raise RuntimeError(f"could not list the instrument: {r.text}")
        single = asyncio.run(_http(base, token, clients, seconds, batch=1))
        batched = asyncio.run(_http(base, token, max(2, clients // 8), seconds, batch=200))
    finally:
        stop_serve(server)
    return {
        "http_orders_per_s": single["orders_per_s"],
        "http_p50_ms": single["p50_ms"],
        "http_p99_ms": single["p99_ms"],
        "http_errors": single["errors"],
        "http_clients": clients,
        "http_server_workers": workers,
        "batched_http_orders_per_s": batched["orders_per_s"],
        "batched_http_p99_ms": batched["p99_ms"],
        "batched_http_errors": batched["errors"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline.bench_append import fresh_database
    from ledgerline.cli_common import settings_from_args
    from ledgerline.database import database_url

    commands = args.events or 200_000
    result: dict[str, Any] = {"benchmark": "matching", **measure_engine(commands, seed=7)}
    with database_url(settings_from_args(args)) as admin_url:
        durable_url = fresh_database(admin_url, "bench_matching_durable")
        result.update(
            measure_durable(
                durable_url, min(commands, 20_000), seed=7, submitters=min(args.clients, 8)
            )
        )
        lag_url = fresh_database(admin_url, "bench_matching_lag")
        result.update(measure_lag(lag_url, min(args.seconds, 5.0), args.rate or 1_000.0, seed=7))
        http_url = fresh_database(admin_url, "bench_matching_http")
        # one process decides for a hot book: a second worker would first replay the other's
        # events on every batch, so the HTTP run uses one (the API itself is not the limit)
        result.update(measure_http(http_url, args.seconds, args.clients, workers=1))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["targets"] = {
        name: {
            "target": target,
            "measured": result[name],
            "pass": result[name] <= target if name.endswith("_ms") else result[name] >= target,
        }
        for name, target in TARGETS.items()
    }
    result["limits"] = LIMITS
    result["cpu_count"] = os.cpu_count()
    return result


LIMITS = {
    "engine_orders_per_s": "one Python thread: per command the book's rules, one frozen event "
    "object per fact (about 0.4 us each on these machines) and the book structures; the "
    "commonest order (a limit that cannot trade) is one event",
    "reference_orders_per_s": "the same data structures with no rules, no events, no sequence "
    "numbers, no order terms: the floor of pure Python",
    "engine_vs_reference": "events and rules the reference does not have: what remains after "
    "halving the events of a resting order and moving the order's own rules to where the "
    "command is built",
    "durable_orders_per_s": "the single decider thread (handler, encoding, hash chains) and "
    "PostgreSQL's commit, shared with the submitters and the projector on two cores",
    "book_lag_p99_ms": "the projector's batch (one transaction per batch of events, coalesced "
    "for 20 ms after a wake-up) and its share of the cores with the decider, in one process",
    "http_orders_per_s": "request parsing, auth and JSON in the API processes, then the same "
    "decider; the load generator shares the cores",
    "batched_http_orders_per_s": "validating every order of a batch before any is submitted, "
    "then the decider",
}
