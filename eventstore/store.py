"""Opening the event store: connection pools, roles, migrations.

Two credentials, never mixed:

* the **owner** URL (the schema owner; on the embedded server, its superuser) runs migrations
  and administrative work on short-lived connections (:func:`connect_owner`);
* the **runtime** URL logs in as a role of its own that owns nothing, is no member of the
  owner, and holds only the app role's grants: SELECT and INSERT on the log, no UPDATE,
  DELETE or TRUNCATE. There is no ``SET ROLE`` to undo: ``RESET ROLE`` leaves it where it is.

The runtime URL is given (``app_url``, from ``LEDGERLINE_APP_DATABASE_URL``) or derived from
the owner URL: :func:`runtime_url` reads the runtime login's secret, which ``migrate`` made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from eventstore.errors import DatabaseUnavailable
from eventstore.recorder import HashChainRecorder
from eventstore.schema import DEFAULT_SCHEMA, ensure_runtime_login, migrate

_DATASTORE_KEYS = ("dbname", "host", "port", "user", "password")


def connect_owner(url: str, *, connect_timeout_s: int = 10) -> Connection[tuple[Any, ...]]:
    """A plain autocommit connection with the URL's own role (for migrations and admin)."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(_one_line(f"cannot connect to the database: {exc}")) from None
    except Exception as exc:  # malformed URLs surface as ProgrammingError or ValueError
        raise DatabaseUnavailable(_one_line(f"invalid database URL: {exc}")) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def runtime_url(owner_url: str, *, login: str | None = None, password: str | None = None) -> str:
    """The runtime's URL: the owner URL's server and database with the runtime login.

    Creates or updates the login (see :func:`eventstore.schema.ensure_runtime_login`).
    """
    with connect_owner(owner_url) as conn:
        name, secret = ensure_runtime_login(conn, login=login, password=password)
    return make_conninfo(owner_url, user=name, password=secret)


class AppRoleDatastore(PostgresDatastore):
    """``eventsourcing``'s datastore over the runtime URL (``role``: an extra ``SET ROLE``,
    for tests that want to show what such a session could undo)."""

    def __init__(self, url: str, *, schema: str, pool_size: int, role: str | None = None) -> None:
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(_one_line(f"invalid database URL: {exc}")) from None
        self._role = role
        super().__init__(
            dbname=str(params.get("dbname") or "postgres"),
            host=str(params.get("host") or "localhost"),
            port=str(params.get("port") or "5432"),
            user=str(params.get("user") or "postgres"),
            password=str(params.get("password") or ""),
            pool_size=pool_size,
            max_overflow=pool_size,
            schema=schema,
            originator_id_type="text",
            connect_timeout=10.0,
        )
        extra = {k: v for k, v in params.items() if k not in _DATASTORE_KEYS}
        if extra and isinstance(self.pool.kwargs, dict):
            self.pool.kwargs.update(extra)

    def after_connect_func(self) -> Callable[[Connection[Any]], None]:
        base = super().after_connect_func()
        role = getattr(self, "_role", None)

        def after_connect(conn: Connection[DictRow]) -> None:
            base(conn)
            if role:
                conn.execute(SQL("SET ROLE {}").format(Identifier(role)))

        return after_connect


class EventStore:
    """The composition of datastore, recorder and schema for one database.

    ``url`` is the owner URL (migrations run with it when ``run_migrations``); the pool uses
    ``app_url`` if given, else the runtime URL derived from the owner URL. Give ``url=None``
    with an ``app_url`` for a process that holds no owner credential at all.
    """

    def __init__(
        self,
        url: str | None,
        *,
        app_url: str | None = None,
        schema: str = DEFAULT_SCHEMA,
        pool_size: int = 4,
        clock: Callable[[], int] = time.time_ns,
        run_migrations: bool = True,
        maintain_tiles: bool = True,
    ) -> None:
        self.schema = schema
        if run_migrations:
            if url is None:
                raise DatabaseUnavailable("migrations need the owner's database URL")
            with connect_owner(url) as conn:
                migrate(conn, schema)
        if app_url is None:
            if url is None:
                raise DatabaseUnavailable("no database URL for the runtime")
            app_url = runtime_url(url)
        self.url = url
        self.app_url = app_url
        self.datastore = AppRoleDatastore(app_url, schema=schema, pool_size=pool_size)
        try:
            # Open the pool now, once: concurrent first opens race inside psycopg_pool, and a
            # bad URL or an unreachable server should fail here, not on the first command.
            self.datastore.pool.open(wait=True, timeout=10.0)
            self.recorder = HashChainRecorder(
                self.datastore, clock=clock, maintain_tiles=maintain_tiles
            )
        except psycopg.Error as exc:
            self.datastore.close()
            raise DatabaseUnavailable(_one_line(f"cannot connect to the database: {exc}")) from None
        except Exception:
            self.datastore.close()
            raise

    def close(self) -> None:
        self.datastore.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
