"""SAR and CTR drafts from the AML read models, each citing the log it rests on.

Definition
    :func:`sar_draft` turns a case (its alerts, their transactions, the subjects' KYC) into the
    fields FinCEN's Suspicious Activity Report asks for: subjects (Part I), the suspicious
    activity (Part II: dates, amount, categories, instruments), the filing institution
    (Part III), and a narrative skeleton (Part V) for the analyst to complete.
    :func:`ctr_draft` lists, for one business day, every Currency Transaction Report owed:
    the person(s) involved (Part I), the cash in and cash out totals (Part II), the branches
    (Part III), and the transactions behind each.

    Both cite their evidence: the transaction ids, the log positions (lowest and highest),
    and the latest signed checkpoint (size and root), with whether every cited position lies
    within it (then an RFC 9162 inclusion proof exists for each: ``/v1/proofs/inclusion``).
    :func:`render_html` prints either as a readable page.

Guarantees
    A draft is a function of the read models (rebuilt bit for bit by replay) and the log's
    checkpoints: the same position gives the same draft. Amounts are decimal strings.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import psycopg

from domain.aml.calendar import BusinessCalendar, iso_to_day
from domain.money import format_major
from eventstore.recorder import HashChainRecorder
from readmodels import aml as rm
from replay.log import latest_checkpoint

NS = 1_000_000_000
FILER = {
    "name": "Ledgerline demonstration bank",
    "tin": "00-0000000",
    "primary_federal_regulator": "to be completed",
    "address": "to be completed",
}
# Typologies -> FinCEN SAR Part II activity categories (items 29-38).
SAR_CATEGORIES = {
    "structuring": "Structuring: multiple transactions below the CTR threshold",
    "ctr": "Structuring: cash transactions over 10,000 USD aggregated in a business day",
    "rapid_movement": "Money laundering: transaction out of pattern for customer(s)",
    "velocity": "Money laundering: transaction out of pattern for customer(s)",
    "round_amounts": "Money laundering: suspicious exchange of currencies or round amounts",
    "high_risk_jurisdiction": "Other: transactions with a high-risk jurisdiction",
    "fan_in": "Money laundering: suspicious use of multiple accounts (funnel account)",
    "fan_out": "Money laundering: suspicious use of multiple accounts",
    "gather_scatter": "Money laundering: suspicious use of multiple accounts",
    "scatter_gather": "Money laundering: funds transfers through intermediaries (layering)",
    "bipartite": "Money laundering: funds transfers among a group of accounts (layering)",
    "stack": "Money laundering: funds transfers through layers of accounts (layering)",
    "cycle": "Money laundering: funds returning to their origin (round-tripping)",
    "dormant_reactivation": "Other: activity on a long-dormant account",
    "new_account_burst": "Other: unusual activity on a new account",
    "sanctions": "Other: name match with a sanctions list",
}


class ReportError(Exception):
    """The report cannot be drafted (unknown case, no such day); the message says why."""


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usd(cents: int) -> str:
    return format_major(int(cents), "USD")


def _tx_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "tx_id": row["tx_id"],
        "timestamp": _iso(int(row["ts_ns"])),
        "from_account": row["src"],
        "to_account": row["dst"],
        "amount": format_major(int(row["amount_minor"]), row["currency"]),
        "currency": row["currency"],
        "amount_usd": _usd(int(row["usd_minor"])),
        "channel": row["channel"],
        "kind": row["kind"],
        "from_country": row["from_country"],
        "to_country": row["to_country"],
        "conducted_by": row["conducted_by"],
        "branch": row["branch"],
        "position": int(row["position"]),
    }


def _evidence(recorder: HashChainRecorder, positions: list[int]) -> dict[str, Any]:
    cp = latest_checkpoint(recorder)
    highest = max(positions, default=0)
    return {
        "log_positions": {"lowest": min(positions, default=0), "highest": highest},
        "log_head": recorder.head().position,
        "checkpoint": {"size": cp.size, "root": cp.root.hex(), "key": cp.key_name} if cp else None,
        "covered_by_checkpoint": bool(cp and highest <= cp.size),
        "proofs": "GET /v1/proofs/inclusion?position=<position>&size=<checkpoint size>",
    }


def _subject(account: str, profile: dict[str, Any] | None, role: str) -> dict[str, Any]:
    p = profile or {}
    opened = p.get("opened_ns")
    return {
        "account": account,
        "role": role,
        "name": p.get("name") or "unknown (no KYC record)",
        "country": p.get("country", ""),
        "segment": p.get("segment", ""),
        "business_type": p.get("business_type", ""),
        "account_opened": _iso(int(opened))[:10] if opened else "",
        "risk_rating": p.get("risk_rating", ""),
        "tin": "to be completed",
        "address": "to be completed",
    }


def sar_draft(
    conn: psycopg.Connection[Any], recorder: HashChainRecorder, case_id: str
) -> dict[str, Any]:
    case = rm.get_case(conn, case_id)
    if case is None:
        raise ReportError(f"no case {case_id}")
    alerts = rm.get_alerts(conn, case["alert_ids"])
    tx_ids = sorted({t for a in alerts for t in a["transaction_ids"]})
    txs = [_tx_out(r) for r in rm.get_transactions(conn, tx_ids)]
    subjects_ids = sorted(
        {a["subject"] for a in alerts if not a["subject"].startswith("conductor:")}
    )
    involved = sorted({x for a in alerts for x in a["account_ids"]} - set(subjects_ids))
    profiles = rm.get_profiles(conn, [*subjects_ids, *involved])
    typologies = sorted({a["typology"] for a in alerts})
    total_cents = sum(int(r["usd_minor"]) for r in rm.get_transactions(conn, tx_ids))
    first = txs[0]["timestamp"][:10] if txs else ""
    last = txs[-1]["timestamp"][:10] if txs else ""
    positions = [t["position"] for t in txs] + [int(a["position"]) for a in alerts]
    narrative = (
        f"Between {first} and {last}, {len(txs)} transactions totalling {_usd(total_cents)} USD "
        f"involving {', '.join(subjects_ids) or 'the subjects'} raised "
        f"{len(alerts)} alert(s) ({', '.join(typologies)}). WHO: [describe the subjects]. "
        "WHAT: [the instruments and how the funds moved]. WHEN: [the dates above]. "
        "WHERE: [branches, jurisdictions]. WHY it is suspicious: [the analyst's reasoning, "
        "referring to the alerts' features]. HOW: [the method, e.g. structuring, layering]."
    )
    return {
        "report": "SAR",
        "form": "FinCEN Suspicious Activity Report (BSA E-Filing), draft",
        "status": "filed" if case.get("sar") else "draft",
        "case_id": case_id,
        "case": {
            "status": case["status"],
            "assignee": case["assignee"],
            "opened_by": case["opened_by"],
            "disposition": case["disposition"],
            "filing": case.get("sar"),
        },
        "part_i_subjects": [_subject(a, profiles.get(a), "subject") for a in subjects_ids]
        + [_subject(a, profiles.get(a), "counterparty") for a in involved],
        "part_ii_suspicious_activity": {
            "date_from": first,
            "date_to": last,
            "total_amount_usd": _usd(total_cents),
            "categories": sorted({SAR_CATEGORIES.get(t, f"Other: {t}") for t in typologies}),
            "instruments": sorted({t["channel"] for t in txs}),
            "alerts": [
                {
                    "alert_id": a["alert_id"],
                    "typology": a["typology"],
                    "rule_id": a["rule_id"],
                    "rule_version": a["rule_version"],
                    "score": a["score"],
                    "raised_event_ts": _iso(int(a["raised_event_ts"])),
                    "position": int(a["position"]),
                }
                for a in alerts
            ],
        },
        "part_iii_filing_institution": FILER,
        "part_v_narrative": narrative,
        "transactions": txs,
        "evidence": _evidence(recorder, positions),
    }


def ctr_draft(
    conn: psycopg.Connection[Any],
    recorder: HashChainRecorder,
    day: str,
    timezone: str = "America/New_York",
) -> dict[str, Any]:
    """Every CTR owed for business day ``day`` (``YYYY-MM-DD``, local to ``timezone``)."""
    try:
        ordinal = iso_to_day(day)
    except ValueError:
        raise ReportError(f"date {day!r} is not YYYY-MM-DD") from None
    alerts = [
        a
        for a in rm.list_alerts(conn, typology="ctr", limit=1_000_000)
        if a["episode"].endswith(f":{day}")
    ]
    calendar = BusinessCalendar(timezone)
    reports = []
    positions: list[int] = []
    for a in alerts:
        rows = rm.get_transactions(conn, a["transaction_ids"])
        rows = [r for r in rows if calendar.day_of(int(r["ts_ns"])) == ordinal]
        direction = a["episode"].split(":", 1)[0]
        total = sum(int(r["usd_minor"]) for r in rows)
        subject = a["subject"]
        accounts = sorted(a["account_ids"])
        profiles = rm.get_profiles(conn, accounts)
        persons = [
            _subject(acct, profiles.get(acct), "account holder (on whose behalf)")
            for acct in accounts
        ]
        conductors = sorted({r["conducted_by"] for r in rows if r["conducted_by"]})
        persons += [
            {"conductor": c, "role": "person conducting the transaction", "id": "to be completed"}
            for c in conductors
        ]
        positions += [int(r["position"]) for r in rows]
        reports.append(
            {
                "alert_id": a["alert_id"],
                "subject": subject,
                "part_i_persons": persons,
                "part_ii_amount": {
                    "business_day": day,
                    "cash_in_usd": _usd(total) if direction == "in" else "0.00",
                    "cash_out_usd": _usd(total) if direction == "out" else "0.00",
                    "multiple_transactions": len(rows) > 1,
                },
                "part_iii_locations": sorted({r["branch"] for r in rows if r["branch"]}),
                "transactions": [_tx_out(r) for r in rows],
            }
        )
    return {
        "report": "CTR",
        "form": "FinCEN Currency Transaction Report (Form 112), drafts",
        "business_day": day,
        "timezone": timezone,
        "threshold": "cash of one person over 10,000.00 USD in one business day",
        "filing_institution": FILER,
        "reports": reports,
        "evidence": _evidence(recorder, positions),
    }


# ------------------------------------------------------------------ HTML


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(r.get(k)))}</td>" for k in keys) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _section(title: str, value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        content = _table(value)
    elif isinstance(value, dict):
        content = _table([{"field": k, "value": _text(v)} for k, v in value.items()])
    else:
        content = f"<p>{html.escape(_text(value))}</p>"
    return f"<h2>{html.escape(title)}</h2>{content}"


def render_html(report: dict[str, Any]) -> str:
    title = f"{report['report']} draft"
    parts = [f"<h1>{html.escape(report['form'])}</h1>"]
    for key, value in report.items():
        if key in ("form",):
            continue
        if key == "reports":
            for i, item in enumerate(value, start=1):
                parts.append(f"<h2>CTR {i}: {html.escape(item['subject'])}</h2>")
                parts.extend(_section(k, v) for k, v in item.items() if k != "subject")
            continue
        parts.append(_section(key.replace("_", " "), value))
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}"
        "th{background:#eee}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
