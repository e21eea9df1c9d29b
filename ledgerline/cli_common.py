"""What every ``ledgerline`` command shares: the parser class, database options, settings.

A bounded context's command-line group (``ledgerline/cli_<context>.py``) builds on these, so
every command takes the same ``--database-url``/``--data-dir``/``--config`` and fails the
same way: one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
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
