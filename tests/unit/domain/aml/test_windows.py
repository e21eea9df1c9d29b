"""Which account windows a checkpoint must write again: every one read, added or forgotten
since the last, and "all of them" once that is more than half."""

from __future__ import annotations

import pickle

from domain.aml.state import AccountState
from domain.aml.windows import Windows
from tests.unit.domain.aml.builders import ColdBytes


def _windows(accounts: int, hot_limit: int = 2) -> Windows:
    windows = Windows(ColdBytes(), hot_limit)
    for i in range(accounts):
        windows[f"a{i}"] = AccountState()
        windows.settle()
    return windows


def test_changes_are_recorded_from_the_first_checkpoint_on() -> None:
    windows = _windows(200)
    assert windows.pending_changes() == 200  # nothing recorded yet: every window
    assert windows.take_changes() is None
    assert windows.take_changes() == set() and windows.pending_changes() == 0
    state = windows["a7"]  # read back from the cold store
    state.last_ts = 5
    windows["b1"] = AccountState()
    windows.forget(["a9", "a199"])
    windows.get("nobody")
    windows.settle()
    assert windows.take_changes() == {"a7", "b1", "a9", "a199", "nobody"}
    saved = dict(windows.saved_of(["a7", "b1", "a9", "nobody", "a8"]))
    assert set(saved) == {"a7", "b1", "a8"}  # the forgotten and the unknown have none
    assert pickle.loads(saved["a7"]).last_ts == 5


def test_past_half_the_accounts_changed_the_record_gives_way_to_everything() -> None:
    windows = _windows(200)
    windows.take_changes()
    for i in range(100):
        windows.get(f"a{i}")
        windows.settle()
    assert windows.pending_changes() == 100  # half: still recorded
    windows.get("a150")
    windows.settle()
    assert windows.pending_changes() == 200 and windows.take_changes() is None
    assert windows.take_changes() == set()  # recorded again from then on
