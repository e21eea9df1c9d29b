"""Deterministic replay: re-verify the whole log and rebuild every read model from it.

Definition
    :func:`replay` streams the events (all of them, or up to a position or a time) in
    batches, checks every chain link (``eventstore.verify.ChainVerifier``), recomputes the
    RFC 9162 root and compares it with the stored checkpoint at the same size, and applies
    the same projection code as the live runner into a fresh scratch schema. It then takes a
    digest of every read-model table.

    Three processes share the work: a spawned one checks the log (``replay.log_check``), a
    second spawned one and the caller's each rebuild half of the projections and digest their
    own tables once committed (``replay.rebuild``). The scratch schema is loaded without the
    secondary indexes of the big tables unless it is kept (``keep_schema``, for reports).

Guarantees
    * The digest of a table is SHA-256 over its rows' PostgreSQL text form in primary-key
      order: the same events always give byte-identical digests.
    * ``check=True`` compares each rebuilt table with the live one (at the live tracking
      position) and lists the rows that differ: the reconciliation report.
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg

from eventstore.gc_tuning import tune_gc
from eventstore.recorder import HashChainRecorder
from eventstore.schema import migrate
from eventstore.store import connect_owner
from eventstore.verify import ChainBreak
from projections.manage import Applied, applied
from projections.registry import PROJECTIONS
from readmodels.schema import SCHEMA as LIVE_SCHEMA
from readmodels.schema import all_migrations
from replay.log import checkpoint_at_or_below
from replay.log_check import REPLAY_BATCH, LogCheck, verify_log
from replay.rebuild import TABLES, rebuild_and_digest, rebuild_part, table_digest

__all__ = [
    "REPLAY_BATCH",
    "TABLES",
    "LogCheck",
    "ReplayReport",
    "TableDiff",
    "diff_tables",
    "position_as_of",
    "replay",
    "schema_digests",
    "table_digest",
    "verify_log",
]


@dataclass
class TableDiff:
    table: str
    only_live: list[str] = field(default_factory=list)
    only_replayed: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)
    total: int | None = None  # every difference, when the lists keep only the first ones

    @property
    def count(self) -> int:
        if self.total is not None:
            return self.total
        return len(self.only_live) + len(self.only_replayed) + len(self.different)


@dataclass
class ReplayReport:
    upto_position: int
    events: int
    chain_break: ChainBreak | None
    merkle_root: bytes
    checkpoint_size: int | None
    checkpoint_matches: bool | None
    digests: dict[str, str]
    live_digests: dict[str, str] | None = None
    differences: list[TableDiff] = field(default_factory=list)
    schema: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.chain_break is None
            and self.checkpoint_matches is not False
            and not any(d.count for d in self.differences)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "upto_position": self.upto_position,
            "events": self.events,
            "chain_break": str(self.chain_break) if self.chain_break else None,
            "merkle_root": self.merkle_root.hex(),
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_matches": self.checkpoint_matches,
            "digests": self.digests,
            "live_digests": self.live_digests,
            "differences": [
                {
                    "table": d.table,
                    "only_live": d.only_live[:20],
                    "only_replayed": d.only_replayed[:20],
                    "different": d.different[:20],
                    "count": d.count,
                }
                for d in self.differences
                if d.count
            ],
        }


def position_as_of(recorder: HashChainRecorder, as_of_ns: int) -> int:
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as conn:
        row = conn.execute(
            f'SELECT coalesce(max(notification_id), 0) AS p FROM "{schema}".events'
            " WHERE recorded_at_ns <= %s",
            (as_of_ns,),
        ).fetchone()
    return int(row["p"]) if row else 0


def _row_text(row: Sequence[Any]) -> str:
    return json.dumps(
        [int(v) if isinstance(v, Decimal) else v for v in row], separators=(",", ":"), default=str
    )


def _key_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, Decimal) else str(value)


def _key_value(value: Any) -> Any:
    return int(value) if isinstance(value, Decimal) else value


_TEXT_TYPES = {25, 1043}  # text, varchar: ordered byte-wise ("C"), as Python orders str


def _keyed_rows(
    conn: psycopg.Connection[Any], schema: str, table: str, batch: int = 10_000
) -> Iterator[tuple[tuple[Any, ...], str, str]]:
    """(sort key, printable key, canonical row text) of every row, in primary-key order,
    streamed through a server-side cursor."""
    keys = TABLES[table]
    with conn.cursor() as probe:
        probe.execute(f'SELECT {", ".join(keys)} FROM "{schema}".{table} LIMIT 0')
        text_keys = {d.name for d in probe.description or () if d.type_code in _TEXT_TYPES}
    order = ", ".join(f'{k} COLLATE "C"' if k in text_keys else k for k in keys)
    with conn.transaction(), conn.cursor(name=f"rows_{table}") as cur:
        cur.itersize = batch
        cur.execute(f'SELECT * FROM "{schema}".{table} ORDER BY {order}')
        names = [d.name for d in cur.description or ()]
        key_index = [names.index(k) for k in keys]
        for row in cur:
            key = tuple(_key_value(row[i]) for i in key_index)
            yield key, "/".join(_key_text(row[i]) for i in key_index), _row_text(row)


def table_rows(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    """Primary key -> canonical row text, for every row of ``schema.table`` (small tables)."""
    return {key: text for _, key, text in _keyed_rows(conn, schema, table)}


def diff_tables(url: str, replayed: str, live: str, table: str, *, keep: int = 1000) -> TableDiff:
    """The rows that differ between two copies of ``table``, by a merge of both in key order:
    memory stays bounded (at most ``keep`` keys named per kind; every difference counted)."""
    diff = TableDiff(table)
    counted = {"only_live": 0, "only_replayed": 0, "different": 0}

    def note(kind: str, key: str) -> None:
        counted[kind] += 1
        names: list[str] = getattr(diff, kind)
        if len(names) < keep:
            names.append(key)

    with connect_owner(url) as c1, connect_owner(url) as c2:
        a = _keyed_rows(c1, live, table)
        b = _keyed_rows(c2, replayed, table)
        x, y = next(a, None), next(b, None)
        while x is not None or y is not None:
            if y is None or (x is not None and x[0] < y[0]):
                note("only_live", x[1])  # type: ignore[index]
                x = next(a, None)
            elif x is None or y[0] < x[0]:
                note("only_replayed", y[1])
                y = next(b, None)
            else:
                if x[2] != y[2]:
                    note("different", x[1])
                x, y = next(a, None), next(b, None)
    diff.total = sum(counted.values())
    return diff


def schema_digests(conn: psycopg.Connection[Any], schema: str = LIVE_SCHEMA) -> dict[str, str]:
    """:func:`table_digest` of every read-model table in ``schema`` (the live ones by default)."""
    return {table: table_digest(conn, schema, table) for table in TABLES}


def _split_projections() -> tuple[list[str], list[str]]:
    """(built here, built in a worker process): every other projection of the registry, so
    the heavy ones (the ledger's, monitoring) land in different processes."""
    names = list(PROJECTIONS)
    return names[0::2], names[1::2]


def replay(
    recorder: HashChainRecorder,
    url: str,
    *,
    to_position: int | None = None,
    check: bool = False,
    keep_schema: bool = False,
    batch_size: int = REPLAY_BATCH,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Verify the log and rebuild the read models at once: one in a worker process, one here."""
    head = recorder.head().position
    keep: dict[str, Applied] | None = None
    upto = head if to_position is None else min(to_position, head)
    if check and to_position is None:
        # Compare like with like: rebuild exactly what each live projection has applied
        # (in-process: up to its position; through Kafka: each partition up to its own).
        with connect_owner(url) as conn, conn.cursor() as cur:
            keep = {name: applied(cur, name) for name in PROJECTIONS}
        upto = min(head, max((a.upto for a in keep.values()), default=0))
    below = checkpoint_at_or_below(recorder, upto)
    checkpoint_size = below.size if below is not None and below.size > 0 else None
    scratch = f"replay_{secrets.token_hex(4)}"
    here, there = _split_projections()
    pool = ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"), initializer=tune_gc
    )
    with pool, connect_owner(url) as conn:
        verified = pool.submit(
            verify_log,
            url,
            upto,
            checkpoint_size,
            below.root if below is not None and checkpoint_size else None,
            batch_size,
        )
        migrate(conn, scratch, all_migrations())
        try:
            elsewhere = pool.submit(
                rebuild_part, url, scratch, upto, there, batch_size, keep, keep_schema
            )
            # Each process digests its own tables as soon as they are committed, so the
            # digests of the part done first overlap with the other part's rebuild.
            found = rebuild_and_digest(
                recorder,
                conn,
                scratch,
                upto,
                here,
                batch_size=batch_size,
                keep=keep,
                indexes=keep_schema,  # digests need no secondary index; a kept schema is queried
                progress=progress,
            )
            found.update(elsewhere.result())
            digests = {table: found[table] for table in TABLES}
            live_digests: dict[str, str] | None = None
            differences: list[TableDiff] = []
            if check:
                live_digests = schema_digests(conn)
                # Only a table that differs is read row by row, to name the rows.
                differences = [
                    diff_tables(url, scratch, LIVE_SCHEMA, table)
                    for table in TABLES
                    if live_digests[table] != digests[table]
                ]
            log_check = verified.result()
        finally:
            if not keep_schema:
                conn.execute(f'DROP SCHEMA IF EXISTS "{scratch}" CASCADE')
    return ReplayReport(
        upto_position=upto,
        events=log_check.events,
        chain_break=log_check.chain_break,
        merkle_root=log_check.merkle_root,
        checkpoint_size=checkpoint_size if checkpoint_size else None,
        checkpoint_matches=log_check.checkpoint_matches,
        digests=digests,
        live_digests=live_digests,
        differences=differences,
        schema=scratch if keep_schema else None,
    )
