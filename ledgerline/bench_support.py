"""What the benches that drive a real ``ledgerline serve`` share.

Starting the server on a store and waiting until it answers, running a ``ledgerline``
command beside it, generating an import file of any size on disk, and sampling the CPU and
memory of a process tree (the server and its workers, or PostgreSQL and its backends).
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from eventstore.thread_names import DECIDER, PROJECTOR
from ledgerline.errors import LedgerlineError

# The generated import file's accounts: ids from IMPORT_ACCOUNT_BASE up, on IMPORT_LEDGER.
IMPORT_ACCOUNT_BASE = 5_000_000
IMPORT_LEDGER = 2
IMPORT_TRANSFER_BASE = 5 * 10**13


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str], timeout: float | None = 300) -> str:
    """``ledgerline ARGS`` in a process of its own; its standard output."""
    result = subprocess.run(
        [sys.executable, "-m", "ledgerline", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise LedgerlineError(f"ledgerline {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def start_serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[str], str]:
    """``ledgerline serve --workers N`` on a free port, once it answers ``/readyz``; the
    process and its base URL.

    The server's log goes to an unnamed temporary file, read back only if it fails to start.
    Never to a pipe: nobody reads a pipe while the bench runs, and a server logging each
    request (``LEDGERLINE_LOG_LEVEL=info`` in the caller's environment) would fill it and
    stop answering, hanging the bench."""
    port = free_port()
    # Closed on the way out; the server keeps its own handle, its writes go on to nobody.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
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
            stderr=log,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                log.seek(0)
                raise LedgerlineError(f"serve exited: {log.read()[-4000:].strip()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return server, url
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                stop_serve(server)
                raise LedgerlineError("serve did not become ready within 60 s")
            time.sleep(0.2)


def stop_serve(server: subprocess.Popen[str]) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


@contextmanager
def fresh_store(prefix: str = "ledgerline-bench-") -> Iterator[tuple[Path, dict[str, str]]]:
    """A temporary data directory for a fresh embedded store, and the environment that points
    ``ledgerline`` commands at it (never at a ``DATABASE_URL`` or Kafka of the caller's); the
    embedded server is stopped and the directory removed on the way out."""
    from ledgerline.database import stop_embedded

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"}
        }
        env["LEDGERLINE_DATA_DIR"] = str(data_dir)
        try:
            yield data_dir, env
        finally:
            stop_embedded(data_dir)  # before the temporary directory is removed


@contextmanager
def serving(env: dict[str, str], workers: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A started server (see ``start_serve``), stopped on the way out."""
    server, url = start_serve(env, workers)
    try:
        yield server, url
    finally:
        stop_serve(server)


def _thread_name(pid: int, tid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_us_by_part(
    before: dict[str, float], after: dict[str, float], units: float
) -> dict[str, float]:
    """Microseconds of CPU a unit (request, transfer) for each part between two readings."""
    return {k: round((after[k] - before[k]) / max(units, 1) * 1e6, 1) for k in after}


class Tree:
    """CPU and memory of a process and its children (the server and its HTTP workers, or
    PostgreSQL's postmaster and its backends), sampled between two points in time. Every
    sample updates ``peak_rss_mb``: the largest sum of the tree's resident sets seen."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peak_rss_mb = 0.0

    def processes(self) -> list[Any]:
        import psutil

        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _sample(self) -> tuple[float, float]:
        """The tree's CPU seconds so far and its resident set now (MiB)."""
        import psutil

        total = 0.0
        rss = 0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
                rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 2**20)
        return total, rss / 2**20

    def cpu_s(self) -> float:
        return self._sample()[0]

    def cpu_s_by_part(self) -> dict[str, float]:
        """CPU seconds so far of a server's parts, told apart by their kernel thread names
        (:mod:`eventstore.thread_names`): ``http`` (each process's main thread: uvicorn's
        event loop), ``decider`` (command processors' deciders), ``projector`` (the
        projector process, all its threads) and ``other`` (every other thread)."""
        import psutil

        parts = dict.fromkeys(("http", "decider", "projector", "other"), 0.0)
        for p in self.processes():
            try:
                threads = p.threads()
            except psutil.NoSuchProcess:
                continue
            names = {t.id: _thread_name(p.pid, t.id) for t in threads}
            whole = "projector" if names.get(p.pid) == PROJECTOR else None
            for t in threads:
                part = whole or (
                    "decider" if names[t.id] == DECIDER else "http" if t.id == p.pid else "other"
                )
                parts[part] += t.user_time + t.system_time
        return parts

    def rss_mb(self) -> float:
        return self._sample()[1]


def import_file(path: Path, transfers: int, accounts: int = 1000) -> None:
    """Imported history on ``IMPORT_LEDGER``: ``accounts`` accounts (ids from
    ``IMPORT_ACCOUNT_BASE``), then ``transfers`` transfers of 1.00 between them at strictly
    increasing times over the past days. Written line by line: any size, in little memory."""
    rng = random.Random(13)
    start = time.time_ns() - 10 * 86_400 * 10**9
    with path.open("w") as fh:
        for n in range(accounts):
            fh.write(
                json.dumps(
                    {
                        "id": IMPORT_ACCOUNT_BASE + n,
                        "ledger": IMPORT_LEDGER,
                        "currency": "USD",
                        "code": 1,
                        "timestamp": start + n,
                    }
                )
                + "\n"
            )
        at = start + accounts + 1_000
        for n in range(transfers):
            at += 1_000
            a = rng.randrange(accounts)
            b = rng.randrange(accounts - 1)
            fh.write(
                json.dumps(
                    {
                        "id": IMPORT_TRANSFER_BASE + n,
                        "debit_account_id": IMPORT_ACCOUNT_BASE + a,
                        "credit_account_id": IMPORT_ACCOUNT_BASE + (b + 1 if b >= a else b),
                        "amount": "1.00",
                        "ledger": IMPORT_LEDGER,
                        "code": 1,
                        "timestamp": at,
                    }
                )
                + "\n"
            )


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def embedded_url(data_dir: Path) -> str:
    """The owner's URL of the embedded server under ``data_dir`` (started if it is not up)."""
    from ledgerline.database import embedded_server

    with embedded_server(data_dir) as url:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
        return url
