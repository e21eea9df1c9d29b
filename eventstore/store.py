"""Opening the event store: connection pools, roles, migrations.

The runtime pool connects with the URL's credentials and then drops to the ``ledgerline_app``
role (``SET ROLE``), which holds no UPDATE, DELETE or TRUNCATE grant on the log. Migrations
run on a separate short-lived connection with the URL's own role.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import Connection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from eventstore.errors import DatabaseUnavailable
from eventstore.recorder import HashChainRecorder
from eventstore.schema import APP_ROLE, DEFAULT_SCHEMA, migrate

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


class AppRoleDatastore(PostgresDatastore):
    """``eventsourcing``'s datastore, whose connections run as the restricted app role."""

    def __init__(self, url: str, *, schema: str, pool_size: int, role: str | None) -> None:
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
    """The composition of datastore, recorder and schema for one database."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        pool_size: int = 4,
        clock: Callable[[], int] = time.time_ns,
        run_migrations: bool = True,
        app_role: bool = True,
        maintain_tiles: bool = True,
    ) -> None:
        self.url = url
        self.schema = schema
        if run_migrations:
            with connect_owner(url) as conn:
                migrate(conn, schema)
        self.datastore = AppRoleDatastore(
            url, schema=schema, pool_size=pool_size, role=APP_ROLE if app_role else None
        )
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
