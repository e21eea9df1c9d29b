"""``ledgerline accounts ...`` and ``ledgerline transfers ...``: the API, for people.

These commands talk to a running server (``--url`` / ``LEDGERLINE_URL``, default
``http://127.0.0.1:8000``) with an API key (``--token`` / ``LEDGERLINE_TOKEN``). They print a
table for people, or the server's JSON with ``--json`` for scripts; amounts are in major units
with their currency. A refusal is one line naming the rule (``ledgerline: error:
exceeds_credits: ...``) and exit status 1; an unreachable server or a bad key, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any

from ledgerline.cli_common import EXIT_BROKEN, EXIT_USAGE, Parser, add_log_options
from ledgerline.errors import LedgerlineError

ENV_URL = "LEDGERLINE_URL"
ENV_TOKEN = "LEDGERLINE_TOKEN"  # noqa: S105 - the variable's name
DEFAULT_URL = "http://127.0.0.1:8000"


class RequestRefused(LedgerlineError):
    exit_code = EXIT_BROKEN


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help=f"the server (env {ENV_URL}, default {DEFAULT_URL})")
    p.add_argument("--token", help=f"an API key (env {ENV_TOKEN})")
    p.add_argument("--json", action="store_true", help="print the server's JSON")
    add_log_options(p)


def call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    url = args.url or os.environ.get(ENV_URL) or DEFAULT_URL
    token = args.token or os.environ.get(ENV_TOKEN)
    if not token:
        raise LedgerlineError(f"no API key: give --token or set {ENV_TOKEN}")
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            r = http.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise LedgerlineError(f"cannot reach {url}: {exc}") from None
    if r.headers.get("content-type", "").startswith("application/problem+json"):
        problem = r.json()
        error = RequestRefused(f"{problem.get('code')}: {problem.get('detail')}")
        if r.status_code in (401, 403):
            error.exit_code = EXIT_USAGE
        raise error
    if r.status_code >= 400:
        raise RequestRefused(f"HTTP {r.status_code}: {r.text[:200]}")
    return r.json()


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _show(args: argparse.Namespace, data: Any, render: Any) -> int:
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0


def _account_lines(a: dict[str, Any]) -> str:
    b, cur = a["balances"], a["currency"]
    flags = [name for name, on in a["flags"].items() if on]
    rows = [
        ("account", a["id"]),
        ("ledger", a["ledger"]),
        ("code", a["code"]),
        ("flags", ", ".join(flags) or "-"),
        ("debits posted", f"{b['debits_posted']} {cur}"),
        ("credits posted", f"{b['credits_posted']} {cur}"),
        ("debits pending", f"{b['debits_pending']} {cur}"),
        ("credits pending", f"{b['credits_pending']} {cur}"),
        ("as of position", a["position"]),
    ]
    return "\n".join(f"{k:16} {v}" for k, v in rows)


def _transfer_lines(t: dict[str, Any]) -> str:
    rows = [
        ("transfer", t["id"]),
        ("from (debit)", t["debit_account_id"]),
        ("to (credit)", t["credit_account_id"]),
        ("amount", f"{t['amount']} {t['currency']}"),
        ("state", t["state"]),
        ("ledger / code", f"{t['ledger']} / {t['code']}"),
        ("position", t["position"]),
    ]
    if t.get("pending"):
        rows.insert(4, ("posted", f"{t['posted_amount']} {t['currency']}"))
        rows.insert(5, ("timeout", f"{t['timeout_s']} s"))
    return "\n".join(f"{k:16} {v}" for k, v in rows)


def cmd_accounts_create(args: argparse.Namespace) -> int:
    body = {
        "id": args.id,
        "ledger": args.ledger,
        "currency": args.currency,
        "code": args.code,
        "flags": {
            "debits_must_not_exceed_credits": args.debits_must_not_exceed_credits,
            "credits_must_not_exceed_debits": args.credits_must_not_exceed_debits,
            "closed": args.closed,
        },
    }
    return _show(args, call(args, "POST", "/v1/accounts", json=body), _account_lines)


def cmd_accounts_show(args: argparse.Namespace) -> int:
    params = {}
    if args.as_of_position is not None:
        params["as_of_position"] = args.as_of_position
    if args.as_of:
        params["as_of"] = args.as_of
    data = call(args, "GET", f"/v1/accounts/{args.id}", params=params)
    return _show(args, data, _account_lines)


def cmd_accounts_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.ledger is not None:
        params["ledger"] = args.ledger
    if args.cursor:
        params["cursor"] = args.cursor
    data = call(args, "GET", "/v1/accounts", params=params)

    def render(page: dict[str, Any]) -> str:
        rows = [
            (
                a["id"],
                a["ledger"],
                a["currency"],
                a["balances"]["debits_posted"],
                a["balances"]["credits_posted"],
                a["balances"]["debits_pending"],
                a["balances"]["credits_pending"],
            )
            for a in page["items"]
        ]
        header = ("account", "ledger", "cur", "debits", "credits", "dr pending", "cr pending")
        text = _table(rows, header)
        if page.get("next_cursor"):
            text += f"\n(more: --cursor {page['next_cursor']})"
        return text

    return _show(args, data, render)


def cmd_transfers_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "id": args.id,
        "debit_account_id": args.debit,
        "credit_account_id": args.credit,
        "amount": args.amount,
        "ledger": args.ledger,
        "code": args.code,
    }
    if args.pending:
        body["pending"] = True
        body["timeout_s"] = args.timeout_s
    return _show(args, call(args, "POST", "/v1/transfers", json=body), _transfer_lines)


def cmd_transfers_show(args: argparse.Namespace) -> int:
    return _show(args, call(args, "GET", f"/v1/transfers/{args.id}"), _transfer_lines)


def cmd_transfers_post(args: argparse.Namespace) -> int:
    body = {"amount": args.amount} if args.amount else None
    data = call(args, "POST", f"/v1/transfers/{args.id}/post", json=body)
    return _show(args, data, _transfer_lines)


def cmd_transfers_void(args: argparse.Namespace) -> int:
    return _show(args, call(args, "POST", f"/v1/transfers/{args.id}/void"), _transfer_lines)


def register(sub: Any) -> None:
    p = sub.add_parser("accounts", help="open, show and list accounts on a running server")
    accounts = p.add_subparsers(dest="accounts_command", required=True, parser_class=Parser)
    k = accounts.add_parser("create", help="open an account")
    k.add_argument("id", help="the account id (up to 2^128-2)")
    k.add_argument("--ledger", type=int, required=True)
    k.add_argument("--currency", required=True, help="ISO 4217 code, e.g. USD")
    k.add_argument("--code", type=int, required=True, help="the account's type code")
    k.add_argument("--debits-must-not-exceed-credits", action="store_true")
    k.add_argument("--credits-must-not-exceed-debits", action="store_true")
    k.add_argument("--closed", action="store_true")
    _client_options(k)
    k.set_defaults(func=cmd_accounts_create)
    k = accounts.add_parser("show", help="an account and its balances, now or in the past")
    k.add_argument("id")
    k.add_argument("--as-of-position", type=int)
    k.add_argument("--as-of", help="an RFC 3339 time")
    _client_options(k)
    k.set_defaults(func=cmd_accounts_show)
    k = accounts.add_parser("list", help="accounts in id order")
    k.add_argument("--ledger", type=int)
    k.add_argument("--limit", type=int, default=50)
    k.add_argument("--cursor", help="from where the previous page stopped")
    _client_options(k)
    k.set_defaults(func=cmd_accounts_list)

    p = sub.add_parser("transfers", help="create, show, post and void transfers on a server")
    transfers = p.add_subparsers(dest="transfers_command", required=True, parser_class=Parser)
    k = transfers.add_parser("create", help="move an amount between two accounts")
    k.add_argument("id", help="the transfer id (your idempotency key)")
    k.add_argument("--from", dest="debit", required=True, help="the debit account")
    k.add_argument("--to", dest="credit", required=True, help="the credit account")
    k.add_argument("--amount", required=True, help='major units, e.g. "12.34"')
    k.add_argument("--ledger", type=int, required=True)
    k.add_argument("--code", type=int, required=True)
    k.add_argument("--pending", action="store_true", help="reserve now, post or void later")
    k.add_argument("--timeout-s", type=int, default=0, help="a pending transfer expires then")
    _client_options(k)
    k.set_defaults(func=cmd_transfers_create)
    for name, func, text in (
        ("show", cmd_transfers_show, "a transfer"),
        ("void", cmd_transfers_void, "release a pending transfer"),
    ):
        k = transfers.add_parser(name, help=text)
        k.add_argument("id")
        _client_options(k)
        k.set_defaults(func=func)
    k = transfers.add_parser("post", help="settle a pending transfer, in full or in part")
    k.add_argument("id")
    k.add_argument("--amount", help="less than the pending amount releases the rest")
    _client_options(k)
    k.set_defaults(func=cmd_transfers_post)
