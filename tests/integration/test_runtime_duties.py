"""In Kafka mode no API process projects, yet exactly one sweeps expiries and signs checkpoints."""

from __future__ import annotations

import time

from ledgerline.runtime import build_runtime


def test_one_api_process_leads_the_scheduled_duties_and_another_takes_over(db_url: str) -> None:
    first = build_runtime(
        db_url, in_process_projection=False, sweep_interval_s=None, checkpoint_interval_s=None
    )
    second = build_runtime(
        db_url, in_process_projection=False, sweep_interval_s=None, checkpoint_interval_s=None
    )
    try:
        assert first.projector is None and second.projector is None
        assert first._leads_duties() is True
        assert second._leads_duties() is False
        assert first._leads_duties() is True  # it keeps the lead
        first.close()
        deadline = time.monotonic() + 10
        while not second._leads_duties():
            assert time.monotonic() < deadline, "the second process never took over"
            time.sleep(0.05)
    finally:
        second.close()
