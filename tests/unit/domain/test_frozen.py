"""Frozen values built fast (domain/frozen.py) behave exactly as their frozen dataclasses."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import dataclass

import pytest

from domain.frozen import fast_frozen
from domain.invariant import InvariantViolation
from domain.ledger.events import EVENT_TYPES, AmountPosted, TransferCreated
from eventstore.model import StoredEvent


@dataclass(frozen=True, slots=True)
class Slow:
    a: int
    b: str = "x"


@fast_frozen
@dataclass(frozen=True, slots=True)
class Fast:
    a: int
    b: str = "x"


def test_a_fast_value_is_its_dataclass_in_every_way_a_caller_can_see() -> None:
    built = [Fast(1), Fast(1, "x"), Fast(a=1), Fast(b="x", a=1)]
    for value in built:
        assert type(value) is Fast and value == built[0] and hash(value) == hash(built[0])
        assert repr(value) == repr(Slow(1)).replace("Slow", "Fast")
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.a = 2  # type: ignore[misc]
        assert copy.copy(value) is value and copy.deepcopy(value) is value
        assert pickle.loads(pickle.dumps(value)) == value
        assert dataclasses.replace(value, b="y") == Fast(1, "y")
        assert dataclasses.astuple(value) == (1, "x")
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast(1, c=2)  # type: ignore[call-arg]


def test_only_frozen_slotted_dataclasses_are_accepted() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    with pytest.raises(InvariantViolation):
        fast_frozen(Mutable)


def test_the_ledgers_events_and_stored_rows_are_built_fast_and_still_frozen() -> None:
    assert all("__new__" in cls.__dict__ for cls in EVENT_TYPES.values())
    posted = AmountPosted(1, 2, 1, "USD", "debit", 5, 100)
    assert posted.deltas() == (0, 100, 0, 0) and posted.cause_id == 2
    created = TransferCreated.from_payload(
        {**dataclasses.asdict(TransferCreated(1, 2, 3, 4, 1, "USD", 1, False, 0, 5))}
    )
    assert created == TransferCreated(1, 2, 3, 4, 1, "USD", 1, False, 0, 5)
    row = StoredEvent(1, "s", 1, "t", b"{}", 9, b"", b"h", b"", b"g")
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.payload = b"x"  # type: ignore[misc]
    assert dataclasses.replace(row, payload=b"[]").payload == b"[]"
