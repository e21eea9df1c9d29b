"""Values exchanged with the event store: what a writer submits and what it gets back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

# The one helper the store takes from the domain: frozen values built at a mutable one's cost.
from domain.frozen import fast_frozen


@fast_frozen
@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its stream, the version it must get, its topic and payload bytes.

    The payload bytes are produced once by the writer and stored and hashed exactly as given.
    """

    stream_id: str
    version: int
    topic: str
    payload: bytes


@fast_frozen
@dataclass(frozen=True, slots=True)
class Submission:
    """One command's effect: its log record plus the events it emits (none when rejected).

    ``payload`` is the command's canonical bytes; ``outcome`` its canonical result bytes
    (the accepted result, or the rejection). Both are stored in the command log so that a
    retry with the same id returns exactly the first outcome. ``reads`` names the streams the
    decision depended on besides those it writes: if an earlier submission of the same batch
    that touched one of them is not written, this one is not written either.
    """

    command_id: str
    command_type: str
    payload: bytes
    accepted: bool
    outcome: bytes
    events: Sequence[NewEvent] = ()
    reads: Sequence[str] = ()  # streams the decision looked at without writing


@fast_frozen
@dataclass(frozen=True, slots=True)
class Committed:
    """The submission is durable. Positions are ``None`` for a command without events."""

    command_id: str
    first_position: int | None
    last_position: int | None
    recorded_at_ns: int


@fast_frozen
@dataclass(frozen=True, slots=True)
class RecordedCommand:
    """A command id already present in the command log, with its first outcome."""

    command_id: str
    command_type: str
    payload: bytes
    payload_digest: bytes
    accepted: bool
    outcome: bytes
    first_position: int | None
    last_position: int | None
    recorded_at_ns: int


@dataclass(frozen=True, slots=True)
class AlreadyRecorded:
    """The command id was already in the log: nothing was written for this submission.

    ``same_payload`` tells a true retry (return the first outcome) from a conflicting reuse
    of the id (``exists_with_different_payload``).
    """

    existing: RecordedCommand
    same_payload: bool


@dataclass(frozen=True, slots=True)
class VersionConflict:
    """Another writer got to a stream first: nothing was written for this submission."""

    command_id: str
    stream_id: str
    attempted_version: int
    current_version: int


AppendResult = Committed | AlreadyRecorded | VersionConflict


@fast_frozen
@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the event log, with both chain links."""

    position: int
    stream_id: str
    version: int
    topic: str
    payload: bytes
    recorded_at_ns: int
    prev_stream_hash: bytes
    stream_hash: bytes
    prev_global_hash: bytes
    global_hash: bytes


@fast_frozen
@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state right after ``version`` of its stream, as stored."""

    stream_id: str
    version: int
    state: bytes


@dataclass(frozen=True, slots=True)
class Prefetched:
    """What a loader read of one stream outside the writers' lock: its newest snapshot that
    the chain confirms (if any) and every event after it (or after nothing)."""

    snapshot: Snapshot | None
    events: list[StoredEvent]
    snapshot_refused: bool = False  # the newest snapshot did not match the chain: ignored


@dataclass(frozen=True, slots=True)
class ChainHead:
    position: int
    global_hash: bytes
    recorded_at_ns: int


@dataclass(slots=True)
class _StreamTip:
    version: int
    stream_hash: bytes


def _no_loading(streams_from: Mapping[str, int]) -> dict[str, list[StoredEvent]]:
    raise LookupError(f"streams {list(streams_from)} were not read for this batch")


@dataclass(frozen=True, slots=True)
class Joined:
    """What :attr:`BatchView.join` read for commands joining a batch under the lock: their
    command-log entries, the streams asked for from a version on, and the streams asked to be
    read from their snapshots (current, as ``BatchView.prefetched``)."""

    recorded: dict[str, RecordedCommand]
    events: dict[str, list[StoredEvent]]
    prefetched: dict[str, Prefetched]


@dataclass(frozen=True, slots=True)
class BatchView:
    """What a writer sees under the lock before deciding a batch.

    ``load`` reads more streams (each from a version on, as ``transact``'s ``streams_from``)
    on the same locked transaction, for decisions that discover what they need as they go
    (a post names a transfer, the transfer its accounts). ``join``, where the store offers
    it, reads for commands that arrived while the batch waited for the lock, so they can join
    it: their command-log entries, streams from a version on, and streams from their newest
    snapshots, all in one round trip on the same transaction.
    """

    recorded: dict[str, RecordedCommand]
    events: dict[str, list[StoredEvent]]
    load: Callable[[Mapping[str, int]], dict[str, list[StoredEvent]]] = _no_loading
    join: Callable[[Sequence[str], Mapping[str, int], Sequence[str]], Joined] | None = None
    # The streams ``transact`` was asked to prefetch, read under the lock (current).
    prefetched: dict[str, Prefetched] = field(default_factory=dict)


# (position, stream_id, version, topic, payload, recorded_at_ns,
#  prev_stream_hash, stream_hash, prev_global_hash, global_hash): the events table's columns
EventRow = tuple[int, str, int, str, bytes, int, bytes, bytes, bytes, bytes]


@dataclass(slots=True)
class BatchPlan:
    """What one transaction will write, worked out under the lock before any insert."""

    results: list[AppendResult] = field(default_factory=list)
    rows: list[EventRow] = field(default_factory=list)
    commands: list[tuple[Submission, Committed]] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)  # RFC 9162 leaf hash of each row
