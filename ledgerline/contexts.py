"""The bounded contexts the composition root wires together, in one list.

Definition
    Each :class:`ContextModule` names what one bounded context brings to the running system:
    its write side (a :class:`~commands.context.CommandContext` builder), its HTTP routers,
    its scheduled duties (expiry sweeps, cut-offs), its command-line group and its benches.
    Its projections are listed in :mod:`projections.registry` (the layers below the
    composition root need them too).

    ``build_runtime`` merges every context's write side into one command processor and mounts
    every router; ``ledgerline`` adds every CLI group and bench. A new context adds one entry
    to :data:`CONTEXTS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from api.console import router as console_router
from api.evidence_routes import router as evidence_router
from api.keys_routes import router as keys_router
from api.ledger_routes import router as ledger_router
from commands import ledger as ledger_commands
from commands.context import CommandContext

if TYPE_CHECKING:
    from ledgerline.runtime import Runtime

Clock = Callable[[], int]


@dataclass(frozen=True)
class Duty:
    """A scheduled job one elected API process runs (the ledger's expiry sweep, a cut-off).

    ``run(runtime)`` does one round and returns how many things it acted on.
    """

    name: str
    interval_s: float
    run: Callable[[Runtime], int]


@dataclass(frozen=True)
class ContextModule:
    name: str
    command_context: Callable[[Clock], CommandContext] | None
    routers: Sequence[Any] = ()
    duties: Sequence[Duty] = ()
    # Adds the context's command-line group: ``register(subparsers)``.
    cli: Callable[[Any], None] | None = None
    # ``ledgerline bench <name>``: name -> run(args) -> the JSON-ready result.
    benches: Mapping[str, Callable[[argparse.Namespace], dict[str, Any]]] = field(
        default_factory=dict
    )


def _sweep_expired(runtime: Runtime) -> int:
    return runtime.sweep_expired()


CONTEXTS: tuple[ContextModule, ...] = (
    ContextModule(
        name="ledger",
        command_context=ledger_commands.build_context,
        routers=(ledger_router,),
        duties=(Duty("expiry", 1.0, _sweep_expired),),
    ),
    ContextModule(name="evidence", command_context=None, routers=(evidence_router,)),
    ContextModule(name="keys", command_context=None, routers=(keys_router,)),
    # Last: its catch-all answers every other /console path.
    ContextModule(name="console", command_context=None, routers=(console_router,)),
)


def command_contexts(clock: Clock) -> list[CommandContext]:
    return [m.command_context(clock) for m in CONTEXTS if m.command_context is not None]


def routers() -> list[Any]:
    return [r for m in CONTEXTS for r in m.routers]


def duties() -> list[Duty]:
    return [d for m in CONTEXTS for d in m.duties]
