"""``ledgerline aml score``: alerts measured against a simulator's ground truth.

Definition
    :func:`score` matches alerts (the ``aml alerts --format jsonl`` records: ``alert_id``,
    ``typology``, ``rule_id``, ``rule_version``, ``score``, ``account_ids``,
    ``transaction_ids``, ``raised_event_ts``, ``position``) with the planted patterns of a
    ``truth.json``:

    * a planted pattern is **detected** when an alert of its typology cites at least one of
      its transactions (``recall`` per typology and over all typologies); ``recall_any``
      also counts alerts of any other suspicious typology (the team was still alerted);
    * **precision** is the share of suspicious alerts (every typology but ``ctr``, which is
      a report, not a suspicion) that cite a transaction of some planted pattern;
    * **look-alike false alerts** are suspicious alerts citing a transaction of a benign
      look-alike, by kind, with the share of look-alike instances that drew one;
    * **CTR**: every obligation of ``truth.json`` (person, direction, business day) against
      the ``ctr`` alerts (recall and precision, matched by subject and day);
    * **time to alert**: for each detected pattern, the business time of its first matching
      alert (``raised_event_ts``) minus the business time of the pattern's last transaction,
      in seconds (negative: raised before the pattern was complete), p50/p90/max.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from domain.aml.model import parse_rfc3339_ns

NS = 1_000_000_000
REPORT_TYPOLOGIES = frozenset({"ctr"})


def _ts(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_rfc3339_ns(str(value))


def load_alerts(path: Path | str) -> list[dict[str, Any]]:
    with Path(path).open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _percentile(values: Sequence[int], q: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def score(truth: Mapping[str, Any], alerts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    alerts = list(alerts)
    suspicious = [a for a in alerts if a.get("typology") not in REPORT_TYPOLOGIES]
    reports = [a for a in alerts if a.get("typology") in REPORT_TYPOLOGIES]
    by_tx: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for a in suspicious:
        for tx in a.get("transaction_ids", ()):
            by_tx[tx].append(a)

    planted_tx: set[str] = set()
    per: dict[str, dict[str, Any]] = {}
    delays: list[int] = []
    detected_total = any_total = 0
    patterns = truth.get("patterns", [])
    for p in patterns:
        planted_tx.update(p["transaction_ids"])
        stats = per.setdefault(
            p["typology"], {"planted": 0, "detected": 0, "detected_any": 0, "recall": 0.0}
        )
        stats["planted"] += 1
        hits = {a["alert_id"]: a for tx in p["transaction_ids"] for a in by_tx.get(tx, ())}
        matching = [a for a in hits.values() if a["typology"] == p["typology"]]
        if hits:
            stats["detected_any"] += 1
            any_total += 1
        if matching:
            stats["detected"] += 1
            detected_total += 1
            first = min(_ts(a["raised_event_ts"]) for a in matching)
            delays.append((first - _ts(p["end_ts"])) // NS)
    for stats in per.values():
        stats["recall"] = round(stats["detected"] / stats["planted"], 4)
        stats["recall_any"] = round(stats["detected_any"] / stats["planted"], 4)

    true_alerts = [
        a for a in suspicious if any(tx in planted_tx for tx in a.get("transaction_ids", ()))
    ]
    lookalike_tx: dict[str, str] = {}
    instances: dict[str, int] = defaultdict(int)
    for look in truth.get("lookalikes", []):
        instances[look["typology"]] += 1
        for tx in look["transaction_ids"]:
            lookalike_tx[tx] = look["pattern_id"]
    kinds = {look["pattern_id"]: look["typology"] for look in truth.get("lookalikes", [])}
    false_alerts: dict[str, int] = defaultdict(int)
    alerted_instances: dict[str, set[str]] = defaultdict(set)
    by_typology: dict[str, int] = defaultdict(int)
    for a in suspicious:
        by_typology[a["typology"]] += 1
        touched = {lookalike_tx[tx] for tx in a.get("transaction_ids", ()) if tx in lookalike_tx}
        if touched and not any(tx in planted_tx for tx in a.get("transaction_ids", ())):
            for pid in touched:
                alerted_instances[kinds[pid]].add(pid)
            for kind in {kinds[pid] for pid in touched}:
                false_alerts[kind] += 1
    lookalikes = {
        kind: {
            "instances": instances[kind],
            "false_alerts": false_alerts.get(kind, 0),
            "instances_alerted": len(alerted_instances.get(kind, ())),
        }
        for kind in sorted(instances)
    }

    planted = len(patterns)
    return {
        "recall": round(detected_total / planted, 4) if planted else None,
        "recall_any": round(any_total / planted, 4) if planted else None,
        "recall_macro": round(sum(s["recall"] for s in per.values()) / len(per), 4)
        if per
        else None,
        "precision": round(len(true_alerts) / len(suspicious), 4) if suspicious else None,
        "alerts": len(suspicious),
        "true_alerts": len(true_alerts),
        "alerts_by_typology": dict(sorted(by_typology.items())),
        "per_typology": dict(sorted(per.items())),
        "lookalike_false_alerts": sum(v["false_alerts"] for v in lookalikes.values()),
        "lookalikes": lookalikes,
        "ctr": _ctr(truth.get("ctr_obligations", []), reports),
        "time_to_alert_s": {
            "p50": _percentile(delays, 0.5),
            "p90": _percentile(delays, 0.9),
            "max": max(delays) if delays else None,
        },
    }


def _ctr(
    obligations: Sequence[Mapping[str, Any]], reports: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    wanted = {(o["subject"], o["direction"], o["business_day"]) for o in obligations}
    got: set[tuple[str, str, str]] = set()
    for a in reports:
        subject = a.get("subject") or (a.get("account_ids") or [""])[0]
        episode = a.get("episode", "")
        if ":" in episode:
            direction, day = episode.split(":", 1)
            got.add((subject, direction, day))
    hit = wanted & got
    return {
        "obligations": len(wanted),
        "reports": len(got),
        "recall": round(len(hit) / len(wanted), 4) if wanted else None,
        "precision": round(len(hit) / len(got), 4) if got else None,
    }


def score_files(truth_path: Path | str, alerts_path: Path | str) -> dict[str, Any]:
    truth = json.loads(Path(truth_path).read_text())
    return score(truth, load_alerts(alerts_path))
