"""The hash-chained PostgreSQL recorder: ``eventsourcing``'s recorder, extended.

Definition
    :class:`HashChainRecorder` subclasses ``eventsourcing.postgres.PostgresApplicationRecorder``.
    It keeps the library's table lock, NOTIFY channel, readers (``select_events``,
    ``select_notifications``, ``max_notification_id``, ``subscribe``) and error mapping, and
    replaces the write path with :meth:`HashChainRecorder.append`, which writes a whole batch of
    command submissions in one transaction:

    1. Lock the chain-head row (``SELECT ... FOR UPDATE``): writers queue on it while readers
       carry on, exactly as the library's ``LOCK TABLE ... EXCLUSIVE`` would, but without
       needing a grant that PostgreSQL reserves for roles allowed to UPDATE the log. Then read
       the command-log entries of the batch's ids and the tip of every stream the batch touches.
    2. Decide each submission in order: a known command id is reported back with its first
       outcome and writes nothing; a submission whose events do not continue their streams
       exactly is a :class:`~eventstore.model.VersionConflict` and writes nothing; every other
       submission gets the next positions, its hashes, and a command-log row.
    3. Insert the events and the command rows, the Merkle tiles the new events complete
       (``eventstore.tiles``), advance the head, NOTIFY, commit: one fsync for the whole batch.
       The reads take one round trip; a usual batch's writes (one array per column,
       ``unnest``) and the COMMIT one more, a large batch's (binary COPY) a few.

Guarantees
    * Positions are gapless: they are assigned under the lock as head + 1, never from a
      sequence, so a rejected or conflicting submission burns nothing.
    * Commit order equals position order, so a reader that has seen position N has seen
      everything before it.
    * A rejected or conflicting submission never fails its neighbours in the batch.
    * Nothing is applied twice: a command id is written once, in the same transaction as its
      events.

Constraints
    The DB-functions insert mode of ``eventsourcing`` skips the table lock, so it is refused.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from itertools import starmap
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from eventsourcing.persistence import StoredEvent as EsStoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.adapt import PyFormat
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

from eventstore.binary_arrays import columns, unnest
from eventstore.canonical import GENESIS, Linker
from eventstore.errors import AppendFailed, ConfigurationRefused
from eventstore.model import (
    AlreadyRecorded,
    AppendResult,
    BatchPlan,
    BatchView,
    ChainHead,
    Committed,
    EventRow,
    Joined,
    NewEvent,
    Prefetched,
    RecordedCommand,
    Snapshot,
    StoredEvent,
    Submission,
    VersionConflict,
    _StreamTip,
)
from eventstore.tiles import FullTile, TileBuilder, builder_at, insert_tiles, leaf_hash_of

_EVENT_COLUMNS = (
    "notification_id",
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "recorded_at_ns",
    "prev_stream_hash",
    "stream_hash",
    "prev_global_hash",
    "global_hash",
)
_EVENT_TYPES = ("int8", "text", "int8", "text", "bytea", "int8", "bytea", "bytea", "bytea", "bytea")
_COMMAND_TYPES = ("text", "text", "bytea", "bytea", "bool", "bytea", "int8", "int8", "int8")

# A batch of up to this many event and command rows is written as binary arrays in the
# COMMIT's round trip; a larger one with binary COPY (6,000 events: 35-46 ms by COPY, 61-75 ms
# as arrays, on this machine).
PIPELINED_ROWS = 512

# COPY with ``set_types`` finds each column's dumper by type oid, and for bytea psycopg's last
# registration is the dbapi ``Binary`` wrapper's Python dumper: every payload and hash went
# through two Python calls (5 per event). Registering the C dumper of ``bytes`` again makes
# the by-oid lookup C; ``psycopg.Binary`` values (unused here) still dump by their class.
psycopg.adapters.register_dumper(bytes, psycopg.adapters.get_dumper(bytes, PyFormat.BINARY))


@contextmanager
def _rolled_back_on_error(conn: Connection[Any]) -> Iterator[None]:
    """End a failed pipelined transaction before the connection goes back to the pool.

    A statement that fails in a pipeline is reported only when the pipeline syncs, after the
    COMMIT behind it was queued (and skipped by the server): the transaction is still open, in
    error. Rolling it back here keeps the pool from finding (and warning about) it.
    """
    try:
        yield
    except BaseException:
        if conn.info.transaction_status in (TransactionStatus.INERROR, TransactionStatus.INTRANS):
            with suppress(psycopg.Error):
                conn.rollback()
        raise


def payload_digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def _command_rows(commands: Sequence[tuple[Submission, Committed]]) -> list[tuple[Any, ...]]:
    return [
        (
            s.command_id,
            s.command_type,
            s.payload,
            payload_digest(s.payload),
            s.accepted,
            s.outcome,
            c.first_position,
            c.last_position,
            c.recorded_at_ns,
        )
        for s, c in commands
    ]


class HashChainRecorder(PostgresApplicationRecorder):
    """Append-only, hash-chained, gapless event log with a command log, on PostgreSQL."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "events",
        clock: Callable[[], int] = time.time_ns,
        maintain_tiles: bool = True,
    ) -> None:
        if datastore.enable_db_functions:
            raise ConfigurationRefused(
                "POSTGRES_ENABLE_DB_FUNCTIONS inserts without the table lock, which would "
                "break gapless positions and the hash chain; turn it off"
            )
        if datastore.originator_id_type != "text":
            raise ConfigurationRefused("stream ids are text: set ORIGINATOR_ID_TYPE=text")
        super().__init__(datastore, events_table_name=events_table_name)
        # The schema is created by versioned migrations (eventstore.schema), not by the library.
        self.sql_create_statements = []
        self.channel_name = f"{datastore.schema}_{events_table_name}"
        self._clock = clock
        # The Merkle tiles (eventstore.tiles) are written in the same transaction as the
        # events that complete them. ``_tiles`` is the builder as of the last commit this
        # process made; another writer's commit makes its size differ from the head, and it
        # is then reloaded from the table (O(log n) rows) under the lock.
        self._maintain_tiles = maintain_tiles
        self._tiles: TileBuilder | None = None
        # Seconds spent per stage of ``transact`` since start (read, decide, plan: hashing and
        # encoding rows, write, commit), for benchmarks: where a batch's time goes.
        self.stage_s: dict[str, float] = dict.fromkeys(
            ("read", "decide", "plan", "write", "commit"), 0.0
        )
        schema = Identifier(datastore.schema)
        self._t_events = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self._t_commands = SQL("{}.commands").format(schema)
        self._t_head = SQL("{}.chain_head").format(schema)
        columns = SQL(", ").join(Identifier(c) for c in _EVENT_COLUMNS)
        # A batch's rows go in by binary COPY, or (a usual batch) as one array per column
        # (``unnest``) by plain INSERTs that share the COMMIT's pipeline.
        self._copy_events = SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self._t_events, columns
        )
        self._copy_commands_sql = SQL(
            "COPY {} (command_id, command_type, payload, payload_digest, accepted, outcome,"
            " first_position, last_position, recorded_at_ns) FROM STDIN (FORMAT BINARY)"
        ).format(self._t_commands)
        self._q_insert_events = (
            SQL("INSERT INTO {} ({}) SELECT * FROM {}")
            .format(self._t_events, columns, SQL(unnest(len(_EVENT_COLUMNS))))
            .as_bytes(None)
        )
        self._q_insert_commands = (
            SQL(
                "INSERT INTO {} (command_id, command_type, payload, payload_digest, accepted,"
                " outcome, first_position, last_position, recorded_at_ns) SELECT * FROM {}"
            )
            .format(self._t_commands, SQL(unnest(len(_COMMAND_TYPES))))
            .as_bytes(None)
        )
        self._select_head = SQL("SELECT position, global_hash, recorded_at_ns FROM {}").format(
            self._t_head
        )
        self._lock_head = self._select_head + SQL(" FOR UPDATE")
        self._update_head = SQL(
            "UPDATE {} SET position = %s, global_hash = %s, recorded_at_ns = %s"
        ).format(self._t_head)
        # Never prepared (``prepare=False``): PostgreSQL would keep the generic plan it made
        # while the table was small, a sequential scan, until autovacuum next analyzes the
        # table. On a new store that scan grew with every command (about 5 ms per batch at
        # 15,000 commands, half of ``bench append``'s time); planned per call it is an index
        # probe per id, whatever the table's statistics say.
        self._select_commands = SQL(
            "SELECT command_id, command_type, payload, payload_digest, accepted, outcome,"
            " first_position, last_position, recorded_at_ns FROM {} WHERE command_id = ANY(%s)"
        ).format(self._t_commands)
        # One backward primary-key probe per stream (LIMIT 1), not a scan of each stream's
        # versions: the cost of reading a tip does not grow with the stream.
        self._select_tips = SQL(
            "SELECT s.id, e.originator_version, e.stream_hash FROM unnest(%s::text[]) AS s(id)"
            " CROSS JOIN LATERAL (SELECT originator_version, stream_hash FROM {}"
            " WHERE originator_id = s.id ORDER BY originator_version DESC LIMIT 1) e"
        ).format(self._t_events)
        self._select_all = SQL("SELECT {} FROM {}").format(columns, self._t_events)
        self._q_last_position = SQL("SELECT max(notification_id) FROM {}").format(self._t_events)
        self._q_select_streams_from = (
            SQL("SELECT ")
            + SQL(", ").join(SQL("e.{}").format(Identifier(c)) for c in _EVENT_COLUMNS)
            # One index range scan per stream (LATERAL, fenced by OFFSET 0): with a plain join
            # the planner merge-joins the whole events index once a batch names many streams
            # (hundreds of ms per batch at a million events).
            + SQL(
                " FROM unnest(%s::text[], %s::int8[]) AS w(stream_id, from_version)"
                " CROSS JOIN LATERAL (SELECT * FROM {} x WHERE x.originator_id = w.stream_id"
                " AND x.originator_version >= w.from_version OFFSET 0) e"
                " ORDER BY e.originator_id, e.originator_version"
            ).format(self._t_events)
        ).as_bytes(None)
        self._q_lock_head = self._lock_head.as_bytes(None)
        self._q_select_commands = self._select_commands.as_bytes(None)
        self._q_select_tips = self._select_tips.as_bytes(None)
        self._q_update_head = self._update_head.as_bytes(None)
        t_snapshots = SQL("{}.snapshots").format(schema)

        # One statement, so one round trip and one view of the store: per stream, in the
        # order asked, its newest snapshot's version and whether the chain still has its hash
        # at that version (its state only on the stream's first row, and only if confirmed),
        # then the events after it, or after nothing when there is no snapshot or the chain
        # refutes it. A stream with no events to read comes back as one row without one.
        def prefetch_query(after_snapshot: int) -> bytes:
            return (
                SQL(
                    "SELECT w.stream_id, sn.version, sn.confirmed,"
                    " CASE WHEN sn.confirmed AND (e.originator_version IS NULL"
                    " OR e.originator_version = f.start) THEN sn.state END, "
                )
                + SQL(", ").join(SQL("e.{}").format(Identifier(c)) for c in _EVENT_COLUMNS)
                # Per stream (LATERAL), as in the read under the lock: an index probe each.
                + SQL(
                    " FROM unnest(%s::text[]) WITH ORDINALITY AS w(stream_id, n)"
                    " LEFT JOIN LATERAL (SELECT s.version, s.state, (SELECT x.stream_hash FROM {} x"
                    " WHERE x.originator_id = s.stream_id AND x.originator_version = s.version)"
                    " IS NOT DISTINCT FROM s.stream_hash AS confirmed"
                    " FROM {} s WHERE s.stream_id = w.stream_id ORDER BY s.version DESC LIMIT 1) sn"
                    " ON true"
                    " CROSS JOIN LATERAL (SELECT CASE WHEN sn.confirmed THEN sn.version + {}"
                    " ELSE 1 END AS start) f"
                    " LEFT JOIN LATERAL (SELECT * FROM {} x WHERE x.originator_id = w.stream_id"
                    " AND x.originator_version >= f.start OFFSET 0) e ON true"
                    " ORDER BY w.n, e.originator_version"
                ).format(self._t_events, t_snapshots, Literal(after_snapshot), self._t_events)
            ).as_bytes(None)

        self._q_prefetch = prefetch_query(1)
        # Under the lock, the snapshot's own event comes first: it is the stream's tip (its
        # hash chains the next event) when nothing follows it.
        self._q_prefetch_locked = prefetch_query(0)
        self._q_insert_snapshots = (
            SQL(
                "INSERT INTO {} (stream_id, version, stream_hash, state)"
                " SELECT e.originator_id, e.originator_version, e.stream_hash, w.state"
                " FROM unnest(%s::text[], %s::int8[], %s::bytea[]) AS w(stream_id, version, state)"
                " JOIN {} e ON e.originator_id = w.stream_id AND e.originator_version = w.version"
                " ON CONFLICT (stream_id, version) DO NOTHING"
            )
            .format(t_snapshots, self._t_events)
            .as_bytes(None)
        )
        self._select_streams = self._select_all + SQL(
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        )

    # ------------------------------------------------------------------ the write path

    def append(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        """Write ``submissions`` in one transaction; one result per submission, in order.

        Retrying after a lost connection is safe: a submission that did commit comes back as
        :class:`AlreadyRecorded` with the same payload.
        """
        if not submissions:
            return []
        try:
            return self._transact_tips(submissions, check_new_streams=False)
        except IntegrityError:
            # A "new" stream already existed: redo the batch, checking every stream's tip so
            # the conflicting submission is reported on its own and its neighbours commit.
            return self._transact_tips(submissions, check_new_streams=True)

    def _transact_tips(
        self, submissions: Sequence[Submission], *, check_new_streams: bool
    ) -> list[AppendResult]:
        # The tip of a stream that starts in this batch is the genesis hash, so its row need
        # not be read: if the stream exists after all, the primary key refuses the insert and
        # append() redoes the batch with check_new_streams=True.
        tip_streams = {
            e.stream_id for s in submissions for e in s.events if check_new_streams or e.version > 1
        }
        outcome: tuple[Sequence[Submission], list[AppendResult]] = self._transact(
            [s.command_id for s in submissions], sorted(tip_streams), {}, lambda _: submissions
        )
        return outcome[1]

    def transact(
        self,
        command_ids: Sequence[str],
        streams_from: Mapping[str, int],
        decide: Callable[[BatchView], Sequence[Submission]],
        *,
        prefetch: Sequence[str] = (),
    ) -> tuple[Sequence[Submission], list[AppendResult]]:
        """Read, decide and write one batch while holding the writers' lock.

        Under the lock, read the command-log entries of ``command_ids`` and, for each stream in
        ``streams_from``, its events from that version on (pass the version a cache already
        holds to get that event plus anything newer, or 1 for the whole stream). Then call
        ``decide`` with what was read; it returns the submissions to write. Because no other
        writer can move in between, the decision is made on the current state of every stream
        it read: it cannot conflict. Every stream a submission writes must be in
        ``streams_from`` or ``prefetch``.

        ``prefetch`` names streams read as :meth:`prefetch` reads them (newest confirmed
        snapshot, then the events after it) in the same round trip, under the lock, so current:
        the view's ``prefetched``. For a few streams no cache holds, this spares the round trip
        of reading them before the lock.
        """
        outcome: tuple[Sequence[Submission], list[AppendResult]] = self._transact(
            command_ids, [], streams_from, decide, prefetch
        )
        return outcome

    @retry((InterfaceError, OperationalError), max_attempts=5, wait=0.2)
    def _transact(  # noqa: PLR0915 - read, decide, write and commit in one transaction, timed
        self,
        command_ids: Sequence[str],
        tip_streams: Sequence[str],
        streams_from: Mapping[str, int],
        decide: Callable[[BatchView], Sequence[Submission]],
        prefetch: Sequence[str] = (),
    ) -> tuple[Sequence[Submission], list[AppendResult]]:
        stage = self.stage_s
        t0 = time.perf_counter()
        # BEGIN goes out with the reads, in their round trip (a pipeline); the transaction ends
        # (COMMIT, or ROLLBACK on any error) when ``transaction`` closes. Not
        # ``conn.transaction()``: in a pipeline that nests pipelines of its own, which would
        # refuse a large batch's COPYs.
        with (
            self.datastore.get_connection() as conn,
            _rolled_back_on_error(conn),
            ExitStack() as transaction,
        ):
            with conn.pipeline():
                transaction.enter_context(psycopg.Transaction(conn))
                c_head = conn.cursor(row_factory=tuple_row)
                c_head.execute(self._q_lock_head, prepare=True)
                c_tips = None
                if tip_streams:
                    c_tips = conn.cursor(row_factory=tuple_row)
                    c_tips.execute(self._q_select_tips, (list(tip_streams),), prepare=True)
                fetch = self._queue_reads(conn, command_ids, streams_from, prefetch)
                head_row = c_head.fetchone()
                tip_rows = c_tips.fetchall() if c_tips is not None else []
                recorded, rows, pre_rows = fetch()
            head = self._head_from(head_row)
            tips = {r[0]: _StreamTip(r[1], bytes(r[2])) for r in tip_rows}
            prefetched = _prefetched(pre_rows, tips)
            events = _by_stream(rows, streams_from, tips)

            def load(more_from: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
                with conn.cursor(row_factory=tuple_row, binary=True) as c_more:
                    c_more.execute(
                        self._q_select_streams_from,
                        (list(more_from), list(more_from.values())),
                        prepare=True,
                    )
                    return _by_stream(c_more.fetchall(), more_from, tips)

            def join(
                more_ids: Sequence[str], more_from: Mapping[str, int], more_pre: Sequence[str]
            ) -> Joined:
                # The batch's own reads, for the late commands: one round trip.
                with conn.pipeline():
                    more, more_rows, more_pre_rows = self._queue_reads(
                        conn, more_ids, more_from, more_pre
                    )()
                found = _by_stream(more_rows, more_from, tips)
                return Joined(more, found, _prefetched(more_pre_rows, tips))

            t1 = time.perf_counter()
            submissions = decide(BatchView(recorded, events, load, join, prefetched))
            t2 = time.perf_counter()
            if sum(len(s.events) for s in submissions) + len(submissions) > PIPELINED_ROWS:
                # A large batch (an import's, a batch request's) goes by binary COPY, which
                # PostgreSQL takes faster than arrays once rows number in the thousands. Each
                # row enters the COPY as soon as it is chained: the server stores the first
                # rows while the rest are still being hashed.
                with conn.cursor() as cur:
                    with cur.copy(self._copy_events) as copy:
                        copy.set_types(list(_EVENT_TYPES))
                        plan = self._plan(
                            submissions,
                            head,
                            recorded,
                            tips,
                            with_leaves=self._maintain_tiles,
                            sink=copy.write_row,
                        )
                    t3 = time.perf_counter()
                    tiles = self._write(conn, cur, plan, head, _written, self._copy_commands)
                t4 = time.perf_counter()
            else:
                plan = self._plan(
                    submissions, head, recorded, tips, with_leaves=self._maintain_tiles
                )
                t3 = time.perf_counter()
                # A usual batch: the rows as binary arrays (INSERT ... unnest), the tiles, the
                # head's move and the COMMIT leave together, in one round trip.
                with conn.pipeline(), conn.cursor() as cur:
                    tiles = self._write(
                        conn, cur, plan, head, self._insert_rows, self._insert_commands
                    )
                    t4 = time.perf_counter()
                    transaction.close()
        t5 = time.perf_counter()
        stage["read"] += t1 - t0
        stage["decide"] += t2 - t1
        stage["plan"] += t3 - t2
        stage["write"] += t4 - t3
        stage["commit"] += t5 - t4
        if tiles is not None:  # committed: this is now the tree's state
            self._tiles = tiles
        return submissions, plan.results

    def _queue_reads(
        self,
        conn: Connection[Any],
        command_ids: Sequence[str],
        streams_from: Mapping[str, int],
        prefetch: Sequence[str],
    ) -> Callable[[], tuple[dict[str, RecordedCommand], list[Any], list[Any]]]:
        """Queue, in the caller's pipeline under the lock, the reads a batch decides on: the
        command-log entries of ``command_ids``, the events of ``streams_from`` (each from its
        version on) and the newest snapshot of each ``prefetch`` stream with the events after
        it. Returns the call that fetches them: the recorded commands, the events rows and the
        prefetch rows."""
        c_cmd = conn.cursor()
        c_cmd.execute(self._q_select_commands, (list(command_ids),), prepare=False)
        c_rows = c_pre = None
        if streams_from:
            c_rows = conn.cursor(row_factory=tuple_row, binary=True)
            c_rows.execute(
                self._q_select_streams_from,
                (list(streams_from), list(streams_from.values())),
                prepare=True,
            )
        if prefetch:
            c_pre = conn.cursor(row_factory=tuple_row, binary=True)
            c_pre.execute(self._q_prefetch_locked, (list(dict.fromkeys(prefetch)),), prepare=True)

        def fetch() -> tuple[dict[str, RecordedCommand], list[Any], list[Any]]:
            recorded = {r["command_id"]: _row_to_command(r) for r in c_cmd.fetchall()}
            rows = c_rows.fetchall() if c_rows is not None else []
            pre_rows = c_pre.fetchall() if c_pre is not None else []
            return recorded, rows, pre_rows

        return fetch

    def _append_tiles(
        self, conn: Connection[Any], head_position: int, leaves: Sequence[bytes]
    ) -> TileBuilder:
        """Append the batch's leaves to a copy of the tile builder; insert the tiles they fill.

        Runs under the writers' lock, before the head moves: the tiles commit with the events.
        """
        schema = self.datastore.schema
        with conn.cursor(row_factory=tuple_row) as cur:
            current = self._tiles
            if current is None or current.size != head_position:
                current, _ = builder_at(cur, schema, head_position)
            builder = current.copy()
            full: list[FullTile] = []
            builder.extend(leaves, full)
            insert_tiles(cur, schema, full)
        return builder

    def insert_events(
        self, stored_events: Sequence[EsStoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """``eventsourcing``'s write API, routed through :meth:`append` as one command.

        Lets a stock ``eventsourcing`` application persist through the hash-chained store.
        A version conflict raises the library's ``IntegrityError``, as its callers expect.
        """
        if not stored_events:
            return []
        command_id = str(kwargs.get("command_id") or f"es:{time.time_ns()}:{id(stored_events)}")
        events = [
            NewEvent(str(e.originator_id), e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        [result] = self.append(
            [Submission(command_id, "eventsourcing.save", b"", True, b"{}", events)]
        )
        if isinstance(result, VersionConflict):
            raise IntegrityError(
                f"stream {result.stream_id} is at version {result.current_version}; "
                f"version {result.attempted_version} cannot follow it"
            )
        if not isinstance(result, Committed) or result.first_position is None:
            raise AppendFailed(f"command {command_id} was not written")
        return list(range(result.first_position, result.first_position + len(events)))

    def _read_head(self, cur: Cursor[DictRow]) -> ChainHead:
        cur.execute(self._select_head, prepare=True)
        return self._head_from(cur.fetchone())

    @staticmethod
    def _head_from(row: DictRow | tuple[Any, ...] | None) -> ChainHead:
        if row is None:
            raise AppendFailed("the chain head row is missing: the schema is damaged")
        if isinstance(row, dict):
            return ChainHead(row["position"], bytes(row["global_hash"]), row["recorded_at_ns"])
        return ChainHead(row[0], bytes(row[1]), row[2])

    def _plan(
        self,
        submissions: Sequence[Submission],
        head: ChainHead,
        recorded: dict[str, RecordedCommand],
        tips: dict[str, _StreamTip],
        *,
        with_leaves: bool = True,
        sink: Callable[[EventRow], None] | None = None,
    ) -> BatchPlan:
        now_ns = max(self._clock(), head.recorded_at_ns)
        link = Linker().link
        plan = BatchPlan()
        rows = plan.rows
        leaves = plan.leaves if with_leaves else None
        position = head.position
        prev_global = head.global_hash
        in_batch: dict[str, RecordedCommand] = {}
        # Streams touched by a submission that is not written. Later submissions of the batch
        # were decided assuming it would be, so any of them touching these streams is not
        # written either: the writer re-decides it on fresh state.
        tainted: set[str] = set()
        for sub in submissions:
            digest = payload_digest(sub.payload)
            known = recorded.get(sub.command_id) or in_batch.get(sub.command_id)
            touched = {e.stream_id for e in sub.events}.union(sub.reads)
            if known is not None:
                plan.results.append(AlreadyRecorded(known, known.payload_digest == digest))
                tainted |= touched
                continue
            conflict = _first_conflict(sub, tips)
            if conflict is None and not tainted.isdisjoint(touched):
                stream = min(tainted & touched)
                tip = tips.get(stream)
                conflict = VersionConflict(
                    sub.command_id, stream, tip.version + 1 if tip else 1, tip.version if tip else 0
                )
            if conflict is not None:
                plan.results.append(conflict)
                tainted |= touched
                continue
            first = position + 1 if sub.events else None
            for event in sub.events:
                position += 1
                sid = event.stream_id
                tip = tips.get(sid)
                prev_stream = tip.stream_hash if tip else GENESIS
                version = event.version
                data, _, s_hash, g_hash = link(
                    position,
                    sid,
                    version,
                    event.topic,
                    now_ns,
                    event.payload,
                    prev_stream,
                    prev_global,
                )
                if leaves is not None:
                    leaves.append(leaf_hash_of(data))
                row = (
                    position,
                    sid,
                    version,
                    event.topic,
                    event.payload,
                    now_ns,
                    prev_stream,
                    s_hash,
                    prev_global,
                    g_hash,
                )
                rows.append(row)
                if sink is not None:
                    sink(row)
                tips[sid] = _StreamTip(version, s_hash)
                prev_global = g_hash
            last = position if sub.events else None
            committed = Committed(sub.command_id, first, last, now_ns)
            plan.results.append(committed)
            plan.commands.append((sub, committed))
            in_batch[sub.command_id] = RecordedCommand(
                sub.command_id,
                sub.command_type,
                sub.payload,
                digest,
                sub.accepted,
                sub.outcome,
                first,
                last,
                now_ns,
            )
        return plan

    def _recorded_commands(
        self, cur: Cursor[DictRow], command_ids: list[str]
    ) -> dict[str, RecordedCommand]:
        cur.execute(self._select_commands, (command_ids,), prepare=False)
        return {row["command_id"]: _row_to_command(row) for row in cur.fetchall()}

    def _write(
        self,
        conn: Connection[Any],
        cur: Cursor[DictRow],
        plan: BatchPlan,
        head: ChainHead,
        write_rows: Callable[[Cursor[DictRow], list[EventRow]], None],
        write_commands: Callable[[Cursor[DictRow], list[tuple[Submission, Committed]]], None],
    ) -> TileBuilder | None:
        """Write a batch's rows, command rows and the tiles they fill, and move the head; the
        tile builder to keep once the transaction commits."""
        tiles: TileBuilder | None = None
        if plan.rows:
            write_rows(cur, plan.rows)
        if plan.commands:
            write_commands(cur, plan.commands)
        if plan.rows:
            if self._maintain_tiles:
                tiles = self._append_tiles(conn, head.position, plan.leaves)
            last = plan.rows[-1]
            # A trigger on the head NOTIFYs listeners with the new position.
            cur.execute(self._q_update_head, (last[0], last[9], last[5]), prepare=True)
        return tiles

    def _copy_commands(
        self, cur: Cursor[DictRow], commands: list[tuple[Submission, Committed]]
    ) -> None:
        with cur.copy(self._copy_commands_sql) as copy:
            copy.set_types(list(_COMMAND_TYPES))
            for row in _command_rows(commands):
                copy.write_row(row)

    def _insert_rows(self, cur: Cursor[DictRow], rows: list[EventRow]) -> None:
        cur.execute(self._q_insert_events, columns(rows, _EVENT_TYPES), prepare=True)

    def _insert_commands(
        self, cur: Cursor[DictRow], commands: list[tuple[Submission, Committed]]
    ) -> None:
        rows = _command_rows(commands)
        cur.execute(self._q_insert_commands, columns(rows, _COMMAND_TYPES), prepare=True)

    # ------------------------------------------------------------------ snapshots

    def prefetch(self, stream_ids: Sequence[str]) -> dict[str, Prefetched]:
        """Read streams without the writers' lock: each one's newest snapshot, if the chain
        still has the snapshot's hash at its version, and the events after it.

        A snapshot the chain does not confirm is ignored (the whole stream is read) and
        reported in ``snapshot_refused``. What is read may be behind other writers: the
        writer catches it up under the lock, from the version read here.
        """
        ids = list(dict.fromkeys(stream_ids))
        if not ids:
            return {}
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(self._q_prefetch, (ids,), prepare=True)
            rows = cur.fetchall()
        return _prefetched(rows, None)

    def write_snapshots(self, snapshots: Sequence[Snapshot]) -> int:
        """Store snapshots, each keyed by its event's stream hash; return how many were new.

        A snapshot of a version the log does not hold is not written.
        """
        if not snapshots:
            return 0
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(
                self._q_insert_snapshots,
                (
                    [s.stream_id for s in snapshots],
                    [s.version for s in snapshots],
                    [s.state for s in snapshots],
                ),
            )
            return max(cur.rowcount, 0)

    # ------------------------------------------------------------------ the read path

    def head(self) -> ChainHead:
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            return self._read_head(cur)

    def find_commands(self, command_ids: Sequence[str]) -> dict[str, RecordedCommand]:
        if not command_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            return self._recorded_commands(cur, list(command_ids))

    def read_streams(self, stream_ids: Iterable[str]) -> dict[str, list[StoredEvent]]:
        """Every event of each stream, in version order (one query for all of them)."""
        ids = list(stream_ids)
        found: dict[str, list[StoredEvent]] = {s: [] for s in ids}
        if not ids:
            return found
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(self._select_streams, (ids,), prepare=True)
            for row in cur.fetchall():
                event = _tuple_to_event(row)
                found[event.stream_id].append(event)
        return found

    def read_from(
        self, after_position: int, limit: int, upto_position: int | None = None
    ) -> list[StoredEvent]:
        """Up to ``limit`` events with ``after_position < position [<= upto_position]``.

        With ``upto_position``, the read names its rows' range. Positions run 1, 2, 3, ...
        (the chain's own rule: the verifier refuses a hole), so the first ``limit`` events lie
        at or below ``after_position + limit``. Bounded there, a read costs its own rows
        whatever the log's size. Unbounded, a planner working from statistics taken when the
        log was smaller (after an import, on a fresh replica) can choose to gather and sort
        every later row for each batch, and reading a log from the start grows with its
        square. A damaged log with a hole gets a second read past the range, as before.
        """
        if upto_position is None:
            return self._read(after_position, None, limit)
        end = min(upto_position, after_position + limit)
        events = self._read(after_position, end, limit)
        if len(events) < end - after_position and end < upto_position:
            events += self._read(end, upto_position, limit - len(events))
        return events

    def last_position(self) -> int:
        """The highest position stored (0 for an empty log): the head's, unless rows were
        written past it outside the store (which the verifier reports)."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self._q_last_position, prepare=True)
            row = cur.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _read(self, after: int, upto: int | None, limit: int) -> list[StoredEvent]:
        query, params = self._read_query(after, upto, limit)
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(query, params, prepare=True)
            return list(starmap(StoredEvent, cur.fetchall()))

    def _read_query(self, after: int, upto: int | None, limit: int) -> tuple[Composed, list[int]]:
        query = self._select_all + SQL(" WHERE notification_id > %s")
        params: list[int] = [after]
        if upto is not None:
            query += SQL(" AND notification_id <= %s")
            params.append(upto)
        return query + SQL(" ORDER BY notification_id LIMIT %s"), [*params, limit]

    def read_stream(self, stream_id: str, after_version: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` events of one stream with ``version > after_version``, in order."""
        query = self._select_all + SQL(
            " WHERE originator_id = %s AND originator_version > %s"
            " ORDER BY originator_version LIMIT %s"
        )
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cur,
        ):
            cur.execute(query, (stream_id, after_version, limit), prepare=True)
            return list(starmap(StoredEvent, cur.fetchall()))

    def first_position_since(self, recorded_at_ns: int) -> int | None:
        """The first position committed at or after ``recorded_at_ns`` (None if none is)."""
        query = SQL("SELECT min(notification_id) FROM {} WHERE recorded_at_ns >= %s").format(
            self._t_events
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query, (recorded_at_ns,))
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def iter_all(
        self, batch_size: int = 10_000, upto_position: int | None = None
    ) -> Iterator[list[StoredEvent]]:
        """Every event in position order, in batches (keyset pagination, no long transaction).

        Without ``upto_position``, every event there is: up to the highest position stored
        when the iteration started, each batch a bounded read (see :meth:`read_from`), then
        whatever was appended meanwhile."""
        after = 0
        bound = self.last_position() if upto_position is None else upto_position
        while True:
            batch = self.read_from(after, batch_size, bound) if after < bound else []
            if not batch and upto_position is None:
                batch = self.read_from(after, batch_size)  # appended since the start
            if not batch:
                return
            yield batch
            after = batch[-1].position


def _written(cur: Cursor[DictRow], rows: list[EventRow]) -> None:
    """The rows' writer when the plan has already copied them in."""


def _by_stream(
    rows: Iterable[tuple[Any, ...]], wanted: Iterable[str], tips: dict[str, _StreamTip]
) -> dict[str, list[StoredEvent]]:
    """Events rows (in version order within a stream) grouped by the streams ``wanted``;
    each one read sets its stream's tip."""
    found: dict[str, list[StoredEvent]] = {stream_id: [] for stream_id in wanted}
    for r in rows:
        event = _tuple_to_event(r)
        found[event.stream_id].append(event)
        tips[event.stream_id] = _StreamTip(event.version, event.stream_hash)
    return found


def _prefetched(
    rows: Sequence[tuple[Any, ...]], tips: dict[str, _StreamTip] | None
) -> dict[str, Prefetched]:
    """Each stream's snapshot and the events after it, from the prefetch query's rows; given
    ``tips`` (a read under the lock), every event read sets its stream's tip there (the
    snapshot's own event too, which that query reads first and which is not among the events
    after it)."""
    out: dict[str, Prefetched] = {}
    for r in rows:
        sid, version, confirmed, state = r[0], r[1], r[2], r[3]
        found = out.get(sid)
        if found is None:
            if version is None:
                found = Prefetched(None, [])
            elif confirmed:
                found = Prefetched(Snapshot(sid, int(version), bytes(state)), [])
            else:
                found = Prefetched(None, [], snapshot_refused=True)
            out[sid] = found
        if r[4] is not None:
            event = _tuple_to_event(r[4:])
            if tips is not None:
                tips[sid] = _StreamTip(event.version, event.stream_hash)
            if found.snapshot is None or event.version > found.snapshot.version:
                found.events.append(event)
    return out


def _row_to_command(row: DictRow) -> RecordedCommand:
    return RecordedCommand(
        command_id=row["command_id"],
        command_type=row["command_type"],
        payload=bytes(row["payload"]),
        payload_digest=bytes(row["payload_digest"]),
        accepted=row["accepted"],
        outcome=bytes(row["outcome"]),
        first_position=row["first_position"],
        last_position=row["last_position"],
        recorded_at_ns=row["recorded_at_ns"],
    )


def _tuple_to_event(r: tuple[Any, ...]) -> StoredEvent:
    """A row selected in ``_EVENT_COLUMNS`` order (bytea columns arrive as ``bytes``, in both
    formats: a list of rows is built with ``starmap(StoredEvent, rows)``, in C)."""
    return StoredEvent(*r)


def _first_conflict(sub: Submission, tips: dict[str, _StreamTip]) -> VersionConflict | None:
    """The first event of ``sub`` that does not continue its stream, if any."""
    next_version: dict[str, int] = {}
    for event in sub.events:
        expected = next_version.get(event.stream_id)
        if expected is None:
            tip = tips.get(event.stream_id)
            expected = (tip.version if tip else 0) + 1
        if event.version != expected:
            return VersionConflict(sub.command_id, event.stream_id, event.version, expected - 1)
        next_version[event.stream_id] = expected + 1
    return None
