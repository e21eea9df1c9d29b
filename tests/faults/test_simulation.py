"""Thousands of seeded schedules of faults through the real processor, planner and projection.

The default suite runs ``LEDGERLINE_SIM_SEEDS`` seeds (1,500) in under a minute;
``make test-faults`` runs 20,000. ``LEDGERLINE_SIM_SEED=<n>`` re-runs one failing schedule.
"""

from __future__ import annotations

import os
import time

from tests.faults.sim import RunReport, run

FIRST_SEED = 20261203


def test_no_seed_loses_doubles_or_unbalances_anything() -> None:
    only = os.environ.get("LEDGERLINE_SIM_SEED")
    seeds = (
        [int(only)]
        if only
        else range(FIRST_SEED, FIRST_SEED + int(os.environ.get("LEDGERLINE_SIM_SEEDS", "1500")))
    )
    started = time.monotonic()
    reports: list[RunReport] = [run(seed) for seed in seeds]
    totals = {
        key: sum(getattr(r, key) for r in reports)
        for key in (
            "commands",
            "batches",
            "crashes",
            "transactions",
            "aborts",
            "lost_acks",
            "duplicates",
            "projection_crashes",
        )
    }
    print(f"\nsimulated {len(reports)} seeds in {time.monotonic() - started:.1f} s: {totals}")
    # The faults were really exercised, not configured away.
    if not only:
        assert totals["crashes"] > 0 and totals["aborts"] > 0 and totals["lost_acks"] > 0
        assert totals["duplicates"] > 0 and totals["projection_crashes"] > 0
