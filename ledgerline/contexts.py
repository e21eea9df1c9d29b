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
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledgerline import cli_reconciliation, cli_settlement

if TYPE_CHECKING:
    from commands.context import CommandContext
    from ledgerline.runtime import Runtime

Clock = Callable[[], int]


@dataclass(frozen=True)
class Duty:
    """A scheduled job one elected API process runs (the ledger's expiry sweep, a cut-off).

    ``run(runtime)`` does one round and returns how many things it acted on.
    ``next_due(conn)`` is the business time (ns) at which the next item comes due in the read
    models, or None when nothing is waiting: between changes to the read models the duty is
    then not run (nor the database asked) before that time.
    """

    name: str
    interval_s: float
    run: Callable[[Runtime], int]
    next_due: Callable[[Any], int | None] | None = None


@dataclass(frozen=True)
class ContextModule:
    name: str
    # The module whose ``build_context(clock)`` builds the context's write side (imported
    # when a processor is built, like the routers when an app is).
    command_context: str | None
    # The modules whose ``router`` the API mounts, imported only when an app is built (the
    # routes and the console cost most of the CLI's start-up, and most commands serve none).
    routers: Sequence[str] = ()
    duties: Sequence[Duty] = ()
    # Adds the context's command-line group: ``register(subparsers)``.
    cli: Callable[[Any], None] | None = None
    # ``ledgerline bench <name>``: name -> run(args) -> the JSON-ready result.
    benches: Mapping[str, Callable[[argparse.Namespace], dict[str, Any]]] = field(
        default_factory=dict
    )


def _aml_cli(sub: Any) -> None:
    from ledgerline import cli_aml

    cli_aml.register(sub)


def _aml_bench(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_aml

    return bench_aml.run_from_args(args)


def _sweep_expired(runtime: Runtime) -> int:
    return runtime.sweep_expired()


def _next_hold_due(conn: Any) -> int | None:
    from readmodels.ledger import next_hold_due

    return next_hold_due(conn)


def _next_cut_off(conn: Any) -> int | None:
    from readmodels.settlement import next_cut_off

    return next_cut_off(conn)


def _next_order_expiry(conn: Any) -> int | None:
    from readmodels.trading import next_order_expiry

    return next_order_expiry(conn)


def _bench_settlement(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_settlement
    from ledgerline.cli_common import settings_from_args
    from ledgerline.database import database_url

    with database_url(settings_from_args(args)) as url:
        return bench_settlement.run(
            url, obligations=args.events or 1_000_000, rate=args.rate or 10_000.0
        )


def _cut_off_due(runtime: Runtime) -> int:
    """The scheduled cut-offs: every open cycle whose cut-off time has come on the clock."""
    from commands import settlement as settlement_commands
    from readmodels.settlement import due_cut_offs

    return runtime.submit_due(
        due_cut_offs,
        lambda due: settlement_commands.cut_off_command(
            settlement_commands.CutOff(scheme_id=due[0], seq=due[1], trigger="scheduled")
        ),
    )


def _ledger_cli(sub: Any) -> None:
    from ledgerline import cli_ledger

    cli_ledger.register(sub)


def _witness_cli(sub: Any) -> None:
    from ledgerline import cli_witness

    cli_witness.register(sub)


def _bench_evidence(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_evidence

    return bench_evidence.run_from_args(args)


def _trading_cli(sub: Any) -> None:
    from ledgerline import cli_trading

    cli_trading.register(sub)


def _bench_matching(args: argparse.Namespace) -> dict[str, Any]:
    from ledgerline import bench_matching

    return bench_matching.run(args)


def _expire_orders(runtime: Runtime) -> int:
    """Expire the 'gtd' orders past their time, one command per book that has any."""
    from commands import trading as trading_commands
    from readmodels.trading import due_instruments

    now = runtime.clock()
    with runtime.store.datastore.get_connection() as conn:
        due = due_instruments(conn, now)
    futures = [
        runtime.processor.submit(
            trading_commands.expire_command(
                trading_commands.ExpireOrders(instrument_id=i, at_ns=now)
            )
        )
        for i in due
    ]
    return sum(f.result(30).result.get("expired", 0) for f in futures)


CONTEXTS: tuple[ContextModule, ...] = (
    ContextModule(
        name="ledger",
        command_context="commands.ledger",
        routers=("api.ledger_routes",),
        duties=(Duty("expiry", 1.0, _sweep_expired, _next_hold_due),),
        cli=_ledger_cli,
    ),
    ContextModule(
        name="evidence",
        command_context=None,
        routers=("api.evidence_routes", "api.log_routes"),
        cli=_witness_cli,
        benches={"evidence": _bench_evidence},
    ),
    ContextModule(
        name="aml",
        command_context="commands.aml",
        routers=("api.aml_routes",),
        cli=_aml_cli,
        benches={"aml": _aml_bench},
    ),
    ContextModule(
        name="settlement",
        command_context="commands.settlement",
        routers=("api.settlement_routes",),
        duties=(Duty("cut-off", 1.0, _cut_off_due, _next_cut_off),),
        cli=cli_settlement.register,
        benches={"settlement": _bench_settlement},
    ),
    ContextModule(
        name="trading",
        command_context="commands.trading",
        routers=("api.trading_routes",),
        duties=(Duty("trading-expiry", 1.0, _expire_orders, _next_order_expiry),),
        cli=_trading_cli,
        benches={"matching": _bench_matching},
    ),
    ContextModule(
        name="reconciliation",
        command_context="commands.reconciliation",
        routers=("api.reconciliation_routes",),
        cli=cli_reconciliation.register,
    ),
    ContextModule(name="keys", command_context=None, routers=("api.keys_routes",)),
    # Last: its catch-all answers every other /console path.
    ContextModule(name="console", command_context=None, routers=("api.console",)),
)


def command_contexts(clock: Clock) -> list[CommandContext]:
    return [
        importlib.import_module(m.command_context).build_context(clock)
        for m in CONTEXTS
        if m.command_context is not None
    ]


def routers() -> list[Any]:
    return [importlib.import_module(module).router for m in CONTEXTS for module in m.routers]


def duties() -> list[Duty]:
    return [d for m in CONTEXTS for d in m.duties]
