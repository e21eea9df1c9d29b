"""Settlement reports over read models rebuilt by a replay: ``netting`` and ``unwind``.

``netting``  one row per cycle, currency and participant: the cycle's G, B, M and netting
             efficiencies (exact fractions and 6-digit decimal strings), the participant's sent,
             received and net position, its funding (the pay-in a net debtor owes), and its
             settlement instruction (direction, amount, state, ledger transfer id).
``unwind``   the Lamfalussy IV stress view: for every cycle, currency and participant x with
             obligations, what deleting every obligation to or from x would do to each other
             participant (position before and after, debit before and after, the increase),
             with the cycle's G and M after such an unwind. Rows come from a netting book
             rebuilt from the replayed pair table (every o(i->j) the cycle's events netted),
             never from the live system; the largest net debtor of each cycle and currency is
             flagged (the participant Lamfalussy IV asks the system to survive).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa

from domain.settlement.netting import (
    efficiency,
    efficiency_text,
    fraction_text,
    net_from_scratch,
    unwind_stress,
)

NETTING_COLUMNS = {
    "cycle_id": pa.string(),
    "state": pa.string(),
    "currency": pa.string(),
    "gross_minor": pa.decimal128(38, 0),
    "bilateral_minor": pa.decimal128(38, 0),
    "multilateral_minor": pa.decimal128(38, 0),
    "efficiency_bilateral": pa.string(),
    "efficiency_multilateral": pa.string(),
    "efficiency_bilateral_exact": pa.string(),
    "efficiency_multilateral_exact": pa.string(),
    "participant_id": pa.string(),
    "sent_minor": pa.decimal128(38, 0),
    "received_minor": pa.decimal128(38, 0),
    "net_minor": pa.decimal128(38, 0),
    "funding_minor": pa.decimal128(38, 0),
    "instruction": pa.string(),
    "instruction_minor": pa.decimal128(38, 0),
    "instruction_state": pa.string(),
    "transfer_id": pa.string(),
}
UNWIND_COLUMNS = {
    "cycle_id": pa.string(),
    "currency": pa.string(),
    "defaulter_id": pa.string(),
    "defaulter_net_minor": pa.decimal128(38, 0),
    "largest_net_debtor": pa.bool_(),
    "participant_id": pa.string(),
    "net_before_minor": pa.decimal128(38, 0),
    "net_after_minor": pa.decimal128(38, 0),
    "debit_before_minor": pa.decimal128(38, 0),
    "debit_after_minor": pa.decimal128(38, 0),
    "debit_increase_minor": pa.decimal128(38, 0),
    "gross_after_minor": pa.decimal128(38, 0),
    "multilateral_after_minor": pa.decimal128(38, 0),
}


def _fetch(conn: psycopg.Connection[Any], sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d.name for d in cur.description or ()]
        return [
            {n: int(v) if isinstance(v, Decimal) else v for n, v in zip(names, row, strict=True)}
            for row in cur.fetchall()
        ]


def _table(rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {
            name: pa.array(
                [
                    Decimal(r[name])
                    if pa.types.is_decimal(kind) and r[name] is not None
                    else r[name]
                    for r in rows
                ],
                kind,
            )
            for name, kind in columns.items()
        }
    )


def netting(conn: psycopg.Connection[Any], schema: str) -> pa.Table:
    s = f'"{schema}"'
    cycles = {
        (r["scheme_id"], r["seq"]): r
        for r in _fetch(conn, f"SELECT scheme_id, seq, state FROM {s}.settlement_cycles")
    }
    totals = {
        (r["scheme_id"], r["seq"], r["currency"]): r
        for r in _fetch(conn, f"SELECT * FROM {s}.settlement_totals")
    }
    instructions = {
        (r["scheme_id"], r["seq"], r["currency"], r["participant_id"]): r
        for r in _fetch(conn, f"SELECT * FROM {s}.settlement_instructions WHERE valid_to IS NULL")
    }
    rows = []
    for p in _fetch(
        conn,
        f"SELECT * FROM {s}.settlement_positions WHERE sent > 0 OR received > 0"
        " ORDER BY scheme_id, seq, currency, participant_id",
    ):
        key = (p["scheme_id"], p["seq"], p["currency"])
        t = totals[key]
        e_bil = efficiency(t["bilateral"], t["gross"])
        e_mult = efficiency(t["multilateral"], t["gross"])
        net = p["received"] - p["sent"]
        ins = instructions.get((*key, p["participant_id"]))
        rows.append(
            {
                "cycle_id": f"{p['scheme_id']}-{p['seq']}",
                "state": cycles[key[:2]]["state"],
                "currency": p["currency"],
                "gross_minor": t["gross"],
                "bilateral_minor": t["bilateral"],
                "multilateral_minor": t["multilateral"],
                "efficiency_bilateral": efficiency_text(e_bil),
                "efficiency_multilateral": efficiency_text(e_mult),
                "efficiency_bilateral_exact": fraction_text(e_bil),
                "efficiency_multilateral_exact": fraction_text(e_mult),
                "participant_id": str(p["participant_id"]),
                "sent_minor": p["sent"],
                "received_minor": p["received"],
                "net_minor": net,
                "funding_minor": max(0, -net),
                "instruction": ins["direction"] if ins else None,
                "instruction_minor": ins["amount"] if ins else None,
                "instruction_state": ins["state"] if ins else None,
                "transfer_id": str(ins["transfer_id"]) if ins and ins["transfer_id"] else None,
            }
        )
    return _table(rows, NETTING_COLUMNS)


def unwind(conn: psycopg.Connection[Any], schema: str) -> pa.Table:
    pairs: dict[tuple[int, int, str], list[tuple[int, int, int]]] = defaultdict(list)
    for r in _fetch(
        conn,
        "SELECT scheme_id, seq, currency, payer_id, payee_id, gross"
        f' FROM "{schema}".settlement_pairs'
        " WHERE gross > 0 ORDER BY scheme_id, seq, currency, payer_id, payee_id",
    ):
        pairs[(r["scheme_id"], r["seq"], r["currency"])].append(
            (r["payer_id"], r["payee_id"], r["gross"])
        )
    rows = []
    for (scheme_id, seq, currency), triples in sorted(pairs.items()):
        book = net_from_scratch(triples)
        positions = book.positions()
        debtors = {p: -n for p, n in positions.items() if n < 0}
        largest = max(debtors, key=lambda p: (debtors[p], -p)) if debtors else None
        for plan in unwind_stress(book):
            for pid, before, after in plan.changes:
                rows.append(
                    {
                        "cycle_id": f"{scheme_id}-{seq}",
                        "currency": currency,
                        "defaulter_id": str(plan.participant_id),
                        "defaulter_net_minor": positions[plan.participant_id],
                        "largest_net_debtor": plan.participant_id == largest,
                        "participant_id": str(pid),
                        "net_before_minor": before,
                        "net_after_minor": after,
                        "debit_before_minor": max(0, -before),
                        "debit_after_minor": max(0, -after),
                        "debit_increase_minor": max(0, max(0, -after) - max(0, -before)),
                        "gross_after_minor": plan.totals.gross,
                        "multilateral_after_minor": plan.totals.multilateral,
                    }
                )
    return _table(rows, UNWIND_COLUMNS)


def compute(conn: psycopg.Connection[Any], schema: str) -> dict[str, pa.Table]:
    return {"netting": netting(conn, schema), "unwind": unwind(conn, schema)}
