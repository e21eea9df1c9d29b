"""``ledgerline reconcile STATEMENT``: reconcile a bank statement on a running server.

    ledgerline reconcile STATEMENT [--account NOSTRO_ID | --account BANK_ACCOUNT=NOSTRO_ID ...]
                         [--format auto|camt.053|csv] [--date-tolerance-days N] [--json]

The file is sent to the server (``--url`` / ``LEDGERLINE_URL``, ``--token`` /
``LEDGERLINE_TOKEN``) as ``POST /v1/reconciliations``, which reads the nostro account's
transfers from the ledger, matches and records; then each reconciliation's report is read back
(``GET /v1/reconciliations/{id}``) and printed: counts, balance checks, and every break (not
the matches). ``--json`` prints the reports as JSON. A reconciliation with breaks is a
successful run (exit 0); a refused statement (malformed, unknown account, currency mismatch)
is one line naming the rule and exit 1, changing nothing; an unreachable server, exit 2.

``--account NOSTRO_ID`` names the ledger account of every statement in the file (a CSV
statement always needs it); ``--account BANK_ACCOUNT=NOSTRO_ID`` maps a statement's bank account
(its IBAN or other id in the CAMT file) to a ledger account, for files holding several
accounts' statements.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ledgerline.cli_client import _client_options, call
from ledgerline.errors import LedgerlineError

_LABELS = {
    "matched": "matched",
    "amount_break": "amount breaks",
    "date_break": "date breaks",
    "unmatched_statement": "unmatched statement entries",
    "unmatched_ledger": "unmatched ledger transfers",
    "balance_break": "balance breaks",
}


def _accounts(values: list[str]) -> tuple[int | None, dict[str, int]]:
    single: int | None = None
    mapped: dict[str, int] = {}
    for value in values:
        key, sep, text = value.rpartition("=")
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**128 - 1:
            raise LedgerlineError(f"--account {value!r}: the ledger account id must be a number")
        if sep:
            mapped[key] = int(text)
        elif single is not None:
            raise LedgerlineError("--account NOSTRO_ID given twice (use BANK_ACCOUNT=NOSTRO_ID)")
        else:
            single = int(text)
    return single, mapped


def _signed(text: str | None) -> str:
    if text is None:
        return "-"
    return text if text.startswith("-") else f"+{text}"


def _line(item: dict[str, Any]) -> str:
    entry = item["entry"]
    left = "statement: -"
    if entry is not None:
        refs = ",".join(entry["references"]) or "-"
        left = f"statement {item['statement_date']} {_signed(item['statement_amount'])} ref {refs}"
    right = "ledger: -"
    if item["transfer_id"] is not None:
        right = (
            f"ledger transfer {item['transfer_id']} {item['ledger_date']} "
            f"{_signed(item['ledger_amount'])}"
        )
    extra = ""
    if item["status"] == "amount_break":
        extra = f"  difference {_signed(item['difference'])}"
    elif item["status"] == "date_break":
        extra = f"  {item['business_days']} business days apart"
    elif item["candidates"]:
        extra = f"  candidates {', '.join(str(c) for c in item['candidates'])}"
    return f"  {item['status']:<20} {item['rule']:<16} {left} | {right}{extra}"


def report(rec: dict[str, Any], recorded: bool) -> list[str]:
    cur = rec["currency"]
    name = rec["statement_id"] or "(no id)"
    lines = [
        f"reconciliation {rec['id']}: statement {name} ({rec['statement_format']}) of account "
        f"{rec['account_id']} {cur}, {rec['period_from']} to {rec['period_to']}"
        + ("" if recorded else " (recorded before, unchanged)"),
        f"  {rec['entries']} entries; "
        + ", ".join(f"{rec['counts'].get(k, 0)} {label}" for k, label in _LABELS.items()),
    ]
    for b in rec["balances"]:
        verdict = "agrees" if b["agrees"] else f"differs by {_signed(b['difference'])}"
        lines.append(
            f"  {b['kind']} balance {b['date']}: statement {b['statement']}, "
            f"ledger {b['ledger']} {cur}: {verdict}"
        )
    breaks = [i for i in rec["items"] if i["status"] != "matched"]
    lines.append(
        f"  {len(breaks)} break{'s' if len(breaks) != 1 else ''}" + (":" if breaks else "")
    )
    lines.extend(_line(i) for i in breaks)
    return lines


def cmd_reconcile(args: argparse.Namespace) -> int:
    path = Path(args.statement)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LedgerlineError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LedgerlineError(f"{path} is not UTF-8 text") from None
    single, mapped = _accounts(args.account or [])
    body: dict[str, Any] = {
        "statement": text,
        "format": args.format,
        "date_tolerance_days": args.date_tolerance_days,
        "accounts": {k: str(v) for k, v in mapped.items()},
    }
    if single is not None:
        body["account_id"] = str(single)
    result = call(args, "POST", "/v1/reconciliations", json=body)
    reports = []
    for r in result["reconciliations"]:
        rec = call(
            args,
            "GET",
            f"/v1/reconciliations/{r['id']}",
            params={"min_position": result["position"]} if result["position"] else None,
        )
        reports.append((rec, bool(r["recorded"])))
    if args.json:
        print(
            json.dumps(
                {
                    "position": result["position"],
                    "reconciliations": [{**rec, "recorded": new} for rec, new in reports],
                },
                indent=2,
            )
        )
        return 0
    for rec, new in reports:
        print("\n".join(report(rec, new)))
    return 0


def register(sub: Any) -> None:
    from domain.reconciliation.service import DEFAULT_TOLERANCE_DAYS

    p = sub.add_parser(
        "reconcile",
        help="reconcile a bank statement (CAMT.053 XML or CSV) against a nostro account",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("statement", help="the statement file")
    p.add_argument(
        "--account",
        action="append",
        metavar="[BANK_ACCOUNT=]NOSTRO_ID",
        help="the ledger account of the statement (repeat with BANK_ACCOUNT= for several)",
    )
    p.add_argument("--format", choices=("auto", "camt.053", "csv"), default="auto")
    p.add_argument(
        "--date-tolerance-days",
        type=int,
        default=DEFAULT_TOLERANCE_DAYS,
        help=f"business days a date may differ for a match (default {DEFAULT_TOLERANCE_DAYS})",
    )
    _client_options(p)
    p.set_defaults(func=cmd_reconcile)
