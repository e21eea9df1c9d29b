"""The ``ledgerline`` command line: a thin shell over the composition root.

Every failure a user can cause prints one line, ``ledgerline: error: ...``, on stderr and exits
non-zero; a traceback appears only with ``LEDGERLINE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from eventstore.errors import EventStoreError
from ledgerline.config import Settings, load_settings
from ledgerline.errors import LedgerlineError

EXIT_BROKEN = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ledgerline: error: {message}\n")


def _add_db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="external PostgreSQL URL (env DATABASE_URL)")
    p.add_argument(
        "--data-dir", help="data directory of the embedded server (env LEDGERLINE_DATA_DIR)"
    )
    p.add_argument("--config", help="TOML config file (env LEDGERLINE_CONFIG)")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        {
            "database_url": getattr(args, "database_url", None),
            "data_dir": getattr(args, "data_dir", None),
            "config": getattr(args, "config", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
        }
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    from eventstore.schema import LATEST_VERSION
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    with database_url(_settings(args)) as url:
        migrate_all(url)
        print(f"schema is up to date (event store version {LATEST_VERSION})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ledgerline.database import database_url
    from ledgerline.serve import serve

    settings = _settings(args)
    if args.workers < 1:
        raise LedgerlineError("--workers must be at least 1")
    with database_url(settings) as url:
        return serve(url, settings, workers=args.workers)


def cmd_signing_create(args: argparse.Namespace) -> int:
    from replay.log import origin, signing_key_path
    from replay.signing import KeyFileError, generate_signing_key

    settings = _settings(args)
    path = Path(args.key_file) if args.key_file else signing_key_path(settings.data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        verifier = generate_signing_key(path, args.name or origin())
    except (KeyFileError, OSError) as exc:
        raise LedgerlineError(f"cannot create the signing key: {exc}") from None
    print(verifier.encode())
    print(
        f"private key written to {path} (mode 0600); publish the verifier key above",
        file=sys.stderr,
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from ledgerline.database import database_url
    from replay.log import CheckpointError, load_signing_key, make_checkpoint, signing_key_path
    from replay.signing import KeyFileError

    settings = _settings(args)
    path = Path(args.key_file) if args.key_file else signing_key_path(settings.data_dir)
    try:
        key = load_signing_key(path)
    except KeyFileError as exc:
        raise LedgerlineError(f"{exc} (create one with: ledgerline keys signing-create)") from None
    with database_url(settings) as url, EventStore(url, pool_size=1) as store:
        try:
            cp = make_checkpoint(store.recorder, key)
        except CheckpointError as exc:
            raise LedgerlineError(str(exc)) from None
    sys.stdout.write(cp.note)
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from api.keys import Role, create_key
    from eventstore.store import connect_owner
    from ledgerline.database import database_url
    from ledgerline.runtime import migrate_all

    with database_url(_settings(args)) as url:
        migrate_all(url)
        with connect_owner(url) as conn:
            key = create_key(conn, Role(args.role), args.label or "")
    print(key.token)
    print(
        f"key {key.key_id} ({key.role.value}) created; the token is shown only once",
        file=sys.stderr,
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from eventstore.store import EventStore
    from eventstore.verify import verify_store
    from ledgerline.database import database_url

    with database_url(_settings(args)) as url, EventStore(url, pool_size=1) as store:
        report = verify_store(store.recorder)
    if report.first_break is not None:
        print(f"ledgerline: verify FAILED: first broken {report.first_break}", file=sys.stderr)
        return EXIT_BROKEN
    print(
        f"verified {report.events_checked} events in {report.streams_checked} streams: "
        f"chains intact, positions gapless; head position {report.head_position} "
        f"hash {report.head_hash.hex()}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ledgerline.database import database_url
    from ledgerline.demo import run_demo

    with database_url(_settings(args)) as url:
        return run_demo(url, out=sys.stdout)


def cmd_bench(args: argparse.Namespace) -> int:
    from ledgerline.database import database_url

    if args.events < 1000 or args.seconds <= 0 or args.clients < 1:
        raise LedgerlineError(
            "--events must be at least 1000, --seconds positive and --clients at least 1"
        )
    if args.name == "append":
        from ledgerline import bench_append

        with database_url(_settings(args)) as url:
            result = bench_append.run(url, events=args.events, seconds=args.seconds)
    elif args.name == "api":
        from ledgerline import bench_api

        result = bench_api.run(
            seconds=args.seconds,
            clients=args.clients,
            baseline_seconds=min(args.seconds, 5.0),
            workers=args.workers,
        )
    else:  # argparse restricts the choices
        raise LedgerlineError(f"unknown benchmark {args.name}")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:40} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ledgerline", description="Event-sourced, hash-chained ledger core.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("migrate", help="create or upgrade the schema, then exit")
    _add_db_options(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("verify", help="prove every hash chain and position intact")
    _add_db_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="write a realistic stream of events, verify, summarise")
    _add_db_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the HTTP API (and, without Kafka, the projector)")
    p.add_argument("--host", help="listen address (env LEDGERLINE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (env LEDGERLINE_PORT, default 8000)")
    p.add_argument("--workers", type=int, default=1, help="HTTP worker processes (default 1)")
    _add_db_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("keys", help="manage API keys")
    keys = p.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    k = keys.add_parser("create", help="create an API key and print its token once")
    k.add_argument("--role", required=True, choices=["operator", "auditor", "regulator", "admin"])
    k.add_argument("--label", help="a note stored with the key")
    _add_db_options(k)
    k.set_defaults(func=cmd_keys)
    k = keys.add_parser("signing-create", help="create the Ed25519 checkpoint signing key")
    k.add_argument(
        "--key-file",
        help="where to write it (env LEDGERLINE_SIGNING_KEY, default "
        "<data dir>/keys/checkpoint.key)",
    )
    k.add_argument("--name", help="key name (default: the log origin)")
    _add_db_options(k)
    k.set_defaults(func=cmd_signing_create)

    p = sub.add_parser("checkpoint", help="sign and store a checkpoint of the whole log")
    p.add_argument("--key-file", help="the signing key (env LEDGERLINE_SIGNING_KEY)")
    _add_db_options(p)
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("bench", help="measure a target against its baseline, in one run")
    p.add_argument("name", choices=["append", "api"])
    p.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients (api)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (api)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--events", type=int, default=20_000, help="events per batched run")
    p.add_argument("--seconds", type=float, default=5.0, help="seconds per concurrent run")
    _add_db_options(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except LedgerlineError as exc:
        return _fail(str(exc), exc.exit_code)
    except EventStoreError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("LEDGERLINE_DEBUG"):
            raise
        detail = " ".join(str(exc).split())
        return _fail(
            f"internal error: {type(exc).__name__}: {detail} "
            "(set LEDGERLINE_DEBUG=1 for the traceback)",
            EXIT_INTERNAL,
        )


def _fail(message: str, code: int) -> int:
    print(f"ledgerline: error: {message}", file=sys.stderr)
    return code


def entrypoint() -> Any:  # pragma: no cover - console-script shim
    sys.exit(main())
