"""Run the monitoring engine over simulator files in memory (no database).

The reference run for ``aml simulate`` output: the same domain engine the projection uses,
fed the files in order (rates and account profiles first, then each transaction with its
line number as its position). Used by the tests and to tune and measure the detectors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from domain.aml.engine import Engine
from domain.aml.model import Txn
from domain.aml.rates import RateTable
from domain.aml.reference import parse_profile
from domain.aml.transactions import parse_record, txn_of


def load_directory(directory: Path | str) -> tuple[RateTable, list[Any], list[Txn]]:
    """Rates, profiles and transactions of a simulator directory."""
    root = Path(directory)
    rates_doc = json.loads((root / "rates.json").read_text())
    rates = RateTable.of(rates_doc.get("rates", rates_doc))
    with (root / "accounts.jsonl").open() as fh:
        profiles = [parse_profile(json.loads(line)) for line in fh if line.strip()]
    return rates, profiles, list(iter_transactions(root / "transactions.jsonl", rates))


def iter_transactions(path: Path, rates: RateTable) -> Iterator[Txn]:
    with path.open() as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield txn_of(parse_record(json.loads(line)), rates, number)


def detect(directory: Path | str, engine: Engine | None = None) -> list[dict[str, Any]]:
    """Every alert the engine raises over the directory's transactions, as rows."""
    rates, profiles, txns = load_directory(directory)
    engine = engine or Engine()
    engine.set_rates(rates)
    for profile in profiles:
        engine.set_profile(profile)
    alerts: dict[str, dict[str, Any]] = {}
    for t in txns:
        engine.observe(t)
    for alert in engine.drain():
        alerts[alert.alert_id] = alert.to_row()
    return sorted(alerts.values(), key=lambda a: (a["position"], a["alert_id"]))
