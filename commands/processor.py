"""The write side's engine: one decider thread, an aggregate cache, and group commit.

Definition
    Callers (threads or asyncio tasks) :meth:`CommandProcessor.submit` commands and get a
    future. One thread drains the queue in batches. For each batch it

    1. looks up the batch's command ids in the command log (one query);
    2. loads every aggregate the batch will touch that is not cached (one query);
    3. runs each command's handler against copy-on-write clones of the cached aggregates:
       an accepted command's changes become visible to the commands after it in the batch, a
       rejected command's clones are dropped and its rejection is recorded;
    4. appends the whole batch in one transaction (one fsync) and resolves every future with
       its own outcome.

Guarantees
    * A rejected command never affects its neighbours; a command is never applied twice.
    * The cache stays correct with other writers on the same store: every append re-checks
      stream versions under the store's lock, and a conflict evicts the streams involved and
      re-runs the affected commands on fresh state (bounded retries).
    * If the append fails (database down), nothing of the batch is kept, in the database or in
      the cache, and every caller gets the error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from domain.invariant import InvariantViolation
from eventstore.model import (
    AlreadyRecorded,
    AppendResult,
    Committed,
    NewEvent,
    RecordedCommand,
    StoredEvent,
    Submission,
    VersionConflict,
)

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 5


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8. Floats are refused upstream."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Aggregate(Protocol):
    """What the processor needs of a domain aggregate."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    def clone(self) -> Any: ...

    def collect_events(self) -> Sequence[Any]: ...


class Store(Protocol):
    """The event-store port."""

    def append(self, submissions: Sequence[Submission]) -> list[AppendResult]: ...

    def prefetch(
        self, command_ids: Sequence[str], stream_ids: Sequence[str]
    ) -> tuple[dict[str, RecordedCommand], dict[str, list[StoredEvent]]]: ...


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


class CommandConflict(Exception):
    """Other writers kept changing the command's streams; it was not applied. Retry it."""


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


class EventCodec(Protocol):
    """Translates between domain events/aggregates and stored events."""

    def encode(self, event: Any) -> tuple[str, bytes]: ...

    def rebuild(self, stream_id: str, events: Sequence[StoredEvent]) -> Aggregate | None: ...


class UnitOfWork:
    """Copy-on-write view of the aggregates one command touches."""

    def __init__(self, overlay: Mapping[str, Aggregate | None]) -> None:
        self._overlay = overlay
        self.touched: dict[str, Aggregate] = {}

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
        clone = base.clone()
        self.touched[stream_id] = clone
        return clone

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate


Handler = Callable[[UnitOfWork, Any], dict[str, Any]]


@dataclass
class _Pending:
    command: Command
    future: Future[Outcome]
    attempts: int = 0


class AggregateCache:
    """Bounded LRU of aggregates by stream id; ``None`` records a stream known to be empty."""

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._data: OrderedDict[str, Aggregate | None] = OrderedDict()
        self.max_entries = max_entries

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._data

    def get(self, stream_id: str) -> Aggregate | None:
        agg = self._data.get(stream_id)
        self._data.move_to_end(stream_id)
        return agg

    def put(self, stream_id: str, aggregate: Aggregate | None) -> None:
        self._data[stream_id] = aggregate
        self._data.move_to_end(stream_id)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def evict(self, stream_ids: Sequence[str]) -> None:
        for s in stream_ids:
            self._data.pop(s, None)

    def clear(self) -> None:
        self._data.clear()


@dataclass
class _Decided:
    pending: _Pending
    submission: Submission
    touched: dict[str, Aggregate] = field(default_factory=dict)


class CommandProcessor(Generic[A]):
    """Decides commands one at a time on cached state and commits them in groups."""

    def __init__(
        self,
        store: Store,
        codec: EventCodec,
        handlers: Mapping[str, Handler],
        *,
        streams_of: Callable[[Command], Sequence[str]],
        rejection_types: tuple[type[Exception], ...] = (Rejection,),
        to_outcome: Callable[[Exception], dict[str, Any]] | None = None,
        on_payload_mismatch: Callable[[RecordedCommand, Command], Rejection] | None = None,
        max_batch: int = 512,
        cache: AggregateCache | None = None,
    ) -> None:
        self._store = store
        self._codec = codec
        self._handlers = dict(handlers)
        self._streams_of = streams_of
        self._rejection_types = rejection_types
        self._to_outcome = to_outcome or _default_outcome
        self._on_mismatch = on_payload_mismatch or _default_mismatch
        self._max_batch = max_batch
        self.cache = cache or AggregateCache()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledgerline-decider", daemon=True)
        self._started = False
        self._stopping = False
        self.batches_committed = 0
        self.commands_committed = 0

    # ------------------------------------------------------------------ public API

    def start(self) -> CommandProcessor[A]:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._started and not self._stopping:
            self._stopping = True
            self._queue.put(None)
            self._thread.join(timeout_s)

    def submit(self, command: Command) -> Future[Outcome]:
        if command.command_type not in self._handlers:
            raise ValueError(f"no handler for command type {command.command_type!r}")
        future: Future[Outcome] = Future()
        if self._stopping:
            future.set_exception(RuntimeError("the command processor is stopping"))
            return future
        self._queue.put(_Pending(command, future))
        return future

    def execute(self, command: Command, timeout_s: float | None = 30.0) -> Outcome:
        return self.submit(command).result(timeout_s)

    # ------------------------------------------------------------------ the decider thread

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                self._process(batch)
            except BaseException as exc:  # never let the decider die silently
                log.exception("command batch failed")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
            if stop:
                return

    def _process(self, batch: list[_Pending]) -> None:
        todo = batch
        while todo:
            recorded = self._prefetch(todo)
            fresh: list[_Pending] = []
            for p in todo:
                known = recorded.get(p.command.command_id)
                if known is not None:
                    self._resolve_known(p, known)
                else:
                    fresh.append(p)
            todo = self._decide_and_commit(fresh) if fresh else []

    def _resolve_known(self, p: _Pending, known: RecordedCommand) -> None:
        if known.payload_digest == hashlib.sha256(p.command.payload).digest():
            p.future.set_result(_replayed(known))
        else:
            rejection = self._on_mismatch(known, p.command)
            p.future.set_result(
                Outcome(
                    p.command.command_id,
                    False,
                    rejection.to_outcome(),
                    None,
                    None,
                    known.recorded_at_ns,
                    replayed=True,
                )
            )

    def _prefetch(self, batch: Sequence[_Pending]) -> dict[str, RecordedCommand]:
        """Read the batch's command-log entries and load every uncached stream it touches."""
        wanted: list[str] = []
        seen: set[str] = set()
        for p in batch:
            for s in self._streams_of(p.command):
                if s not in seen and s not in self.cache:
                    seen.add(s)
                    wanted.append(s)
        recorded, streams = self._store.prefetch([p.command.command_id for p in batch], wanted)
        for stream_id, events in streams.items():
            self.cache.put(stream_id, self._codec.rebuild(stream_id, events) if events else None)
        return recorded

    def _decide_and_commit(self, batch: list[_Pending]) -> list[_Pending]:
        overlay = _Overlay(self.cache)
        decided: list[_Decided] = []
        deferred: list[_Pending] = []
        seen_ids: set[str] = set()
        for p in batch:
            cmd = p.command
            if cmd.command_id in seen_ids:
                # The same id twice in one batch: settle the first, then answer the second
                # from the command log in the next round.
                deferred.append(p)
                continue
            seen_ids.add(cmd.command_id)
            uow = UnitOfWork(overlay)
            try:
                result = self._handlers[cmd.command_type](uow, cmd.body)
            except self._rejection_types as exc:
                outcome = canonical_json(self._to_outcome(exc))
                decided.append(
                    _Decided(p, Submission(cmd.command_id, cmd.command_type, cmd.payload,
                                           False, outcome))
                )
                continue
            events = self._collect(uow)
            decided.append(
                _Decided(
                    p,
                    Submission(cmd.command_id, cmd.command_type, cmd.payload, True,
                               canonical_json(result), events),
                    uow.touched,
                )
            )
            overlay.stage(uow.touched)
        try:
            results = self._store.append([d.submission for d in decided])
        except Exception as exc:
            self.cache.evict(list(overlay.staged))
            for d in decided:
                d.pending.future.set_exception(exc)
            for p in deferred:
                p.future.set_exception(exc)
            return []
        return self._settle(decided, results, overlay) + deferred

    def _collect(self, uow: UnitOfWork) -> list[NewEvent]:
        events: list[NewEvent] = []
        for agg in uow.touched.values():
            pending = agg.collect_events()
            first_version = agg.version - len(pending) + 1
            for offset, event in enumerate(pending):
                topic, payload = self._codec.encode(event)
                events.append(NewEvent(agg.id, first_version + offset, topic, payload))
        return events

    def _settle(
        self, decided: list[_Decided], results: list[AppendResult], overlay: _Overlay
    ) -> list[_Pending]:
        retry: list[_Pending] = []
        clean = True
        for d, res in zip(decided, results, strict=True):
            if isinstance(res, Committed):
                d.pending.future.set_result(
                    Outcome(
                        res.command_id,
                        d.submission.accepted,
                        json.loads(d.submission.outcome),
                        res.first_position,
                        res.last_position,
                        res.recorded_at_ns,
                        replayed=False,
                    )
                )
                self.commands_committed += 1
            elif isinstance(res, AlreadyRecorded):
                if d.submission.events:
                    clean = False  # another writer recorded this id: our staged state is void
                if res.same_payload:
                    d.pending.future.set_result(_replayed(res.existing))
                else:
                    self._resolve_known(d.pending, res.existing)
            else:
                clean = False
                d.pending.attempts += 1
                if d.pending.attempts > MAX_CONFLICT_RETRIES:
                    d.pending.future.set_exception(
                        CommandConflict(
                            f"stream {res.stream_id} kept changing under command "
                            f"{res.command_id}; retry it"
                        )
                    )
                else:
                    retry.append(d.pending)
        self.batches_committed += 1
        if clean:
            for stream_id, agg in overlay.staged.items():
                self.cache.put(stream_id, agg)
        else:
            self.cache.evict(list(overlay.staged))
            self.cache.evict([s for p in retry for s in self._streams_of(p.command)])
        return retry


class _Overlay(Mapping[str, Aggregate | None]):
    """The cache as seen by commands later in the same batch: staged changes on top."""

    def __init__(self, cache: AggregateCache) -> None:
        self._cache = cache
        self.staged: dict[str, Aggregate] = {}

    def stage(self, touched: Mapping[str, Aggregate]) -> None:
        self.staged.update(touched)

    def __getitem__(self, stream_id: str) -> Aggregate | None:
        if stream_id in self.staged:
            return self.staged[stream_id]
        if stream_id in self._cache:
            return self._cache.get(stream_id)
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
