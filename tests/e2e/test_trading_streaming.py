"""The trading read models through Kafka: relay, Faust worker, a real (Tansu) broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from commands.context import build_processor
from eventstore.store import EventStore
from ledgerline.contexts import command_contexts
from ledgerline.runtime import migrate_all
from readmodels import trading as rt
from tests.e2e.streaming_support import Streaming, live_digests, replayed_digests
from tests.integration.test_trading_processor import listed, random_stream

pytestmark = pytest.mark.kafka


@pytest.fixture
def streaming(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Streaming]:
    migrate_all(db_url)
    s = Streaming(db_url, kafka_bootstrap, tmp_path)
    try:
        yield s
    finally:
        s.close()


def trading_position(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT coalesce(min(position), 0), count(*) FROM readmodels.tracking"
            " WHERE projection = 'trading' AND source LIKE 'kafka:%'"
        ).fetchone()
    return int(row[0]) if row and row[1] else 0


def test_books_through_kafka_equal_the_books_and_a_replay(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
    try:
        listed(processor, 1)
        listed(processor, 2, symbol="GBP/USD", base_asset="GBP")
        random_stream(processor, seed=21, orders=120, instrument_id=1)
        random_stream(processor, seed=22, orders=80, instrument_id=2)
        books = {i: processor.cache.get(f"book:{i}") for i in (1, 2)}
    finally:
        processor.stop()
    streaming.start("relay")
    streaming.start("worker")
    head = store.recorder.head().position
    streaming.wait(lambda: trading_position(db_url) >= head, 90, "the trading worker")
    with psycopg.connect(db_url) as conn:
        for instrument_id, book in books.items():
            bids, asks = rt.depth(conn, instrument_id, 1000)
            as_rows = (
                [(r["price_ticks"], r["quantity_lots"], r["order_count"]) for r in bids],
                [(r["price_ticks"], r["quantity_lots"], r["order_count"]) for r in asks],
            )
            assert as_rows == book.depth()  # type: ignore[union-attr]
    live = live_digests(db_url)
    replayed = replayed_digests(store, db_url)
    trading_tables = set(rt.TABLE_KEYS)
    assert {t: live[t] for t in trading_tables} == {t: replayed[t] for t in trading_tables}
