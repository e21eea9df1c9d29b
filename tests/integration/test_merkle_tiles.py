"""The event store keeps its Merkle tree as C2SP tiles, written with the events that fill them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from psycopg.rows import tuple_row

from eventstore import canonical
from eventstore.model import NewEvent, Submission
from eventstore.store import EventStore
from eventstore.tiles import (
    TileBuilder,
    builder_at,
    catch_up,
    iter_tile_keys,
    load_builder,
    read_tiles,
    split_hashes,
)
from eventstore.verify import verify_store
from replay.merkle import MerkleTree
from replay.tiles import MemoryTiles, TiledTree


def append_events(store: EventStore, count: int, *, seed: int = 1, tag: str = "a") -> None:
    """``count`` events over a few streams, in batches of random sizes (1 to 700)."""
    rng = random.Random(seed)
    versions: dict[str, int] = {}
    written = 0
    batch_no = 0
    while written < count:
        size = min(count - written, rng.randint(1, 700))
        events = []
        for _ in range(size):
            stream = f"{tag}-{rng.randrange(20)}"
            versions[stream] = versions.get(stream, 0) + 1
            events.append(NewEvent(stream, versions[stream], "t.Ev.v1", f"p{written}".encode()))
            written += 1
        store.recorder.append([Submission(f"{tag}-{batch_no}", "t", b"", True, b"{}", events)])
        batch_no += 1


def log_leaves(store: EventStore) -> list[bytes]:
    return [
        canonical.merkle_leaf_hash(
            canonical.encode_event(
                e.position, e.stream_id, e.version, e.topic, e.recorded_at_ns, e.payload
            )
        )
        for batch in store.recorder.iter_all(10_000)
        for e in batch
    ]


def stored(store: EventStore) -> dict[tuple[int, int], tuple[bytes, bytes]]:
    with store.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        cur.execute("SELECT level, idx FROM ledgerline.merkle_tiles")
        keys = [(int(r[0]), int(r[1])) for r in cur.fetchall()]
        return read_tiles(cur, "ledgerline", keys)


def test_every_commit_leaves_exactly_the_full_tiles_its_events_imply(store: EventStore) -> None:
    append_events(store, 1800)
    leaves = log_leaves(store)
    memory = MemoryTiles(leaves)
    tiles = stored(store)
    assert sorted(tiles) == list(iter_tile_keys(len(leaves)))
    for (level, index), (hashes, _root) in tiles.items():
        assert split_hashes(hashes) == memory.full_tile(level, index)
    tiled = TiledTree.of_store(store.recorder)
    reference = MerkleTree(leaves)
    for size in (1, 255, 256, 257, 1000, 1800):
        assert tiled.root(size) == reference.root(size)
        assert tiled.inclusion_proof(size - 1, size) == reference.inclusion_proof(size - 1, size)
        assert tiled.consistency_proof(size, 1800) == reference.consistency_proof(size, 1800)


def test_the_builder_loaded_from_the_table_equals_the_one_built_in_memory(
    store: EventStore,
) -> None:
    append_events(store, 1300)
    leaves = log_leaves(store)
    with store.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        for size in (0, 1, 255, 256, 511, 512, 1300):
            expected = TileBuilder()
            expected.extend(leaves[:size], [])
            loaded = load_builder(cur, "ledgerline", size)
            assert (loaded.size, loaded.levels) == (expected.size, expected.levels)


def test_two_stores_writing_alternately_keep_one_consistent_tree(db_url: str) -> None:
    with EventStore(db_url, pool_size=2) as first, EventStore(db_url, pool_size=2) as second:
        for round_no in range(6):
            append_events(first, 97, seed=round_no, tag=f"f{round_no}")
            append_events(second, 131, seed=round_no, tag=f"s{round_no}")
        leaves = log_leaves(first)
        assert sorted(stored(first)) == list(iter_tile_keys(len(leaves)))
        assert TiledTree.of_store(first.recorder).root() == MerkleTree(leaves).root()


def test_a_store_written_without_tiles_is_caught_up_in_batches(db_url: str) -> None:
    with EventStore(db_url, pool_size=2, maintain_tiles=False) as old:
        append_events(old, 1500)
        assert stored(old) == {}
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert catch_up(conn, "ledgerline", batch_size=300) == 5
        assert catch_up(conn, "ledgerline", batch_size=300) == 0
    with EventStore(db_url, pool_size=2) as store:
        append_events(store, 600, tag="b")  # the writer continues from the caught-up tiles
        leaves = log_leaves(store)
        assert sorted(stored(store)) == list(iter_tile_keys(len(leaves)))
        assert TiledTree.of_store(store.recorder).root() == MerkleTree(leaves).root()
        assert verify_store(store.recorder).ok


def test_a_writer_fills_the_missing_tiles_itself_if_nobody_caught_up(db_url: str) -> None:
    with EventStore(db_url, pool_size=2, maintain_tiles=False) as old:
        append_events(old, 900)
    with EventStore(db_url, pool_size=2) as store:
        append_events(store, 10, tag="b")
        leaves = log_leaves(store)
        assert sorted(stored(store)) == list(iter_tile_keys(len(leaves)))
        with store.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            builder, inserted = builder_at(c, "ledgerline", len(leaves))
        assert inserted == 0 and builder.size == len(leaves)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledgerline.merkle_tiles SET root = sha256(root)",
        "DELETE FROM ledgerline.merkle_tiles",
        "TRUNCATE ledgerline.merkle_tiles",
    ],
)
def test_tiles_are_append_only_for_everyone(
    statement: str, store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    append_events(store, 300)
    with store.datastore.get_connection() as conn, pytest.raises(psycopg.Error) as info:
        conn.execute(statement.encode())
    assert "permission denied" in str(info.value) or "append-only" in str(info.value)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        superuser.execute(statement.encode())
    assert len(stored(store)) == 1


def _without_triggers(conn: psycopg.Connection[tuple[object, ...]], statement: str) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(statement.encode())


@pytest.mark.parametrize(
    ("statement", "position", "reason"),
    [
        (
            "UPDATE ledgerline.merkle_tiles SET hashes = overlay(hashes placing"
            " sha256(substring(hashes from 321 for 32)) from 321) WHERE level = 0 AND idx = 1",
            256 + 11,
            "Merkle tile 0/1 does not match the events (hash 10 differs)",
        ),
        (
            "DELETE FROM ledgerline.merkle_tiles WHERE level = 0 AND idx = 2",
            513,
            "Merkle tile 0/2 is missing",
        ),
        (
            "UPDATE ledgerline.merkle_tiles SET root = sha256(root) WHERE level = 0 AND idx = 0",
            1,
            "wrong root column",
        ),
        (
            "INSERT INTO ledgerline.merkle_tiles SELECT 0, 99, hashes, root"
            " FROM ledgerline.merkle_tiles WHERE level = 0 AND idx = 0",
            1001,
            "tiles were added outside the store",
        ),
    ],
    ids=["edited hash", "deleted tile", "edited root", "extra tile"],
)
def test_verify_names_a_tampered_tile(
    statement: str,
    position: int,
    reason: str,
    store: EventStore,
    superuser: psycopg.Connection[tuple[object, ...]],
) -> None:
    append_events(store, 1000)
    assert verify_store(store.recorder).tiles_checked == 3
    _without_triggers(superuser, statement)
    report = verify_store(store.recorder)
    assert report.first_break is not None
    assert report.first_break.position == position
    assert reason in report.first_break.reason


def test_verify_holds_only_a_bounded_cache_of_streams_and_still_checks_every_link(
    store: EventStore, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    append_events(store, 2000, tag="x")  # 20 streams, ~100 events each
    report = verify_store(store.recorder, batch_size=97, cache_streams=3)
    assert report.ok and report.events_checked == 2000 and report.streams_checked == 20
    # A stream link broken far from the cache's reach is still found (position 1500's stream).
    row = superuser.execute(
        "SELECT originator_id, originator_version FROM ledgerline.events"
        " WHERE notification_id = 1500"
    ).fetchone()
    assert row is not None
    _without_triggers(
        superuser,
        "UPDATE ledgerline.events SET prev_stream_hash = sha256(prev_stream_hash)"
        " WHERE notification_id = 1500",
    )
    report = verify_store(store.recorder, batch_size=97, cache_streams=3)
    assert report.first_break is not None
    assert report.first_break.position == 1500
    assert report.first_break.stream_id == row[0]


def test_a_proof_reads_its_tiles_in_one_round_trip(store: EventStore) -> None:
    from replay.tiles import StoreTiles

    append_events(store, 1300)
    calls: list[int] = []

    class Counting(StoreTiles):
        def tiles(self, wanted: Sequence[tuple[int, int, int]]) -> dict[tuple[int, int], Any]:
            calls.append(len(wanted))
            return super().tiles(wanted)

    leaves = log_leaves(store)
    reference = MerkleTree(leaves)
    tree = TiledTree(Counting(store.recorder), 1300)
    assert tree.inclusion_proof(700, 1300) == reference.inclusion_proof(700, 1300)
    assert tree.consistency_proof(333, 1300) == reference.consistency_proof(333, 1300)
    assert tree.root(1300) == reference.root(1300)
    assert len(calls) <= 2 and sum(calls) >= 2  # the root reuses what the proofs read
