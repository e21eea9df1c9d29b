"""Reports for people: amounts in major units of their currency, minor units beside them."""

from __future__ import annotations

import pyarrow as pa

from replay.reports import present, summary


def test_ledger_amounts_become_major_units_with_the_minor_units_kept_beside_them() -> None:
    table = pa.table(
        {
            "ledger": [1, 2, 3],
            "currency": ["USD", "JPY", "BHD"],
            "debits_posted": [123456, 500, 1],
            "balanced": [True, True, True],
        }
    )
    shown = present(table)
    assert shown.column_names == ["ledger", "currency", "debits_posted", "debits_posted_minor",
                                  "balanced"]  # fmt: skip
    assert shown.column("debits_posted").to_pylist() == ["1234.56", "500", "0.001"]
    assert shown.column("debits_posted_minor").to_pylist() == [123456, 500, 1]


def test_settlement_minor_columns_gain_a_major_column_and_nulls_stay_null() -> None:
    table = pa.table(
        {
            "currency": ["EUR", "EUR"],
            "net_minor": pa.array([-80000, None], pa.decimal128(38, 0)),
        }
    )
    shown = present(table)
    assert shown.column_names == ["currency", "net", "net_minor"]
    assert shown.column("net").to_pylist() == ["-800.00", None]


def test_a_table_without_currency_is_shown_as_it_is() -> None:
    table = pa.table({"instrument_id": ["7"], "amount": [5]})
    assert present(table) is table


def test_the_summary_is_an_aligned_table_that_says_how_many_rows_it_left_out() -> None:
    table = pa.table({"currency": ["USD"] * 3, "amount": [1, 22, 333]})
    text = summary(present(table), limit=2)
    header, rule, first, second, more = text.splitlines()
    assert header.split() == ["currency", "amount", "amount_minor"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.split() == ["USD", "0.01", "1"] and second.split() == ["USD", "0.22", "22"]
    assert more == "... 1 more rows in the file"
