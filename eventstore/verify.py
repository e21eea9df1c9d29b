"""Walk the whole log and prove it intact, from the stored columns alone, in bounded memory.

Definition
    For every row in position order, recompute the event's canonical bytes and digest, then
    check: positions run 1, 2, 3, ... with no hole; each row links to the previous row's
    global hash and its own global hash matches; each stream's versions run 1, 2, 3, ... and
    each row links to the previous stream hash and its own stream hash matches. The chain-head
    row must name the last row's position and global hash. Finally every stored Merkle tile
    (``eventstore.tiles``) must be exactly the tile the events imply, and every tile the
    events imply must be stored.

    The previous event of a stream comes from a bounded cache of recently seen streams
    (:class:`ChainVerifier`'s ``cache_streams``); for a stream not in it, from one indexed
    query per batch (the stream's highest version below the event's). Memory is
    O(batch size + cache size + log n), whatever the length of the log.

Guarantees
    Detects an edited payload or field, a deleted, inserted or swapped row, an edited hash and
    an edited, missing or extra tile, however the edit was made (including by a superuser with
    triggers disabled), except a rewrite of the whole suffix together with the head row and
    the tiles: that needs a signed checkpoint held outside the database.

Constraints
    A second event with version 1 for an existing stream is refused by the primary key
    ``(stream, version)``; the verifier relies on it beyond its cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from psycopg.rows import tuple_row

from eventstore import canonical
from eventstore.model import StoredEvent
from eventstore.recorder import HashChainRecorder
from eventstore.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    FullTile,
    TileBuilder,
    read_tiles,
    split_hashes,
    stored_tile_counts,
)

DEFAULT_BATCH_SIZE = 10_000
DEFAULT_CACHE_STREAMS = 100_000

# (stream, version) -> (version, stream hash, position) of the stream's latest event below it
Lookup = Callable[[Sequence[tuple[str, int]]], Mapping[tuple[str, int], tuple[int, bytes, int]]]


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
    tiles_checked: int = 0

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _no_lookup(pairs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, bytes, int]]:
    return {}


class ChainVerifier:
    """Incremental verifier: feed batches in position order, read the first break.

    ``lookup`` finds the latest earlier event of streams the cache no longer holds (see
    :func:`stream_lookup`); without one, a stream evicted from the cache is reported as
    broken, so in-memory use must keep ``cache_streams`` above the number of streams.
    """

    def __init__(
        self, lookup: Lookup = _no_lookup, *, cache_streams: int = DEFAULT_CACHE_STREAMS
    ) -> None:
        self.position = 0
        self.global_hash = canonical.GENESIS
        self.streams_started = 0
        self.first_break: ChainBreak | None = None
        self._lookup = lookup
        self._capacity = max(1, cache_streams)
        self._recent: OrderedDict[str, tuple[int, bytes, int]] = OrderedDict()

    def feed_batch(
        self, events: Sequence[StoredEvent], digests: Sequence[bytes] | None = None
    ) -> bool:
        """Check a batch of rows; return False (and remember why) at the first break."""
        wanted: list[tuple[str, int]] = []
        in_batch: set[str] = set()
        for e in events:
            if e.version > 1 and e.stream_id not in self._recent and e.stream_id not in in_batch:
                wanted.append((e.stream_id, e.version))
            in_batch.add(e.stream_id)
        earlier = self._lookup(wanted) if wanted else {}
        for i, e in enumerate(events):
            if not self._feed(e, None if digests is None else digests[i], earlier):
                return False
        return True

    def feed(self, e: StoredEvent, digest: bytes | None = None) -> bool:
        """Check one row (see :meth:`feed_batch`)."""
        return self.feed_batch([e], None if digest is None else [digest])

    def _feed(
        self,
        e: StoredEvent,
        digest: bytes | None,
        earlier: Mapping[tuple[str, int], tuple[int, bytes, int]],
    ) -> bool:
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
        recent = self._recent.get(e.stream_id)
        if recent is None and e.version > 1:
            key = (e.stream_id, e.version)
            # Looked up before the batch; or, if the cache dropped the stream during it, now.
            recent = earlier[key] if key in earlier else self._lookup([key]).get(key)
        last_version, last_hash, last_position = recent or (0, canonical.GENESIS, 0)
        if e.version != last_version + 1:
            return self._break(
                e.position,
                e.stream_id,
                f"stream version {e.version} does not follow version {last_version}",
            )
        if last_position >= e.position:
            return self._break(
                e.position,
                e.stream_id,
                f"stream version {e.version} precedes version {last_version}, which is "
                f"recorded later at position {last_position}",
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
        if e.version == 1:
            self.streams_started += 1
        cache = self._recent
        cache[e.stream_id] = (e.version, e.stream_hash, e.position)
        cache.move_to_end(e.stream_id)
        if len(cache) > self._capacity:
            cache.popitem(last=False)
        return True

    def _break(self, position: int, stream_id: str | None, reason: str) -> bool:
        self.first_break = ChainBreak(position, stream_id, reason)
        return False


def stream_lookup(recorder: HashChainRecorder) -> Lookup:
    """For each ``(stream, version)``, the stream's highest version below it: one query,
    one primary-key probe per stream."""
    table = f'"{recorder.datastore.schema}".events'

    def lookup(
        pairs: Sequence[tuple[str, int]],
    ) -> dict[tuple[str, int], tuple[int, bytes, int]]:
        with (
            recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            cur.execute(
                "SELECT w.stream_id, w.version, p.originator_version, p.stream_hash,"
                " p.notification_id FROM unnest(%s::text[], %s::int8[]) AS w(stream_id, version)"
                " CROSS JOIN LATERAL (SELECT originator_version, stream_hash, notification_id"
                f"  FROM {table} e WHERE e.originator_id = w.stream_id"
                "  AND e.originator_version < w.version"
                "  ORDER BY e.originator_version DESC LIMIT 1) p",
                ([p[0] for p in pairs], [p[1] for p in pairs]),
            )
            return {(r[0], int(r[1])): (int(r[2]), bytes(r[3]), int(r[4])) for r in cur}

    return lookup


class TileChecker:
    """Rebuilds the tiles from verified leaves and compares them with the stored ones."""

    def __init__(self, recorder: HashChainRecorder) -> None:
        self._recorder = recorder
        self.builder = TileBuilder()
        self.checked = 0
        self.first_break: ChainBreak | None = None

    def feed(self, leaves: Sequence[bytes]) -> bool:
        first_position = self.builder.size + 1
        full: list[FullTile] = []
        self.builder.extend(leaves, full)
        if not full:
            return True
        schema = self._recorder.datastore.schema
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            found = read_tiles(cur, schema, [(t.level, t.index) for t in full])
        for tile in full:
            stored = found.get((tile.level, tile.index))
            span = TILE_WIDTH**tile.level  # leaves under each hash of the tile
            start = tile.index * TILE_WIDTH * span + 1
            if stored is None:
                return self._break(
                    max(start, first_position),
                    f"Merkle tile {tile.level}/{tile.index} is missing from merkle_tiles",
                )
            if stored[0] != tile.hashes:
                ours, theirs = split_hashes(tile.hashes), split_hashes(stored[0])
                i = next(k for k in range(TILE_WIDTH) if ours[k] != theirs[k])
                return self._break(
                    start + i * span,
                    f"Merkle tile {tile.level}/{tile.index} does not match the events "
                    f"(hash {i} differs)",
                )
            if stored[1] != tile.root:
                return self._break(
                    start, f"Merkle tile {tile.level}/{tile.index} has a wrong root column"
                )
            self.checked += 1
        return True

    def finish(self) -> bool:
        """No tile may be stored beyond those the verified events imply."""
        size = self.builder.size
        with (
            self._recorder.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            counts = stored_tile_counts(cur, self._recorder.datastore.schema)
        for level, (count, end) in sorted(counts.items()):
            expected = size >> (TILE_HEIGHT * (level + 1))
            if count > expected or end > expected:
                return self._break(
                    size + 1,
                    f"merkle_tiles holds {count} tiles of level {level} but the log's "
                    f"{size} events make {expected}: tiles were added outside the store",
                )
        return True

    def _break(self, position: int, reason: str) -> bool:
        self.first_break = ChainBreak(position, None, reason)
        return False


def verify_store(
    recorder: HashChainRecorder,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    cache_streams: int = DEFAULT_CACHE_STREAMS,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify every event in ``recorder``, its chain head and its Merkle tiles
    (``progress(n)`` hears of every batch of ``n`` events checked)."""
    checker = ChainVerifier(stream_lookup(recorder), cache_streams=cache_streams)
    tiles = TileChecker(recorder)
    leaf_prefix = b"\x00"
    for batch in recorder.iter_all(batch_size):
        data = [
            canonical.encode_event(
                e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
            )
            for e in batch
        ]
        if not checker.feed_batch(batch, [canonical.sha256(d) for d in data]):
            break
        if not tiles.feed([canonical.sha256(leaf_prefix + d) for d in data]):
            break
        if progress is not None:
            progress(len(batch))
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
    first_break = checker.first_break or tiles.first_break
    if first_break is None and not tiles.finish():
        first_break = tiles.first_break
    return VerifyReport(
        events_checked=checker.position,
        streams_checked=checker.streams_started,
        head_position=head.position,
        head_hash=head.global_hash,
        first_break=first_break,
        tiles_checked=tiles.checked,
    )
