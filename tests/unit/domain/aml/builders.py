"""Small builders for the AML domain tests: transactions at readable times, engine runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from domain.aml.engine import Engine
from domain.aml.model import CASH, AccountProfile, Txn
from domain.aml.rules import DEFAULT_RULES, RuleDefinition
from domain.aml.windows import Windows

NS = 1_000_000_000
HOUR = 3_600 * NS
DAY = 24 * HOUR
# Monday 3 March 2025, 10:00 in New York (15:00 UTC); monitoring starts here.
T0 = int(datetime.fromisoformat("2025-03-03T15:00:00+00:00").timestamp()) * NS


def at(text: str) -> int:
    """Business time from an RFC 3339 string."""
    return int(datetime.fromisoformat(text).timestamp()) * NS


def usd(text: str) -> int:
    """``"9999.99"`` -> 999999 cents."""
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


_position = [0]


def tx(
    tx_id: str,
    ts: int,
    src: str,
    dst: str,
    amount: str,
    *,
    channel: str = "",
    kind: str = "",
    conductor: str = "",
    branch: str = "",
    from_country: str = "US",
    to_country: str = "US",
    currency: str = "USD",
    position: int | None = None,
) -> Txn:
    if not kind:
        kind = "cash_deposit" if src == CASH else "cash_withdrawal" if dst == CASH else "transfer"
    if not channel:
        channel = "cash" if kind != "transfer" else "ach"
    _position[0] += 1
    cents = usd(amount)
    return Txn(
        ts,
        tx_id,
        src,
        dst,
        cents,
        cents,
        currency,
        channel,
        kind,
        from_country,
        to_country,
        conductor,
        branch,
        _position[0] if position is None else position,
    )


def deposit(tx_id: str, ts: int, account: str, amount: str, **kw: Any) -> Txn:
    return tx(tx_id, ts, CASH, account, amount, **kw)


def withdrawal(tx_id: str, ts: int, account: str, amount: str, **kw: Any) -> Txn:
    return tx(tx_id, ts, account, CASH, amount, **kw)


def only(*rule_ids: str, **params: Any) -> list[RuleDefinition]:
    """The default rules with only ``rule_ids`` enabled (and ``params`` changed on them)."""
    out = []
    for r in DEFAULT_RULES.values():
        if r.rule_id in rule_ids:
            mine = {k: v for k, v in params.items() if k in r.params}
            out.append(replace(r, params={**r.params, **mine}))
        else:
            out.append(replace(r, enabled=False))
    return out


@dataclass
class Run:
    engine: Engine
    alerts: list[dict[str, Any]]

    def of(self, typology: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["typology"] == typology]

    def subjects(self, typology: str) -> set[str]:
        return {a["subject"] for a in self.of(typology)}

    def cited(self, typology: str) -> set[str]:
        return {t for a in self.of(typology) for t in a["transaction_ids"]}


class ColdBytes:
    """A cold store for account windows in a dict (the projection's is a file)."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def take(self, account: str) -> bytes | None:
        return self.saved.pop(account, None)

    def save(self, items: Iterable[tuple[str, bytes]]) -> None:
        self.saved.update(items)

    def drop(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            self.saved.pop(account, None)

    def peek(self, account: str) -> bytes | None:
        return self.saved.get(account)

    def accounts(self) -> Iterable[str]:
        return list(self.saved)

    def items(self) -> Iterable[tuple[str, bytes]]:
        return list(self.saved.items())

    def __len__(self) -> int:
        return len(self.saved)


def run(
    txns: Iterable[Txn],
    rules: Sequence[RuleDefinition] | None = None,
    profiles: Iterable[AccountProfile] = (),
    warm_up_from: int | None = T0 - 60 * DAY,
    windows: Windows | None = None,
) -> Run:
    """Feed ``txns`` (in this order) to a fresh engine; every alert, as rows.

    Monitoring is taken to have started 60 days before T0 (a transfer between two unrelated
    accounts at ``warm_up_from``), so warm-ups and baselines are behind the test's story.
    """
    engine = Engine(rules if rules is not None else DEFAULT_RULES.values(), windows=windows)
    for p in profiles:
        engine.set_profile(p)
    if warm_up_from is not None:
        engine.observe(tx("warm-up", warm_up_from, "BANK-OPS", "BANK-FEES", "1.00", position=0))
    alerts: dict[str, dict[str, Any]] = {}
    for t in txns:
        engine.observe(t)
    for a in engine.drain():
        alerts[a.alert_id] = a.to_row()
    return Run(engine, sorted(alerts.values(), key=lambda a: (a["position"], a["alert_id"])))
