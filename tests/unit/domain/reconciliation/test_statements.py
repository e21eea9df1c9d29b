"""Statements are read from CAMT.053 (.02 to .08) and CSV, or refused by name."""

from __future__ import annotations

import pytest

from domain.reconciliation import errors as e
from domain.reconciliation.formats import parse_statements

NTRY = (
    '<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{cd}</CdtDbtInd>{sts}'
    "<BookgDt><Dt>2026-03-03</Dt></BookgDt><ValDt><DtTm>2026-03-04T10:00:00+01:00</DtTm></ValDt>"
    "<AcctSvcrRef>BANK-1</AcctSvcrRef>{details}</Ntry>"
)


def camt(version: str = "08", entries: str = "", header: str = "") -> bytes:
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    return (
        f'<?xml version="1.0"?><Document xmlns="{ns}"><BkToCstmrStmt><Stmt><Id>S1</Id>'
        "<Acct><Id><Othr><Id>1001</Id></Othr></Id><Ccy>EUR</Ccy></Acct>"
        f"{header}{entries}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


def ntry(amount: str = "12.50", cd: str = "CRDT", sts: str = "<Sts>BOOK</Sts>",
         details: str = "") -> str:  # fmt: skip
    return NTRY.format(amount=amount, cd=cd, sts=sts, details=details)


@pytest.mark.parametrize("version", ["02", "03", "04", "05", "06", "07", "08"])
def test_every_camt053_version_from_02_to_08_is_read(version: str) -> None:
    sts = "<Sts><Cd>BOOK</Cd></Sts>" if version >= "07" else "<Sts>BOOK</Sts>"
    [s] = parse_statements(camt(version, ntry(sts=sts)))
    [entry] = s.entries
    assert (s.statement_id, s.account, s.currency) == ("S1", "1001", "EUR")
    assert (entry.amount_minor, entry.direction) == (1250, "credit")
    assert (entry.booking_date, entry.value_date) == ("2026-03-03", "2026-03-04")
    assert entry.bank_reference == "BANK-1"
    assert (s.period_from, s.period_to) == ("2026-03-03", "2026-03-03")


def test_references_come_from_the_transaction_details_and_remittance_information() -> None:
    details = (
        "<NtryDtls><TxDtls><Refs><EndToEndId>E2E-9</EndToEndId><InstrId>NOTPROVIDED</InstrId>"
        "</Refs><RmtInf><Ustrd>invoice 12</Ustrd><Strd><CdtrRefInf><Ref>RF18539007547034</Ref>"
        "</CdtrRefInf></Strd></RmtInf></TxDtls></NtryDtls>"
    )
    [s] = parse_statements(camt(entries=ntry(details=details)))
    assert s.entries[0].references == ("E2E-9", "RF18539007547034", "invoice 12")
    assert s.entries[0].description == "invoice 12"


def test_a_batch_booked_entry_splits_into_its_transactions_when_their_amounts_add_up() -> None:
    tx = '<TxDtls><Refs><EndToEndId>{r}</EndToEndId></Refs><Amt Ccy="EUR">{a}</Amt></TxDtls>'
    details = f"<NtryDtls>{tx.format(r=1, a='10.00')}{tx.format(r=2, a='2.50')}</NtryDtls>"
    [s] = parse_statements(camt(entries=ntry(details=details)))
    assert [(x.amount_minor, x.references) for x in s.entries] == [(1000, ("1",)), (250, ("2",))]
    wrong = details.replace("2.50", "2.00")
    [s] = parse_statements(camt(entries=ntry(details=wrong)))
    assert [(x.amount_minor, x.references) for x in s.entries] == [(1250, ("1", "2"))]


def test_pending_entries_are_left_out_and_balances_and_period_are_read() -> None:
    header = (
        "<FrToDt><FrDtTm>2026-03-02T00:00:00</FrDtTm><ToDtTm>2026-03-06T23:59:59</ToDtTm>"
        "</FrToDt>"
        '<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">5.00</Amt>'
        "<CdtDbtInd>DBIT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>"
        '<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">7.50</Amt>'
        "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-06</Dt></Dt></Bal>"
    )
    entries = ntry() + ntry(amount="3.00", sts="<Sts><Cd>PDNG</Cd></Sts>")
    [s] = parse_statements(camt(entries=entries, header=header))
    assert len(s.entries) == 1
    assert s.opening is not None and s.opening.amount_minor == -500
    assert s.closing is not None and s.closing.amount_minor == 750
    assert (s.period_from, s.period_to) == ("2026-03-02", "2026-03-06")


def test_the_digest_does_not_depend_on_the_order_of_entries() -> None:
    a, b = ntry(), ntry(amount="3.00", cd="DBIT")
    [one] = parse_statements(camt(entries=a + b))
    [two] = parse_statements(camt(entries=b + a))
    [other] = parse_statements(camt(entries=a))
    assert one.digest() == two.digest() != other.digest()


def test_a_csv_statement_names_its_columns_in_a_header() -> None:
    text = (
        "Description,Date,Amount,Currency,Direction,Reference,value_date\n"
        "rent,2026-03-02,1200.00,EUR,DBIT,42,2026-03-03\n"
        '"fee, monthly",2026-03-03,1.5,EUR,credit,,\n'
        "refund,2026-03-03,-2.00,EUR,,,\n"
    )
    [s] = parse_statements(text.encode())
    assert s.format == "csv" and (s.period_from, s.period_to) == ("2026-03-02", "2026-03-03")
    assert [(x.signed_minor, x.references, x.value_date, x.description) for x in s.entries] == [
        (-120000, ("42",), "2026-03-03", "rent"),
        (150, (), "2026-03-03", "fee, monthly"),
        (-200, (), "2026-03-03", "refund"),
    ]


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"<Document><Stmt>", e.StatementMalformed),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><Document/>', e.StatementMalformed),
        (camt("09", ntry()), e.StatementFormatUnsupported),
        (camt("08", ntry()).replace(b"camt.053", b"camt.052"), e.StatementFormatUnsupported),
        (camt("08", ntry(amount="12.345")), e.StatementMalformed),
        (camt("08", ntry(amount="-1.00")), e.StatementMalformed),
        (camt("08", ntry(cd="CREDIT")), e.StatementMalformed),
        (camt("08", ntry()).replace(b"2026-03-03", b"2026-02-30"), e.StatementMalformed),
        (camt("08", ""), e.StatementMalformed),  # no entries, no balances: no period
        (b"date,amount,currency\n", e.StatementFormatUnsupported),
        (b"date,amount,currency,direction\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n2026-03-02,1.00,EUR\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n2026-03-02,1.00,XXX,credit\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n2026-03-02,1e3,EUR,credit\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n2026-03-02,1.00,EUR,in\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n2026-03-02,-1.00,EUR,credit\n", e.StatementMalformed),
        (b"date,amount,currency,direction\n\xff,1.00,EUR,credit\n", e.StatementMalformed),
    ],
)
def test_bad_statements_are_refused_by_name(data: bytes, rule: type[Exception]) -> None:
    with pytest.raises(rule):
        parse_statements(data)


def test_an_entry_without_a_booking_date_is_booked_on_its_value_date_and_prcd_opens() -> None:
    header = (
        '<Bal><Tp><CdOrPrtry><Cd>PRCD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1.00</Amt>'
        "<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>"
    )
    unbooked = ntry().replace("<BookgDt><Dt>2026-03-03</Dt></BookgDt>", "")
    [s] = parse_statements(camt(entries=unbooked, header=header))
    assert (s.entries[0].booking_date, s.entries[0].value_date) == ("2026-03-04", "2026-03-04")
    assert s.opening is not None and s.opening.amount_minor == 100
