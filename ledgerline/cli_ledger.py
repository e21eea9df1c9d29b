"""``ledgerline import FILE``: imported history (accounts and transfers) from a file.

The file is JSON Lines (one object a line) or CSV (a header row; empty cells are defaults),
by its suffix (``--format`` overrides). Each record has ``kind`` ``account`` or ``transfer``
(without it, a record with ``debit_account_id`` or ``pending_id`` is a transfer) and the
fields of ``POST /v1/accounts`` or ``POST /v1/transfers``: account flags may be given flat
(``debits_must_not_exceed_credits``, ...), and ``timestamp`` is when the event really happened
(nanoseconds since the epoch, or an RFC 3339 time). Every record is imported (TigerBeetle's
``imported`` flag): timestamps strictly increase, accounts and transfers each.

Consecutive records of one kind go in batches of ``--batch-size``; each batch is applied whole
or not at all. A line that cannot be read, or that the ledger's rules refuse, is reported by
its line number, nothing of its batch is applied, and the import stops there (exit status 1).

The checkpoint (``FILE.checkpoint.json``, or ``--checkpoint``) records the last line of the
last batch applied: a rerun after a kill or a fix continues after it, and a rerun of a
finished file sends nothing. Without the checkpoint a rerun changes nothing either: each
record that exists as given answers ``exists``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ledgerline.cli_common import EXIT_BROKEN, add_db_options
from ledgerline.errors import LedgerlineError
from ledgerline.progress import Progress

ACCOUNT_FLAGS = ("debits_must_not_exceed_credits", "credits_must_not_exceed_debits", "closed")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


class ImportFailed(LedgerlineError):
    exit_code = EXIT_BROKEN


class BadLine(ValueError):
    pass


# ------------------------------------------------------------------ reading records


def _records(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) per non-empty line; a record that cannot be read is a string
    saying why."""
    try:
        fh = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise LedgerlineError(f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for row in reader:
                number = reader.line_num
                if None in row:
                    yield number, "more cells than the header has"
                    continue
                record = {k.strip(): v.strip() for k, v in row.items() if v and v.strip()}
                if record:
                    yield number, record
            return
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                yield number, f"not JSON: {exc.msg} (column {exc.colno})"
                continue
            yield number, value if isinstance(value, dict) else "not a JSON object"


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise BadLine(f"{name} must be true or false")


def _timestamp(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, str):
        from api.ledger_routes import parse_as_of
        from api.problems import Problem

        try:
            return parse_as_of(value)
        except Problem as exc:
            raise BadLine(f"timestamp: {exc.detail}") from None
    raise BadLine("timestamp must be nanoseconds since the epoch or an RFC 3339 time")


def _int_fields(record: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str):
            if not value.isdigit():
                raise BadLine(f"{name} must be an unsigned integer")
            record[name] = int(value)
        elif value is not None and (type(value) is not int):
            raise BadLine(f"{name} must be an unsigned integer")


_ACCOUNT_INTS = ("id", "ledger", "code", "user_data_128", "user_data_64", "user_data_32",
                 "parent_id")  # fmt: skip
_TRANSFER_INTS = ("id", "debit_account_id", "credit_account_id", "ledger", "code",
                  "timeout_s", "pending_id", "user_data_128", "user_data_64",
                  "user_data_32")  # fmt: skip
_TRANSFER_FLAGS = ("pending", "post_pending_transfer", "void_pending_transfer",
                   "balancing_debit", "balancing_credit", "closing_debit",
                   "closing_credit")  # fmt: skip


def parse_record(record: dict[str, Any]) -> tuple[str, Any]:
    """``("account", CreateAccount)`` or ``("transfer", CreateTransfer)``, imported."""
    from pydantic import ValidationError

    from commands.ledger import CreateAccount, CreateTransfer

    record = dict(record)
    kind = record.pop("kind", None)
    if kind is None:
        kind = "transfer" if "debit_account_id" in record or "pending_id" in record else "account"
    if kind not in ("account", "transfer"):
        raise BadLine(f"kind must be account or transfer, not {kind!r}")
    if "timestamp" not in record:
        raise BadLine("an imported record needs its timestamp")
    record["timestamp_ns"] = _timestamp(record.pop("timestamp"))
    record.pop("imported", None)
    if isinstance(record.get("amount"), int) and type(record["amount"]) is int:
        record["amount"] = str(record["amount"])
    try:
        if kind == "account":
            flags = record.pop("flags", {}) or {}
            if not isinstance(flags, dict):
                raise BadLine("flags must be an object")
            for name in ACCOUNT_FLAGS:
                if name in record:
                    flags[name] = record.pop(name)
            for name, value in flags.items():
                record[name] = _bool(value, name)
            _int_fields(record, _ACCOUNT_INTS)
            return kind, CreateAccount(**record, imported=True)
        for name in _TRANSFER_FLAGS:
            if name in record:
                record[name] = _bool(record[name], name)
        _int_fields(record, _TRANSFER_INTS)
        return kind, CreateTransfer(**record, imported=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise BadLine(f"{where}: {first['msg']}") from None


# ------------------------------------------------------------------ the checkpoint


def _load_checkpoint(path: Path, source: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {"line": 0, "after": "", "accounts": 0, "transfers": 0, "exists": 0}
    except (OSError, ValueError) as exc:
        raise LedgerlineError(f"cannot read the checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("file") != str(source.resolve()):
        raise LedgerlineError(f"{path} is the checkpoint of another file; pass --checkpoint")
    return state


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, path)


# ------------------------------------------------------------------ the import


def run_import(  # noqa: PLR0915 - one loop: read, batch, submit, settle in order
    processor: Any,
    source: Path,
    *,
    fmt: str,
    checkpoint: Path,
    batch_size: int = 1000,
    in_flight: int = 4,
    progress: Any = None,
) -> dict[str, Any]:
    """Import ``source`` through ``processor``; returns the counts and the checkpoint's state.
    Raises :class:`ImportFailed` naming the first bad line (the checkpoint stays at the last
    batch applied)."""
    from commands.ledger import CreateAccounts, CreateTransfers, accounts_command
    from commands.ledger import transfers_command as tcommand

    state = _load_checkpoint(checkpoint, source)
    state["file"] = str(source.resolve())
    pending: list[tuple[list[int], str, Future[Any]]] = []  # line numbers, last stream
    failure: list[str] = []

    def settle(limit: int) -> None:
        while len(pending) > limit:
            numbers, last_stream, future = pending.pop(0)
            outcome = future.result(600)
            if failure:
                continue  # after a refused batch, the later ones were refused with it
            if not outcome.accepted:
                result = outcome.result
                index = result.get("failed_index")
                if result.get("code") == "previous_batch_not_applied" or index is None:
                    failure.append(
                        f"line {numbers[0]}: {result.get('code')}: {result.get('detail')}"
                    )
                else:
                    item = result["results"][index] if "results" in result else {}
                    detail = item.get("problem", {}).get("detail", result.get("detail"))
                    failure.append(f"line {numbers[index]}: {result['failed_code']}: {detail}")
                continue
            kind_of_batch = "accounts" if last_stream.startswith("account:") else "transfers"
            for item in outcome.result["results"]:
                if item["status"] == "exists":
                    state["exists"] += 1
                else:
                    state[kind_of_batch] += 1
            state["line"], state["after"] = numbers[-1], last_stream
            _save_checkpoint(checkpoint, state)
            if progress is not None:
                progress(len(numbers))

    batch: list[Any] = []
    numbers: list[int] = []
    kind = ""
    after = state["after"]

    def flush() -> None:
        nonlocal batch, numbers, after
        if not batch:
            return
        if kind == "account":
            command = accounts_command(
                CreateAccounts(accounts=tuple(batch), all_or_nothing=True, after=after)
            )
        else:
            command = tcommand(
                CreateTransfers(transfers=tuple(batch), all_or_nothing=True, after=after)
            )
        last_stream = f"{kind}:{batch[-1].id}"
        pending.append((numbers, last_stream, processor.submit(command)))
        after = last_stream
        batch, numbers = [], []
        settle(in_flight)

    for number, record in _records(source, fmt):
        if number <= state["line"]:
            continue
        if failure:
            break
        try:
            if isinstance(record, str):
                raise BadLine(record)
            record_kind, cmd = parse_record(record)
        except BadLine as exc:
            settle(0)  # what came before the bad line is applied; its own batch is not
            if not failure:
                failure.append(f"line {number}: {exc}")
            break
        if record_kind != kind or len(batch) >= batch_size:
            flush()
            kind = record_kind
        batch.append(cmd)
        numbers.append(number)
    if not failure:
        flush()
    settle(0)
    if failure:
        raise ImportFailed(f"{source}: {failure[0]}; nothing of its batch was applied")
    return state


def cmd_import(args: argparse.Namespace) -> int:
    from ledgerline.cli_common import Session

    source = Path(args.file)
    fmt = args.format or ("csv" if source.suffix.lower() == ".csv" else "jsonl")
    checkpoint = Path(args.checkpoint or f"{source}.checkpoint.json")
    if not source.is_file():
        raise LedgerlineError(f"cannot read {source}: no such file")
    enabled = None if not args.json else False
    opening = time.perf_counter()
    with Session(args) as s, Progress("importing", unit="lines", enabled=enabled) as bar:
        # The rate is the import's own: opening the database and the processor is not in it.
        started = time.perf_counter()
        try:
            before = dict.fromkeys(("accounts", "transfers"), 0)
            if checkpoint.exists():
                before = {k: _load_checkpoint(checkpoint, source)[k] for k in before}
            state = run_import(
                s.processor,
                source,
                fmt=fmt,
                checkpoint=checkpoint,
                batch_size=args.batch_size,
                progress=bar,
            )
            seconds = time.perf_counter() - started
        finally:
            if not args.no_catch_up:
                s.catch_up()
    summary = {
        "file": str(source),
        "accounts": state["accounts"],
        "transfers": state["transfers"],
        "already_there": state["exists"],
        "last_line": state["line"],
        "checkpoint": str(checkpoint),
        "seconds": round(seconds, 3),
        "session_open_seconds": round(started - opening, 3),
        # This run's own rate (a resumed run counts what it imported itself).
        "transfers_per_s": round(
            (state["transfers"] - before["transfers"]) / max(seconds, 1e-9), 1
        ),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"imported {summary['accounts']} account(s) and {summary['transfers']} transfer(s) "
            f"from {source} ({summary['already_there']} already there); done through line "
            f"{summary['last_line']}"
        )
    return 0


def register(sub: Any) -> None:
    """Add ``ledgerline import FILE`` to the command line."""
    p = sub.add_parser("import", help="import history (accounts, transfers) from JSONL or CSV")
    p.add_argument("file")
    p.add_argument("--format", choices=["jsonl", "csv"], help="default: by the file's suffix")
    p.add_argument("--batch-size", type=int, default=1000, choices=range(1, 8190),
                   metavar="1..8189")  # fmt: skip
    p.add_argument("--checkpoint", help="default: FILE.checkpoint.json")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-catch-up", action="store_true", help="do not project afterwards")
    add_db_options(p)
    p.set_defaults(func=cmd_import)
