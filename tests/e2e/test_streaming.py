"""The Kafka read path with real processes: relay and Faust workers on a real broker."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    account_command,
    build_ledger_processor,
    transfer_command,
)
from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from ledgerline.tansu import start_tansu
from projections.messages import event_message, partition_for, watermark_headers
from projections.registry import PROJECTIONS, contexts
from projections.relay import ensure_topics
from tests.e2e.streaming_support import (
    Streaming,
    applied_position,
    live_digests,
    replayed_digests,
)
from tests.http_server import free_port
from tests.integration.ledger_fixtures import run_history

pytestmark = pytest.mark.kafka

REBUILD = [sys.executable, "-m", "ledgerline", "projections", "rebuild", "ledger"]


@pytest.fixture
def streaming(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Streaming]:
    migrate_all(db_url)
    s = Streaming(db_url, kafka_bootstrap, tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_relay_and_worker_build_the_same_read_model_as_a_replay(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    run_history(store, seed=1, transfers=80)
    streaming.start("relay")
    streaming.start("worker")
    head = store.recorder.head().position
    streaming.wait(lambda: applied_position(db_url) >= head, 60, "the worker")
    expected = replayed_digests(store, db_url)
    assert live_digests(db_url) == expected
    # The operator's reconciliation agrees, in Kafka mode too (it once compared against the
    # in-process position, 0 here, and reported every row as different).
    check = subprocess.run(
        [sys.executable, "-m", "ledgerline", "replay", "--check", "--json"],
        env=streaming.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    assert json.loads(check.stdout)["upto_position"] == head
    # Rebuilt from the topic (workers still running): the same tables again.
    rebuilt = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledgerline",
            "projections",
            "rebuild",
            "ledger",
            "--source",
            "kafka",
        ],
        env=streaming.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"now at position {head}" in rebuilt.stdout
    assert live_digests(db_url) == expected


class Writer:
    """Transfers through the application layer on a background thread, until stopped."""

    def __init__(self, store: EventStore, accounts: int = 8) -> None:
        self.processor = build_ledger_processor(store.recorder, time.time_ns).start()
        for a in range(1, accounts + 1):
            self.processor.execute(
                account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
            )
        self.accounts = accounts
        self.stop = threading.Event()
        self.written = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(5)
        tid = 1_000_000
        while not self.stop.is_set():
            tid += 1
            debit, credit = rng.sample(range(1, self.accounts + 1), 2)
            self.processor.execute(
                transfer_command(
                    CreateTransfer(
                        id=tid,
                        debit_account_id=debit,
                        credit_account_id=credit,
                        amount=str(rng.randint(1, 999)),
                        ledger=1,
                        code=1,
                    )
                )
            )
            self.written += 1
            time.sleep(0.002)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.processor.stop()


def test_sigkill_of_worker_and_relay_mid_stream_loses_and_doubles_nothing(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    relay = streaming.start("relay")
    worker = streaming.start("worker")
    with Writer(store) as writer:
        streaming.wait(lambda: applied_position(db_url) > 50, 60, "the worker to apply events")
        streaming.kill(worker)
        written = writer.written
        streaming.wait(lambda: writer.written > written + 100, 30, "more writes")
        worker = streaming.start("worker")
        streaming.wait(lambda: applied_position(db_url) > 400, 60, "the restarted worker")
        streaming.kill(relay)
        written = writer.written
        streaming.wait(lambda: writer.written > written + 100, 30, "more writes")
        relay = streaming.start("relay")
        streaming.wait(
            lambda: applied_position(db_url) > store.recorder.head().position - 50,
            60,
            "the restarted relay",
        )
    head = store.recorder.head().position
    streaming.wait(lambda: applied_position(db_url) >= head, 60, "the last events")
    assert live_digests(db_url) == replayed_digests(store, db_url)
    assert streaming.terminate(worker) == 0
    assert streaming.terminate(relay) == 0


def test_two_workers_in_one_group_share_the_partitions(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    streaming.start("relay")
    first = streaming.start("worker")
    second = streaming.start("worker")
    with Writer(store):
        streaming.wait(
            lambda: all(
                "assigned partitions" in streaming.log_of(p)
                and f"{streaming.topic}[" in streaming.log_of(p).split("assigned partitions")[-1]
                for p in (first, second)
            ),
            60,
            "both workers to own partitions",
        )
        time.sleep(1.0)
    head = store.recorder.head().position
    streaming.wait(lambda: applied_position(db_url) >= head, 60, "both workers")
    assert live_digests(db_url) == replayed_digests(store, db_url)


Sent = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


def _create_topics(streaming: Streaming) -> list[str]:
    """Every context's topic, as the relay creates them; returns the topics besides ledger."""
    admin = KafkaAdminClient(bootstrap_servers=streaming.bootstrap)
    other_topics = [f"{streaming.prefix}{c}" for c in contexts() if c != "ledger"]
    ensure_topics(admin, [streaming.topic, *other_topics], streaming.partitions, 1)
    admin.close()
    return other_topics


def _as_the_relay_sends(events: list[Any], partitions: int) -> tuple[list[list[Sent]], list[int]]:
    """Each partition's messages, linked as the relay links them, and each partition's tip."""
    tips = [0] * partitions
    per_partition: list[list[Sent]] = [[] for _ in range(partitions)]
    for e in events:
        p = partition_for(e.stream_id, partitions)
        per_partition[p].append(event_message(e, tips[p]))
        tips[p] = e.position
    return per_partition, tips


def test_redelivered_and_reordered_messages_on_the_broker_are_absorbed(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    """Messages produced straight onto the topic: a prefix twice, and swapped neighbours."""
    run_history(store, seed=4, transfers=30)
    events = [e for batch in store.recorder.iter_all() for e in batch]
    other_topics = _create_topics(streaming)
    producer = KafkaProducer(bootstrap_servers=streaming.bootstrap)
    per_partition, tips = _as_the_relay_sends(events, streaming.partitions)
    for p, msgs in enumerate(per_partition):
        sent = msgs[: len(msgs) // 2] + msgs  # a relay resend after a crash
        sent[3], sent[4] = sent[4], sent[3]  # and a reordered pair
        sent.append((None, b"", watermark_headers(events[-1].position, tips[p])))
        for key, value, headers in sent:
            producer.send(streaming.topic, value, key, headers, p)
        for topic in other_topics:  # as the relay does: the other contexts' topics are current
            producer.send(topic, b"", None, watermark_headers(events[-1].position, 0), p)
    producer.flush()
    producer.close()
    streaming.start("worker")
    head = events[-1].position
    streaming.wait(lambda: applied_position(db_url) >= head, 60, "the worker")
    assert live_digests(db_url) == replayed_digests(store, db_url)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM readmodels.projection_failures").fetchone() == (
            0,
        )


def test_a_worker_holding_messages_behind_a_gap_lets_the_group_rebalance(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    """A held message is not acknowledged until its gap fills; a rebalance meanwhile (a
    worker joins) must still go through rather than wait for that acknowledgement forever,
    and the partitions' new owners receive the held messages again."""
    run_history(store, seed=11, transfers=30)
    events = [e for batch in store.recorder.iter_all() for e in batch]
    head = events[-1].position
    other_topics = _create_topics(streaming)
    per_partition, tips = _as_the_relay_sends(events, streaming.partitions)
    producer = KafkaProducer(bootstrap_servers=streaming.bootstrap)

    def send(p: int, messages: list[Sent]) -> None:
        for key, value, headers in messages:
            producer.send(streaming.topic, value, key, headers, p)

    for p, msgs in enumerate(per_partition):
        send(p, msgs[1:])  # every partition's first event is missing: the rest is held
    producer.flush()
    first = streaming.start("worker")
    streaming.wait(lambda: "holding" in streaming.log_of(first), 60, "the gap to be seen")
    second = streaming.start("worker")
    streaming.wait(
        lambda: (
            f"{streaming.topic}[" in streaming.log_of(second).split("assigned partitions")[-1]
            and streaming.log_of(first).count("assigned partitions") >= 2
        ),
        60,
        "the group to rebalance",
    )
    for p, msgs in enumerate(per_partition):
        send(p, [*msgs[:1], (None, b"", watermark_headers(head, tips[p]))])
        for topic in other_topics:
            producer.send(topic, b"", None, watermark_headers(head, 0), p)
    producer.flush()
    producer.close()
    streaming.wait(lambda: applied_position(db_url) >= head, 60, "both workers")
    assert live_digests(db_url) == replayed_digests(store, db_url)


def test_poison_on_the_broker_stops_its_partition_with_a_recorded_failure(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    _create_topics(streaming)
    producer = KafkaProducer(bootstrap_servers=streaming.bootstrap)
    producer.send(streaming.topic, b"\x00garbage", b"account:1", [("ll-kind", b"event")], 2)
    producer.flush()
    producer.close()
    streaming.start("worker")
    streaming.start("relay")
    run_history(store, seed=2, transfers=20)

    def failure() -> Any:
        with psycopg.connect(db_url) as conn:
            return conn.execute(
                "SELECT source, kafka_offset, reason FROM readmodels.projection_failures"
            ).fetchone()

    row = streaming.wait(failure, 60, "the failure record")
    assert row[0] == f"kafka:{streaming.topic}:2"
    assert row[1] == 0
    assert "ll-position" in row[2]
    with psycopg.connect(db_url) as conn:
        positions = dict(
            conn.execute(
                "SELECT source, position FROM readmodels.tracking WHERE projection = 'ledger'"
            ).fetchall()
        )
    head = store.recorder.head().position
    streaming.wait(
        lambda: sum(1 for s, p in _positions(db_url).items() if p >= head) == 3,
        60,
        "the three healthy partitions",
    )
    assert _positions(db_url)[f"kafka:{streaming.topic}:2"] == 0
    assert len(positions) == streaming.partitions
    assert "stopped on" in streaming.log_of(streaming.procs[0])


def _positions(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return {
            str(s): int(p)
            for s, p in conn.execute(
                "SELECT source, position FROM readmodels.tracking WHERE projection = 'ledger'"
            ).fetchall()
        }


def test_broker_unavailable_at_start_is_retried_with_a_clear_log_line(
    streaming: Streaming,
) -> None:
    streaming.bootstrap = "127.0.0.1:9"  # nothing listens there
    relay = streaming.start("relay")
    worker = streaming.start("worker")
    streaming.wait(
        lambda: all("retrying in" in streaming.log_of(p) for p in (relay, worker)),
        60,
        "the retry log lines",
    )
    assert relay.poll() is None and worker.poll() is None  # waiting, not crash-looping
    assert "connecting to Kafka at 127.0.0.1:9 failed" in streaming.log_of(relay)
    assert "Traceback" not in streaming.log_of(relay) + streaming.log_of(worker)
    assert streaming.terminate(relay) == 0
    assert streaming.terminate(worker) == 0


def test_api_to_kafka_to_read_model_and_back_through_the_api(
    streaming: Streaming, db_url: str
) -> None:
    """`serve` with KAFKA_BOOTSTRAP_SERVERS runs no projector: relay and worker do the work,
    and `min_position` still gives read-your-writes."""
    keys = subprocess.run(
        [sys.executable, "-m", "ledgerline", "keys", "create", "--role", "operator"],
        env=streaming.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = keys.stdout.split()[-1]
    port = free_port()
    streaming.start("serve", env={"LEDGERLINE_PORT": str(port)})
    streaming.start("relay")
    streaming.start("worker")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    streaming.wait(up, 60, "the API")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        for a in (1, 2):
            r = c.post("/v1/accounts", json={"id": a, "ledger": 1, "currency": "EUR", "code": 1})
            assert r.status_code == 201, r.text
        r = c.post(
            "/v1/transfers",
            json={
                "id": 10,
                "debit_account_id": 1,
                "credit_account_id": 2,
                "amount": "12.34",
                "ledger": 1,
                "code": 1,
            },
        )
        assert r.status_code == 201, r.text
        position = r.json()["position"]
        # The first read may wait for the worker to join its group: retry on 503.
        account = streaming.wait(
            lambda: _ok(c.get("/v1/accounts/2", params={"min_position": position})),
            60,
            "the read model to show the transfer",
        )
        assert account["balances"]["credits_posted"] == "12.34"
        assert c.get("/v1/transfers/10").json()["state"] == "posted"
        ready = c.get("/readyz").json()
        assert ready["applied_position"] >= position
    assert applied_position(db_url) >= position
    with psycopg.connect(db_url) as conn:  # no in-process projector ran beside the worker
        sources = [r[0] for r in conn.execute("SELECT source FROM readmodels.tracking")]
    assert sources and all(s.startswith("kafka:") for s in sources)


def _ok(response: httpx.Response) -> Any:
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return response.json()


def test_the_relay_outlives_a_broker_outage_and_resumes_without_a_gap(
    streaming: Streaming, store: EventStore, db_url: str, tmp_path: Path
) -> None:
    broker = start_tansu(tmp_path / "own-tansu.log")
    streaming.bootstrap = broker.bootstrap
    try:
        relay = streaming.start("relay")
        run_history(store, seed=8, transfers=20)
        head = store.recorder.head().position
        streaming.wait(lambda: relay_position(db_url) >= head, 60, "the first events out")
        broker.stop()
        run_history(store, seed=9, transfers=20)
        streaming.wait(
            lambda: "failed" in streaming.log_of(relay), 60, "the relay to notice the outage"
        )
        assert relay.poll() is None
        assert relay_position(db_url) == head  # nothing counted as published meanwhile
        # The broker comes back (empty: Tansu keeps topics in memory) on the same port.
        broker = start_tansu(tmp_path / "own-tansu-2.log", port=broker.port)
        head = store.recorder.head().position
        streaming.wait(lambda: relay_position(db_url) >= head, 90, "the relay to resume")
        assert "Traceback" not in streaming.log_of(relay)
        # What the broker lost is not in Kafka any more: the worker sees the gap through the
        # prev links and holds everything after it, rather than skip a single event.
        worker = streaming.start("worker")
        streaming.wait(lambda: "holding" in streaming.log_of(worker), 60, "the gap to be seen")
        assert applied_position(db_url) == 0
        # Kafka cannot rebuild it either, and says why.
        from_kafka = subprocess.run(
            [*REBUILD, "--source", "kafka"],
            env=streaming.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert from_kafka.returncode != 0
        assert "no longer holds the whole history" in from_kafka.stderr
        assert "held behind a gap" in from_kafka.stderr
        # The operator's remedy: rebuild from the store every projection reading the topic;
        # the worker goes on from there.
        for name in [n for n, spec in PROJECTIONS.items() if "ledger" in spec.contexts]:
            rebuilt = subprocess.run(
                [*REBUILD[:-1], name],
                env=streaming.env(),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert rebuilt.returncode == 0, rebuilt.stderr
        run_history(store, seed=10, transfers=20)
        head = store.recorder.head().position
        streaming.wait(lambda: applied_position(db_url) >= head, 60, "the worker")
        assert live_digests(db_url) == replayed_digests(store, db_url)
    finally:
        broker.stop()


def relay_position(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT max(position) FROM ledgerline.relay_progress").fetchone()
    return int(row[0]) if row and row[0] is not None else 0
