"""Follower runners (``serve``'s HTTP processes): they apply nothing, learn what the applying
runner applied and why it stopped, and elect one of themselves to lead the duties."""

from __future__ import annotations

import time
from collections.abc import Callable

from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from projections.ledger import LedgerProjection
from projections.runner import ProjectionRunner, ProjectionStopped
from tests.integration.ledger_fixtures import append_an_event_the_ledger_cannot_apply, run_history


def _tracking(db_url: str) -> int:
    with connect_owner(db_url) as conn:
        row = conn.execute(
            "SELECT coalesce(max(position), 0) FROM readmodels.tracking WHERE projection = 'ledger'"
        ).fetchone()
    return int(row[0]) if row else 0


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_followers_apply_nothing_and_learn_every_position_the_applier_reaches(
    db_url: str,
) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=3, transfers=5)
        followers = [
            ProjectionRunner(store.recorder, [LedgerProjection()], applies=False).start()
            for _ in range(2)
        ]
        try:
            head = store.recorder.head().position
            # Nobody applies yet: the followers wait, and the read models stay where they were.
            assert not followers[0].wait_for(head, timeout_s=0.5)
            assert _tracking(db_url) == 0
            # Exactly one of them leads the duties (and none of them the projections).
            _until(lambda: sum(f.is_leader for f in followers) == 1)

            applier = ProjectionRunner(store.recorder, [LedgerProjection()]).start()
            try:
                assert all(f.wait_for(head, timeout_s=10) for f in followers)
                run_history(store, seed=4, transfers=5)
                later = store.recorder.head().position
                assert all(f.wait_for(later, timeout_s=10) for f in followers)
                assert applier.is_leader and _tracking(db_url) == later
                assert sum(f.is_leader for f in followers) == 1
            finally:
                applier.stop()

            # The duties' leader stops: the other follower takes the duties over.
            leader = next(f for f in followers if f.is_leader)
            leader.stop()
            other = next(f for f in followers if f is not leader)
            _until(lambda: other.is_leader)
        finally:
            for f in followers:
                f.stop()


def test_a_follower_reports_the_appliers_stop_and_its_reason(db_url: str) -> None:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=9, transfers=3)
        good_head = append_an_event_the_ledger_cannot_apply(store)
        follower = ProjectionRunner(store.recorder, [LedgerProjection()], applies=False).start()
        applier = ProjectionRunner(store.recorder, [LedgerProjection()]).start()
        try:
            _until(lambda: follower.failure is not None)
            assert isinstance(follower.failure, ProjectionStopped)
            assert "NoSuchEvent" in str(follower.failure)
            assert follower.position == good_head
            assert not follower.wait_for(good_head + 1, timeout_s=5)
        finally:
            applier.stop()
            follower.stop()
