"""Tally: the smallest useful aggregate, used by the store's demo and benchmarks.

Definition
    A tally is a named counter. It is opened once, then incremented by positive amounts.

Guarantees
    The total is the sum of the increments; an increment is recorded exactly once.

Rejections (in precedence order)
    ``amount_must_be_positive``, ``tally_not_found``, ``tally_already_opened``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from domain.aggregate import Aggregate
from domain.invariant import invariant


class TallyRejection(Exception):
    code: ClassVar[str] = "tally_rejected"

    def __init__(self, detail: str, tally_id: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.tally_id = tally_id

    def to_outcome(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "tally_id": self.tally_id}


class AmountMustBePositive(TallyRejection):
    code = "amount_must_be_positive"


class TallyNotFound(TallyRejection):
    code = "tally_not_found"


class TallyAlreadyOpened(TallyRejection):
    code = "tally_already_opened"


@dataclass(frozen=True, slots=True)
class TallyOpened:
    TOPIC: ClassVar[str] = "example.TallyOpened.v1"
    tally_id: str
    opened_at_ns: int


@dataclass(frozen=True, slots=True)
class TallyIncremented:
    TOPIC: ClassVar[str] = "example.TallyIncremented.v1"
    tally_id: str
    amount: int
    at_ns: int


TallyEvent = TallyOpened | TallyIncremented
EVENT_TYPES: dict[str, type[TallyOpened] | type[TallyIncremented]] = {
    TallyOpened.TOPIC: TallyOpened,
    TallyIncremented.TOPIC: TallyIncremented,
}


def stream_id(tally_id: str) -> str:
    return f"tally:{tally_id}"


class Tally(Aggregate):
    __slots__ = ("tally_id", "total")

    def __init__(self, tally_id: str) -> None:
        super().__init__(stream_id(tally_id))
        self.tally_id = tally_id
        self.total = 0

    @classmethod
    def open(cls, tally_id: str, existing: Tally | None, now_ns: int) -> Tally:
        if existing is not None:
            raise TallyAlreadyOpened(f"tally {tally_id} is already open", tally_id)
        tally = cls(tally_id)
        tally._trigger(TallyOpened(tally_id, now_ns))
        return tally

    def increment(self, amount: int, now_ns: int) -> None:
        if amount <= 0:
            raise AmountMustBePositive(f"amount {amount} must be positive", self.tally_id)
        self._trigger(TallyIncremented(self.tally_id, amount, now_ns))
        invariant(self.total >= 0, "a tally never goes negative")

    def apply(self, event: object) -> None:
        if isinstance(event, TallyIncremented):
            self.total += event.amount
