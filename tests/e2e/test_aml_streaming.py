"""The AML projection through Kafka: relay and a Faust worker on a real broker raise the same
alerts as the in-process engine, because the worker applies its events in global order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands.context import build_processor
from eventstore.store import EventStore, connect_owner
from ledgerline import aml_offline
from ledgerline.aml_simulate import simulate
from ledgerline.contexts import command_contexts
from ledgerline.runtime import migrate_all
from readmodels import aml as rm
from tests.e2e.streaming_support import Streaming, live_digests, replayed_digests
from tests.integration.test_aml_projection import ingest

pytestmark = pytest.mark.kafka


@pytest.fixture
def streaming(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Streaming]:
    migrate_all(db_url)
    s = Streaming(db_url, kafka_bootstrap, tmp_path)
    try:
        yield s
    finally:
        s.close()


def aml_position(db_url: str) -> int:
    """What the Kafka-fed AML projection has applied (its ordered row)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT position FROM readmodels.tracking"
            " WHERE projection = 'aml' AND source = 'kafka:ordered'"
        ).fetchone()
    return int(row[0]) if row else 0


def _comparable(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["typology"], a["subject"], a["score"], tuple(a["transaction_ids"]), a["position"])


def test_the_kafka_path_raises_the_same_alerts_as_in_process(
    streaming: Streaming, store: EventStore, db_url: str, tmp_path: Path
) -> None:
    full, sim = tmp_path / "full", tmp_path / "sim"
    simulate(full, seed=5, accounts=2_000, days=60, patterns_per_typology=3)
    sim.mkdir()  # the first 8,000 transactions (about four weeks) are enough to compare
    for name in ("accounts.jsonl", "rates.json", "truth.json"):
        (sim / name).write_bytes((full / name).read_bytes())
    lines = (full / "transactions.jsonl").read_text().splitlines(keepends=True)
    (sim / "transactions.jsonl").write_text("".join(lines[:8000]))
    streaming.start("relay")
    streaming.start("worker")
    processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
    try:
        ingest(processor, sim, batch=500)  # while the relay and the worker run
    finally:
        processor.stop()
    head = store.recorder.head().position
    streaming.wait(lambda: aml_position(db_url) >= head, 120, "the AML projection via Kafka")
    with connect_owner(db_url) as conn:
        via_kafka = {a["alert_id"]: _comparable(a) for a in rm.list_alerts(conn, limit=10**6)}
    offline = aml_offline.detect(sim)
    # Positions differ from the offline run (which numbers lines), so compare the rest.
    assert {k: v[:4] for k, v in via_kafka.items()} == {
        a["alert_id"]: _comparable(a)[:4] for a in offline
    }
    # And the Kafka-built tables are exactly what a replay from the store builds.
    live = live_digests(db_url)
    replayed = replayed_digests(store, db_url)
    assert {t: d for t, d in live.items() if t.startswith("aml_")} == {
        t: d for t, d in replayed.items() if t.startswith("aml_")
    }
