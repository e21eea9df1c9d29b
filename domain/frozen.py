"""Frozen dataclasses built at the cost of mutable ones.

Definition
    The generated ``__init__`` of a frozen dataclass sets every field through
    ``object.__setattr__``, about 5-10x slower than a plain slot store (3.8 us for the 10 fields
    of a stored event against 0.4 us, measured on our machines). The objects that every command
    and every replayed event builds (events, specs, stored rows) pay it millions of times.
    :func:`fast_frozen` gives a frozen, slotted dataclass a generated ``__new__`` that fills a
    mutable twin (same base, same slots) and then switches the object's class, or, when a base
    is itself a frozen dataclass, stores each field through its slot's own setter.

Guarantees
    The object is exactly the frozen dataclass: its type, equality, hashing, ``repr``,
    ``dataclasses.replace`` and ``fields`` are the dataclass's, and assignment is refused
    (``FrozenInstanceError``). Copies are the object itself (it cannot change); pickling
    rebuilds it from its fields. Keyword and positional arguments and defaults are as in the
    dataclass's signature.

Constraints
    Only for ``@dataclass(frozen=True, slots=True)`` classes whose fields have no
    ``default_factory`` and no ``__post_init__``. Apply it to the classes that are built, not to
    a base that others extend (a subclass would inherit the base's ``__new__``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

from domain.invariant import invariant

C = TypeVar("C", bound=type)


def _needs_its_init(cls: type) -> bool:
    """The dataclass's own ``__init__`` does work a plain store would skip."""
    return hasattr(cls, "__post_init__") or any(
        f.default_factory is not MISSING for f in fields(cls)
    )


def fast_frozen(cls: C) -> C:
    """Give the frozen slotted dataclass ``cls`` a fast constructor (see the module docstring)."""
    invariant(is_dataclass(cls), f"{cls.__name__} is not a dataclass")
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    invariant(params.frozen and "__slots__" in cls.__dict__, f"{cls.__name__}: frozen, slots")
    invariant(not _needs_its_init(cls), f"{cls.__name__}: a __post_init__ or default_factory")
    own = fields(cls)
    names = tuple(f.name for f in own)
    signature = [f.name if f.default is MISSING else f"{f.name}=_default_{f.name}" for f in own]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_default_{f.name}": f.default for f in own})
    lines = [f"def __new__(_cls, {', '.join(signature)}):"]
    if all("__setattr__" not in base.__dict__ for base in cls.__mro__[1:-1]):
        # A mutable twin (same bases, same slots) stores plainly; then the class switches.
        namespace["_twin"] = type(
            f"_{cls.__name__}Builder", cls.__bases__, {"__slots__": cls.__dict__["__slots__"]}
        )
        lines += ["    self = _new(_twin)"]
        lines += [f"    self.{n} = {n}" for n in names]
        lines += ["    self.__class__ = _cls", "    return self"]
    else:
        # A base is itself frozen (a twin would inherit its refusal): each slot's own setter.
        for n in names:
            owner = next(k for k in cls.__mro__ if n in k.__dict__.get("__slots__", ()))
            namespace[f"_set_{n}"] = owner.__dict__[n].__set__
        lines += ["    self = _new(_cls)"]
        lines += [f"    _set_{n}(self, {n})" for n in names]
        lines += ["    return self"]
    exec("\n".join(lines), namespace)  # noqa: S102 - code generated from the field names
    methods: dict[str, Any] = {
        "__new__": namespace["__new__"],
        "__init__": object.__init__,
        "__copy__": lambda self: self,
        "__deepcopy__": lambda self, memo: self,
        "__reduce__": lambda self: (cls, tuple(getattr(self, n) for n in names)),
    }
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def fast_frozen_all(classes: Iterable[type]) -> None:
    """:func:`fast_frozen` for each of ``classes`` it applies to (an event registry); a class
    with a ``default_factory`` or a ``__post_init__`` keeps its dataclass constructor."""
    for cls in classes:
        if not _needs_its_init(cls):
            fast_frozen(cls)
