"""Tracking positions moved for several projections at once: all of them, or none."""

from __future__ import annotations

import psycopg
import pytest

from ledgerline.runtime import migrate_all
from readmodels.tracking import TrackingConflict, advance_all, positions_for_update


def positions(url: str, names: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
        return positions_for_update(cur, names)


def test_every_projection_moves_together_or_none_does(db_url: str) -> None:
    migrate_all(db_url)
    with psycopg.connect(db_url) as conn:
        with conn.transaction(), conn.cursor() as cur:
            # First batch: no rows yet, so each is inserted at the new position.
            advance_all(cur, positions_for_update(cur, ["ledger", "aml"]), 10)
        assert positions(db_url, ["ledger", "aml", "trading"]) == {
            "ledger": 10,
            "aml": 10,
            "trading": 0,
        }

        # One of them is not where the caller thinks: nothing moves, not even the other.
        refused = pytest.raises(TrackingConflict, match="no longer at positions")
        with refused, conn.transaction(), conn.cursor() as cur:
            advance_all(cur, {"ledger": 10, "aml": 7}, 20)
        assert positions(db_url, ["ledger", "aml"]) == {"ledger": 10, "aml": 10}

        # A row inserted by someone else since refuses a "first batch" too.
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO readmodels.tracking (projection, source, position)"
                " VALUES ('trading', 'store', 5)"
            )
        with pytest.raises(TrackingConflict), conn.transaction(), conn.cursor() as cur:
            advance_all(cur, {"ledger": 10, "aml": 10, "trading": 0}, 20)
        assert positions(db_url, ["ledger", "aml", "trading"]) == {
            "ledger": 10,
            "aml": 10,
            "trading": 5,
        }

        with conn.transaction(), conn.cursor() as cur:
            advance_all(cur, positions_for_update(cur, ["ledger", "aml", "trading"]), 20)
        assert positions(db_url, ["ledger", "aml", "trading"]) == {
            "ledger": 20,
            "aml": 20,
            "trading": 20,
        }
