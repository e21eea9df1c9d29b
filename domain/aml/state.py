"""Windowed per-account state shared by the detectors.

Definition
    An :class:`AccountState` holds, for one account, the transactions it received (``ins``)
    and sent (``outs``) within the engine's horizon, sorted by ``(ts_ns, tx_id)``; its
    counterparties with the first and last time each relationship was seen; and a snapshot of
    its degree and last activity taken when the first transaction of a new business time
    reached it ("strictly earlier" values, the same whatever the order of transactions that
    share one timestamp).

Guarantees
    * Lists stay sorted (a late transaction is inserted in place) and are trimmed to the
      horizon behind the account's newest transaction, so memory is bounded by the traffic
      of one horizon.
    * Window queries are binary searches: ``since(lst, lo)`` is the index of the first entry
      at or after ``lo``; ``upto(lst, hi)`` the index after the last entry at or before ``hi``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from functools import partial
from typing import Any

from domain.aml.model import Txn

_AFTER_ALL = "\U0010ffff"
_as_txn = partial(tuple.__new__, Txn)  # a plain tuple's fields as a Txn, without a Python frame
CP_TRIM_EVERY_NS = 7 * 86_400 * 1_000_000_000  # relationships are trimmed once a week


def since(lst: list[Txn], lo_ns: int) -> int:
    """Index of the first transaction at or after ``lo_ns``."""
    return bisect_left(lst, (lo_ns,))


def upto(lst: list[Txn], hi_ns: int) -> int:
    """Index after the last transaction at or before ``hi_ns``."""
    return bisect_right(lst, (hi_ns, _AFTER_ALL))


def add_sorted(lst: list[Txn], txn: Txn) -> None:
    """Keep ``lst`` sorted by business time (ties stay in arrival order: every query is a
    time range, and every detector treats the transactions of one timestamp as a set)."""
    if not lst or lst[-1][0] <= txn[0]:
        lst.append(txn)
    else:
        insort(lst, txn, key=_ts_of)


def _ts_of(txn: Txn) -> int:
    return txn[0]


class AccountState:
    __slots__ = (
        "cp_in",
        "cp_out",
        "cp_trimmed_ts",
        "day",
        "deg_in0",
        "deg_out0",
        "detector",
        "group_ts",
        "ins",
        "last_ts",
        "outs",
        "prev_last",
    )

    def __init__(self) -> None:
        self.ins: list[Txn] = []
        self.outs: list[Txn] = []
        # counterparty -> [first_ts, last_ts] of the relationship (within the horizon)
        self.cp_in: dict[str, list[int]] = {}
        self.cp_out: dict[str, list[int]] = {}
        self.last_ts = -1  # newest business time seen on this account
        self.group_ts = -1  # the business time the snapshot below belongs to
        self.deg_in0 = 0  # distinct senders before group_ts
        self.deg_out0 = 0  # distinct receivers before group_ts
        self.prev_last = -1  # newest activity before group_ts (-1: none seen)
        self.cp_trimmed_ts = -1
        self.day = -1  # the UTC day of business time the account was last touched on
        self.detector: dict[str, Any] = {}  # per-rule detector state, by rule id

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled with the window's transactions as plain tuples (pickle then stays in C;
        as named tuples it would call back into Python for each), read back as ``Txn``."""
        return _restore, (
            list(map(tuple, self.ins)), list(map(tuple, self.outs)), self.cp_in, self.cp_out,
            self.last_ts, self.group_ts, self.deg_in0, self.deg_out0, self.prev_last,
            self.cp_trimmed_ts, self.day, self.detector,
        )  # fmt: skip

    def touch(self, ts: int) -> None:
        """Take the strictly-earlier snapshot when a new business time reaches the account."""
        if ts > self.group_ts:
            self.group_ts = ts
            self.deg_in0 = len(self.cp_in)
            self.deg_out0 = len(self.cp_out)
            self.prev_last = self.last_ts

    def degree0(self) -> int:
        """Distinct counterparties (the larger side) before the current business time."""
        return self.deg_in0 if self.deg_in0 > self.deg_out0 else self.deg_out0

    def trim(self, horizon_lo: int, now_ns: int) -> None:
        """Forget what lies before ``horizon_lo`` (called at most once a day)."""
        ins, outs = self.ins, self.outs
        if ins and ins[0][0] < horizon_lo:
            del ins[: since(ins, horizon_lo)]
        if outs and outs[0][0] < horizon_lo:
            del outs[: since(outs, horizon_lo)]
        if now_ns - self.cp_trimmed_ts < CP_TRIM_EVERY_NS:
            return
        self.cp_trimmed_ts = now_ns
        for cps in (self.cp_in, self.cp_out):
            stale = [cp for cp, (_, last) in cps.items() if last < horizon_lo]
            for cp in stale:
                del cps[cp]


def _restore(
    ins: list[tuple[Any, ...]],
    outs: list[tuple[Any, ...]],
    cp_in: dict[str, list[int]],
    cp_out: dict[str, list[int]],
    *numbers_and_detector: Any,
) -> AccountState:
    state = AccountState.__new__(AccountState)
    state.ins, state.outs = list(map(_as_txn, ins)), list(map(_as_txn, outs))
    state.cp_in, state.cp_out = cp_in, cp_out
    (
        state.last_ts, state.group_ts, state.deg_in0, state.deg_out0, state.prev_last,
        state.cp_trimmed_ts, state.day, state.detector,
    ) = numbers_and_detector  # fmt: skip
    return state
