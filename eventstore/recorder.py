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
    3. Insert the events (COPY for large batches), the command rows, advance the head, NOTIFY,
       commit: one fsync for the whole batch.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent as EsStoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from hashlib import sha256

from eventstore.canonical import GENESIS, encode_event, global_hash, stream_hash
from eventstore.errors import AppendFailed, ConfigurationRefused
from eventstore.model import (
    AlreadyRecorded,
    AppendResult,
    BatchPlan,
    EventRow,
    ChainHead,
    Committed,
    NewEvent,
    RecordedCommand,
    StoredEvent,
    Submission,
    VersionConflict,
    _StreamTip,
)
from eventsourcing.persistence import InterfaceError, OperationalError

COPY_THRESHOLD_ROWS = 64
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


def payload_digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


def row_to_event(row: DictRow) -> StoredEvent:
    return StoredEvent(
        position=row["notification_id"],
        stream_id=row["originator_id"],
        version=row["originator_version"],
        topic=row["topic"],
        payload=bytes(row["state"]),
        recorded_at_ns=row["recorded_at_ns"],
        prev_stream_hash=bytes(row["prev_stream_hash"]),
        stream_hash=bytes(row["stream_hash"]),
        prev_global_hash=bytes(row["prev_global_hash"]),
        global_hash=bytes(row["global_hash"]),
    )


class HashChainRecorder(PostgresApplicationRecorder):
    """Append-only, hash-chained, gapless event log with a command log, on PostgreSQL."""

    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "events",
        clock: Callable[[], int] = time.time_ns,
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
        schema = Identifier(datastore.schema)
        self._t_events = SQL("{}.{}").format(schema, Identifier(events_table_name))
        self._t_commands = SQL("{}.commands").format(schema)
        self._t_head = SQL("{}.chain_head").format(schema)
        columns = SQL(", ").join(Identifier(c) for c in _EVENT_COLUMNS)
        self._copy_events = SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self._t_events, columns
        )
        self._insert_events_unnest = SQL("INSERT INTO {} ({}) SELECT * FROM unnest({})").format(
            self._t_events,
            columns,
            SQL(", ").join(SQL(f"%s::{t}[]") for t in _EVENT_TYPES),  # noqa: RUF027
        )
        self._insert_commands = SQL(
            "INSERT INTO {} (command_id, command_type, payload, payload_digest, accepted,"
            " outcome, first_position, last_position, recorded_at_ns)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::bytea[], %s::bytea[],"
            " %s::bool[], %s::bytea[], %s::int8[], %s::int8[], %s::int8[])"
        ).format(self._t_commands)
        self._select_head = SQL(
            "SELECT position, global_hash, recorded_at_ns FROM {}"
        ).format(self._t_head)
        self._lock_head = self._select_head + SQL(" FOR UPDATE")
        self.lock_table_statements = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(self.datastore.lock_timeout)
        ]
        self._update_head = SQL(
            "UPDATE {} SET position = %s, global_hash = %s, recorded_at_ns = %s"
        ).format(self._t_head)
        self._select_commands = SQL(
            "SELECT command_id, command_type, payload, payload_digest, accepted, outcome,"
            " first_position, last_position, recorded_at_ns FROM {} WHERE command_id = ANY(%s)"
        ).format(self._t_commands)
        self._select_tips = SQL(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, stream_hash"
            " FROM {} WHERE originator_id = ANY(%s)"
            " ORDER BY originator_id, originator_version DESC"
        ).format(self._t_events)
        self._select_all = SQL("SELECT {} FROM {}").format(columns, self._t_events)
        self._select_streams = self._select_all + SQL(
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        )

    # ------------------------------------------------------------------ the write path

    def append(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        """Write ``submissions`` in one transaction; one result per submission, in order.

        Three round trips whatever the batch size: the locked reads, the writes, the commit
        (psycopg pipeline mode). Retrying after a lost connection is safe: a submission that
        did commit comes back as :class:`AlreadyRecorded` with the same payload.
        """
        if not submissions:
            return []
        try:
            return self._append(submissions, check_new_streams=False)
        except IntegrityError:
            # A "new" stream already existed: redo the batch, checking every stream's tip so
            # the conflicting submission is reported on its own and its neighbours commit.
            return self._append(submissions, check_new_streams=True)

    @retry((InterfaceError, OperationalError), max_attempts=5, wait=0.2)
    def _append(
        self, submissions: Sequence[Submission], *, check_new_streams: bool
    ) -> list[AppendResult]:
        command_ids = [s.command_id for s in submissions]
        # The tip of a stream that starts in this batch is the genesis hash, so its row need
        # not be read: if the stream exists after all, the primary key refuses the insert and
        # append() redoes the batch with check_new_streams=True.
        stream_ids = list(
            {
                e.stream_id
                for s in submissions
                for e in s.events
                if check_new_streams or e.version > 1
            }
        )
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.pipeline(), conn.cursor() as c_head, conn.cursor() as c_cmd:
                c_tips = conn.cursor()
                self._lock_table(c_head)
                c_head.execute(self._lock_head, prepare=True)
                c_cmd.execute(self._select_commands, (command_ids,), prepare=True)
                if stream_ids:
                    c_tips.execute(self._select_tips, (stream_ids,), prepare=True)
                head = self._head_from(c_head.fetchone())
                recorded = {r["command_id"]: _row_to_command(r) for r in c_cmd.fetchall()}
                tips = _tips_from(c_tips.fetchall()) if stream_ids else {}
                c_tips.close()
            plan = self._plan(submissions, head, recorded, tips)
            with conn.cursor() as cur:
                if len(plan.rows) >= COPY_THRESHOLD_ROWS:
                    self._copy_rows(cur, plan.rows)  # COPY cannot run in pipeline mode
                with conn.pipeline():
                    if 0 < len(plan.rows) < COPY_THRESHOLD_ROWS:
                        self._insert_rows(cur, plan.rows)
                    if plan.commands:
                        self._write_commands(cur, plan.commands)
                    if plan.rows:
                        last = plan.rows[-1]
                        cur.execute(
                            self._update_head, (last[0], last[9], last[5]), prepare=True
                        )
                        self._notify_channel(cur)
        return plan.results

    def prefetch(
        self, command_ids: Sequence[str], stream_ids: Sequence[str]
    ) -> tuple[dict[str, RecordedCommand], dict[str, list[StoredEvent]]]:
        """The command-log entries of ``command_ids`` and every event of ``stream_ids``,
        read in one round trip (what a command processor needs before deciding a batch)."""
        streams: dict[str, list[StoredEvent]] = {s: [] for s in stream_ids}
        with self.datastore.get_connection() as conn, conn.pipeline():
            with conn.cursor() as c_cmd, conn.cursor() as c_ev:
                c_cmd.execute(self._select_commands, (list(command_ids),), prepare=True)
                if stream_ids:
                    c_ev.execute(self._select_streams, (list(stream_ids),), prepare=True)
                recorded = {r["command_id"]: _row_to_command(r) for r in c_cmd.fetchall()}
                if stream_ids:
                    for row in c_ev.fetchall():
                        streams[row["originator_id"]].append(row_to_event(row))
        return recorded, streams

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
    def _head_from(row: DictRow | None) -> ChainHead:
        if row is None:
            raise AppendFailed("the chain head row is missing: the schema is damaged")
        return ChainHead(row["position"], bytes(row["global_hash"]), row["recorded_at_ns"])

    def _plan(
        self,
        submissions: Sequence[Submission],
        head: ChainHead,
        recorded: dict[str, RecordedCommand],
        tips: dict[str, _StreamTip],
    ) -> BatchPlan:
        now_ns = max(self._clock(), head.recorded_at_ns)
        plan = BatchPlan()
        rows = plan.rows
        position = head.position
        prev_global = head.global_hash
        in_batch: dict[str, RecordedCommand] = {}
        for sub in submissions:
            digest = payload_digest(sub.payload)
            known = recorded.get(sub.command_id) or in_batch.get(sub.command_id)
            if known is not None:
                plan.results.append(AlreadyRecorded(known, known.payload_digest == digest))
                continue
            conflict = _first_conflict(sub, tips)
            if conflict is not None:
                plan.results.append(conflict)
                continue
            first = position + 1 if sub.events else None
            for event in sub.events:
                position += 1
                sid = event.stream_id
                tip = tips.get(sid)
                prev_stream = tip.stream_hash if tip else GENESIS
                digest_e = sha256(
                    encode_event(position, sid, event.version, event.topic, now_ns, event.payload)
                ).digest()
                s_hash = stream_hash(sid, event.version, prev_stream, digest_e)
                g_hash = global_hash(position, prev_global, digest_e)
                rows.append(
                    (position, sid, event.version, event.topic, event.payload, now_ns,
                     prev_stream, s_hash, prev_global, g_hash)
                )
                tips[sid] = _StreamTip(event.version, s_hash)
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
        cur.execute(self._select_commands, (command_ids,), prepare=True)
        return {row["command_id"]: _row_to_command(row) for row in cur.fetchall()}

    def _copy_rows(self, cur: Cursor[DictRow], rows: list[EventRow]) -> None:
        with cur.copy(self._copy_events) as copy:
            copy.set_types(list(_EVENT_TYPES))
            for row in rows:
                copy.write_row(row)

    def _insert_rows(self, cur: Cursor[DictRow], rows: list[EventRow]) -> None:
        cur.execute(self._insert_events_unnest, [list(col) for col in zip(*rows, strict=True)],
                    prepare=True)

    def _write_commands(
        self, cur: Cursor[DictRow], commands: list[tuple[Submission, Committed]]
    ) -> None:
        cur.execute(
            self._insert_commands,
            (
                [s.command_id for s, _ in commands],
                [s.command_type for s, _ in commands],
                [s.payload for s, _ in commands],
                [payload_digest(s.payload) for s, _ in commands],
                [s.accepted for s, _ in commands],
                [s.outcome for s, _ in commands],
                [c.first_position for _, c in commands],
                [c.last_position for _, c in commands],
                [c.recorded_at_ns for _, c in commands],
            ),
            prepare=True,
        )

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
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(self._select_streams, (ids,), prepare=True)
            for row in cur.fetchall():
                found[row["originator_id"]].append(row_to_event(row))
        return found

    def read_from(
        self, after_position: int, limit: int, upto_position: int | None = None
    ) -> list[StoredEvent]:
        """Up to ``limit`` events with ``after_position < position [<= upto_position]``."""
        query = self._select_all + SQL(" WHERE notification_id > %s")
        params: list[int] = [after_position]
        if upto_position is not None:
            query += SQL(" AND notification_id <= %s")
            params.append(upto_position)
        query += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(query, params, prepare=True)
            return [row_to_event(row) for row in cur.fetchall()]

    def iter_all(self, batch_size: int = 10_000, upto_position: int | None = None) -> Iterator[
        list[StoredEvent]
    ]:
        """Every event in position order, in batches (keyset pagination, no long transaction)."""
        after = 0
        while True:
            batch = self.read_from(after, batch_size, upto_position)
            if not batch:
                return
            yield batch
            after = batch[-1].position


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


def _tips_from(rows: Sequence[DictRow]) -> dict[str, _StreamTip]:
    return {
        row["originator_id"]: _StreamTip(row["originator_version"], bytes(row["stream_hash"]))
        for row in rows
    }


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
