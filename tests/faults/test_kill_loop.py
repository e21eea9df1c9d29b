"""SIGKILL under load, on a seeded schedule: nothing acknowledged is lost or doubled.

Clients post transfers over HTTP and retry every unanswered one with the same id. Meanwhile a
seeded schedule SIGKILLs ``serve`` (one and two HTTP workers) and, in Kafka mode, the relay
and the Faust workers, at random moments, and restarts them. At the end every acknowledged
transfer exists exactly once, balances equal the clients' own sums, ``verify`` passes and
``replay --check`` is clean, in both read-path modes.

The default suite runs one short schedule per mode; ``make test-faults``
(``LEDGERLINE_FAULTS_LONG=1``) runs several seeds with many more kills. A failing schedule
prints its seed; ``LEDGERLINE_FAULT_SEED=<seed>`` runs exactly that one again.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.faults.harness import Clients, Cluster, check_exactly_once, cli
from tests.http_server import free_port

LONG = os.environ.get("LEDGERLINE_FAULTS_LONG") == "1"
FIXED_SEED = os.environ.get("LEDGERLINE_FAULT_SEED")


def _seeds(short: list[int]) -> list[int]:
    if FIXED_SEED:
        return [int(FIXED_SEED)]
    return [*short, *range(7000, 7003)] if LONG else short


def run_schedule(cluster: Cluster, seed: int, kills: int, victims: list[str]) -> dict[str, int]:
    rng = random.Random(seed)
    for name in ("serve", *(v for v in ("relay", "worker") if v in victims)):
        cluster.start(name)
    clients = Clients(cluster.url, cluster.token(), rng)
    clients.open_accounts()
    clients.start()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.3, 1.5))
            victim = rng.choice(victims)
            cluster.kill(victim)
            time.sleep(rng.uniform(0.0, 0.5))
            cluster.start(victim)
        time.sleep(rng.uniform(0.3, 1.0))
    finally:
        clients.finish()
    cluster.wait(cluster.caught_up, 120, "the read model to catch up")
    result = check_exactly_once(cluster.db_url, clients)
    verified = cli(cluster, "verify")
    assert verified.returncode == 0, verified.stderr
    checked = cli(cluster, "replay", "--check")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    result.update(
        seed=seed,
        kills=sum(cluster.kills.values()),
        client_retries=clients.retries,
    )
    print(f"\nfault schedule {result}")
    return result


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("seed", _seeds([11]))
def test_killing_serve_in_process_mode_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path, seed: int, workers: int
) -> None:
    cluster = Cluster(db_url, tmp_path, free_port(), workers=workers)
    try:
        result = run_schedule(cluster, seed, kills=12 if LONG else 3, victims=["serve"])
    except AssertionError as exc:
        raise AssertionError(f"seed {seed} (LEDGERLINE_FAULT_SEED={seed}): {exc}") from exc
    finally:
        cluster.stop()
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["kills"] >= (12 if LONG else 3)


@pytest.mark.kafka
@pytest.mark.parametrize("seed", _seeds([23]))
def test_killing_serve_relay_and_workers_in_kafka_mode_loses_and_doubles_nothing(
    db_url: str, kafka_bootstrap: str, tmp_path: Path, seed: int
) -> None:
    cluster = Cluster(db_url, tmp_path, free_port(), bootstrap=kafka_bootstrap)
    try:
        result = run_schedule(
            cluster, seed, kills=15 if LONG else 4, victims=["serve", "relay", "worker"]
        )
    except AssertionError as exc:
        raise AssertionError(f"seed {seed} (LEDGERLINE_FAULT_SEED={seed}): {exc}") from exc
    finally:
        cluster.stop()
    assert result["lost"] == 0 and result["duplicated"] == 0
