"""Loud programmer-error checks that survive ``python -O`` (unlike ``assert``)."""

from __future__ import annotations


class InvariantViolation(AssertionError):
    """A property the code relies on does not hold: a bug, never a user error."""


def invariant(condition: bool, message: str) -> None:
    """Raise :class:`InvariantViolation` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise InvariantViolation(message)
