"""The Kafka worker's applier on a real PostgreSQL: duplicates, reordering, poison, hand-over.

Messages are built exactly as the relay builds them (same encoder, partitioner and ``prev``
links) and handed to the applier without a broker; tests/e2e/test_streaming.py runs the same
paths through Tansu and Faust.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg
import pytest

from eventstore.model import StoredEvent
from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from projections.kafka_worker import ORDERED_SOURCE, Consumed, KafkaApplier, source_of
from projections.ledger import LedgerProjection
from projections.messages import context_of, event_message, partition_for, watermark_headers
from projections.registry import PROJECTIONS
from projections.runner import ProjectionRunner
from replay.replay import TABLES, schema_digests
from tests.integration.ledger_fixtures import run_history

TOPIC = "ledgerline.ledger"
PARTITIONS = 3


def relay_messages(
    events: list[StoredEvent], partitions: int = PARTITIONS, topic: str = TOPIC
) -> list[Consumed]:
    """What the relay would send for ``events`` (on ``topic``), followed by a watermark on
    every partition: only watermarks, for a topic none of the events belongs on."""
    tips = [0] * partitions
    offsets = [0] * partitions
    out: list[Consumed] = []

    def add(p: int, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        out.append(Consumed.of(object(), topic, p, offsets[p], value, headers))
        offsets[p] += 1

    for e in events:
        if context_of(e.topic) != topic.rsplit(".", 1)[-1]:
            continue
        p = partition_for(e.stream_id, partitions)
        _, value, headers = event_message(e, tips[p])
        add(p, value, headers)
        tips[p] = e.position
    for p in range(partitions):
        add(p, b"", watermark_headers(events[-1].position, tips[p]))
    return out


@pytest.fixture
def history(store: EventStore, db_url: str) -> list[StoredEvent]:
    migrate_all(db_url)
    run_history(store, seed=7, transfers=40)
    return [e for batch in store.recorder.iter_all() for e in batch]


def applier(store: EventStore) -> KafkaApplier:
    a = KafkaApplier(store.datastore.pool, LedgerProjection())
    a.init_tracking(TOPIC, PARTITIONS)
    return a


def digests(db_url: str) -> dict[str, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return schema_digests(conn)


def positions(db_url: str, projection: str = "ledger") -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source, position FROM readmodels.tracking WHERE projection = %s",
            (projection,),
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def in_process_digests(store: EventStore, db_url: str) -> dict[str, str]:
    """The read model the in-process runner builds, for comparison (then wiped)."""
    runner = ProjectionRunner(store.recorder, [LedgerProjection()])
    runner.position = 0
    runner.catch_up()
    result = digests(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"TRUNCATE readmodels.{t}")
        conn.execute("DELETE FROM readmodels.tracking")
    return result


def test_in_order_delivery_equals_the_in_process_runner(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    expected = in_process_digests(store, db_url)
    a = applier(store)
    msgs = relay_messages(history)
    acked = a.handle(msgs)
    assert len(acked) == len(msgs)
    assert digests(db_url) == expected
    head = history[-1].position
    assert positions(db_url) == {source_of(TOPIC, p): head for p in range(PARTITIONS)}


def test_duplicates_and_reordering_are_absorbed(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    expected = in_process_digests(store, db_url)
    a = applier(store)
    msgs = relay_messages(history)
    rng = random.Random(3)
    # Redeliveries of a whole prefix (a relay resend) and of single messages, and batches
    # whose messages arrive shuffled within and across batches.
    stream = msgs[: len(msgs) // 2] + msgs + rng.sample(msgs, 20)
    rng.shuffle(stream)
    acked: set[int] = set()
    for i in range(0, len(stream), 17):
        acked.update(id(t) for t in a.handle(stream[i : i + 17]))
    assert a.held() == 0
    assert digests(db_url) == expected
    assert {id(m.token) for m in msgs} <= acked


def test_a_reordered_message_is_held_unacknowledged_until_the_gap_fills(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    a = applier(store)
    msgs = [m for m in relay_messages(history) if m.partition == 0]
    first, second, rest = msgs[0], msgs[1], msgs[2:]
    assert a.handle([second]) == []  # its predecessor has not arrived: held, not acked
    assert a.held() == 1
    assert positions(db_url)[source_of(TOPIC, 0)] == 0
    assert a.handle([first]) == [first.token, second.token]
    assert a.held() == 0
    assert a.handle(rest) == [m.token for m in rest]


def test_a_poison_message_stops_its_partition_only_and_is_recorded(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    a = applier(store)
    msgs = relay_messages(history)
    p0 = [m for m in msgs if m.partition == 0]
    bad_at = 3
    victim, poison, stream = _poisoned(msgs, p0[bad_at])
    acked = a.handle(stream)
    assert poison.token not in acked
    assert all(m.token not in acked for m in p0[bad_at:])  # nothing after it either
    assert all(m.token in acked for m in msgs if m.partition != 0)
    pos = positions(db_url)
    assert pos[source_of(TOPIC, 0)] == p0[bad_at - 1].message.position  # type: ignore[union-attr]
    assert pos[source_of(TOPIC, 1)] == history[-1].position
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source, position, kafka_offset, reason FROM readmodels.projection_failures"
        ).fetchall()
    assert rows == [
        (source_of(TOPIC, 0), None, victim.offset, pytest.approx(rows[0][3])),
    ]
    assert "does not hash" in rows[0][3]
    # The stopped partition takes nothing more, even the good copy: an operator must act.
    assert a.handle([victim]) == []
    assert a.failure(TOPIC, 0) is not None


def _poisoned(msgs: list[Consumed], victim: Consumed) -> tuple[Consumed, Consumed, list[Consumed]]:
    """``msgs`` with ``victim`` replaced by a copy whose payload has one bit flipped (its hash
    no longer matches): the victim, the poison and the stream."""
    assert victim.message is not None and victim.message.event is not None
    _, value, headers = event_message(victim.message.event, victim.message.prev)
    tampered = bytearray(value)
    tampered[-1] ^= 0x01
    poison = Consumed.of(
        object(), victim.topic, victim.partition, victim.offset, bytes(tampered), headers
    )
    assert poison.poison is not None
    return victim, poison, [poison if m is victim else m for m in msgs]


@pytest.mark.parametrize(
    ("what", "mutate"),
    [
        ("unknown event type", lambda e: {"topic": "ledger.NoSuchEvent"}),
        ("event from another context", lambda e: {"topic": "tally.Counted"}),
        ("undecodable payload", lambda e: {"payload": b"\xff not json"}),
    ],
)
def test_other_poison_kinds(
    store: EventStore, db_url: str, history: list[StoredEvent], what: str, mutate: Any
) -> None:
    a = applier(store)
    first = history[0]
    fields = {f: getattr(first, f) for f in StoredEvent.__dataclass_fields__}
    fields.update(mutate(first))
    bad = StoredEvent(**fields)
    _, value, headers = event_message(bad, 0)
    partition = partition_for(first.stream_id, PARTITIONS)
    msg = Consumed.of(object(), TOPIC, partition, 0, value, headers)
    assert a.handle([msg]) == [], what
    with psycopg.connect(db_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM readmodels.projection_failures").fetchone()  # type: ignore[misc]
    assert count == 1


def test_moving_from_the_in_process_runner_continues_without_reapplying(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    expected = in_process_digests(store, db_url)
    half = history[len(history) // 2].position
    runner = ProjectionRunner(store.recorder, [LedgerProjection()])
    runner.position = 0
    events = store.recorder.read_from(0, half)
    runner._apply(events)
    a = applier(store)  # takes over at the runner's position
    assert set(positions(db_url).values()) == {half}
    a.handle(relay_messages(history))  # everything again: the first half is skipped
    assert digests(db_url) == expected


def test_two_appliers_never_apply_a_partition_twice(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    """After a rebalance both old and new owner may see the same messages."""
    expected = in_process_digests(store, db_url)
    a, b = applier(store), applier(store)
    msgs = relay_messages(history)
    a.handle(msgs[: len(msgs) // 2])
    b.handle(msgs)
    a.handle(msgs)
    assert digests(db_url) == expected


def test_replay_check_in_kafka_mode_compares_exactly_what_each_partition_applied(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    from replay.replay import replay

    a = applier(store)
    msgs = [m for m in relay_messages(history) if m.message is not None]
    # Partition 0 gets everything, partition 1 about half, partition 2 nothing yet: the
    # partitions stand at three different positions, and no 'store' tracking row exists.
    half = [m for m in msgs if m.partition == 1][: len([m for m in msgs if m.partition == 1]) // 2]
    a.handle([m for m in msgs if m.partition == 0] + half)
    spread = positions(db_url)
    assert len(set(spread.values())) == 3 and "store" not in spread
    report = replay(store.recorder, db_url, check=True)
    assert report.ok, [d for d in report.differences if d.count]
    assert report.live_digests == report.digests
    # And a row the workers never wrote is found.
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE readmodels.accounts SET credits_posted = credits_posted + 1")
    broken = replay(store.recorder, db_url, check=True)
    assert not broken.ok
    assert any(d.table == "accounts" and d.count for d in broken.differences)


def test_an_ordered_projection_catches_up_after_a_batch_found_its_row_busy(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    """Monitoring reads two topics, each on its own agent thread. When one batch moves its
    partitions while another transaction holds the ``kafka:ordered`` row (and may have read
    the frontier before that move committed), the projection must still end up complete up
    to the head: nothing else would advance it once the stream goes idle."""
    a = aml_applier(store)
    a.handle(relay_messages(history))  # the ledger topic is at the head; aml at 0: frontier 0
    head = history[-1].position
    assert ordered(db_url) == 0
    with psycopg.connect(db_url) as holder:  # another batch, sequencing with what it saw
        holder.execute(
            "SELECT position FROM readmodels.tracking"
            " WHERE projection = 'aml' AND source = 'kafka:ordered' FOR UPDATE"
        )
        acked: list[Any] = []
        batch = threading.Thread(
            target=lambda: acked.extend(a.handle(relay_messages(history, topic=AML_TOPIC)))
        )
        batch.start()
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock(db_url) and batch.is_alive():
            assert time.monotonic() < deadline, "the batch never waited for the ordered row"
            time.sleep(0.05)
        holder.commit()  # it read the frontier before the aml partitions moved: 0
    batch.join(30)
    assert not batch.is_alive()
    assert len(acked) == PARTITIONS  # the aml topic's watermarks
    assert ordered(db_url) == head


def test_an_ordered_projection_sequences_on_the_careful_path_too(
    store: EventStore, db_url: str, history: list[StoredEvent]
) -> None:
    """A poison message sends the batch partition by partition; monitoring still advances to
    what every partition reached (it once failed there, reading its row the wrong way)."""
    a = aml_applier(store)
    a.handle(relay_messages(history, topic=AML_TOPIC))
    msgs = relay_messages(history)
    p0 = [m for m in msgs if m.partition == 0]
    *_, stream = _poisoned(msgs, p0[3])
    a.handle(stream)
    assert ordered(db_url) == p0[2].message.position  # type: ignore[union-attr]
    with psycopg.connect(db_url) as conn:
        sources = [r[0] for r in conn.execute("SELECT source FROM readmodels.projection_failures")]
    assert sources == [source_of(TOPIC, 0)]


AML_TOPIC = "ledgerline.aml"


def aml_applier(store: EventStore) -> KafkaApplier:
    """Monitoring, an ordered projection, fed from the ledger topic and its own."""
    a = KafkaApplier(store.datastore.pool, PROJECTIONS["aml"].create("readmodels"))
    a.init_tracking({TOPIC: PARTITIONS, AML_TOPIC: PARTITIONS})
    return a


def ordered(db_url: str) -> int:
    """Monitoring's ``kafka:ordered`` row: the position it is complete up to."""
    return positions(db_url, "aml")[ORDERED_SOURCE]


def _waiting_for_a_lock(db_url: str) -> bool:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return row is not None and int(row[0]) > 0
