"""Every projection the system runs, in one list.

Definition
    A :class:`ProjectionSpec` names a projection (its tracking name and the argument of
    ``ledgerline projections rebuild``), the bounded contexts whose events it consumes (events
    whose topic starts with ``"<context>."``; in Kafka mode, the topics ``<prefix><context>``),
    the read-model tables it owns with their key columns (for replay digests and
    ``replay --check`` row diffs), and how to make it: ``create(schema)`` returns the object the
    runner and the Kafka workers call (``.apply(cur, events)`` inside their transaction), and
    ``rebuilder(cur, schema)`` an optional bulk rebuilder for a fresh schema.

    The in-process runner, the Kafka relay and workers, ``projections status|rebuild`` and
    ``replay`` all iterate over :data:`PROJECTIONS`: a new bounded context adds one entry here
    and gets every one of them.

Guarantees
    * Projection names and table names are unique (checked at import).
    * :func:`rebuild_into` feeds every projection from ONE pass over the log, in position
      order, with the same code the live runner applies; the default rebuilder is exactly
      ``apply`` on a fresh schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from eventstore.model import StoredEvent
from eventstore.prefetch import prefetched
from eventstore.recorder import HashChainRecorder
from projections import aml, ledger, reconciliation, settlement, trading
from projections.runner import Projection


class Rebuilder(Protocol):
    """Builds a projection's tables in a fresh schema from the log, batch by batch."""

    def feed(self, events: Sequence[StoredEvent]) -> None: ...

    def finish(self, *, indexes: bool = True) -> None:
        """Write what is held; ``indexes``: build the secondary indexes deferred during the
        load (False when the schema is only digested and then dropped, as replay's is)."""


@dataclass(frozen=True)
class ProjectionSpec:
    name: str
    contexts: tuple[str, ...]
    tables: Mapping[str, tuple[str, ...]]
    create: Callable[[str], Projection]
    rebuilder: Callable[[psycopg.Cursor[Any], str], Rebuilder] | None = None

    def wants(self, topic: str) -> bool:
        return topic.split(".", 1)[0] in self.contexts


class _ApplyRebuilder:
    """The default: the live projection's own ``apply``, into the fresh schema."""

    def __init__(self, projection: Projection, cur: psycopg.Cursor[Any]) -> None:
        self._projection = projection
        self._cur = cur

    def feed(self, events: Sequence[StoredEvent]) -> None:
        self._projection.apply(self._cur, events)

    def finish(self, *, indexes: bool = True) -> None:
        return None


def open_rebuilder(spec: ProjectionSpec, cur: psycopg.Cursor[Any], schema: str) -> Rebuilder:
    if spec.rebuilder is not None:
        return spec.rebuilder(cur, schema)
    return _ApplyRebuilder(spec.create(schema), cur)


def rebuild_into(
    recorder: HashChainRecorder,
    cur: psycopg.Cursor[Any],
    schema: str,
    upto: int,
    specs: Iterable[ProjectionSpec] | None = None,
    batch_size: int = 50_000,
    keep: Mapping[str, Callable[[StoredEvent], bool]] | None = None,
    progress: Callable[[int], None] | None = None,
    indexes: bool = True,
) -> int:
    """Rebuild ``specs`` (all by default) into ``schema`` up to ``upto``; return events read.
    ``progress(n)`` hears of every batch of ``n`` events read. Without ``indexes``, the
    secondary indexes a bulk rebuilder deferred are not built (a schema only digested).

    ``keep`` (projection name -> predicate) limits a projection to the events it passes: the
    exact set a live projection has applied (see ``projections.manage.Applied``).
    """
    chosen = list(PROJECTIONS.values() if specs is None else specs)
    rebuilders = [(spec, open_rebuilder(spec, cur, schema)) for spec in chosen]
    events = 0
    context_of: dict[str, str] = {}  # event topic -> its context (a handful of topics)
    for batch in prefetched(recorder.iter_all(batch_size, upto_position=upto)):
        present = set()
        for topic in {e.topic for e in batch}:
            context = context_of.get(topic)
            if context is None:
                context = context_of[topic] = topic.split(".", 1)[0]
            present.add(context)
        for spec, rebuilder in rebuilders:
            wanted = (keep or {}).get(spec.name)
            if present.isdisjoint(spec.contexts):
                continue
            if wanted is None and present.issubset(spec.contexts):
                mine: Sequence[StoredEvent] = batch  # all of it: no copy
            else:
                mine = [
                    e
                    for e in batch
                    if context_of[e.topic] in spec.contexts and (wanted is None or wanted(e))
                ]
            if mine:
                rebuilder.feed(mine)
        events += len(batch)
        if progress is not None:
            progress(len(batch))
    for _, rebuilder in rebuilders:
        rebuilder.finish(indexes=indexes)
    return events


PROJECTIONS: dict[str, ProjectionSpec] = {
    spec.name: spec
    for spec in (
        ProjectionSpec(
            name=ledger.LedgerProjection.name,
            contexts=("ledger",),
            tables=ledger.TABLE_KEYS,
            create=ledger.LedgerProjection,
            rebuilder=ledger.Rebuild,
        ),
        ProjectionSpec(
            name=aml.NAME,
            contexts=("aml", "ledger"),
            tables=aml.TABLE_KEYS,
            create=aml.AmlProjection,
            rebuilder=aml.Rebuild,
        ),
        ProjectionSpec(
            name=settlement.SettlementProjection.name,
            contexts=("settlement",),
            tables=settlement.TABLE_KEYS,
            create=settlement.SettlementProjection,
        ),
        ProjectionSpec(
            name=trading.TradingProjection.name,
            contexts=("trading",),
            tables=trading.TABLE_KEYS,
            create=trading.TradingProjection,
        ),
        ProjectionSpec(
            name=reconciliation.NAME,
            contexts=("reconciliation",),
            tables=reconciliation.TABLE_KEYS,
            create=reconciliation.ReconciliationProjection,
        ),
    )
}


def all_tables() -> dict[str, tuple[str, ...]]:
    """Every read-model table of every projection, with its key columns."""
    return {table: keys for spec in PROJECTIONS.values() for table, keys in spec.tables.items()}


def contexts() -> tuple[str, ...]:
    """Every bounded context some projection consumes (the relay publishes these topics)."""
    return tuple(sorted({c for spec in PROJECTIONS.values() for c in spec.contexts}))


def _check_unique() -> None:
    seen: dict[str, str] = {}
    for spec in PROJECTIONS.values():
        for table in spec.tables:
            if table in seen:
                raise ValueError(f"table {table} belongs to {seen[table]} and {spec.name}")
            seen[table] = spec.name


_check_unique()
