"""``ledgerline settlement ...``: a cycle's figures, and the operator's cycle commands.

    ledgerline settlement cycle CYCLE_ID [--json]          state, G, B, M, positions (read model)
    ledgerline settlement cut-off CYCLE_ID                 freeze positions, open the next cycle
    ledgerline settlement unwind CYCLE_ID --participant ID unwind a defaulter
    ledgerline settlement settle CYCLE_ID                  post the instructions to the ledger

The commands go through the same command processor as the API (the store's writers' lock
makes a CLI command safe beside a running server); a rejection is one line naming its rule
and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ledgerline.cli_common import EXIT_BROKEN, Parser, add_db_options, settings_from_args
from ledgerline.errors import LedgerlineError


class Rejected(LedgerlineError):
    exit_code = EXIT_BROKEN


def _cycle(text: str) -> tuple[int, int]:
    from commands.settlement import parse_cycle

    parsed = parse_cycle(text)
    if parsed is None:
        raise LedgerlineError(f"{text!r} is not a cycle id such as 1-2 (<scheme>-<seq>)")
    return parsed


def _execute(args: argparse.Namespace, command: Any) -> dict[str, Any]:
    from commands.context import build_processor
    from eventstore.store import EventStore
    from ledgerline.contexts import command_contexts
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with EventStore(url, pool_size=2, run_migrations=False) as store:
            processor = build_processor(store.recorder, command_contexts(time.time_ns)).start()
            try:
                outcome = processor.execute(command, timeout_s=600)
            finally:
                processor.stop()
    if not outcome.accepted:
        result = outcome.result
        raise Rejected(f"{result.get('code')}: {result.get('detail')}")
    return {**outcome.result, "position": outcome.position}


def cmd_cut_off(args: argparse.Namespace) -> int:
    from commands import settlement as sc

    scheme_id, seq = _cycle(args.cycle)
    result = _execute(args, sc.cut_off_command(sc.CutOff(scheme_id=scheme_id, seq=seq)))
    breaches = len(result["breaches"])
    print(
        f"cycle {args.cycle} cut off at position {result['position']}; next cycle "
        f"{result['next_cycle_id']}; {breaches} cap breach{'es' if breaches != 1 else ''}"
    )
    return 0


def cmd_unwind(args: argparse.Namespace) -> int:
    from commands import settlement as sc

    scheme_id, seq = _cycle(args.cycle)
    cmd = sc.Unwind(scheme_id=scheme_id, seq=seq, participant_id=args.participant)
    result = _execute(args, sc.unwind_command(cmd))
    print(f"participant {args.participant} unwound from cycle {args.cycle}")
    for currency, pid, before, after in result["debit_increases"]:
        print(f"  {currency} participant {pid}: debit {before} -> {after} (minor units)")
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    from commands import settlement as sc

    scheme_id, seq = _cycle(args.cycle)
    result = _execute(args, sc.settle_command(sc.Settle(scheme_id=scheme_id, seq=seq)))
    print(
        f"cycle {args.cycle} settled at position {result['position']}: "
        f"{len(result['instructions'])} instructions posted to the ledger"
    )
    return 0


def cmd_cycle(args: argparse.Namespace) -> int:
    from domain.money import format_major
    from domain.settlement.netting import efficiency, efficiency_text
    from eventstore.store import connect_owner
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all
    from readmodels import settlement as rm

    scheme_id, seq = _cycle(args.cycle)
    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with connect_owner(url) as conn:
            cycle = rm.get_cycle(conn, scheme_id, seq)
            positions = rm.cycle_positions(conn, scheme_id, seq)
    if cycle is None:
        raise LedgerlineError(f"no cycle {args.cycle} in the read model")
    if args.json:
        print(json.dumps({"cycle": cycle, "positions": positions}, indent=2, default=str))
        return 0
    print(
        f"cycle {args.cycle}: {cycle['state']} ({cycle['mode']}), value date {cycle['value_date']}"
    )
    for t in cycle["totals"]:
        cur = t["currency"]
        print(
            f"  {cur}: G {format_major(t['gross'], cur)}  B {format_major(t['bilateral'], cur)}"
            f"  M {format_major(t['multilateral'], cur)}  E_bil "
            f"{efficiency_text(efficiency(t['bilateral'], t['gross']))}  E_mult "
            f"{efficiency_text(efficiency(t['multilateral'], t['gross']))}"
        )
    for p in positions:
        net = p["received"] - p["sent"]
        print(f"    {p['currency']} {p['participant_id']}: {format_major(net, p['currency'])}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("settlement", help="clearing and settlement: cycles and their commands")
    cmds = p.add_subparsers(dest="settlement_command", required=True, parser_class=Parser)
    k = cmds.add_parser("cycle", help="a cycle's state, G, B, M and positions")
    k.add_argument("cycle", help="the cycle id, <scheme>-<seq>")
    k.add_argument("--json", action="store_true")
    add_db_options(k)
    k.set_defaults(func=cmd_cycle)
    k = cmds.add_parser("cut-off", help="cut a cycle off (freeze positions, open the next)")
    k.add_argument("cycle")
    add_db_options(k)
    k.set_defaults(func=cmd_cut_off)
    k = cmds.add_parser("unwind", help="unwind a defaulting participant from a cut-off cycle")
    k.add_argument("cycle")
    k.add_argument("--participant", type=int, required=True)
    add_db_options(k)
    k.set_defaults(func=cmd_unwind)
    k = cmds.add_parser("settle", help="post a cut-off cycle's instructions to the ledger")
    k.add_argument("cycle")
    add_db_options(k)
    k.set_defaults(func=cmd_settle)
