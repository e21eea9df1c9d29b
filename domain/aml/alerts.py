"""Alerts: deterministic ids, deduplication, evidence and the documented score.

Definition
    An :class:`Alert` names the rule (id and version) that raised it, its typology, its
    subject (the account, or ``conductor:<name>``, it is about), the accounts and the
    transactions behind it, its features and its score, and where it sits in time:
    ``raised_event_ts`` (the newest business time among its evidence when it was raised),
    ``updated_event_ts`` and ``position`` (the largest log position among its evidence: the
    point from which a replay has everything the alert cites).

Guarantees
    * Ids are deterministic: ``sha256("rule|subject|episode|raised business time")``, first
      32 hex digits. A replay of the same log gives the same ids.
    * Deduplication: while an alert for the same rule and subject (and episode, for the
      per-day CTR) was last updated within the rule's ``dedup_window_s`` of a new detection,
      the detection updates that alert (more evidence, features, score) instead of raising
      a new one.
    * Order-insensitive within a timestamp: evidence is a set (kept as the earliest
      :data:`MAX_EVIDENCE` by ``(ts, id)``, which composes under union), numeric features
      merge by maximum, labels by union, and the score reads only strictly-earlier history.

Score (``scoring`` rule)
    ``score = min(100, weight * risk_boost * (1 + history_boost))`` in integer basis points:
    ``weight`` is the rule's (0..100); ``risk_boost`` is 1 for low, ``risk_medium_bps`` or
    ``risk_high_bps`` / 10000 for the highest risk rating among the alert's accounts;
    ``history_boost`` is ``history_step_bps`` per alert raised on the subject account in the
    ``history_s`` before this one's business time, at most ``history_cap_bps``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from domain.aml.model import Txn

MAX_EVIDENCE = 500
RISK_ORDER = {"low": 0, "medium": 1, "high": 2}


def alert_id(rule_id: str, subject: str, episode: str, raised_ts: int) -> str:
    text = f"{rule_id}|{subject}|{episode}|{raised_ts}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Alert:
    __slots__ = (
        "accounts",
        "alert_id",
        "category",
        "episode",
        "evidence",
        "features",
        "labels",
        "position",
        "raised_event_ts",
        "rule_id",
        "rule_version",
        "score",
        "scoring",
        "status",
        "subject",
        "total_usd_minor",
        "tx_ids",
        "typology",
        "updated_event_ts",
    )

    def __init__(
        self,
        alert_id_: str,
        rule_id: str,
        rule_version: int,
        typology: str,
        category: str,
        subject: str,
        episode: str,
        raised_ts: int,
    ) -> None:
        self.alert_id = alert_id_
        self.rule_id = rule_id
        self.rule_version = rule_version
        self.typology = typology
        self.category = category
        self.subject = subject
        self.episode = episode
        self.raised_event_ts = raised_ts
        self.updated_event_ts = raised_ts
        self.position = 0
        self.accounts: set[str] = set()
        self.evidence: dict[str, tuple[int, int]] = {}  # tx id -> (ts, position), capped
        self.tx_ids: set[str] = set()  # every tx id ever cited (for the counts)
        self.total_usd_minor = 0
        self.features: dict[str, int] = {}
        self.labels: set[str] = set()
        self.scoring: dict[str, Any] = {}
        self.score = 0
        self.status = "open"

    def add(self, txns: Iterable[Txn], accounts: Iterable[str]) -> None:
        self.accounts.update(accounts)
        evidence = self.evidence
        for t in txns:
            if t.tx_id in self.tx_ids:
                continue
            self.tx_ids.add(t.tx_id)
            self.total_usd_minor += t.usd
            self.position = max(self.position, t.position)
            self.updated_event_ts = max(self.updated_event_ts, t.ts_ns)
            evidence[t.tx_id] = (t.ts_ns, t.position)
        if len(evidence) > MAX_EVIDENCE:
            keep = sorted(evidence.items(), key=lambda kv: (kv[1][0], kv[0]))[:MAX_EVIDENCE]
            self.evidence = dict(keep)

    def merge_features(self, features: dict[str, int], labels: Iterable[str]) -> None:
        mine = self.features
        for name, value in features.items():
            if value > mine.get(name, value - 1):
                mine[name] = value
        self.labels.update(labels)

    def transaction_ids(self) -> list[str]:
        return [k for k, _ in sorted(self.evidence.items(), key=lambda kv: (kv[1][0], kv[0]))]

    def to_row(self) -> dict[str, Any]:
        """The JSON-safe record (the read model's row, ``aml alerts`` output)."""
        features: dict[str, Any] = dict(sorted(self.features.items()))
        features["labels"] = sorted(self.labels)
        features["transactions"] = len(self.tx_ids)
        features["total_usd_minor"] = self.total_usd_minor
        features.update(self.scoring)
        return {
            "alert_id": self.alert_id,
            "typology": self.typology,
            "category": self.category,
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "subject": self.subject,
            "episode": self.episode,
            "score": self.score,
            "account_ids": sorted(self.accounts),
            "transaction_ids": self.transaction_ids(),
            "features": features,
            "raised_event_ts": self.raised_event_ts,
            "updated_event_ts": self.updated_event_ts,
            "position": self.position,
            "status": self.status,
        }


def score_of(
    weight: int,
    risk: str,
    prior_alerts: int,
    scoring: dict[str, int],
) -> tuple[int, dict[str, Any]]:
    """The documented score and the features behind it (integers only)."""
    risk_bps = {
        "low": 10_000,
        "medium": scoring["risk_medium_bps"],
        "high": scoring["risk_high_bps"],
    }[risk]
    history_bps = min(prior_alerts * scoring["history_step_bps"], scoring["history_cap_bps"])
    value = weight * risk_bps * (10_000 + history_bps) // 100_000_000
    return min(100, value), {
        "weight": weight,
        "risk_rating": risk,
        "risk_boost_bps": risk_bps,
        "prior_alerts": prior_alerts,
        "history_boost_bps": history_bps,
    }
