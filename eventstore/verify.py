"""Walk the whole log and prove it intact, from the stored columns alone.

Definition
    For every row in position order, recompute the event's canonical bytes and digest, then
    check: positions run 1, 2, 3, ... with no hole; each row links to the previous row's
    global hash and its own global hash matches; each stream's versions run 1, 2, 3, ... and
    each row links to the previous stream hash and its own stream hash matches. Finally the
    chain-head row must name the last row's position and global hash.

Guarantees
    Detects an edited payload or field, a deleted, inserted or swapped row and an edited hash,
    however the edit was made (including by a superuser with triggers disabled), except a
    rewrite of the whole suffix together with the head row: that needs a signed checkpoint held
    outside the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore import canonical
from eventstore.model import StoredEvent
from eventstore.recorder import HashChainRecorder


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place the log stops proving itself."""

    position: int
    stream_id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"position {self.position}"
        if self.stream_id is not None:
            where += f" (stream {self.stream_id})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    events_checked: int
    streams_checked: int
    head_position: int
    head_hash: bytes
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


class ChainVerifier:
    """Incremental verifier: feed rows in position order, read the first break."""

    def __init__(self) -> None:
        self.position = 0
        self.global_hash = canonical.GENESIS
        self.streams: dict[str, tuple[int, bytes]] = {}
        self.first_break: ChainBreak | None = None

    def feed(self, e: StoredEvent, digest: bytes | None = None) -> bool:
        """Check one row; return False (and remember why) at the first break.

        ``digest`` may pass the SHA-256 of the event's canonical bytes when the caller has
        already computed them (a replay also needs them for the Merkle leaf).
        """
        expected = self.position + 1
        if e.position != expected:
            reason = (
                f"position {expected} is missing (the next stored event is at {e.position})"
                if e.position > expected
                else f"position {e.position} appears out of order after {self.position}"
            )
            return self._break(expected, e.stream_id, reason)
        if digest is None:
            digest = canonical.sha256(
                canonical.encode_event(
                    e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
                )
            )
        if e.prev_global_hash != self.global_hash:
            return self._break(e.position, e.stream_id, "does not link to the previous event")
        if canonical.global_hash(e.position, e.prev_global_hash, digest) != e.global_hash:
            return self._break(
                e.position, e.stream_id, "global hash does not match the event's contents"
            )
        last_version, last_hash = self.streams.get(e.stream_id, (0, canonical.GENESIS))
        if e.version != last_version + 1:
            return self._break(
                e.position,
                e.stream_id,
                f"stream version {e.version} does not follow version {last_version}",
            )
        if e.prev_stream_hash != last_hash:
            return self._break(
                e.position, e.stream_id, "does not link to the previous event of its stream"
            )
        if canonical.stream_hash(e.stream_id, e.version, last_hash, digest) != e.stream_hash:
            return self._break(
                e.position, e.stream_id, "stream hash does not match the event's contents"
            )
        self.position = e.position
        self.global_hash = e.global_hash
        self.streams[e.stream_id] = (e.version, e.stream_hash)
        return True

    def _break(self, position: int, stream_id: str | None, reason: str) -> bool:
        self.first_break = ChainBreak(position, stream_id, reason)
        return False


def verify_store(recorder: HashChainRecorder, batch_size: int = 20_000) -> VerifyReport:
    """Verify every event in ``recorder`` and its chain head."""
    checker = ChainVerifier()
    for batch in recorder.iter_all(batch_size):
        if not all(checker.feed(e) for e in batch):
            break
    head = recorder.head()
    if checker.first_break is None and (
        head.position != checker.position or head.global_hash != checker.global_hash
    ):
        if head.position > checker.position:
            reason = (
                f"the chain head records {head.position} events but the log ends at "
                f"{checker.position}: events were removed"
            )
            checker.first_break = ChainBreak(checker.position + 1, None, reason)
        elif head.position == checker.position:
            reason = "the chain head's hash does not match the last event's global hash"
            checker.first_break = ChainBreak(head.position, None, reason)
        else:
            reason = (
                f"the log continues past the recorded chain head ({head.position}): "
                "events were added outside the store, or the head was edited"
            )
            checker.first_break = ChainBreak(head.position + 1, None, reason)
    return VerifyReport(
        events_checked=checker.position,
        streams_checked=len(checker.streams),
        head_position=head.position,
        head_hash=head.global_hash,
        first_break=checker.first_break,
    )
