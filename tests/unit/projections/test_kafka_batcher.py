"""The Kafka worker's batcher: consuming overlaps applying, within a bound."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from projections.kafka_worker import Batcher


def _message(partition: int, offset: int) -> Any:
    return SimpleNamespace(partition=partition, offset=offset)


def _offsets(batch: list[Any]) -> list[tuple[int, int]]:
    return [(m.partition, m.offset) for m in batch]


def test_a_batch_is_everything_that_arrived_while_the_last_one_was_applied() -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        batcher = Batcher(100)
        await batcher.add([_message(0, 0)])
        first = await batcher.take()  # the applier was idle: one message, at once
        for offset in range(1, 6):  # arrive while ``first`` is being applied
            await batcher.add([_message(0, offset)])
        return first, await batcher.take()

    first, second = asyncio.run(scenario())
    assert _offsets(first) == [(0, 0)]
    assert _offsets(second) == [(0, o) for o in range(1, 6)]


def test_consumption_pauses_at_the_bound_until_a_batch_is_taken() -> None:
    async def scenario() -> tuple[bool, int, list[Any], bool]:
        batcher = Batcher(3)
        for offset in range(2):
            await batcher.add([_message(1, offset)])
        third = asyncio.create_task(batcher.add([_message(1, 2)]))
        await asyncio.sleep(0.01)
        paused = not third.done()  # three waiting: the consumer stops taking messages
        waiting = len(batcher)
        batch = await batcher.take()
        await asyncio.wait_for(third, 1)
        return paused, waiting, batch, third.done()

    paused, waiting, batch, resumed = asyncio.run(scenario())
    assert paused and waiting == 3
    assert _offsets(batch) == [(1, 0), (1, 1), (1, 2)]
    assert resumed


def test_a_batch_never_exceeds_the_bound_and_keeps_the_order() -> None:
    async def scenario() -> list[list[Any]]:
        batcher = Batcher(4)
        fetches = [[_message(2, o) for o in range(f, f + 3)] for f in range(0, 9, 3)]
        adding = asyncio.create_task(_add_all(batcher, [*fetches, [_message(2, 9)]]))
        batches = []
        while sum(len(b) for b in batches) < 10:
            batches.append(await batcher.take())
        await adding
        return batches

    batches = asyncio.run(scenario())
    assert all(len(b) <= 4 for b in batches)
    assert [o for b in batches for o in _offsets(b)] == [(2, o) for o in range(10)]


def test_a_fetch_larger_than_the_bound_is_taken_in_bounded_batches() -> None:
    async def scenario() -> list[list[Any]]:
        batcher = Batcher(4)
        adding = asyncio.create_task(batcher.add([_message(3, o) for o in range(10)]))
        batches = [await batcher.take() for _ in range(3)]
        await asyncio.wait_for(adding, 1)
        return batches

    assert [len(b) for b in asyncio.run(scenario())] == [4, 4, 2]


def test_revoked_partitions_lose_their_waiting_messages_and_only_theirs() -> None:
    async def scenario() -> list[Any]:
        batcher = Batcher(100)
        for partition, offset in [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1)]:
            await batcher.add([_message(partition, offset)])
        batcher.forget([1])
        return await batcher.take()

    assert _offsets(asyncio.run(scenario())) == [(0, 0), (0, 1), (2, 0)]


def test_once_applying_failed_the_consumer_stops_with_its_error() -> None:
    async def scenario() -> None:
        batcher = Batcher(2)
        await batcher.add([_message(0, 0)])
        blocked = asyncio.create_task(batcher.add([_message(0, 1)]))  # at the bound: waits
        await asyncio.sleep(0.01)
        batcher.fail(RuntimeError("applier broke"))
        await asyncio.wait_for(blocked, 1)  # released, not left waiting forever
        await batcher.add([_message(0, 2)])

    with pytest.raises(RuntimeError, match="applier broke"):
        asyncio.run(scenario())


async def _add_all(batcher: Batcher, fetches: list[list[Any]]) -> None:
    for fetch in fetches:
        await batcher.add(fetch)
