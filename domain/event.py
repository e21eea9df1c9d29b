"""The payload conversion that contexts with flat events share: every field of a frozen, slotted
dataclass is a JSON-safe value, written as is and read back by name."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self


@dataclass(frozen=True, slots=True)
class FlatEvent:
    """An event whose payload is its fields. A payload with keys this version of the event does
    not know (written by a later one) reads back with those keys left out."""

    TOPIC: ClassVar[str] = ""

    def to_payload(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Self:
        try:
            return cls(**payload)
        except TypeError:
            names = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in payload.items() if k in names})
