"""The settlement read models over Kafka: relay and Faust worker processes on a real broker
build the same tables as a replay, including a cut-off, an unwind and a settlement."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands import ledger as ledger_commands
from commands import settlement as sc
from commands.context import build_processor
from eventstore.store import EventStore
from ledgerline.runtime import migrate_all
from readmodels import settlement as rm
from tests.e2e.streaming_support import Streaming, live_digests, replayed_digests
from tests.integration.settlement_fixtures import Day

pytestmark = pytest.mark.kafka

A, B, C = 31, 32, 33


class _Runtime:
    """Just what :class:`Day` needs: a processor (no in-process projector in Kafka mode)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor


@pytest.fixture
def streaming(db_url: str, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Streaming]:
    migrate_all(db_url)
    s = Streaming(db_url, kafka_bootstrap, tmp_path)
    try:
        yield s
    finally:
        s.close()


def _settlement_applied(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT coalesce(min(position), 0), count(*) FROM readmodels.tracking"
            " WHERE projection = 'settlement' AND source LIKE 'kafka:%'"
        ).fetchone()
    return int(row[0]) if row and row[1] else 0


def test_relay_and_worker_build_the_settlement_read_models_of_a_replay(
    streaming: Streaming, store: EventStore, db_url: str
) -> None:
    contexts = [ledger_commands.build_context(time.time_ns), sc.build_context(time.time_ns)]
    processor = build_processor(store.recorder, contexts).start()
    try:
        day = Day(_Runtime(processor))  # type: ignore[arg-type]
        day.ledger_accounts((A, B, C), ("USD",))
        for pid in (A, B, C):
            day.participant(pid, ("USD",), caps={"USD": "8.00"} if pid == C else {})
        day.scheme(1, "dns", (A, B, C))
        obligations = [
            (A, B, "25"),
            (A, C, "7"),
            (B, A, "17"),
            (B, C, "9"),
            (C, A, "11"),
            (C, B, "14"),
        ]
        for k, (payer, payee, amount) in enumerate(obligations, start=1):
            day.obligation(k, 1, payer, payee, amount)
        day.obligation(7, 1, A, C, "1")  # makes room for the queued C -> B
        streaming.start("relay")
        streaming.start("worker")
        assert day.cut_off(1, 1).accepted
        assert day.unwind(1, 1, C).accepted
        assert day.settle(1, 1).accepted
    finally:
        processor.stop()
    head = store.recorder.head().position
    streaming.wait(lambda: _settlement_applied(db_url) >= head, 90, "the settlement worker")
    expected = replayed_digests(store, db_url)
    live = live_digests(db_url)
    assert {t: d for t, d in live.items() if t.startswith("settlement_")} == {
        t: d for t, d in expected.items() if t.startswith("settlement_")
    }
    with psycopg.connect(db_url) as conn:
        cycle = rm.get_cycle(conn, 1, 1)
        assert cycle is not None
        assert (cycle["state"], cycle["unwound"]) == ("settled", [C])
        instructions = rm.cycle_instructions(conn, 1, 1)
    assert [(i["participant_id"], i["direction"], i["amount"]) for i in instructions] == [
        (A, "pay_in", 800),
        (B, "pay_out", 800),
    ]
