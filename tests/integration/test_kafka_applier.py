"""The Kafka worker's applier on a real PostgreSQL: duplicates, reordering, poison, hand-over.

Messages are built exactly as the relay builds them (same encoder, partitioner and ``prev``
links) and handed to the applier without a broker; tests/e2e/test_streaming.py runs the same
paths through Tansu and Faust.
"""

from __future__ import annotations

import random
from typing import Any

import psycopg
import pytest

from eventstore.model import StoredEvent
from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from projections.kafka_worker import Consumed, KafkaApplier, source_of
from projections.ledger import LedgerProjection
from projections.messages import event_message, partition_for, watermark_headers
from projections.runner import ProjectionRunner
from replay.replay import TABLES, schema_digests
from tests.integration.ledger_fixtures import run_history

TOPIC = "ledgerline.ledger"
PARTITIONS = 3


def relay_messages(events: list[StoredEvent], partitions: int = PARTITIONS) -> list[Consumed]:
    """What the relay would send for ``events``, followed by a watermark on every partition."""
    tips = [0] * partitions
    offsets = [0] * partitions
    out: list[Consumed] = []

    def add(p: int, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        out.append(Consumed.of(object(), TOPIC, p, offsets[p], value, headers))
        offsets[p] += 1

    for e in events:
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


def positions(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT source, position FROM readmodels.tracking WHERE projection = 'ledger'"
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
    victim = p0[bad_at]
    assert victim.message is not None and victim.message.event is not None
    _, value, headers = event_message(victim.message.event, victim.message.prev)
    tampered = bytearray(value)
    tampered[-1] ^= 0x01  # one flipped bit in the payload: the hash no longer matches
    poison = Consumed.of(object(), TOPIC, 0, victim.offset, bytes(tampered), headers)
    assert poison.poison is not None
    stream = [poison if m is victim else m for m in msgs]
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
