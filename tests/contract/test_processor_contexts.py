"""One processor for several bounded contexts, and aggregates that change in place."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from commands import tally
from commands.context import CommandContext, build_processor
from commands.processor import Command, CommandProcessor, UnitOfWork, canonical_json
from domain.aggregate import Aggregate
from domain.invariant import InvariantViolation
from eventstore.model import StoredEvent
from eventstore.store import EventStore


@dataclass(frozen=True, slots=True)
class ItemAdded:
    TOPIC: ClassVar[str] = "bag.ItemAdded.v1"
    bag_id: str
    item: str


class BagRejection(Exception):
    code = "bag_rejected"


class ItemMustBeNew(BagRejection):
    code = "item_must_be_new"


class Bag(Aggregate):
    """A set that grows in place (like an order book): never cloned per command."""

    MUTATES_IN_PLACE = True
    __slots__ = ("items",)

    def __init__(self, bag_id: str) -> None:
        super().__init__(f"bag:{bag_id}")
        self.items: list[str] = []

    def add(self, item: str) -> None:
        if item in self.items:
            raise ItemMustBeNew(f"{item} is already in the bag")
        self._trigger(ItemAdded(self.id.removeprefix("bag:"), item))

    def apply(self, event: Any) -> None:
        self.items.append(event.item)


class AddItem(BaseModel):
    model_config = ConfigDict(frozen=True)
    command_id: str
    bag_id: str
    item: str
    then_fail: bool = False
    tally_id: str | None = None


def add_command(body: AddItem) -> Command:
    return Command.create(f"bag:{body.command_id}", "bag.add", body, body.model_dump())


def _add(uow: UnitOfWork, cmd: AddItem) -> dict[str, Any]:
    bag = uow.get(f"bag:{cmd.bag_id}")
    if bag is None:
        bag = Bag(cmd.bag_id)
        uow.add(bag)
    bag.add(cmd.item)
    if cmd.tally_id is not None:  # another context's aggregate, in the same unit of work
        counter = uow.get(f"tally:{cmd.tally_id}")
        counter.increment(1, time.time_ns())
    if cmd.then_fail:
        raise ItemMustBeNew("raised after the event: a programming error")
    return {"items": list(bag.items)}


def _rebuild(bag: Bag | None, events: Sequence[StoredEvent]) -> Bag | None:
    decoded = [ItemAdded(**json.loads(e.payload)) for e in events]
    if bag is None and decoded:
        bag = Bag(decoded[0].bag_id)
    return bag.replay(decoded) if bag is not None else None


BAGS = CommandContext(
    name="bag",
    handlers={"bag.add": _add},
    streams_of=lambda c: (
        [f"bag:{c.body.bag_id}"] + ([f"tally:{c.body.tally_id}"] if c.body.tally_id else [])
    ),
    stream_prefixes=("bag:",),
    encode=lambda e: (e.TOPIC, canonical_json(asdict(e))),
    rebuild=_rebuild,
    rejection_types=(BagRejection,),
    to_outcome=lambda exc: {"code": getattr(exc, "code", "x"), "detail": str(exc)},
)


@pytest.fixture
def processor(store: EventStore) -> Iterator[CommandProcessor[Any]]:
    p = build_processor(store.recorder, [tally.build_context(time.time_ns), BAGS]).start()
    yield p
    p.stop()


def test_a_command_writes_aggregates_of_two_contexts_in_one_commit(
    processor: CommandProcessor[Any], store: EventStore
) -> None:
    processor.execute(tally.open_tally_command(tally.OpenTally(tally_id="t")))
    both = AddItem(command_id="1", bag_id="b", item="x", tally_id="t")
    out = processor.execute(add_command(both))
    assert out.accepted
    assert out.last_position is not None and out.first_position is not None
    assert out.last_position - out.first_position == 1  # the bag's event and the tally's
    streams = store.recorder.read_streams(["bag:b", "tally:t"])
    assert [e.topic for e in streams["bag:b"]] == ["bag.ItemAdded.v1"]
    assert [e.topic for e in streams["tally:t"]][-1] == "example.TallyIncremented.v1"


def test_two_contexts_may_not_claim_the_same_command_type_or_stream(store: EventStore) -> None:
    with pytest.raises(InvariantViolation):
        build_processor(store.recorder, [BAGS, BAGS])


def test_a_rejection_before_any_event_leaves_an_in_place_aggregate_as_it_was(
    processor: CommandProcessor[Any],
) -> None:
    assert processor.execute(add_command(AddItem(command_id="1", bag_id="b", item="x"))).accepted
    again = processor.execute(add_command(AddItem(command_id="2", bag_id="b", item="x")))
    assert not again.accepted and again.result["code"] == "item_must_be_new"
    third = processor.execute(add_command(AddItem(command_id="3", bag_id="b", item="y")))
    assert third.result == {"items": ["x", "y"]}


def test_a_command_failing_after_changing_an_in_place_aggregate_fails_its_batch_and_is_forgotten(
    processor: CommandProcessor[Any], store: EventStore
) -> None:
    assert processor.execute(add_command(AddItem(command_id="1", bag_id="b", item="x"))).accepted
    broken = processor.submit(
        add_command(AddItem(command_id="2", bag_id="b", item="y", then_fail=True))
    )
    with pytest.raises(InvariantViolation):
        broken.result(10)
    # Nothing of the failed batch was written, and the cache no longer holds the changed bag:
    # the next command sees the bag as the store has it.
    assert [e.payload for e in store.recorder.read_streams(["bag:b"])["bag:b"]] == [
        canonical_json({"bag_id": "b", "item": "x"})
    ]
    after = processor.execute(add_command(AddItem(command_id="3", bag_id="b", item="z")))
    assert after.result == {"items": ["x", "z"]}
