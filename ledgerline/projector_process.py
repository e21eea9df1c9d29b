"""``serve``'s projector: the in-process projection runner in a process of its own.

Definition
    :class:`ProjectorProcess` starts one child process that runs the
    :class:`~projections.runner.ProjectionRunner` over every registered projection, with the
    runtime's database login. The HTTP processes keep a follower runner each (read-your-writes
    waits, readiness, the duties' election) and never apply an event themselves.

Why a process
    Applying events is CPU work in Python. As a thread of an HTTP process it took the GIL
    from the decider and the request handlers; on its own it runs beside them. On two cores
    ``bench api`` (one HTTP worker, 32 clients) went from about 1,550 to about 2,000 single
    transfers a second.

Guarantees
    * The child applies exactly as the thread did: same runner, same transactions, elected
      by the same advisory lock (a second ``serve`` on the same database waits as a standby).
    * The child never outlives ``serve``: it holds one end of a pipe and exits when it
      closes, on a clean stop or a SIGKILL of the parent alike.
    * A child that dies is started again, after a delay that doubles up to 30 s; a runner
      that stopped on an event it cannot apply stays stopped (its failure is recorded and
      announced, and readiness reports it), as the thread did.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

RESTART_FIRST_DELAY_S = 1.0
RESTART_MAX_DELAY_S = 30.0


def run_projector(app_url: str, parent: Connection) -> None:
    """The child's body: apply until the parent's end of the pipe closes."""
    from eventstore.gc_tuning import tune_gc
    from eventstore.store import EventStore
    from eventstore.thread_names import PROJECTOR, name_native_thread
    from ledgerline.logs import ENV_LOG_FORMAT, ENV_LOG_LEVEL, configure
    from projections.registry import PROJECTIONS
    from projections.runner import ProjectionRunner
    from readmodels.schema import SCHEMA

    configure(os.environ.get(ENV_LOG_LEVEL, "info"), os.environ.get(ENV_LOG_FORMAT))
    # Named before any thread starts: threads inherit the name (top -H shows the projector).
    name_native_thread(PROJECTOR)
    store = EventStore(None, app_url=app_url, pool_size=4, run_migrations=False)
    runner = ProjectionRunner(
        store.recorder, [spec.create(SCHEMA) for spec in PROJECTIONS.values()]
    ).start()
    tune_gc()
    try:
        while True:
            parent.recv()  # nothing is ever sent: EOFError when the parent's end closes
    except (EOFError, OSError):
        pass
    finally:
        runner.stop()
        store.close()


class ProjectorProcess:
    """Starts the projector's process, restarts it should it die, stops it with ``serve``."""

    def __init__(self, app_url: str) -> None:
        self._app_url = app_url
        self._ctx: Any = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._pipe: Connection | None = None
        self._stopping = threading.Event()
        self._monitor = threading.Thread(
            target=self._watch, name="ledgerline-projector-watch", daemon=True
        )
        self.restarts = 0

    def start(self) -> ProjectorProcess:
        self._spawn()
        self._monitor.start()
        return self

    def _spawn(self) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=run_projector,
            args=(self._app_url, reader),
            name="ledgerline-projector",
            daemon=True,
        )
        process.start()
        reader.close()  # the child holds the only reading end; this process the writing one
        self._process, self._pipe = process, writer

    def _watch(self) -> None:
        delay_s = RESTART_FIRST_DELAY_S
        while not self._stopping.is_set():
            self._process.join()
            if self._stopping.is_set():
                return
            log.error(
                "the projector process exited with code %s; starting it again in %.0f s",
                self._process.exitcode,
                delay_s,
            )
            if self._stopping.wait(delay_s):
                return
            self.restarts += 1
            self._spawn()
            delay_s = min(delay_s * 2, RESTART_MAX_DELAY_S)

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping.set()
        if self._pipe is not None:
            self._pipe.close()  # the child's recv() ends: it stops its runner and exits
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
