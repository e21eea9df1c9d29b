"""The log half of replay: every chain link and the Merkle root, checked in one pass.

Definition
    :func:`verify_log` reads the first ``upto`` events in position order and checks each
    event's links in both chains (``eventstore.verify.ChainVerifier``) while it folds the RFC
    9162 leaves into a Merkle frontier, comparing the root with a stored checkpoint when the
    frontier reaches its size.

Guarantees
    Memory is bounded whatever the log's length: the verifier's stream cache, one batch of
    events and the frontier. The module imports the event store and the Merkle code only:
    replay runs it in a spawned process, whose start-up is the import of this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import sha256

from eventstore.canonical import encode_event, merkle_leaf_hash
from eventstore.prefetch import prefetched
from eventstore.store import EventStore
from eventstore.verify import ChainBreak, ChainVerifier, stream_lookup
from replay.merkle import Frontier

# Events per read: memory is this many events (in every process), whatever the log's length;
# larger batches cost memory without reading faster.
REPLAY_BATCH = 10_000


@dataclass(frozen=True)
class LogCheck:
    """What verifying the log up to a position found (computed in a worker process)."""

    events: int
    chain_break: ChainBreak | None
    merkle_root: bytes
    checkpoint_matches: bool | None


def verify_log(
    url: str,
    upto: int,
    checkpoint_size: int | None,
    checkpoint_root: bytes | None,
    batch_size: int = REPLAY_BATCH,
) -> LogCheck:
    """Every chain link and the RFC 9162 root of the first ``upto`` events, in bounded memory
    (the verifier's stream cache, one batch of events and the Merkle frontier)."""
    frontier = Frontier()
    matches: bool | None = None
    events = 0
    with EventStore(url, pool_size=2, run_migrations=False) as store:
        verifier = ChainVerifier(stream_lookup(store.recorder))
        for batch in prefetched(store.recorder.iter_all(batch_size, upto_position=upto)):
            data = [
                encode_event(
                    e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
                )
                for e in batch
            ]
            if verifier.first_break is None:
                verifier.feed_batch(batch, [sha256(d).digest() for d in data])
            for d in data:
                frontier.append(merkle_leaf_hash(d))
                if frontier.size == checkpoint_size:
                    matches = frontier.root() == checkpoint_root
            events += len(batch)
    return LogCheck(events, verifier.first_break, frontier.root(), matches)
