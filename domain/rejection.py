"""The shape every domain's named rejections share: a stable ``code``, a human ``detail`` and the
ids involved. Each bounded context roots its own rules in a subclass (``LedgerRejection``,
``TradingRejection``, ...) so a context's handlers catch only their own."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar


class Rejection(Exception):
    """A rule a command broke. ``code`` is the public name; ``ids`` name what was involved."""

    code: ClassVar[str] = "rejection"

    def __init__(self, detail: str, **ids: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.ids = ids

    def to_outcome(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.ids}


R = TypeVar("R", bound=Rejection)


def rule(base: type[R], name: str, code: str, doc: str) -> type[R]:
    """A rejection class for one rule: a subclass of ``base`` with its code and docstring."""
    return type(name, (base,), {"code": code, "__doc__": doc})
