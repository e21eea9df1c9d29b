"""A real Ledgerline server over loopback HTTP, on the test's own database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.keys import Role, create_key
from eventstore.store import connect_owner
from ledgerline.runtime import Runtime, build_runtime
from replay.log import origin
from replay.signing import generate_signing_key, load_signing_key
from tests.http_server import uvicorn_in_thread


class FakeClock:
    """Injected clock: real time plus an offset the test can move forward."""

    def __init__(self) -> None:
        self.offset_ns = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset_ns

    def advance(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1_000_000_000)


@dataclass
class Server:
    url: str
    runtime: Runtime
    clock: FakeClock
    tokens: dict[str, str]

    def client(self, role: str | None = "operator") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(db_url, tmp_path) as s:
        yield s


@contextmanager
def running_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server on ``db_url`` with a signing key under ``tmp_path`` and a key per role."""
    clock = FakeClock()
    generate_signing_key(tmp_path / "checkpoint.key", origin())
    runtime = build_runtime(
        db_url,
        clock=clock,
        sweep_interval_s=None,
        signing_key=load_signing_key(tmp_path / "checkpoint.key"),
        checkpoint_interval_s=None,
    )
    runtime.app.state.services.extra["read_wait_s"] = 0.5
    with connect_owner(db_url) as conn:
        tokens = {role.value: create_key(conn, role).token for role in Role}
    try:
        with uvicorn_in_thread(runtime.app) as port:
            yield Server(f"http://127.0.0.1:{port}", runtime, clock, tokens)
    finally:
        runtime.close()
