"""Group commit: many submitters, one transaction per batch, each caller its own outcome."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from commands.processor import Command, CommandProcessor, Outcome
from commands.tally import (
    IncrementTally,
    OpenTally,
    build_processor,
    increment_command,
    open_tally_command,
)
from domain.tally import Tally
from eventstore.store import EventStore
from eventstore.verify import verify_store
from tests.conftest import wait_for_a_lock_wait


@pytest.fixture
def processor(store: EventStore) -> Iterator[CommandProcessor[Tally]]:
    p = build_processor(store.recorder, time.time_ns).start()
    yield p
    p.stop()


def test_concurrent_submitters_share_transactions_and_each_gets_its_own_outcome(
    processor: CommandProcessor[Tally], store: EventStore
) -> None:
    processor.execute(open_tally_command(OpenTally(tally_id="t")))
    outcomes: dict[str, Outcome] = {}
    lock = threading.Lock()

    def submitter(k: int) -> None:
        for i in range(20):
            amount = -1 if i == 7 else k + 1  # one bad command per submitter
            cid = f"{k}-{i}"
            out = processor.execute(
                increment_command(IncrementTally(command_id=cid, tally_id="t", amount=amount))
            )
            with lock:
                outcomes[cid] = out

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rejected = {c for c, o in outcomes.items() if not o.accepted}
    assert rejected == {f"{k}-7" for k in range(16)}
    assert all(outcomes[c].result["code"] == "amount_must_be_positive" for c in rejected)
    accepted = [o for o in outcomes.values() if o.accepted]
    assert len(accepted) == 16 * 19
    assert len({o.position for o in accepted}) == len(accepted)  # everyone has their own event
    # Group commit happened: far fewer transactions than commands.
    assert processor.batches_committed < processor.commands_committed / 2
    final = processor.execute(
        increment_command(IncrementTally(command_id="last", tally_id="t", amount=1))
    )
    assert final.result["total"] == sum((k + 1) * 19 for k in range(16)) + 1
    assert verify_store(store.recorder).ok


def test_a_retry_returns_the_first_outcome_and_a_reused_id_is_refused(
    processor: CommandProcessor[Tally],
) -> None:
    processor.execute(open_tally_command(OpenTally(tally_id="t")))
    first = processor.execute(
        increment_command(IncrementTally(command_id="x", tally_id="t", amount=5))
    )
    again = processor.execute(
        increment_command(IncrementTally(command_id="x", tally_id="t", amount=5))
    )
    other = processor.execute(
        increment_command(IncrementTally(command_id="x", tally_id="t", amount=6))
    )
    assert first.accepted and not first.replayed
    assert again.replayed and again.position == first.position and again.result == first.result
    assert not other.accepted
    assert other.result["code"] == "exists_with_different_payload"
    total = processor.execute(
        increment_command(IncrementTally(command_id="y", tally_id="t", amount=1))
    )
    assert total.result["total"] == 6  # the retry and the reuse changed nothing


def test_a_rejection_is_remembered_so_a_retry_gets_the_same_answer(
    processor: CommandProcessor[Tally],
) -> None:
    before = processor.execute(
        increment_command(IncrementTally(command_id="early", tally_id="t", amount=1))
    )
    processor.execute(open_tally_command(OpenTally(tally_id="t")))
    retry = processor.execute(
        increment_command(IncrementTally(command_id="early", tally_id="t", amount=1))
    )
    assert before.result["code"] == "tally_not_found"
    assert retry.replayed and retry.result == before.result and not retry.accepted


def test_the_same_id_twice_in_one_batch_is_applied_once(
    processor: CommandProcessor[Tally],
) -> None:
    processor.execute(open_tally_command(OpenTally(tally_id="t")))
    cmd = increment_command(IncrementTally(command_id="dup", tally_id="t", amount=3))
    futures = [processor.submit(cmd) for _ in range(10)]
    outcomes = [f.result(10) for f in futures]
    assert len({o.position for o in outcomes}) == 1
    assert sum(1 for o in outcomes if not o.replayed) == 1
    total = processor.execute(
        increment_command(IncrementTally(command_id="z", tally_id="t", amount=1))
    )
    assert total.result["total"] == 4


def test_two_processes_on_one_store_see_each_others_writes(store: EventStore) -> None:
    a = build_processor(store.recorder, time.time_ns).start()
    b = build_processor(store.recorder, time.time_ns).start()
    try:
        a.execute(open_tally_command(OpenTally(tally_id="t")))
        for i in range(10):
            writer = a if i % 2 else b
            out = writer.execute(
                increment_command(IncrementTally(command_id=f"{i}", tally_id="t", amount=1))
            )
            assert out.result["total"] == i + 1  # each sees the other's increments
        dup = b.execute(open_tally_command(OpenTally(tally_id="t")))
        assert dup.replayed
    finally:
        a.stop()
        b.stop()
    assert verify_store(store.recorder).ok


def test_a_lost_database_fails_the_batch_and_keeps_nothing(db_url: str) -> None:
    store = EventStore(db_url, pool_size=1)
    p = build_processor(store.recorder, time.time_ns).start()
    try:
        p.execute(open_tally_command(OpenTally(tally_id="t")))
        store.datastore.pool.close()
        with pytest.raises(Exception):  # noqa: B017 - any error, as long as it is not swallowed
            p.execute(
                increment_command(IncrementTally(command_id="lost", tally_id="t", amount=1)),
                timeout_s=30,
            )
        assert "tally:t" not in p.cache or p.cache.get("tally:t").total == 0  # type: ignore[union-attr]
    finally:
        p.stop()
    with EventStore(db_url, pool_size=1) as fresh:
        assert fresh.recorder.find_commands(["increment:lost"]) == {}
        assert verify_store(fresh.recorder).ok


def _increment(command_id: str, tally_id: str, amount: int) -> Command:
    return increment_command(
        IncrementTally(command_id=command_id, tally_id=tally_id, amount=amount)
    )


def test_commands_submitted_while_another_writer_holds_the_lock_join_the_waiting_batch(
    store: EventStore,
) -> None:
    a = build_processor(store.recorder, time.time_ns).start()
    other = build_processor(store.recorder, time.time_ns).start()
    try:
        a.execute(open_tally_command(OpenTally(tally_id="t")))
        earlier = a.execute(_increment("earlier", "t", 5))
        # A stream the first processor has never read, written by the other one.
        other.execute(open_tally_command(OpenTally(tally_id="u")))
        other.execute(_increment("u1", "u", 7))
        batches = a.batches_committed
        schema = store.datastore.schema
        with store.datastore.get_connection() as conn, conn.transaction():
            # Another writer holds the lock: the decider takes its one command and waits.
            conn.execute(f'SELECT position FROM "{schema}".chain_head FOR UPDATE')
            first = a.submit(_increment("first", "t", 1))
            wait_for_a_lock_wait(store)
            late = [a.submit(_increment(f"late{i}", "t", 1)) for i in range(5)]
            retried = a.submit(_increment("earlier", "t", 5))
            elsewhere = a.submit(_increment("late-u", "u", 1))
        outcomes = [f.result(10) for f in (first, *late)]
        again, moved = retried.result(10), elsewhere.result(10)
    finally:
        a.stop()
        other.stop()
    # One commit for everything submitted during the wait, in submission order.
    assert a.batches_committed == batches + 1
    assert [o.result["total"] for o in outcomes] == [6, 7, 8, 9, 10, 11]
    positions = [o.position or 0 for o in outcomes]
    assert 0 not in positions and positions == sorted(positions)
    # A late retry answers its first outcome; a late command on a stream this processor had
    # never read decides on what the other writer wrote.
    assert again.replayed and again.position == earlier.position
    assert again.result == earlier.result
    assert moved.accepted and moved.result["total"] == 8
    assert verify_store(store.recorder).ok


def test_submit_all_answers_once_with_every_outcome_in_order_or_the_first_failure(
    processor: CommandProcessor[Tally],
) -> None:
    assert processor.submit_all([]).result(10) == []
    commands = [open_tally_command(OpenTally(tally_id="t"))] + [
        _increment(f"all{i}", "t", i + 1) for i in range(5)
    ]
    outcomes = processor.submit_all(commands).result(10)
    assert [o.command_id for o in outcomes] == [c.command_id for c in commands]
    assert [o.result["total"] for o in outcomes[1:]] == [1, 3, 6, 10, 15]
    processor.stop()
    with pytest.raises(RuntimeError, match="stopping"):
        processor.submit_all([_increment("late", "t", 1)]).result(10)


def test_submit_all_keeps_no_future_alive_once_answered(
    processor: CommandProcessor[Tally],
) -> None:
    """A batch request's futures go as soon as it is answered, not at the next full garbage
    collection (which ``serve`` runs rarely): they hold every outcome of the batch."""
    processor.execute(open_tally_command(OpenTally(tally_id="t")))

    def futures() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, Future))

    gc.collect()
    gc.disable()
    try:
        before = futures()
        processor.submit_all([_increment(f"gc{i}", "t", 1) for i in range(200)]).result(10)
        # The decider holds its last batch until the next one: move it on.
        processor.execute(_increment("next", "t", 1))
        after = futures()
    finally:
        gc.enable()
    assert after - before < 10


def test_a_submit_all_is_answered_after_its_last_command_with_its_first_failure_in_order() -> None:
    from commands.processor import _Gathered, _Slot

    gathered = _Gathered(4)
    slots = [_Slot(gathered, i) for i in range(4)]
    slots[3].set_exception(RuntimeError("third"))
    slots[0].set_result("a")  # type: ignore[arg-type]
    slots[1].set_exception(ValueError("first"))
    assert not gathered.future.done()  # one command is still undecided
    assert [s.done() for s in slots] == [True, True, False, True]
    slots[2].set_result("c")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first"):
        gathered.future.result(0)
    answered = _Gathered(2)
    _Slot(answered, 1).set_result("y")  # type: ignore[arg-type]
    _Slot(answered, 0).set_result("x")  # type: ignore[arg-type]
    assert answered.future.result(0) == ["x", "y"]


def test_an_answer_reads_the_same_first_and_on_a_retry_whatever_the_width_of_its_integers(
    processor: CommandProcessor[Tally],
) -> None:
    """Fresh outcomes are read back by orjson when it wrote them, by the standard library when
    an integer past 64 bits made it fall back; retries always by the standard library."""
    processor.execute(open_tally_command(OpenTally(tally_id="w")))
    for command_id, amount in (
        ("small", 5),
        ("u64", 2**64 - 6),  # the total reaches 2^64 - 1: still orjson's
        ("wide", 2**100),
    ):
        first = processor.execute(_increment(command_id, "w", amount))
        again = processor.execute(_increment(command_id, "w", amount))
        assert first.accepted and again.replayed
        assert first.result == again.result
        assert type(first.result["total"]) is int
    assert first.result["total"] == 2**64 - 1 + 2**100
