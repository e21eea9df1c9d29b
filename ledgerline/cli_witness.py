"""``ledgerline witness init|serve|add|remove|list``: witnesses that cosign the log's checkpoints.

A witness is another party (another process, machine or organisation) with its own key. It
cosigns a checkpoint only if it is consistent with the last one it cosigned (C2SP
tlog-witness). ``init`` and ``serve`` run on the witness's side and need no database; ``add``,
``remove`` and ``list`` configure, on the log's side, which witnesses the log asks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ledgerline.cli_common import Parser, add_db_options, settings_from_args
from ledgerline.errors import LedgerlineError


def cmd_init(args: argparse.Namespace) -> int:
    from replay.signing import KeyFileError
    from replay.witness import create_witness_key

    try:
        vkey = create_witness_key(Path(args.dir), args.name)
    except (KeyFileError, OSError, ValueError) as exc:
        raise LedgerlineError(f"cannot create the witness key: {exc}") from None
    print(vkey.encode())
    print(
        f"witness key written to {Path(args.dir) / 'witness.key'} (mode 0600); give the verifier "
        "key above to the log (ledgerline witness add) and to the regulators",
        file=sys.stderr,
    )
    return 0


def _log_keys(values: list[str], origin: str | None) -> dict[str, list[Any]]:
    from replay.verifier import COSIGNATURE_V1, NoteError, parse_verifier_keys

    logs: dict[str, list[Any]] = {}
    for value in values:
        path = Path(value)
        try:
            text = path.read_text(encoding="ascii") if path.exists() else value
            keys = parse_verifier_keys(text)
        except (OSError, NoteError, UnicodeDecodeError) as exc:
            raise LedgerlineError(f"--log-key {value!r}: {exc}") from None
        for key in keys:
            if key.algorithm == COSIGNATURE_V1:
                raise LedgerlineError(f"--log-key {key.name}: a witness key is not a log's key")
            logs.setdefault(origin or key.name, []).append(key)
    return logs


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.witness_app import create_witness_app
    from ledgerline.http_protocol import CoalescingHttpToolsProtocol
    from ledgerline.serve import check_port_free
    from replay.signing import KeyFileError
    from replay.witness import WitnessService

    if not args.log_key:
        raise LedgerlineError("give the log's verifier key with --log-key (repeatable)")
    try:
        service = WitnessService(Path(args.dir), _log_keys(args.log_key, args.origin))
    except KeyFileError as exc:
        raise LedgerlineError(f"{exc} (create it with: ledgerline witness init)") from None
    check_port_free(args.host, args.port)
    print(
        f"ledgerline: witness {service.name} serving on http://{args.host}:{args.port} for "
        f"{', '.join(sorted(service.logs))}",
        flush=True,
    )
    config = uvicorn.Config(
        create_witness_app(service),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http=CoalescingHttpToolsProtocol,
    )
    uvicorn.Server(config).run()
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all
    from replay.keys import KeyConfigError, add_witness

    key = args.public_key
    if Path(key).exists():
        key = Path(key).read_text(encoding="ascii").strip()
    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with EventStore(url, pool_size=1, run_migrations=False) as store:
            try:
                witness = add_witness(store.recorder, key, args.url)
            except KeyConfigError as exc:
                raise LedgerlineError(str(exc)) from None
    print(f"witness {witness.name} ({witness.key.key_id.hex()}) at {witness.url} added")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all
    from replay.keys import KeyConfigError, remove_witness

    with database_url(settings_from_args(args)) as url:
        migrate_all(url)
        with EventStore(url, pool_size=1, run_migrations=False) as store:
            try:
                remove_witness(store.recorder, args.witness)
            except KeyConfigError as exc:
                raise LedgerlineError(str(exc)) from None
    print(f"witness {args.witness} removed")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from ledgerline.runtime import require_migrated
    from replay.keys import witnesses

    with database_url(settings_from_args(args), existing=True) as url:
        require_migrated(url)
        with EventStore(url, pool_size=1, run_migrations=False) as store:
            for w in witnesses(store.recorder):
                print(f"{w.key.encode()} {w.url}")
    return 0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "witness", help="witnesses: run one, or tell the log which ones to ask for cosignatures"
    )
    commands = p.add_subparsers(dest="witness_command", required=True, parser_class=Parser)

    k = commands.add_parser("init", help="create a witness key (Ed25519, cosignature/v1)")
    k.add_argument("--dir", required=True, help="the witness's directory (key and state)")
    k.add_argument("--name", required=True, help="the witness's name, e.g. witness.example/w1")
    k.set_defaults(func=cmd_init)

    k = commands.add_parser("serve", help="run a witness: POST <url>/add-checkpoint (C2SP)")
    k.add_argument("--dir", required=True, help="the witness's directory (from witness init)")
    k.add_argument(
        "--log-key",
        action="append",
        help="a log's verifier key, or a file of them (repeatable); its name is the origin",
    )
    k.add_argument("--origin", help="the log's origin, if it differs from its key name")
    k.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    k.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    k.set_defaults(func=cmd_serve)

    k = commands.add_parser("add", help="ask this witness to cosign every new checkpoint")
    k.add_argument("--public-key", required=True, help="the witness's verifier key (or a file)")
    k.add_argument("--url", required=True, help="the witness's URL prefix (before /add-checkpoint)")
    add_db_options(k)
    k.set_defaults(func=cmd_add)

    k = commands.add_parser("remove", help="stop asking a witness")
    k.add_argument("witness", help="the witness's verifier key or name")
    add_db_options(k)
    k.set_defaults(func=cmd_remove)

    k = commands.add_parser("list", help="the witnesses the log asks")
    add_db_options(k)
    k.set_defaults(func=cmd_list)
