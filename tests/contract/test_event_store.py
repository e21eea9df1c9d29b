"""Contract of the hash-chained event store, run against the real PostgreSQL recorder."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import canonical
from eventstore.model import (
    AlreadyRecorded,
    AppendResult,
    Committed,
    NewEvent,
    Submission,
    VersionConflict,
)
from eventstore.recorder import PIPELINED_ROWS, HashChainRecorder
from eventstore.store import EventStore
from eventstore.verify import verify_store


def sub(command_id: str, *events: NewEvent, payload: bytes = b"p") -> Submission:
    return Submission(command_id, "test", payload, True, b'{"ok":true}', events)


def ev(stream: str, version: int, payload: bytes = b"x") -> NewEvent:
    return NewEvent(stream, version, "test.Happened.v1", payload)


def positions(recorder: HashChainRecorder) -> list[int]:
    return [e.position for batch in recorder.iter_all() for e in batch]


def test_appended_events_read_back_in_position_order_with_their_streams(
    store: EventStore,
) -> None:
    r = store.recorder
    [res] = r.append([sub("c1", ev("a", 1, b"one"), ev("b", 1, b"two"), ev("a", 2, b"three"))])
    assert isinstance(res, Committed)
    assert (res.first_position, res.last_position) == (1, 3)
    events = r.read_from(0, 10)
    assert [(e.position, e.stream_id, e.version, e.payload) for e in events] == [
        (1, "a", 1, b"one"),
        (2, "b", 1, b"two"),
        (3, "a", 2, b"three"),
    ]
    assert [e.payload for e in r.read_streams(["a"])["a"]] == [b"one", b"three"]
    assert r.head().position == 3


def test_the_library_reader_sees_the_same_log(store: EventStore) -> None:
    store.recorder.append([sub("c1", ev("a", 1)), sub("c2", ev("b", 1))])
    notes = store.recorder.select_notifications(start=1, limit=10)
    assert [(n.id, n.originator_id) for n in notes] == [(1, "a"), (2, "b")]
    assert store.recorder.max_notification_id() == 2


def test_a_version_conflict_writes_nothing_and_spares_its_neighbours(store: EventStore) -> None:
    r = store.recorder
    r.append([sub("c0", ev("a", 1))])
    results = r.append([sub("c1", ev("b", 1)), sub("c2", ev("a", 1)), sub("c3", ev("c", 1))])
    assert isinstance(results[0], Committed)
    assert results[1] == VersionConflict("c2", "a", 1, 1)
    assert isinstance(results[2], Committed)
    assert positions(r) == [1, 2, 3]
    assert r.find_commands(["c2"]) == {}


def test_a_conflict_on_an_existing_stream_is_found_without_failing_the_batch(
    store: EventStore,
) -> None:
    r = store.recorder
    r.append([sub("c0", ev("a", 1), ev("a", 2))])
    results = r.append([sub("c1", ev("a", 2)), sub("c2", ev("b", 1))])
    assert results[0] == VersionConflict("c1", "a", 2, 2)
    assert isinstance(results[1], Committed)
    [again] = r.append([sub("c3", ev("a", 3))])
    assert isinstance(again, Committed)
    assert [e.version for e in r.read_streams(["a"])["a"]] == [1, 2, 3]


def test_after_a_dropped_submission_later_writes_to_its_streams_wait_for_a_redecision(
    store: EventStore,
) -> None:
    # A writer decides a batch in order; a submission after a dropped one on the same stream
    # may rest on it, so it is not written either, whatever version it claims.
    r = store.recorder
    r.append([sub("c0", ev("a", 1), ev("a", 2))])
    results = r.append([sub("c1", ev("a", 2)), sub("c2", ev("a", 3))])
    assert isinstance(results[0], VersionConflict)
    assert isinstance(results[1], VersionConflict)
    assert positions(r) == [1, 2]


def test_a_retry_with_the_same_id_and_payload_returns_the_first_outcome(
    store: EventStore,
) -> None:
    r = store.recorder
    [first] = r.append([sub("c1", ev("a", 1))])
    [again] = r.append([sub("c1", ev("zzz", 1))])
    assert isinstance(first, Committed) and isinstance(again, AlreadyRecorded)
    assert again.same_payload
    assert again.existing.first_position == first.first_position
    assert again.existing.outcome == b'{"ok":true}'
    assert positions(r) == [1]


def test_reusing_an_id_with_another_payload_is_refused_and_changes_nothing(
    store: EventStore,
) -> None:
    r = store.recorder
    r.append([sub("c1", ev("a", 1), payload=b"first")])
    [res] = r.append([sub("c1", ev("b", 1), payload=b"second")])
    assert isinstance(res, AlreadyRecorded)
    assert not res.same_payload
    assert positions(r) == [1]


def test_the_command_log_is_searched_by_its_index_however_small_it_was_when_writing_began(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    # PostgreSQL plans a prepared statement once for all after a few calls: planned while the
    # log was nearly empty, the lookup of a batch's ids scanned the whole log until autovacuum
    # analyzed it, and every batch paid for every command recorded so far.
    with EventStore(db_url, pool_size=1) as small:
        r = small.recorder
        for n in range(12):  # batches of many ids, as under load
            r.append([sub(f"warm-{n}-{k}", ev(f"s{n}-{k}", 1)) for k in range(30)])
        superuser.execute(
            f'INSERT INTO "{small.schema}".commands'
            " SELECT 'bulk-' || g, 'test', '\\x00', sha256('x'), true, '\\x00', NULL, NULL, 0"
            " FROM generate_series(1, 20000) g"
        )
        [res] = r.append([sub("bulk-7", ev("late", 1))])
        assert isinstance(res, AlreadyRecorded)
        with r.datastore.get_connection() as conn:
            prepared = conn.execute(
                "SELECT statement FROM pg_prepared_statements WHERE generic_plans > 0"
            ).fetchall()
            plan = conn.execute(
                f'EXPLAIN SELECT command_id FROM "{small.schema}".commands'
                " WHERE command_id = ANY(%s)",
                (["bulk-7", "bulk-8"],),
            ).fetchall()
    assert not [row for row in prepared if "command_id = ANY" in str(row)]
    assert "Seq Scan" not in str(plan)


def _batch(size: int, prefix: str = "c") -> list[Submission]:
    """``size`` submissions of one event each, on streams of their own."""
    return [sub(f"{prefix}{i}", ev(f"s{i}", 1, b"%d" % i)) for i in range(size)]


# A usual batch (arrays, written with the COMMIT) and one past PIPELINED_ROWS (COPY).
_SIZES = pytest.mark.parametrize("size", [2, PIPELINED_ROWS])


@_SIZES
def test_batches_of_either_size_read_back_whole_and_verify(store: EventStore, size: int) -> None:
    r = store.recorder
    results = r.append(_batch(size))
    assert all(isinstance(res, Committed) for res in results)
    assert positions(r) == list(range(1, size + 1))
    assert [e.payload for e in r.read_from(0, size)] == [b"%d" % i for i in range(size)]
    assert set(r.find_commands([f"c{i}" for i in range(size)])) == {f"c{i}" for i in range(size)}
    assert r.head().position == size
    assert verify_store(r).ok


@_SIZES
def test_a_batch_whose_head_update_fails_leaves_nothing_and_its_connection_serves_the_next(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]], size: int
) -> None:
    # The head's update is the batch's last statement before COMMIT: when it fails, nothing of
    # the batch may stay, and the one pooled connection must come back clean for the next batch.
    superuser.execute(
        "CREATE FUNCTION public.refuse_head() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'head refused by the test'; END $$"
    )
    with EventStore(db_url, pool_size=1) as one:
        r = one.recorder
        superuser.execute(
            f'CREATE TRIGGER refuse_head BEFORE UPDATE ON "{one.schema}".chain_head'
            " FOR EACH ROW EXECUTE FUNCTION public.refuse_head()"
        )
        with pytest.raises(Exception, match="head refused by the test"):
            r.append(_batch(size, "x"))
        assert positions(r) == []
        assert r.find_commands([f"x{i}" for i in range(size)]) == {}
        assert r.head().position == 0
        superuser.execute(f'DROP TRIGGER refuse_head ON "{one.schema}".chain_head')
        [res] = r.append([sub("c1", ev("a", 1))])
        assert isinstance(res, Committed) and res.first_position == 1
        assert positions(r) == [1]
        assert verify_store(r).ok


@_SIZES
def test_a_batch_of_either_size_reports_its_conflicts_and_writes_its_other_submissions(
    store: EventStore, size: int
) -> None:
    # "new" on a stream that exists (the primary key refuses the write, so the batch is
    # redone with every stream's tip read), a stale version on an existing stream, and a
    # submission resting on a dropped one: each reported, the rest written.
    r = store.recorder
    r.append([sub("old", ev("taken", 1), ev("old", 1))])
    batch = _batch(size, "n")
    batch[0] = sub("n0", ev("taken", 1))
    batch[-1] = sub("n-last", ev("old", 1), ev("fresh", 1))
    batch.append(Submission("n-dep", "test", b"p", True, b"{}", [ev("dep", 1)], reads=("fresh",)))
    results = r.append(batch)
    assert results[0] == VersionConflict("n0", "taken", 1, 1)
    assert isinstance(results[-2], VersionConflict) and isinstance(results[-1], VersionConflict)
    assert all(isinstance(res, Committed) for res in results[1:-2])
    written = size - 2
    assert positions(r) == list(range(1, 2 + written + 1))
    assert [e.stream_id for e in r.read_from(2, written)] == [f"s{i}" for i in range(1, size - 1)]
    assert r.find_commands(["n0", "n-last", "n-dep"]) == {}
    assert r.head().position == 2 + written
    assert verify_store(r).ok


def test_the_same_id_twice_in_one_batch_is_applied_once(store: EventStore) -> None:
    r = store.recorder
    results = r.append([sub("c1", ev("a", 1)), sub("c1", ev("a", 2))])
    assert isinstance(results[0], Committed)
    assert isinstance(results[1], AlreadyRecorded) and results[1].same_payload
    assert positions(r) == [1]


def test_a_rejected_command_is_logged_without_events_and_burns_no_position(
    store: EventStore,
) -> None:
    r = store.recorder
    rejected = Submission("c1", "test", b"p", False, b'{"code":"nope"}')
    results = r.append([rejected, sub("c2", ev("a", 1))])
    assert isinstance(results[0], Committed) and results[0].first_position is None
    assert positions(r) == [1]
    assert r.find_commands(["c1"])["c1"].accepted is False


def test_a_later_submission_that_depends_on_a_dropped_one_is_not_written(
    store: EventStore,
) -> None:
    r = store.recorder
    r.append([sub("c0", ev("a", 1))])
    dropped = sub("c1", ev("a", 1), ev("b", 1))  # conflicts on a
    dependent = Submission("c2", "test", b"p", True, b"{}", [ev("c", 1)], reads=("b",))
    results = r.append([dropped, dependent])
    assert isinstance(results[0], VersionConflict)
    assert isinstance(results[1], VersionConflict)
    assert positions(r) == [1]


def test_each_event_links_to_the_previous_one_of_its_stream_and_of_the_store(
    store: EventStore,
) -> None:
    r = store.recorder
    r.append([sub("c1", ev("a", 1), ev("b", 1))])
    r.append([sub("c2", ev("a", 2))])
    a1, b1, a2 = r.read_from(0, 10)
    assert a1.prev_stream_hash == canonical.GENESIS and a1.prev_global_hash == canonical.GENESIS
    assert b1.prev_stream_hash == canonical.GENESIS and b1.prev_global_hash == a1.global_hash
    assert a2.prev_stream_hash == a1.stream_hash and a2.prev_global_hash == b1.global_hash
    digest = canonical.sha256(
        canonical.event_bytes(
            canonical.EventFields(
                a2.position, a2.stream_id, a2.version, a2.topic, a2.recorded_at_ns, a2.payload
            )
        )
    )
    assert a2.stream_hash == canonical.stream_hash("a", 2, a1.stream_hash, digest)
    assert a2.global_hash == canonical.global_hash(3, b1.global_hash, digest)
    assert r.head().global_hash == a2.global_hash
    assert verify_store(r).ok


def test_commit_time_is_shared_by_a_transaction_and_never_goes_backwards(
    db_url: str,
) -> None:
    ticks = iter([5_000, 4_000, 9_000])
    with EventStore(db_url, clock=lambda: next(ticks)) as s:
        s.recorder.append([sub("c1", ev("a", 1), ev("b", 1))])
        s.recorder.append([sub("c2", ev("a", 2))])
        s.recorder.append([sub("c3", ev("a", 3))])
        times = [e.recorded_at_ns for e in s.recorder.read_from(0, 10)]
    assert times == [5_000, 5_000, 5_000, 9_000]


def test_the_library_write_api_goes_through_the_chain(store: EventStore) -> None:
    from eventsourcing.persistence import IntegrityError, StoredEvent

    r = store.recorder
    ids = r.insert_events([StoredEvent("s", 1, "t", b"1"), StoredEvent("s", 2, "t", b"2")])
    assert ids == [1, 2]
    with pytest.raises(IntegrityError):
        r.insert_events([StoredEvent("s", 2, "t", b"again")])
    assert verify_store(r).ok


def test_positions_stay_gapless_under_many_concurrent_conflicting_writers(
    store: EventStore,
) -> None:
    r = store.recorder
    results: list[AppendResult] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(25):
            # Everyone fights over stream "hot" at version i+1; each also writes its own stream.
            batch = [sub(f"w{k}-{i}", ev("hot", i + 1)), sub(f"o{k}-{i}", ev(f"own{k}", i + 1))]
            got = r.append(batch)
            with lock:
                results.extend(got)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = [x for x in results if isinstance(x, Committed)]
    conflicts = [x for x in results if isinstance(x, VersionConflict)]
    assert len(committed) + len(conflicts) == 8 * 25 * 2
    assert conflicts, "the writers were meant to collide on the hot stream"
    assert positions(r) == list(range(1, len(committed) + 1))
    assert [e.version for e in r.read_streams(["hot"])["hot"]] == list(range(1, 26))
    report = verify_store(r)
    assert report.ok and report.events_checked == len(committed)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.integers(0, 5),  # command id (small range: retries and reuse happen)
                st.sampled_from("abc"),  # stream
                st.integers(1, 4),  # version the writer claims
                st.binary(max_size=3),  # payload
            ),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_mix_of_retries_conflicts_and_reuse_keeps_the_log_gapless_and_intact(
    store: EventStore, batches: Sequence[Sequence[tuple[int, str, int, bytes]]]
) -> None:
    r = store.recorder
    run = f"h{r.head().position}-"
    for batch in batches:
        subs = [
            sub(f"{run}{cid}", ev(f"{run}{stream}", version), payload=payload)
            for cid, stream, version, payload in batch
        ]
        for res in r.append(subs):
            if isinstance(res, Committed):
                assert res.first_position is not None
    events = [e for b in r.iter_all() for e in b]
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert verify_store(r).ok
