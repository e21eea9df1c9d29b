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
