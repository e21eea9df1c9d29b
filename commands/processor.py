"""The write side's engine: one decider thread, an aggregate cache, and group commit.

Definition
    Callers (threads or asyncio tasks) :meth:`CommandProcessor.submit` commands and get a
    future. One thread drains the queue in batches and hands each batch to the event store's
    :meth:`~eventstore.recorder.HashChainRecorder.transact`, which takes the writers' lock
    and reads, in one round trip, the command-log entries of the batch's ids and every event
    of the touched streams that the cache does not already hold (for a cached stream: its
    cached version onwards, so writes by other processes are caught up; for a few streams no
    cache holds, their newest snapshot and the events after it). Still under the lock,
    the processor answers known ids from the log and runs each new command's handler on
    copy-on-write clones of the cached aggregates: an accepted command's changes are visible
    to the commands after it in the batch, a rejected command's clones are dropped and its
    rejection is recorded. The whole batch is written and committed at once (one fsync), and
    every future gets its own outcome.

Guarantees
    * A rejected command never affects its neighbours; a command is never applied twice.
    * Decisions are made under the store's lock on current state, so they never conflict,
      also with other processes writing to the same store.
    * If the transaction fails (database down), nothing of the batch is kept, in the database
      or in the cache, and every caller of the batch gets the error.
    * While one batch is in the database, the next one accumulates in the queue: the busier
      the system, the larger the batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson

from commands.context import CommandContext
from domain.invariant import InvariantViolation, invariant
from eventstore.model import (
    AppendResult,
    BatchView,
    Committed,
    NewEvent,
    Prefetched,
    RecordedCommand,
    Snapshot,
    StoredEvent,
    Submission,
)
from eventstore.thread_names import DECIDER, SNAPSHOTS, name_native_thread

log = logging.getLogger(__name__)


def _outcome_bytes(value: Any) -> tuple[bytes, bool]:
    """An outcome's canonical JSON, and whether orjson wrote it: then every integer in it fits
    64 bits and orjson reads it back exactly, four to five times faster than the standard
    library."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS), True
    except TypeError:
        return _stdlib_canonical_json(value), False


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8. Floats are refused upstream.

    orjson writes exactly these bytes (checked against the standard library's encoder on
    random documents) ten times faster; integers past 64 bits, which it does not take (ids
    reach 2^128), fall back to the standard library.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _stdlib_canonical_json(value)


def _stdlib_canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Aggregate(Protocol):
    """What the processor needs of a domain aggregate."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    MUTATES_IN_PLACE: bool

    @property
    def is_final(self) -> bool: ...

    def approx_bytes(self) -> int: ...

    def to_snapshot(self) -> dict[str, Any]: ...

    def clone(self) -> Any: ...

    def has_pending_events(self) -> bool: ...

    def collect_events(self) -> Sequence[Any]: ...


class Store(Protocol):
    """The event-store port."""

    def transact(
        self,
        command_ids: Sequence[str],
        streams_from: Mapping[str, int],
        decide: Callable[[BatchView], Sequence[Submission]],
        *,
        prefetch: Sequence[str] = (),
    ) -> tuple[Sequence[Submission], list[AppendResult]]: ...


# A batch with at most this many streams no cache holds reads them under the lock, in the
# round trip that reads the rest (``Store.transact``'s ``prefetch``); a larger cold set (a
# restart's first batches) is read before the lock, so the lock is never held through a long
# read.
COLD_STREAMS_UNDER_LOCK = 64


class Rejection(Exception):
    """A command refused by a rule. ``code`` is stable and public; ``detail`` is for people."""

    code: str = "rejected"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

    def to_outcome(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.context}


class ExistsWithDifferentPayload(Rejection):
    code = "exists_with_different_payload"


class RefusedWithRecord(Exception):
    """A refusal that leaves a record: the command is answered and logged as refused with
    ``rejection``'s outcome, and the events its handler staged are appended with it (a
    transfer id spent by a failure that depends on state, as in TigerBeetle). A handler raises
    it deliberately; any other rejection appends nothing."""

    def __init__(self, rejection: Exception) -> None:
        super().__init__(str(rejection))
        self.rejection = rejection


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a caller gets back for one command."""

    command_id: str
    accepted: bool
    result: dict[str, Any]
    first_position: int | None
    last_position: int | None
    recorded_at_ns: int
    replayed: bool  # True when this is the stored first outcome of an earlier submission

    @property
    def position(self) -> int | None:
        return self.last_position


@dataclass(frozen=True)
class Command:
    """One command as the processor sees it: id, type, canonical payload, and the body."""

    command_id: str
    command_type: str
    payload: bytes
    body: Any

    @staticmethod
    def create(command_id: str, command_type: str, body: Any, payload: Any) -> Command:
        return Command(command_id, command_type, canonical_json(payload), body)


A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    """Copy-on-write view of the aggregates one command touches."""

    def __init__(self, overlay: Mapping[str, Aggregate | None]) -> None:
        self._overlay = overlay
        self.touched: dict[str, Aggregate] = {}
        self.in_place: set[str] = set()

    def get(self, stream_id: str) -> Any:
        agg = self.touched.get(stream_id)
        if agg is not None:
            return agg
        try:
            base = self._overlay[stream_id]
        except KeyError:
            raise InvariantViolation(
                f"stream {stream_id} was not declared by the command's streams_of()"
            ) from None
        if base is None:
            return None
        if getattr(base, "MUTATES_IN_PLACE", False):
            # Too large to copy per command (an order book): the command works on the cached
            # object itself, which is why such aggregates raise only before their first event.
            self.touched[stream_id] = base
            self.in_place.add(stream_id)
            return base
        clone = base.clone()
        self.touched[stream_id] = clone
        return clone

    def dirty_in_place(self) -> list[str]:
        """In-place aggregates this command changed (they hold uncollected events)."""
        return [s for s in self.in_place if self.touched[s].has_pending_events()]

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate


Handler = Callable[[UnitOfWork, Any], dict[str, Any]]


class _Answer(Protocol):
    """Where the decider puts one command's outcome: a future, or a slot of a submit_all."""

    def done(self) -> bool: ...

    def set_result(self, result: Outcome) -> None: ...

    def set_exception(self, exception: BaseException | None) -> None: ...


class _Gathered:
    """The outcomes of one ``submit_all``, in order. The caller's one future is answered when
    the last command is: with every outcome, or with the first (in order) failure."""

    def __init__(self, n: int) -> None:
        self.future: Future[list[Outcome]] = Future()
        self.outcomes: list[Any] = [None] * n
        self.failures: dict[int, BaseException | None] = {}
        self.remaining = n
        self.lock = threading.Lock()

    def settled(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining:
                return
        if self.failures:
            self.future.set_exception(self.failures[min(self.failures)])
        else:
            self.future.set_result(self.outcomes)


class _Slot:
    """One command of a ``submit_all``: no future, lock and wake-up of its own."""

    __slots__ = ("_done", "gathered", "index")

    def __init__(self, gathered: _Gathered, index: int) -> None:
        self.gathered = gathered
        self.index = index
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, result: Outcome) -> None:
        self._done = True
        self.gathered.outcomes[self.index] = result
        self.gathered.settled()

    def set_exception(self, exception: BaseException | None) -> None:
        self._done = True
        self.gathered.failures[self.index] = exception
        self.gathered.settled()


@dataclass
class _Pending:
    command: Command
    future: _Answer
    attempts: int = 0


class AggregateCache:
    """Aggregates by stream id, bounded by memory, least recently used evicted first.

    ``None`` records a stream known to be empty. Final aggregates (a settled transfer, which
    no command can change) live in a second LRU that is emptied before the first: a ledger's
    working set is its accounts and open holds, not the history of settled transfers.
    ``max_bytes`` bounds the sum of the aggregates' ``approx_bytes()``.
    """

    NONE_BYTES = 96

    def __init__(self, max_entries: int | None = None, *, max_bytes: int = 512 << 20) -> None:
        self._live: OrderedDict[str, tuple[Aggregate | None, int]] = OrderedDict()
        self._final: OrderedDict[str, tuple[Aggregate | None, int]] = OrderedDict()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._live) + len(self._final)

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._live or stream_id in self._final

    def get(self, stream_id: str) -> Aggregate | None:
        for lru in (self._live, self._final):
            entry = lru.get(stream_id)
            if entry is not None:
                lru.move_to_end(stream_id)
                return entry[0]
        raise KeyError(stream_id)

    def lookup(self, stream_id: str) -> tuple[bool, Aggregate | None]:
        """(cached?, aggregate), counting a hit or a miss."""
        if stream_id in self:
            self.hits += 1
            return True, self.get(stream_id)
        self.misses += 1
        return False, None

    def put(self, stream_id: str, aggregate: Aggregate | None) -> None:
        self._drop(stream_id)
        size = self.NONE_BYTES if aggregate is None else aggregate.approx_bytes()
        final = aggregate is not None and aggregate.is_final
        (self._final if final else self._live)[stream_id] = (aggregate, size)
        self.bytes += size
        self._shrink()

    def evict(self, stream_id: str) -> None:
        self._drop(stream_id)

    def clear(self) -> None:
        self._live.clear()
        self._final.clear()
        self.bytes = 0

    def _drop(self, stream_id: str) -> None:
        for lru in (self._live, self._final):
            entry = lru.pop(stream_id, None)
            if entry is not None:
                self.bytes -= entry[1]

    def _shrink(self) -> None:
        while self.bytes > self.max_bytes or (
            self.max_entries is not None and len(self) > self.max_entries
        ):
            lru = self._final if self._final else self._live
            if not lru:
                return
            _, (_, size) = lru.popitem(last=False)
            self.bytes -= size
            self.evictions += 1


class CommandProcessor(Generic[A]):
    """Decides commands one at a time on cached state and commits them in groups."""

    def __init__(
        self,
        store: Store,
        contexts: Sequence[CommandContext],
        *,
        max_batch: int = 1024,
        gather_s: float = 0.0005,
        cache: AggregateCache | None = None,
        snapshot_every: int = 0,
    ) -> None:
        # Under load (the last batch held several commands) wait this long before deciding,
        # so commands submitted in answer to the previous commit share this one.
        self.gather_s = gather_s
        self._last_batch_size = 0
        self._store = store
        self.contexts = tuple(contexts)
        self._context_of_type: dict[str, CommandContext] = {}
        prefixes: dict[str, CommandContext] = {}
        for ctx in self.contexts:
            for command_type in ctx.handlers:
                invariant(
                    command_type not in self._context_of_type,
                    f"command type {command_type!r} is claimed by two contexts",
                )
                self._context_of_type[command_type] = ctx
            for prefix in ctx.stream_prefixes:
                invariant(prefix not in prefixes, f"stream prefix {prefix!r} is claimed twice")
                invariant(
                    prefix.find(":") == len(prefix) - 1,
                    f"stream prefix {prefix!r} must end at its first ':'",
                )
                prefixes[prefix] = ctx
        self._context_of_prefix = prefixes
        # Uncached streams of these kinds are read under the lock with the batch, never
        # prefetched (CommandContext.short_streams).
        self._short_streams = tuple(p for ctx in self.contexts for p in ctx.short_streams)
        self._max_batch = max_batch
        self.cache = cache if cache is not None else AggregateCache()  # an empty one is falsy
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledgerline-decider", daemon=True)
        self._started = False
        self._stopping = False
        self.batches_committed = 0
        self.commands_committed = 0
        # Seconds in the decider's own stages since start: reading uncached streams outside the
        # lock, running handlers, encoding their events and results, answering the callers
        # (the store keeps its own: stage_s).
        self.stage_s: dict[str, float] = dict.fromkeys(
            ("prefetch", "handle", "encode", "answer"), 0.0
        )
        # Snapshots: one per ``snapshot_every`` events of a stream whose context can restore
        # it, written by a thread of its own after the batch committed (0: never).
        self.snapshot_every = snapshot_every
        self.snapshots_loaded = 0
        self.snapshots_refused = 0
        self.snapshots_written = 0
        self._prefetch = getattr(store, "prefetch", None)
        self._write_snapshots = getattr(store, "write_snapshots", None)
        self._snapshot_queue: queue.SimpleQueue[Snapshot | None] = queue.SimpleQueue()
        self._snapshot_thread = threading.Thread(
            target=self._snapshot_writer, name="ledgerline-snapshots", daemon=True
        )

    def context_of_stream(self, stream_id: str) -> CommandContext:
        # Every prefix ends at its first ":" (checked when the contexts are registered): one
        # dict lookup, not a scan of the prefixes.
        ctx = self._context_of_prefix.get(stream_id[: stream_id.find(":") + 1])
        if ctx is None:
            raise InvariantViolation(f"no context owns stream {stream_id}")
        return ctx

    def context_of_command(self, command: Command) -> CommandContext:
        return self._context_of_type[command.command_type]

    # ------------------------------------------------------------------ public API

    def start(self) -> CommandProcessor[A]:
        if not self._started:
            self._started = True
            self._thread.start()
            if self.snapshot_every and self._write_snapshots is not None:
                self._snapshot_thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._started and not self._stopping:
            self._stopping = True
            self._queue.put(None)
            self._thread.join(timeout_s)
            if self._snapshot_thread.is_alive():
                self._snapshot_queue.put(None)
                self._snapshot_thread.join(timeout_s)

    def submit(self, command: Command) -> Future[Outcome]:
        if command.command_type not in self._context_of_type:
            raise ValueError(f"no handler for command type {command.command_type!r}")
        future: Future[Outcome] = Future()
        if self._stopping:
            future.set_exception(RuntimeError("the command processor is stopping"))
            return future
        self._queue.put(_Pending(command, future))
        return future

    def submit_all(self, commands: Sequence[Command]) -> Future[list[Outcome]]:
        """Submit ``commands`` (in this order) and answer once, with every outcome in order, or
        with the first failure: a caller waiting on many commands (a batch request) is woken
        once, not once per command."""
        for command in commands:
            if command.command_type not in self._context_of_type:
                raise ValueError(f"no handler for command type {command.command_type!r}")
        gathered = _Gathered(len(commands))
        if not commands:
            gathered.future.set_result([])
        elif self._stopping:
            gathered.future.set_exception(RuntimeError("the command processor is stopping"))
        else:
            for index, command in enumerate(commands):
                self._queue.put(_Pending(command, _Slot(gathered, index)))
        return gathered.future

    def execute(self, command: Command, timeout_s: float | None = 30.0) -> Outcome:
        return self.submit(command).result(timeout_s)

    # ------------------------------------------------------------------ the decider thread

    def _run(self) -> None:
        name_native_thread(DECIDER)
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._drain(batch)
            if (
                not stop
                and self.gather_s
                and self._last_batch_size >= 4
                and len(batch) < self._last_batch_size  # never above max_batch: _drain caps it
            ):
                # Callers answered by the previous commit are about to submit again: a short
                # wait lets their commands join this batch instead of paying for their own.
                # When as many are here as the last batch held, they are all back: no wait.
                time.sleep(self.gather_s)
                stop = self._drain(batch)
            self._last_batch_size = len(batch)
            try:
                self._process(batch)
            except BaseException as exc:  # never let the decider die silently
                log.exception("command batch failed")
                _fail(batch, exc)
            if stop:
                return

    def _drain(self, batch: list[_Pending]) -> bool:
        """Move queued commands into ``batch``; True when the stop sentinel was seen."""
        while len(batch) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _streams_from(
        self,
        pendings: Sequence[_Pending],
        known: Container[str] = (),
        *,
        timed: bool = True,
        cold: list[str] | None = None,
        cold_limit: int | None = COLD_STREAMS_UNDER_LOCK,
    ) -> dict[str, int]:
        """The streams ``pendings`` declare (but ``known``), each with the version to read it
        from; those no cache holds get their newest snapshot and the events after it first
        (counted as the ``prefetch`` stage when ``timed``), except short ones, read whole under
        the lock: a stream new with its command (a transfer's) costs no round trip of its own.
        Given ``cold``, up to ``cold_limit`` such streams (None: any number) go there instead,
        to be read so under the lock.

        A cached stream re-reads its last event (proving the cache current) and anything
        newer; a stream without a snapshot is read whole.
        """
        wanted: dict[str, None] = {}
        for p in pendings:
            for s in self._context_of_type[p.command.command_type].streams_of(p.command):
                if s not in known:
                    wanted[s] = None
        uncached = [s for s in wanted if not self.cache.lookup(s)[0]]
        if self._short_streams:
            uncached = [s for s in uncached if not s.startswith(self._short_streams)]
        if uncached and cold is not None and (cold_limit is None or len(uncached) <= cold_limit):
            cold.extend(uncached)
            for s in uncached:
                del wanted[s]
        elif uncached and self._prefetch is not None:
            started = time.perf_counter()
            self._install(self._prefetch(uncached))
            if timed:
                self.stage_s["prefetch"] += time.perf_counter() - started
        streams_from: dict[str, int] = {}
        for s in wanted:
            cached = self.cache.get(s) if s in self.cache else None
            streams_from[s] = cached.version if cached is not None else 1
        return streams_from

    def _process(self, batch: list[_Pending]) -> None:
        # Outside the writers' lock: uncached streams from their snapshots. Under the lock,
        # only what other writers appended since is read.
        cold: list[str] = []
        streams_from = self._streams_from(batch, cold=cold)
        round_ = _Round(self, batch)
        try:
            submissions, results = self._store.transact(
                [p.command.command_id for p in batch], streams_from, round_.decide, prefetch=cold
            )
        except Exception as exc:
            for stream_id in round_.staged:
                self.cache.evict(stream_id)
            _fail(batch, exc)
            return
        round_.settle(submissions, results)

    def _install(self, found: Mapping[str, Prefetched], *, current: bool = False) -> set[str]:
        """Put what a prefetch read into the cache: snapshot state plus the events after it.

        When read under the lock (``current``), a stream with nothing at all is cached as
        empty; returned are the streams now cached as they are in the store.
        """
        installed: set[str] = set()
        for stream_id, pre in found.items():
            ctx = self.context_of_stream(stream_id)
            if pre.snapshot_refused:
                self.snapshots_refused += 1
                log.warning("snapshot of %s does not match the chain; ignored", stream_id)
            aggregate: Any = None
            if pre.snapshot is not None:
                if ctx.restore is None:
                    continue  # only the events after the snapshot were read: read it whole
                try:
                    aggregate = ctx.restore(
                        stream_id, pre.snapshot.version, json.loads(pre.snapshot.state)
                    )
                except Exception:  # an unreadable snapshot is only a slower load
                    log.warning("snapshot of %s cannot be restored; ignored", stream_id)
                    self.snapshots_refused += 1
                    continue
                self.snapshots_loaded += 1
            if pre.events:
                aggregate = ctx.rebuild(aggregate, pre.events)
            if aggregate is not None or (current and pre.snapshot is None and not pre.events):
                self.cache.put(stream_id, aggregate)
                installed.add(stream_id)
        return installed

    def _snapshots_due(self, submissions: Sequence[Submission]) -> None:
        """Snapshot every stream whose version crossed a multiple of ``snapshot_every``."""
        every = self.snapshot_every
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for sub in submissions:
            for event in sub.events:
                first.setdefault(event.stream_id, event.version)
                last[event.stream_id] = event.version
        for stream_id, version in last.items():
            if self.context_of_stream(stream_id).restore is None:
                continue
            aggregate = self.cache.get(stream_id) if stream_id in self.cache else None
            if aggregate is None or aggregate.version != version:
                continue
            # An aggregate whose snapshot is costly (a cycle of a million obligations) may ask
            # to be snapshotted less often than the processor's default.
            here = max(every, getattr(aggregate, "SNAPSHOT_EVERY", 0))
            if version // here == (first[stream_id] - 1) // here:
                continue
            state = canonical_json(aggregate.to_snapshot())
            self._snapshot_queue.put(Snapshot(stream_id, version, state))

    def _snapshot_writer(self) -> None:
        name_native_thread(SNAPSHOTS)
        assert self._write_snapshots is not None
        while True:
            first = self._snapshot_queue.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    item = self._snapshot_queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._snapshot_queue.put(None)
                    break
                batch.append(item)
            try:
                self.snapshots_written += self._write_snapshots(batch)
            except Exception:  # snapshots are an optimisation: the next one will do
                log.exception("writing %d snapshot(s) failed", len(batch))

    def _catch_up(self, stream_id: str, events: Sequence[StoredEvent]) -> Aggregate | None:
        """Bring the cached aggregate up to ``events`` (read from the store); the aggregate,
        which the cache may already have evicted again to keep to its memory cap."""
        cached = self.cache.get(stream_id) if stream_id in self.cache else None
        base_version = cached.version if cached is not None else 0
        newer = [e for e in events if e.version > base_version]
        if cached is not None and (not events or events[0].version > base_version):
            # The cached version is not in the store (it was reset under us): reload.
            self.cache.evict(stream_id)
            cached, newer = None, list(events)
        if newer or stream_id not in self.cache:
            ctx = self.context_of_stream(stream_id)
            cached = ctx.rebuild(cached, newer)
            self.cache.put(stream_id, cached)
        return cached

    def _collect(self, uow: UnitOfWork) -> list[NewEvent]:
        events: list[NewEvent] = []
        for agg in uow.touched.values():
            pending = agg.collect_events()
            if not pending:
                continue
            encode = self.context_of_stream(agg.id).encode
            first_version = agg.version - len(pending) + 1
            for offset, event in enumerate(pending):
                topic, payload = encode(event)
                events.append(NewEvent(agg.id, first_version + offset, topic, payload))
        return events

    def _answer_known(self, p: _Pending, known: RecordedCommand) -> Outcome:
        if known.payload_digest == hashlib.sha256(p.command.payload).digest():
            return _replayed(known)
        on_mismatch = self.context_of_command(p.command).on_payload_mismatch or _default_mismatch
        rejection = on_mismatch(known, p.command)
        if rejection is None:
            return _replayed(known)
        return Outcome(
            p.command.command_id,
            False,
            rejection.to_outcome(),
            None,
            None,
            known.recorded_at_ns,
            replayed=True,
        )


class _Round:
    """One batch: decided under the store's lock, settled after the commit."""

    def __init__(self, processor: CommandProcessor[Any], batch: list[_Pending]) -> None:
        self.p = processor
        self.batch = batch
        self.staged: dict[str, Aggregate] = {}
        self.answers: dict[int, Outcome] = {}  # index in batch -> outcome from the log
        self.invalid: dict[str, Outcome] = {}  # command id -> refusal that is not recorded
        self.orjson_outcomes: set[str] = set()  # command ids whose outcome orjson wrote
        self.decided: list[int] = []  # indexes in batch, in submission order
        # Commands from here on joined the batch under the lock (see _join_late).
        self.declared = len(batch)

    def _ensure_current(self, view: BatchView, stream_id: str) -> Aggregate | None:
        """A stream the batch did not declare, or one the cache evicted since it was read:
        read it under the lock (the cache brought up to date too); its aggregate."""
        proc = self.p
        if stream_id not in proc.cache and proc._prefetch is not None:
            # Cold: its newest snapshot and the events after it, rather than the whole
            # stream (a netting cycle found lazily may hold a million events).
            proc._install(proc._prefetch([stream_id]))
        cached = proc.cache.get(stream_id) if stream_id in proc.cache else None
        since = cached.version if cached is not None else 1
        return proc._catch_up(stream_id, view.load({stream_id: since})[stream_id])

    def _join_late(self, view: BatchView, current: set[str]) -> None:
        """Commands submitted while this batch waited for the writers' lock join it.

        Under contention (another process holding the lock), the wait is where callers answered
        by the last commit submit again; deciding them now, rather than in a batch of their own
        after another wait, makes fewer and larger commits. Their command-log entries and
        streams are read in one round trip on the locked transaction (a stream no cache holds
        from its snapshot). A retried transaction reads them again with the rest.
        """
        proc = self.p
        if view.join is None:  # a store that cannot read more on the batch's transaction
            return
        if proc._drain(self.batch):
            proc._queue.put(None)  # stop after this batch, as the decider loop would
        late = self.batch[self.declared :]
        if not late:
            return
        # Under the lock: their reads are part of deciding, not of the prefetch stage, and
        # every stream no cache holds is read from its snapshot in the same round trip.
        cold: list[str] = []
        since = proc._streams_from(late, known=current, timed=False, cold=cold, cold_limit=None)
        joined = view.join([p.command.command_id for p in late], since, cold)
        view.recorded.update(joined.recorded)
        for stream_id, events in joined.events.items():
            proc._catch_up(stream_id, events)
            view.events[stream_id] = events
            current.add(stream_id)
        current |= proc._install(joined.prefetched, current=True)

    def _bring_current(self, view: BatchView, changed_in_place: Sequence[str]) -> set[str]:
        """Bring the cache up to what was read under the lock; the streams now current."""
        proc = self.p
        for stream_id, events in view.events.items():
            proc._catch_up(stream_id, events)
        # Streams read from their snapshots under the lock: current once installed (one whose
        # snapshot this context cannot restore is not, and is read whole when asked for).
        current = set(view.events) | proc._install(view.prefetched, current=True)
        for stream_id in changed_in_place:
            # A retried transaction: the first attempt changed these cached objects themselves;
            # reload them whole from the store (under the lock) before deciding again.
            proc.cache.evict(stream_id)
            proc._catch_up(stream_id, view.load({stream_id: 1})[stream_id])
        return current

    def decide(self, view: BatchView) -> list[Submission]:
        # May run again if the store retries the transaction: start from nothing each time.
        proc = self.p
        changed_in_place = [s for s, a in self.staged.items() if a.MUTATES_IN_PLACE]
        self.staged = {}
        self.answers, self.orjson_outcomes = {}, set()
        self.decided = []
        self.invalid = {}
        current = self._bring_current(view, changed_in_place)
        self._join_late(view, current)

        def ensure_current(stream_id: str) -> Aggregate | None:
            return self._ensure_current(view, stream_id)

        overlay = _Overlay(proc.cache, current, ensure_current)
        submissions: list[Submission] = []
        first_of: set[str] = set()
        for i, p in enumerate(self.batch):
            cmd = p.command
            known = view.recorded.get(cmd.command_id)
            if known is not None:
                self.answers[i] = proc._answer_known(p, known)
                continue
            if cmd.command_id in first_of:
                continue  # the same id twice in one batch: answered from the first's record
            first_of.add(cmd.command_id)
            uow = UnitOfWork(overlay)
            ctx = proc._context_of_type[cmd.command_type]
            started = time.perf_counter()
            accepted = True
            try:
                result = ctx.handlers[cmd.command_type](uow, cmd.body)
            except RefusedWithRecord as exc:
                accepted = False
                result = (ctx.to_outcome or _default_outcome)(exc.rejection)
            except Exception as exc:
                proc.stage_s["handle"] += time.perf_counter() - started
                refused = self._refused(cmd, ctx, uow, exc)
                if refused is not None:
                    submissions.append(refused)
                    self.decided.append(i)
                continue
            handled = time.perf_counter()
            proc.stage_s["handle"] += handled - started
            new_events = proc._collect(uow)
            written = {e.stream_id for e in new_events}
            changed = {s: a for s, a in uow.touched.items() if s in written}
            overlay.stage(changed)
            self.staged.update(changed)
            submissions.append(
                Submission(
                    cmd.command_id,
                    cmd.command_type,
                    cmd.payload,
                    accepted,
                    self._outcome(cmd.command_id, result),
                    new_events,
                    reads=tuple(s for s in uow.touched if s not in written),
                )
            )
            proc.stage_s["encode"] += time.perf_counter() - handled
            self.decided.append(i)
        return submissions

    def _outcome(self, command_id: str, result: Any) -> bytes:
        outcome, by_orjson = _outcome_bytes(result)
        if by_orjson:
            self.orjson_outcomes.add(command_id)
        return outcome

    def _refused(
        self, cmd: Command, ctx: CommandContext, uow: UnitOfWork, exc: Exception
    ) -> Submission | None:
        """A handler raised: the rejection to record, or None for an invalid command (answered,
        not recorded); anything else propagates and fails the batch."""
        dirty = uow.dirty_in_place()
        if dirty:
            # A command raised after changing a shared object: its state can no longer be
            # trusted. Fail the batch; the caller evicts what it staged.
            self.staged.update({s: uow.touched[s] for s in dirty})
            raise InvariantViolation(
                f"command {cmd.command_id} raised {type(exc).__name__} after changing "
                f"{', '.join(dirty)} in place"
            ) from exc
        to_outcome = ctx.to_outcome or _default_outcome
        if isinstance(exc, ctx.rejection_types):
            outcome = canonical_json(to_outcome(exc))
            return Submission(cmd.command_id, cmd.command_type, cmd.payload, False, outcome)
        if isinstance(exc, ctx.invalid_types):
            self.invalid[cmd.command_id] = Outcome(
                cmd.command_id, False, to_outcome(exc), None, None, 0, replayed=False
            )
            return None
        raise exc

    def settle(self, submissions: Sequence[Submission], results: list[AppendResult]) -> None:
        proc = self.p
        started = time.perf_counter()
        committed: dict[str, tuple[Submission, Committed]] = {}
        for i, sub, res in zip(self.decided, submissions, results, strict=True):
            # Decided under the lock, every submission commits; anything else is a bug.
            if not isinstance(res, Committed):
                invariant(False, f"a batch decided under the lock: {res}")
            assert isinstance(res, Committed)  # for the type checker
            self.answers[i] = Outcome(
                res.command_id,
                sub.accepted,
                (orjson.loads if sub.command_id in self.orjson_outcomes else json.loads)(
                    sub.outcome
                ),
                res.first_position,
                res.last_position,
                res.recorded_at_ns,
                replayed=False,
            )
            committed[sub.command_id] = (sub, res)
            proc.commands_committed += 1
        proc.batches_committed += 1
        for stream_id, agg in self.staged.items():
            proc.cache.put(stream_id, agg)
        if proc.snapshot_every and proc._write_snapshots is not None:
            proc._snapshots_due(submissions)
        for i, p in enumerate(self.batch):
            answer = self.answers.get(i) or self.invalid.get(p.command.command_id)
            if answer is None:  # a repeat of an id decided earlier in this batch (rare)
                sub, res = committed[p.command.command_id]
                known = RecordedCommand(
                    sub.command_id,
                    sub.command_type,
                    sub.payload,
                    hashlib.sha256(sub.payload).digest(),
                    sub.accepted,
                    sub.outcome,
                    res.first_position,
                    res.last_position,
                    res.recorded_at_ns,
                )
                answer = proc._answer_known(p, known)
            p.future.set_result(answer)
        proc.stage_s["answer"] += time.perf_counter() - started


def _fail(pendings: Sequence[_Pending], exc: BaseException) -> None:
    for p in pendings:
        if not p.future.done():
            p.future.set_exception(exc)


class _Overlay(Mapping[str, Aggregate | None]):
    """The cache as seen by commands later in the same batch: staged changes on top.

    A stream the batch did not declare is brought up to date from the store on first use
    (``ensure_current``), under the same lock; so is a declared one that the cache evicted
    after it was read (at its memory cap, settled transfers go first, even one this batch
    has just read): its aggregate is then taken from that read, not from the cache.
    """

    def __init__(
        self,
        cache: AggregateCache,
        current: set[str] | None = None,
        ensure_current: Callable[[str], Aggregate | None] | None = None,
    ) -> None:
        self._cache = cache
        self._current = current if current is not None else set()
        self._ensure_current = ensure_current
        self.staged: dict[str, Aggregate] = {}

    def stage(self, touched: Mapping[str, Aggregate]) -> None:
        self.staged.update(touched)

    def __getitem__(self, stream_id: str) -> Aggregate | None:
        if stream_id in self.staged:
            return self.staged[stream_id]
        ensure_current = self._ensure_current
        if stream_id not in self._current and ensure_current is not None:
            self._current.add(stream_id)
            return ensure_current(stream_id)
        if stream_id in self._cache:
            return self._cache.get(stream_id)
        if ensure_current is not None:  # read under the lock, then evicted: read again
            return ensure_current(stream_id)
        raise KeyError(stream_id)

    def get(self, stream_id: str, default: Any = None) -> Any:
        try:
            return self[stream_id]
        except KeyError:
            return default

    def __iter__(self) -> Any:
        return iter(self.staged)

    def __len__(self) -> int:
        return len(self.staged)


def _replayed(known: RecordedCommand) -> Outcome:
    return Outcome(
        known.command_id,
        known.accepted,
        json.loads(known.outcome),
        known.first_position,
        known.last_position,
        known.recorded_at_ns,
        replayed=True,
    )


def _default_outcome(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, Rejection):
        return exc.to_outcome()
    return {"code": getattr(exc, "code", "rejected"), "detail": str(exc)}


def _default_mismatch(known: RecordedCommand, command: Command) -> Rejection:
    return ExistsWithDifferentPayload(
        f"command {command.command_id} was already submitted with a different payload",
        command_id=command.command_id,
    )
