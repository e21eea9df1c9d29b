"""What every ``ledgerline`` command shares: the parser class, database options, settings.

A bounded context's command-line group (``ledgerline/cli_<context>.py``) builds on these, so
every command takes the same ``--database-url``/``--data-dir``/``--config`` and fails the
same way: one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import NoReturn

from ledgerline.config import Settings, load_settings

EXIT_BROKEN = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ledgerline: error: {message}\n")


def add_db_options(p: argparse.ArgumentParser) -> None:
    """The database and data-dir options. Accepted before the subcommand as well as after it
    (``ledgerline --data-dir X verify``): every parser leaves them unset unless given."""
    unset = argparse.SUPPRESS
    p.add_argument(
        "--database-url",
        default=unset,
        help="external PostgreSQL URL of the schema owner (env DATABASE_URL)",
    )
    p.add_argument(
        "--app-database-url",
        default=unset,
        help="the runtime's own login URL (env LEDGERLINE_APP_DATABASE_URL; default: derived "
        "from the owner's)",
    )
    p.add_argument(
        "--data-dir",
        default=unset,
        help="data directory of the embedded server (env LEDGERLINE_DATA_DIR)",
    )
    p.add_argument("--config", default=unset, help="TOML config file (env LEDGERLINE_CONFIG)")
    add_log_options(p)


def add_log_options(p: argparse.ArgumentParser) -> None:
    from ledgerline.logs import FORMATS, LEVELS

    unset = argparse.SUPPRESS
    p.add_argument(
        "--log-level",
        default=unset,
        choices=LEVELS,
        help="log threshold (env LEDGERLINE_LOG_LEVEL; info for serve, relay and worker, "
        "warning otherwise)",
    )
    p.add_argument(
        "--log-format",
        default=unset,
        choices=FORMATS,
        help="one line per record: json, or text (env LEDGERLINE_LOG_FORMAT; text on a "
        "terminal, json otherwise)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    return load_settings(
        {
            "database_url": getattr(args, "database_url", None),
            "app_database_url": getattr(args, "app_database_url", None),
            "data_dir": getattr(args, "data_dir", None),
            "config": getattr(args, "config", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "kafka_bootstrap_servers": getattr(args, "kafka_bootstrap_servers", None),
        }
    )


class Session:
    """The database, the event store and one command processor for this process (the CLI
    commands that run in process: ingest, import, reports)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from commands.context import build_processor
        from eventstore.store import EventStore
        from ledgerline.contexts import command_contexts
        from ledgerline.database import database_url
        from ledgerline.runtime import migrate_all

        self._url_cm = database_url(settings_from_args(args))
        self.url = self._url_cm.__enter__()
        try:
            migrate_all(self.url)
            self.store = EventStore(self.url, pool_size=4, run_migrations=False)
            self.processor = build_processor(self.store.recorder, command_contexts(time.time_ns))
            self.processor.start()
        except BaseException:
            self._url_cm.__exit__(*sys.exc_info())
            raise

    def catch_up(self) -> int:
        from projections.registry import PROJECTIONS
        from projections.runner import ProjectionRunner
        from readmodels.schema import SCHEMA

        runner = ProjectionRunner(
            self.store.recorder, [spec.create(SCHEMA) for spec in PROJECTIONS.values()]
        )
        runner.position = runner._common_position()
        position = runner.catch_up()
        runner.rest()  # a checkpoint of what it built (the AML engine's), for the next start
        return position

    def close(self) -> None:
        self.processor.stop()
        self.store.close()
        self._url_cm.__exit__(None, None, None)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
