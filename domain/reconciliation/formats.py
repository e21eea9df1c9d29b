"""Reading bank statements: ISO 20022 CAMT.053 XML and a simple CSV.

Definition
    :func:`parse_statements` reads bytes and returns one :class:`Statement` per account
    statement in them: a CAMT.053 document may hold several (``Stmt``), a CSV file holds one.
    The format is recognised from the content (``format="auto"``) or named.

CAMT.053 (``urn:iso:std:iso:20022:tech:xsd:camt.053.001.02`` through ``.08``, or no
namespace)
    Per ``Stmt``: ``Id``; the account ``Acct/Id/IBAN`` or ``Acct/Id/Othr/Id`` and ``Acct/Ccy``;
    ``FrToDt`` (the period; otherwise the balances' dates, otherwise the entries'); balances
    ``Bal`` of type ``OPBD`` (else ``PRCD``) and ``CLBD`` (``Amt/@Ccy``, ``CdtDbtInd``,
    ``Dt/Dt|DtTm``).
    Per booked entry ``Ntry`` (``Sts`` ``BOOK``; pending and information entries are left
    out): ``Amt/@Ccy``, ``CdtDbtInd``, ``BookgDt`` and ``ValDt`` (``Dt`` or ``DtTm``),
    ``AcctSvcrRef``, and as references ``NtryDtls/TxDtls/Refs/EndToEndId`` (then ``TxId``,
    ``InstrId``, ``PmtInfId``, ``AcctSvcrRef``, ``UETR``), ``RmtInf/Strd/CdtrRefInf/Ref`` and
    ``RmtInf/Ustrd``. A batch-booked entry whose transaction details each carry an amount
    that add up to the entry's is read as one entry per transaction.

CSV (UTF-8, comma-separated, a header row naming the columns, in any order)
    ``date`` (YYYY-MM-DD, the booking date), ``amount`` (major units, e.g. ``12.34``;
    ``-12.34`` is money out), ``currency`` (ISO 4217), ``direction`` (``credit``/``debit``;
    also ``CRDT``/``DBIT``, ``C``/``D``, ``CR``/``DR``; empty: from the amount's sign),
    ``reference``, ``description``; optional ``value_date``. The period is the first to the
    last date; a CSV statement carries no balances.

Guarantees
    Anything else is refused with a named rejection (``statement_malformed`` with the line or
    element at fault, or ``statement_format_unsupported``), never a partial statement. XML
    with a document type declaration is refused (no entity expansion, no external entities).
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from domain.money import MoneyError, is_currency, parse_major
from domain.reconciliation import errors as e
from domain.reconciliation.statement import (
    Balance,
    Entry,
    Statement,
    make_references,
    parse_date,
)

CAMT_VERSIONS = tuple(f"camt.053.001.{v:02d}" for v in range(2, 9))
_NS = re.compile(r"^urn:iso:std:iso:20022:tech:xsd:(camt\.[0-9]{3}\.[0-9]{3}\.[0-9]{2})$")
MAX_BYTES = 64 * 1024 * 1024


def parse_statements(data: bytes, format: str = "auto") -> list[Statement]:
    """The statements in ``data`` (``format``: ``auto``, ``camt.053`` or ``csv``)."""
    if len(data) > MAX_BYTES:
        raise e.StatementMalformed(f"the statement is larger than {MAX_BYTES} bytes")
    if format == "auto":
        head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        format = "camt.053" if head == b"<" else "csv"
    if format == "camt.053":
        return parse_camt053(data)
    if format == "csv":
        return [parse_csv(data)]
    raise e.StatementFormatUnsupported(f"unknown statement format {format!r}", format=format)


# ------------------------------------------------------------------ CAMT.053


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _children(el: ET.Element | None, name: str) -> Iterator[ET.Element]:
    if el is not None:
        yield from (c for c in el if _local(c.tag) == name)


def _text(el: ET.Element | None, *path: str) -> str:
    found = _child(el, *path)
    return (found.text or "").strip() if found is not None else ""


def parse_camt053(data: bytes) -> list[Statement]:
    if re.search(rb"<!DOCTYPE|<!ENTITY", data[:65536], re.IGNORECASE):
        raise e.StatementMalformed("XML with a document type declaration is refused")
    try:
        # A DTD is refused above, so no entity is declared or expanded; expat never fetches
        # external resources.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise e.StatementMalformed(f"not well-formed XML: {exc}") from None
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if namespace:
        match = _NS.match(namespace)
        if match is None or match.group(1) not in CAMT_VERSIONS:
            raise e.StatementFormatUnsupported(
                f"namespace {namespace!r} is not CAMT.053 .02 to .08", namespace=namespace
            )
    if _local(root.tag) != "Document" or _child(root, "BkToCstmrStmt") is None:
        raise e.StatementFormatUnsupported("not a CAMT.053 Document/BkToCstmrStmt")
    statements = [
        _statement(s, n) for n, s in enumerate(_children(_child(root, "BkToCstmrStmt"), "Stmt"), 1)
    ]
    if not statements:
        raise e.StatementMalformed("the document holds no Stmt")
    return statements


def _amount(el: ET.Element | None, where: str) -> tuple[int, str]:
    if el is None:
        raise e.StatementMalformed(f"{where}: no Amt")
    currency = el.get("Ccy", "").strip()
    if not is_currency(currency):
        raise e.StatementMalformed(f"{where}: Amt/@Ccy {currency!r} is not an ISO 4217 code")
    try:
        return parse_major((el.text or "").strip(), currency), currency
    except MoneyError as exc:
        raise e.StatementMalformed(f"{where}: {exc}") from None


def _direction(text: str, where: str) -> str:
    if text == "CRDT":
        return "credit"
    if text == "DBIT":
        return "debit"
    raise e.StatementMalformed(f"{where}: CdtDbtInd {text!r} is neither CRDT nor DBIT")


def _date(el: ET.Element | None, where: str) -> str:
    text = _text(el, "Dt") or _text(el, "DtTm")
    if not text and el is not None and el.text:
        text = el.text.strip()  # FrDtTm, ToDtTm
    try:
        return parse_date(text)
    except ValueError:
        raise e.StatementMalformed(f"{where}: {text!r} is not a date") from None


def _statement(stmt: ET.Element, number: int) -> Statement:
    sid = _text(stmt, "Id")
    where = f"Stmt {sid or number}"
    acct = _child(stmt, "Acct")
    account = _text(acct, "Id", "IBAN") or _text(acct, "Id", "Othr", "Id")
    currency = _text(acct, "Ccy")
    opening = closing = None
    for bal in _children(stmt, "Bal"):
        kind = _text(bal, "Tp", "CdOrPrtry", "Cd") or _text(bal, "Tp", "CdOrPrtry", "Prtry")
        if kind not in ("OPBD", "PRCD", "CLBD") or (kind == "PRCD" and opening is not None):
            continue
        amount, ccy = _amount(_child(bal, "Amt"), f"{where} Bal {kind}")
        sign = 1 if _direction(_text(bal, "CdtDbtInd"), f"{where} Bal {kind}") == "credit" else -1
        balance = Balance(sign * amount, ccy, _date(_child(bal, "Dt"), f"{where} Bal {kind}"))
        if kind in ("OPBD", "PRCD"):  # the previous day's closing, when no opening is given
            opening = balance
        else:
            closing = balance
    entries: list[Entry] = []
    for n, ntry in enumerate(_children(stmt, "Ntry"), 1):
        entries.extend(_entries(ntry, f"{where} Ntry {n}"))
    currency = currency or next(
        (x.currency for x in (*entries, opening, closing) if x is not None), ""
    )
    if not is_currency(currency):
        raise e.StatementMalformed(f"{where}: no account currency (Acct/Ccy)")
    span = _child(stmt, "FrToDt")
    if span is not None:
        period = (
            _date(_child(span, "FrDtTm"), f"{where} FrToDt"),
            _date(_child(span, "ToDtTm"), f"{where} FrToDt"),
        )
    elif opening is not None and closing is not None:
        period = (opening.date, closing.date)
    elif entries:
        dates = [x.booking_date for x in entries]
        period = (min(dates), max(dates))
    else:
        raise e.StatementMalformed(f"{where}: no period (FrToDt, balances or entries)")
    if period[0] > period[1]:
        raise e.StatementMalformed(f"{where}: the period ends before it starts")
    return Statement(sid, account, currency, period[0], period[1], tuple(entries), opening, closing)


def _entries(ntry: ET.Element, where: str) -> list[Entry]:
    status = _text(ntry, "Sts", "Cd") or _text(ntry, "Sts")
    if status and status != "BOOK":
        return []
    amount, currency = _amount(_child(ntry, "Amt"), where)
    direction = _direction(_text(ntry, "CdtDbtInd"), where)
    booked_el, value_el = _child(ntry, "BookgDt"), _child(ntry, "ValDt")
    if booked_el is None and value_el is None:
        raise e.StatementMalformed(f"{where}: neither BookgDt nor ValDt")
    booking = _date(booked_el if booked_el is not None else value_el, f"{where} BookgDt")
    value = _date(value_el, f"{where} ValDt") if value_el is not None else booking
    bank_ref = _text(ntry, "AcctSvcrRef") or _text(ntry, "NtryRef")
    details = [tx for d in _children(ntry, "NtryDtls") for tx in _children(d, "TxDtls")]
    info = _text(ntry, "AddtlNtryInf")

    def refs(tx: ET.Element) -> list[str]:
        r = _child(tx, "Refs")
        out = [
            _text(r, name)
            for name in ("EndToEndId", "TxId", "InstrId", "PmtInfId", "AcctSvcrRef", "UETR")
        ]
        rmt = _child(tx, "RmtInf")
        out.extend(_text(s, "CdtrRefInf", "Ref") for s in _children(rmt, "Strd"))
        out.extend((u.text or "").strip() for u in _children(rmt, "Ustrd"))
        return out

    def description(tx: ET.Element | None) -> str:
        rmt = _child(tx, "RmtInf")
        words = [(u.text or "").strip() for u in _children(rmt, "Ustrd")]
        return " ".join(w for w in words if w) or info or _text(tx, "AddtlTxInf")

    if len(details) > 1:
        parts: list[tuple[int, ET.Element]] = []
        for tx in details:
            amt = _child(tx, "Amt")
            if amt is None:  # an Element with no children is falsy: no ``or`` here
                amt = _child(tx, "AmtDtls", "TxAmt", "Amt")
            if amt is None or amt.get("Ccy") != currency:
                break
            parts.append((_amount(amt, where)[0], tx))
        else:
            if sum(p for p, _ in parts) == amount:
                return [
                    Entry(
                        part,
                        direction,
                        currency,
                        booking,
                        value,
                        make_references(*refs(tx)),
                        bank_ref,
                        description(tx),
                    )
                    for part, tx in parts
                ]
    texts = [t for tx in details for t in refs(tx)]
    first = details[0] if details else None
    return [
        Entry(
            amount,
            direction,
            currency,
            booking,
            value,
            make_references(*texts),
            bank_ref,
            description(first) if first is not None else info,
        )
    ]


# ------------------------------------------------------------------ CSV

CSV_COLUMNS = ("date", "amount", "currency", "direction", "reference", "description")
_DIRECTIONS = {
    "credit": "credit", "crdt": "credit", "c": "credit", "cr": "credit",
    "debit": "debit", "dbit": "debit", "d": "debit", "dr": "debit",
}  # fmt: skip


def parse_csv(data: bytes) -> Statement:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise e.StatementMalformed("the CSV statement is not UTF-8") from None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise e.StatementMalformed(f"not CSV: {exc}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise e.StatementMalformed("the CSV statement is empty (a header row is required)")
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ("date", "amount", "currency", "direction") if c not in header]
    if missing or len(set(header)) != len(header):
        raise e.StatementFormatUnsupported(
            f"line 1: the CSV header must name the columns {', '.join(CSV_COLUMNS)}"
            f" (missing {', '.join(missing) or 'none'}; or a column appears twice)"
        )
    col = {name: i for i, name in enumerate(header)}
    entries: list[Entry] = []
    for line, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise e.StatementMalformed(
                f"line {line}: {len(row)} fields, the header has {len(header)}"
            )

        def get(name: str, row: list[str] = row) -> str:
            return row[col[name]].strip() if name in col else ""

        currency = get("currency").upper()
        if not is_currency(currency):
            raise e.StatementMalformed(f"line {line}: {currency!r} is not an ISO 4217 currency")
        amount_text = get("amount")
        negative = amount_text.startswith("-")
        if negative:  # a signed amount: money out, and the direction may be left empty
            amount_text = amount_text[1:]
        given = get("direction").lower() or ("debit" if negative else "credit")
        direction = _DIRECTIONS.get(given)
        if direction is None or (negative and direction != "debit"):
            raise e.StatementMalformed(
                f"line {line}: direction {get('direction')!r} is neither credit nor debit"
            )
        try:
            amount = parse_major(amount_text, currency)
            booking = parse_date(get("date"))
            value = parse_date(get("value_date")) if get("value_date") else booking
        except (MoneyError, ValueError) as exc:
            raise e.StatementMalformed(f"line {line}: {exc}") from None
        entries.append(
            Entry(
                amount,
                direction,
                currency,
                booking,
                value,
                make_references(get("reference")),
                "",
                get("description"),
            )
        )
    if not entries:
        raise e.StatementMalformed("the CSV statement has no entries")
    currencies = sorted({x.currency for x in entries})
    dates = [x.booking_date for x in entries]
    return Statement("", "", currencies[0], min(dates), max(dates), tuple(entries), format="csv")
