"""Whatever order and however often a partition's messages arrive, each event is applied once,
in the relay's order, and nothing is acknowledged before it is applied or known applied."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.canonical import GENESIS
from eventstore.model import StoredEvent
from projections.kafka_worker import Consumed, _plan
from projections.messages import Message

TOPIC = "ledgerline.ledger"


def partition_messages(positions: list[int], watermark: int | None) -> list[Consumed]:
    """One partition as the relay writes it: events with prev links, maybe a final watermark."""
    out: list[Consumed] = []
    prev = 0
    for offset, position in enumerate(positions):
        event = StoredEvent(
            position, f"account:{position}", 1, "ledger.X", b"{}", 0, *([GENESIS] * 4)
        )
        msg = Message(TOPIC, 0, offset, position, prev, event)
        out.append(Consumed(object(), TOPIC, 0, offset, msg))
        prev = position
    if watermark is not None:
        msg = Message(TOPIC, 0, len(out), max(watermark, prev), prev, None)
        out.append(Consumed(object(), TOPIC, 0, len(out), msg))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Consumed], list[list[Consumed]]]:
    gaps = draw(st.lists(st.integers(1, 5), min_size=1, max_size=25))
    positions = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    watermark = draw(st.one_of(st.none(), st.integers(positions[-1], positions[-1] + 10)))
    msgs = partition_messages(positions, watermark)
    # Redeliveries (a relay resend, a rebalance) and any order, cut into any batches.
    extra = draw(st.lists(st.sampled_from(msgs), max_size=len(msgs)))
    stream = draw(st.permutations(msgs + extra))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    bounds = [0, *cuts, len(stream)]
    batches = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    return msgs, batches


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_any_delivery_applies_each_event_once_in_order(
    case: tuple[list[Consumed], list[list[Consumed]]],
) -> None:
    msgs, batches = case
    position = 0
    held: dict[int, Consumed] = {}
    applied: list[int] = []
    acked: set[int] = set()
    for batch in batches:
        pending = dict(held)
        for item in batch:
            pending[item.offset] = item
        plan = _plan(TOPIC, pending, position)
        assert plan.stop is None
        for item, after in plan.steps:
            assert item.message is not None
            assert item.message.prev <= position < after  # next in order, never early
            if item.message.event is not None:
                applied.append(after)
            position = after
            acked.add(id(item.token))
        for token in plan.acks:  # duplicates: only ever of what is already applied
            acked.add(id(token))
        held = plan.held
    events = [m.message.position for m in msgs if m.message and m.message.event]
    assert applied == events  # every event, once, in the relay's order
    assert position == msgs[-1].message.position  # type: ignore[union-attr]
    assert held == {}
    assert {id(m.token) for m in msgs} <= acked


def test_a_poison_message_behind_a_gap_waits_for_the_gap() -> None:
    msgs = partition_messages([1, 2, 3], None)
    poison = Consumed(object(), TOPIC, 0, 9, poison="undecodable")
    plan = _plan(TOPIC, {m.offset: m for m in [msgs[1], poison]}, 0)
    assert plan.stop is None and plan.steps == []  # 2 waits for 1; the poison waits too
    plan = _plan(TOPIC, {m.offset: m for m in [msgs[0], msgs[1], poison]}, 0)
    assert [after for _, after in plan.steps] == [1, 2]
    assert plan.stop == (poison, "undecodable")
