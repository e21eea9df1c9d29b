"""Running the relay and Faust workers as real processes against a real (Tansu) broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from eventstore.store import EventStore
from replay.replay import replay, schema_digests


@dataclass
class Streaming:
    """One test's Kafka namespace (topic prefix, consumer group) and its processes."""

    db_url: str
    bootstrap: str
    tmp: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}.")
    group: str = field(default_factory=lambda: f"g{uuid.uuid4().hex[:8]}")
    partitions: int = 4
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    stopped: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return f"{self.prefix}ledger"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINE_")}
        env.update(
            DATABASE_URL=self.db_url,
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            LEDGERLINE_DATA_DIR=str(self.tmp / "data"),
            LEDGERLINE_KAFKA_TOPIC_PREFIX=self.prefix,
            LEDGERLINE_KAFKA_PARTITIONS=str(self.partitions),
            LEDGERLINE_KAFKA_SESSION_TIMEOUT_S="3",
            LEDGERLINE_WORKER_GROUP=self.group,
        )
        return env

    def start(self, command: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        n = sum(1 for p in self.procs if str(p.args[-1]) == command)  # type: ignore[index]
        log = (self.tmp / f"{command}-{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerline", command],
            env={**self.env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        self.stopped.append(proc)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def terminate(self, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> int:
        self.stopped.append(proc)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return int(proc.returncode)

    def close(self) -> None:
        for proc in self.procs:
            self.kill(proc)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc not in self.stopped and proc.poll() is not None:
                raise AssertionError(f"{proc.args} exited with {proc.returncode}\n{self.logs()}")

    def wait(self, check: Callable[[], Any], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            self.check_alive()
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.state()}\n{self.logs()}"
        )

    def state(self) -> str:
        """Where the store, the relay and every Kafka-fed projection stand (for a failure)."""
        try:
            with psycopg.connect(self.db_url, connect_timeout=5) as conn:
                head = conn.execute("SELECT max(notification_id) FROM ledgerline.events").fetchone()
                relay = conn.execute("SELECT * FROM ledgerline.relay_progress").fetchall()
                tracking = conn.execute(
                    "SELECT projection, source, position FROM readmodels.tracking"
                    " ORDER BY projection, source"
                ).fetchall()
        except psycopg.Error as exc:
            return f"--- state unavailable: {exc}"
        rows = "\n".join(f"  {p} {s} {n}" for p, s, n in tracking)
        return f"--- state\nstore head {head}\nrelay {relay}\ntracking\n{rows}"

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        command = str(proc.args[-1])  # type: ignore[index]
        n = sum(1 for p in self.procs[:index] if str(p.args[-1]) == command)  # type: ignore[index]
        return (self.tmp / f"{command}-{n}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )


def applied_position(db_url: str) -> int:
    """The global position every Kafka-fed read model is complete up to: the lowest Kafka
    tracking row of any projection (an ordered projection's ``kafka:ordered`` row included)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT projection, min(position) FROM readmodels.tracking"
            " WHERE source LIKE 'kafka:%' GROUP BY projection"
        ).fetchall()
    return min((int(r[1]) for r in rows), default=0)


def live_digests(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return schema_digests(conn)


def replayed_digests(store: EventStore, db_url: str) -> dict[str, str]:
    return replay(store.recorder, db_url).digests
