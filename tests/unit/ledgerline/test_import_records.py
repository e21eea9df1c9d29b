"""``ledgerline import`` reads JSON Lines and CSV into the ledger's imported commands, and
names what it cannot read by line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.ledger import CreateAccount, CreateTransfer
from ledgerline.cli_ledger import BadLine, _records, parse_record


def test_csv_rows_become_imported_accounts_and_transfers_with_flat_flags(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text(
        "kind,id,ledger,currency,code,debits_must_not_exceed_credits,debit_account_id,"
        "credit_account_id,amount,timestamp\n"
        "account,1,1,USD,1,true,,,,2026-03-01T00:00:00Z\n"
        "account,2,1,USD,1,,,,,1772323200000000001\n"
        "\n"
        "transfer,10,1,,7,,1,2,12.50,2026-03-02T10:00:00.5+01:00\n"
    )
    records = list(_records(path, "csv"))
    assert [n for n, _ in records] == [2, 3, 5]
    kinds = [parse_record(r) for _, r in records if isinstance(r, dict)]
    account = kinds[0][1]
    assert isinstance(account, CreateAccount)
    assert account.imported and account.debits_must_not_exceed_credits
    assert account.timestamp_ns == 1_772_323_200 * 10**9
    transfer = kinds[2][1]
    assert isinstance(transfer, CreateTransfer)
    assert (transfer.amount, transfer.code, transfer.imported) == ("12.50", 7, True)
    assert transfer.timestamp_ns == 1_772_442_000 * 10**9 + 500_000_000


def test_json_lines_that_cannot_be_read_are_named_and_bad_records_say_why(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "account"\n[1]\n\n{"id": 1}\n')
    assert list(_records(path, "jsonl")) == [
        (1, "not JSON: Expecting ',' delimiter (column 19)"),
        (2, "not a JSON object"),
        (4, {"id": 1}),
    ]
    with pytest.raises(BadLine, match="needs its timestamp"):
        parse_record({"id": 1, "ledger": 1, "currency": "USD", "code": 1})
    with pytest.raises(BadLine, match="kind must be"):
        parse_record({"kind": "order", "timestamp": 1})
    with pytest.raises(BadLine, match="RFC 3339"):
        parse_record({"id": 1, "ledger": 1, "currency": "USD", "code": 1, "timestamp": "soon"})
    with pytest.raises(BadLine, match="ledger"):
        parse_record({"id": 1, "ledger": "x", "currency": "USD", "code": 1, "timestamp": 5})
