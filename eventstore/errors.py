"""Errors raised by the event store. None of them is a raw psycopg exception."""

from __future__ import annotations


class EventStoreError(Exception):
    """Root of every event-store error."""


class DatabaseUnavailable(EventStoreError):
    """The database cannot be reached or refused the connection."""


class SchemaVersionError(EventStoreError):
    """The database schema is newer than this code, or a migration failed."""


class AppendFailed(EventStoreError):
    """A batch could not be written; nothing of it was committed."""


class ConfigurationRefused(EventStoreError):
    """The store was configured in a way that would break its guarantees."""


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database is unreachable or not answering:
    a restart, a failover, the network, a statement timeout, a full disk. Such a failure
    passes and is retried; any other is a bug to stop at."""
    import psycopg
    from eventsourcing.persistence import InterfaceError, OperationalError
    from psycopg_pool import PoolTimeout

    outage = (DatabaseUnavailable, psycopg.OperationalError, OperationalError, InterfaceError)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (*outage, PoolTimeout)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
