"""Real processes under load, killed at random: the pieces the fault tests share.

:class:`Cluster` runs ``ledgerline serve`` (one or more HTTP workers), and in Kafka mode the
relay and the Faust workers, as real processes on the test's database; :class:`Clients` are
threads that post transfers over HTTP and retry every unanswered one with the same id until
it is answered, keeping their own sums of what was acknowledged.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from api.keys import Role, create_key
from eventstore.store import connect_owner
from ledgerline.runtime import migrate_all
from projections.manage import complete_position

ACCOUNTS = 6


@dataclass
class Cluster:
    db_url: str
    tmp: Path
    port: int
    bootstrap: str | None = None
    workers: int = 1
    prefix: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:8]}.")
    group: str = field(default_factory=lambda: f"g{uuid.uuid4().hex[:8]}")
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    kills: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LEDGERLINE_", "DATABASE_", "KAFKA_"))
        }
        env.update(
            DATABASE_URL=self.db_url,
            LEDGERLINE_DATA_DIR=str(self.tmp / "data"),
            LEDGERLINE_PORT=str(self.port),
        )
        if self.bootstrap:
            env.update(
                KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
                LEDGERLINE_KAFKA_TOPIC_PREFIX=self.prefix,
                LEDGERLINE_KAFKA_PARTITIONS="4",
                LEDGERLINE_KAFKA_SESSION_TIMEOUT_S="3",
                LEDGERLINE_WORKER_GROUP=self.group,
            )
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self) -> str:
        migrate_all(self.db_url)
        with connect_owner(self.db_url) as conn:
            return create_key(conn, Role.OPERATOR).token

    def start(self, name: str) -> None:
        args = {
            "serve": ["serve", "--workers", str(self.workers)],
            "relay": ["relay"],
            "worker": ["worker"],
        }[name]
        n = self.starts.get(name, 0)
        self.starts[name] = n + 1
        log = (self.tmp / f"{name}-{n}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ledgerline", *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if name == "serve":
            self.wait(self._serving, 60, "serve to answer")

    def _serving(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
        self.kills[name] = self.kills.get(name, 0) + 1

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)

    def wait(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )

    def caught_up(self) -> bool:
        with psycopg.connect(self.db_url) as conn, conn.cursor() as cur:
            head = cur.execute("SELECT position FROM ledgerline.chain_head").fetchone()
            return head is not None and complete_position(cur) >= int(head[0])


@dataclass
class Acked:
    debit: int
    credit: int
    amount_minor: int


class Clients:
    """Threads posting transfers; each unanswered one is retried with the same id."""

    def __init__(self, url: str, token: str, rng: random.Random, threads: int = 6) -> None:
        self.url = url
        self.token = token
        self.rng = rng
        self.threads = threads
        self.acked: dict[int, Acked] = {}
        self.retries = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._next = 1_000_000

    def open_accounts(self) -> None:
        with httpx.Client(base_url=self.url, headers=self._headers(), timeout=10) as c:
            for account_id in range(1, ACCOUNTS + 1):
                body = {"id": account_id, "ledger": 1, "currency": "USD", "code": 1}
                self._until_answered(c, "/v1/accounts", body)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _until_answered(self, c: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
        while True:
            try:
                r = c.post(path, json=body)
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code in (200, 201):
                return r
            if r is not None and r.status_code not in (502, 503, 504, 500):
                raise AssertionError(f"{path} {body}: {r.status_code} {r.text}")
            with self.lock:
                self.retries += 1
            time.sleep(0.05)

    def start(self) -> None:
        for n in range(self.threads):
            seed = self.rng.randrange(2**32)
            t = threading.Thread(target=self._run, args=(seed,), daemon=True, name=f"client-{n}")
            t.start()
            self._workers.append(t)

    def _take_id(self) -> int:
        with self.lock:
            self._next += 1
            return self._next

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, headers=self._headers(), timeout=10) as c:
            while not self.stop.is_set():
                transfer_id = self._take_id()
                debit, credit = rng.sample(range(1, ACCOUNTS + 1), 2)
                minor = rng.randint(1, 100_000)
                body = {
                    "id": transfer_id,
                    "debit_account_id": debit,
                    "credit_account_id": credit,
                    "amount": f"{minor // 100}.{minor % 100:02d}",
                    "ledger": 1,
                    "code": 1,
                }
                self._until_answered(c, "/v1/transfers", body)
                with self.lock:
                    self.acked[transfer_id] = Acked(debit, credit, minor)

    def finish(self) -> None:
        self.stop.set()
        for t in self._workers:
            t.join(120)
            assert not t.is_alive(), "a client never got its transfer answered"


def check_exactly_once(db_url: str, clients: Clients) -> dict[str, int]:
    """Every acknowledged transfer exists once, balances are the clients' own sums."""
    with psycopg.connect(db_url) as conn:
        commands = conn.execute(
            "SELECT count(*) FROM ledgerline.commands WHERE command_id LIKE 'transfer:%'"
        ).fetchone()
        created = conn.execute(
            "SELECT count(*) FROM ledgerline.events WHERE topic = 'ledger.TransferCreated.v1'"
        ).fetchone()
        rows = conn.execute("SELECT transfer_id, amount FROM readmodels.transfers").fetchall()
        balances = {
            int(r[0]): (int(r[1]), int(r[2]))
            for r in conn.execute(
                "SELECT account_id, debits_posted, credits_posted FROM readmodels.accounts"
            ).fetchall()
        }
    assert commands is not None and created is not None
    acked = clients.acked
    in_model = {int(r[0]): int(r[1]) for r in rows}
    lost = [t for t in acked if t not in in_model]
    doubled = int(created[0]) - len(in_model)
    assert not lost, f"acknowledged transfers missing: {lost[:10]}"
    assert doubled == 0, f"{doubled} transfers were created twice"
    assert set(in_model) == set(acked), "transfers nobody was told about were created"
    assert int(commands[0]) == len(acked)
    assert all(in_model[t] == a.amount_minor for t, a in acked.items())
    expected = {a: [0, 0] for a in range(1, ACCOUNTS + 1)}
    for a in acked.values():
        expected[a.debit][0] += a.amount_minor
        expected[a.credit][1] += a.amount_minor
    assert {a: tuple(v) for a, v in expected.items()} == balances
    return {"acknowledged": len(acked), "lost": len(lost), "duplicated": doubled}


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledgerline", *args],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
