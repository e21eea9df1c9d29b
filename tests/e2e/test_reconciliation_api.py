"""Reconciling a bank statement over HTTP and the command line, against the real server.

A nostro account's week in the ledger, a CAMT.053 statement of it with planted breaks: every
break is found, none is invented, and reconciling the same statement again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerline.cli import main
from readmodels import reconciliation as rm
from replay.replay import replay
from tests.e2e.conftest import Server
from tests.e2e.test_cli import run

NOSTRO, OTHER, USD_ACCOUNT = 1001, 1002, 1003
LEDGER = 7
DAY_S = 86_400


def _to_monday(server: Server) -> dt.date:
    """Move the server's clock to 09:00 UTC of a Monday after anything it has recorded."""
    head_ns = server.runtime.store.recorder.head().recorded_at_ns
    now_ns = max(server.clock(), head_ns)
    today = dt.datetime.fromtimestamp(now_ns // 10**9, dt.UTC).date() + dt.timedelta(days=7)
    monday = today + dt.timedelta(days=(7 - today.weekday()) % 7)
    target = dt.datetime.combine(monday, dt.time(9), dt.UTC)
    server.clock.offset_ns += int(target.timestamp() * 10**9) - server.clock()
    return monday


def _transfer(c: httpx.Client, tid: int, amount: str, *, money_in: bool, ud: int = 0) -> None:
    body: dict[str, Any] = {
        "id": tid,
        "debit_account_id": NOSTRO if money_in else OTHER,
        "credit_account_id": OTHER if money_in else NOSTRO,
        "amount": amount,
        "ledger": LEDGER,
        "code": 1,
    }
    if ud:
        body["user_data_128"] = str(ud)
    r = c.post("/v1/transfers", json=body)
    assert r.status_code == 201, r.text


def _week(server: Server) -> list[str]:
    """The ledger side: (day index, transfer) as in the module's table. Returns the dates."""
    monday = _to_monday(server)
    days = [(monday + dt.timedelta(days=k)).isoformat() for k in range(4)]
    with server.client() as c:
        for aid, currency, ledger in ((NOSTRO, "EUR", LEDGER), (OTHER, "EUR", LEDGER),
                                      (USD_ACCOUNT, "USD", 1)):  # fmt: skip
            r = c.post("/v1/accounts", json={"id": aid, "ledger": ledger, "currency": currency,
                                             "code": 1})  # fmt: skip
            assert r.status_code == 201, r.text
        _transfer(c, 101, "50.00", money_in=True)
        _transfer(c, 102, "20.00", money_in=False, ud=7002)
        _transfer(c, 107, "10.00", money_in=True)  # never on the statement
        server.clock.advance(DAY_S)
        _transfer(c, 103, "30.00", money_in=True)
        _transfer(c, 105, "77.00", money_in=True)  # the bank booked 70.00: an amount break
        _transfer(c, 108, "5.00", money_in=True)  # two of the same, no reference: ambiguous
        _transfer(c, 109, "5.00", money_in=True)
        server.clock.advance(DAY_S)
        _transfer(c, 110, "8.00", money_in=True)  # no reference, unique amount and date
        server.clock.advance(DAY_S)
        _transfer(c, 106, "15.00", money_in=True)  # the bank booked it on Monday: date break
    return days


def _entry(amount: str, cd: str, booked: str, value: str, ref: str = "") -> str:
    refs = (
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{ref}</EndToEndId></Refs></TxDtls></NtryDtls>"
        if ref
        else ""
    )
    return (
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{value}</Dt></ValDt>{refs}</Ntry>"
    )


def _balance(kind: str, amount: str, day: str) -> str:
    return (
        f'<Bal><Tp><CdOrPrtry><Cd>{kind}</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{amount}</Amt>'
        f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
    )


def statement(days: list[str], *, reverse: bool = False) -> str:
    d0, d1, d2, d3 = days
    entries = [
        _entry("50.00", "CRDT", d0, d0, "101"),  # exact, by transfer id
        _entry("20.00", "DBIT", d0, d0, "7002"),  # exact, by user_data_128
        _entry("30.00", "CRDT", d2, d2, "0103"),  # a day late: within the tolerance
        _entry("70.00", "CRDT", d1, d1, "105"),  # amount break
        _entry("15.00", "CRDT", d0, d0, "106"),  # date break (3 business days)
        _entry("5.00", "CRDT", d1, d1),  # ambiguous: 108 or 109
        _entry("99.00", "CRDT", d2, d2, "NOPE"),  # not in the ledger at all
        _entry("8.00", "CRDT", d2, d2),  # 110, by amount and date
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>M1</MsgId></GrpHdr><Stmt><Id>STMT-1</Id>"
        f"<FrToDt><FrDtTm>{d0}T00:00:00</FrDtTm><ToDtTm>{d3}T23:59:59</ToDtTm></FrToDt>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        + _balance("OPBD", "0.00", d0)
        + _balance("CLBD", "257.00", d3)
        + "".join(reversed(entries) if reverse else entries)
        + "</Stmt></BkToCstmrStmt></Document>"
    )


EXPECTED_BREAKS = {
    ("amount_break", "reference", 105),
    ("date_break", "reference_amount", 106),
    ("unmatched_statement", "ambiguous", None),
    ("unmatched_statement", "no_counterpart", None),
    ("unmatched_ledger", "no_counterpart", 107),
    ("unmatched_ledger", "no_counterpart", 108),
    ("unmatched_ledger", "no_counterpart", 109),
}
EXPECTED_MATCHES = {
    ("exact", 101),
    ("exact", 102),
    ("reference_amount_near_date", 103),
    ("amount_date_unique", 110),
}


def _head(server: Server) -> int:
    return int(server.runtime.store.recorder.head().position)


def test_a_statement_with_planted_breaks_is_reconciled_once_and_every_break_is_found(
    server: Server,
) -> None:
    days = _week(server)
    body = {"statement": statement(days), "account_id": NOSTRO, "date_tolerance_days": 1}
    with server.client() as c:
        first = c.post("/v1/reconciliations", json=body)
        assert first.status_code == 201, first.text
        [summary] = first.json()["reconciliations"]
        assert summary["recorded"] is True
        rid = summary["id"]
        rec = c.get(
            f"/v1/reconciliations/{rid}", params={"min_position": first.json()["position"]}
        ).json()
        items = rec["items"]
        assert {(i["rule"], i["transfer_id"]) for i in items if i["status"] == "matched"} == (
            EXPECTED_MATCHES
        )
        breaks = {(i["status"], i["rule"], i["transfer_id"]) for i in items} - {
            ("matched", r, t) for r, t in EXPECTED_MATCHES
        }
        assert breaks == EXPECTED_BREAKS
        assert len(items) == 8 + 3
        amount_break = next(i for i in items if i["status"] == "amount_break")
        assert (amount_break["statement_amount"], amount_break["ledger_amount"]) == (
            "70.00",
            "77.00",
        )
        assert amount_break["difference"] == "-7.00"
        ambiguous = next(i for i in items if i["rule"] == "ambiguous")
        assert ambiguous["candidates"] == [108, 109]
        assert rec["counts"] == {
            "matched": 4,
            "amount_break": 1,
            "date_break": 1,
            "unmatched_statement": 2,
            "unmatched_ledger": 3,
            "balance_break": 1,
        }
        assert [(b["kind"], b["agrees"], b["difference"]) for b in rec["balances"]] == [
            ("opening", True, "0.00"),
            ("closing", False, "77.00"),
        ]
        only = c.get(f"/v1/reconciliations/{rid}", params={"breaks_only": "true"}).json()
        assert len(only["items"]) == 7
        listed = c.get("/v1/reconciliations", params={"account_id": NOSTRO}).json()
        assert [r["id"] for r in listed["reconciliations"]] == [rid]

        # The same statement again, even after the ledger moved on: the first result, no writes.
        head = _head(server)
        again = c.post("/v1/reconciliations", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["reconciliations"] == [{**summary, "recorded": False}]
        assert again.json()["position"] == first.json()["position"]
        assert _head(server) == head
        _transfer(c, 111, "1.00", money_in=True)
        head = _head(server)
        shuffled = {**body, "statement": statement(days, reverse=True)}  # the same statement
        third = c.post("/v1/reconciliations", json=shuffled)
        assert third.status_code == 200 and third.json()["reconciliations"][0]["id"] == rid
        assert third.json()["reconciliations"][0]["recorded"] is False
        assert _head(server) == head
        assert c.get(f"/v1/reconciliations/{rid}").json()["items"] == items


def _problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == f"https://ledgerline.dev/problems/{code}"


def test_bad_statements_are_refused_by_name_and_change_nothing(server: Server) -> None:
    days = _week(server)
    head = _head(server)
    good = statement(days)
    with server.client() as c:
        cases = [
            ({"statement": good[:-20], "account_id": NOSTRO}, "statement_malformed"),
            (
                {
                    "statement": good.replace("camt.053.001.02", "camt.052.001.02"),
                    "account_id": NOSTRO,
                },
                "statement_format_unsupported",
            ),
            ({"statement": good}, "statement_account_required"),
            ({"statement": good, "account_id": 424242}, "account_not_found"),
            ({"statement": good, "account_id": USD_ACCOUNT}, "statement_currency_must_match"),
            (
                {"statement": "date,amount\n2026-01-01,1.00\n", "account_id": NOSTRO},
                "statement_format_unsupported",
            ),
            (
                {
                    "statement": "date,amount,currency,direction\n2026-13-01,1.00,EUR,credit\n",
                    "account_id": NOSTRO,
                },
                "statement_malformed",
            ),
        ]
        for body, code in cases:
            _problem(c.post("/v1/reconciliations", json=body), 409, code)
        surrogate = b'{"statement": "date\\ud800", "account_id": 1001}'  # JSON, not Unicode
        r = c.post("/v1/reconciliations", content=surrogate,
                   headers={"content-type": "application/json"})  # fmt: skip
        _problem(r, 422, "invalid_request")  # refused by the schema: not a string
        _problem(c.get("/v1/reconciliations/" + "0" * 32), 404, "reconciliation_not_found")
        _problem(
            c.post("/v1/reconciliations", json={"statement": good, "date_tolerance_days": 11}),
            422,
            "invalid_request",
        )
    assert _head(server) == head


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (a subprocess costs seconds of imports on a busy machine)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_command_line_prints_the_breaks_and_a_rerun_changes_nothing(
    server: Server, cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = _week(server)
    d0, _, d2, _ = days
    csv_text = (
        "date,amount,currency,direction,reference,description\n"
        f"{d0},50.00,EUR,credit,101,first\n"
        f"{d0},20.00,EUR,debit,7002,fee\n"
        f"{d2},99.00,EUR,credit,NOPE,mystery\n"
    )
    path = tmp_path / "statement.csv"
    path.write_text(csv_text)
    client = ("--url", server.url, "--token", server.tokens["operator"])
    out = run("reconcile", str(path), "--account", str(NOSTRO), *client, env=cli_env)
    assert out.returncode == 0, out.stderr
    assert "2 matched, 0 amount breaks" in out.stdout
    assert "1 unmatched statement entries" in out.stdout
    assert "ref NOPE" in out.stdout
    head = _head(server)
    code, again, _ = _cli(capsys, "reconcile", str(path), "--account", str(NOSTRO), *client)
    assert code == 0
    assert "(recorded before, unchanged)" in again
    assert again.replace(" (recorded before, unchanged)", "") == out.stdout
    code, as_json, _ = _cli(capsys, "reconcile", str(path), "--account", str(NOSTRO), "--json",
                            *client)  # fmt: skip
    [rec] = json.loads(as_json)["reconciliations"]
    assert rec["counts"]["unmatched_statement"] == 1 and rec["recorded"] is False
    bad = tmp_path / "bad.xml"
    bad.write_text("<Document><oops></Document>")
    for args, needle, status in (
        ((str(bad), "--account", str(NOSTRO)), "statement_malformed", 1),
        ((str(path), "--account", "999"), "account_not_found", 1),
        ((str(tmp_path / "missing.csv"),), "cannot read", 2),
    ):
        code, printed, err = _cli(capsys, "reconcile", *args, *client)
        assert (code, printed) == (status, "")
        assert err.count("\n") == 1 and err.startswith("ledgerline: error: ") and needle in err
    assert _head(server) == head


def test_a_replay_rebuilds_the_reconciliation_read_models_bit_for_bit(
    server: Server, db_url: str
) -> None:
    days = _week(server)
    body = {"statement": statement(days), "account_id": NOSTRO, "date_tolerance_days": 1}
    with server.client() as c:
        r = c.post("/v1/reconciliations", json=body)
        assert r.status_code == 201, r.text
        c.get("/v1/reconciliations", params={"min_position": r.json()["position"]})
    report = replay(server.runtime.store.recorder, db_url, check=True)
    assert report.ok, report.to_json()
    mine = [t for t in report.digests if t.startswith("reconciliation")]
    assert sorted(mine) == sorted(rm.TABLE_KEYS)
    assert all(report.digests[t] == (report.live_digests or {})[t] for t in mine)
