"""The Kafka read path with real processes: relay and Faust workers on a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from tests.e2e.streaming_support import (
    Streaming,
    applied_position,
    live_digests,
    replayed_digests,
)
from tests.integration.ledger_fixtures import run_history

pytestmark = pytest.mark.kafka


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
    assert live_digests(db_url) == replayed_digests(store, db_url)
