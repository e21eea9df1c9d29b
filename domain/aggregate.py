"""The aggregate base: validate in public methods, then trigger one event; apply only assigns."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Self


class Aggregate:
    """An event-sourced object identified by its stream id, at a version (events applied).

    ``MUTATES_IN_PLACE``: the command processor normally hands each command a shallow
    :meth:`clone`, so a rejected command changes nothing. An aggregate with large mutable
    state (an order book) sets this to ``True`` instead, and then every command method raises
    only before its first event: the processor gives commands the cached object itself.
    """

    __slots__ = ("_pending", "id", "version")
    MUTATES_IN_PLACE = False

    def __init__(self, stream_id: str) -> None:
        self.id = stream_id
        self.version = 0
        self._pending: list[Any] = []

    def apply(self, event: Any) -> None:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def _trigger(self, event: Any) -> None:
        self.apply(event)
        self.version += 1
        self._pending.append(event)

    def has_pending_events(self) -> bool:
        return bool(self._pending)

    def collect_events(self) -> list[Any]:
        pending, self._pending = self._pending, []
        return pending

    def replay(self, events: Iterable[Any]) -> Self:
        for event in events:
            self.apply(event)
            self.version += 1
        return self

    def clone(self) -> Self:
        """A shallow copy with no pending events: state fields are immutable values."""
        twin = copy.copy(self)
        twin._pending = []
        return twin
