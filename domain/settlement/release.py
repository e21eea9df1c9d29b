"""Queued obligations and the search for the ones that can be released.

Definition
    A queued obligation waits because accepting it alone would take its payer below its lower
    bound (DNS: -cap, the net debit cap; RTGS: the minimum position) or its payee above its
    upper bound (RTGS: the maximum position). A set of queued obligations can be *released*
    when, after applying all of them at once, every participant is within its bounds.

Bounds
    ``low(p)`` and ``high(p)`` give participant p's bounds (``None``: unbounded). A participant
    already outside a bound (a cap lowered mid-cycle) is held to "no worse than now": the
    effective bound is min(low, position) and max(high, position), so releasing nothing is
    always allowed and the search always ends.

The release search (``search``), deterministic, for one currency
    Step A, offsetting (multilateral, which includes bilateral offsets): start from the set
    of all queued obligations and compute every participant's position as if all of them were
    released. While some participant is outside its bounds, take the first such participant
    in a FIFO work list (seeded in order of first appearance in the queue) and drop from the
    set its most recently queued obligation that pushes it out: its latest outgoing one when
    below ``low``, its latest incoming one when above ``high``. Dropping one changes the other
    party's position, which may put that party on the work list. Each obligation is dropped at
    most once, and each participant's outgoing and incoming lists are consumed from the tail,
    so step A is O(Q + P) for Q queued obligations among P participants.
    With lower bounds only (DNS caps; RTGS without maxima) the feasible sets are closed under
    union among sets that keep each payer's queue order, so step A returns the largest
    feasible set that releases each payer's obligations in arrival order; in general finding
    the largest releasable set is a subset-sum problem (NP-hard), and step A is a greedy that
    favours earlier obligations.
    Step B, filling: the dropped obligations are retried in arrival order, each released if it
    fits alone given everything released so far; passes repeat while a pass releases
    something. Each pass is O(Q); every pass but the last releases at least one obligation,
    so step B is O(Q * (1 + r)) for r obligations it releases, O(Q^2) in the worst case and
    O(Q) when nothing fits.
    The result (A and B together, in arrival order) keeps every participant within bounds.

Incremental release (``cascade``)
    When a participant's position improves (a credit arrives), its own queued outgoing
    obligations are tried in arrival order and each that fits is released; each release
    credits its payee, whose queue is tried next (a FIFO work list). A participant whose
    smallest queued amount exceeds its headroom is skipped in O(1). This is the DTC-style
    recycling of DNS cycles: queued obligations are accepted automatically, in arrival order,
    as soon as offsetting credits make room.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Bound = Callable[[int], int | None]


@dataclass(frozen=True, slots=True)
class Queued:
    """One queued obligation; ``seq`` is its arrival number in the cycle."""

    obligation_id: int
    payer_id: int
    payee_id: int
    amount: int
    seq: int

    def to_row(self) -> list[int]:
        return [self.obligation_id, self.payer_id, self.payee_id, self.amount, self.seq]

    @classmethod
    def from_row(cls, row: list[Any]) -> Queued:
        return cls(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


class ObligationQueue:
    """The queued obligations of one currency, in arrival order, indexed by payer and payee."""

    __slots__ = ("_by_id", "_incoming", "_min_out", "_outgoing")

    def __init__(self) -> None:
        self._by_id: dict[int, Queued] = {}  # insertion order = arrival order
        self._outgoing: dict[int, dict[int, Queued]] = {}
        self._incoming: dict[int, dict[int, Queued]] = {}
        self._min_out: dict[int, int] = {}  # payer -> smallest queued amount (lazily rebuilt)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Queued]:
        return iter(self._by_id.values())

    def __contains__(self, obligation_id: int) -> bool:
        return obligation_id in self._by_id

    def get(self, obligation_id: int) -> Queued | None:
        return self._by_id.get(obligation_id)

    def push(self, item: Queued) -> None:
        self._by_id[item.obligation_id] = item
        self._outgoing.setdefault(item.payer_id, {})[item.obligation_id] = item
        self._incoming.setdefault(item.payee_id, {})[item.obligation_id] = item
        smallest = self._min_out.get(item.payer_id)
        if smallest is not None and item.amount < smallest:
            self._min_out[item.payer_id] = item.amount

    def pop(self, obligation_id: int) -> Queued:
        item = self._by_id.pop(obligation_id)
        out = self._outgoing[item.payer_id]
        del out[obligation_id]
        if not out:
            del self._outgoing[item.payer_id]
        if self._min_out.get(item.payer_id) == item.amount:
            del self._min_out[item.payer_id]  # rebuilt on the next min_outgoing()
        inc = self._incoming[item.payee_id]
        del inc[obligation_id]
        if not inc:
            del self._incoming[item.payee_id]
        return item

    def has_outgoing(self, participant_id: int) -> bool:
        return participant_id in self._outgoing

    def has_incoming(self, participant_id: int) -> bool:
        return participant_id in self._incoming

    def min_outgoing(self, participant_id: int) -> int | None:
        """The smallest amount the participant has queued to pay: O(1) amortised."""
        out = self._outgoing.get(participant_id)
        if not out:
            return None
        smallest = self._min_out.get(participant_id)
        if smallest is None:
            smallest = min(q.amount for q in out.values())
            self._min_out[participant_id] = smallest
        return smallest

    def outgoing(self, participant_id: int) -> list[Queued]:
        return list(self._outgoing.get(participant_id, {}).values())

    def involving(self, participant_id: int) -> list[Queued]:
        """Every queued obligation to or from the participant, in arrival order."""
        found = {
            **self._outgoing.get(participant_id, {}),
            **self._incoming.get(participant_id, {}),
        }
        return sorted(found.values(), key=lambda q: q.seq)

    def approx_bytes(self) -> int:
        return 400 * len(self._by_id)


def _effective(bound: int | None, position: int, lower: bool) -> int | None:
    if bound is None:
        return None
    return min(bound, position) if lower else max(bound, position)


class _Search:
    """The state of one release search: positions as if every kept obligation were released."""

    def __init__(
        self, items: list[Queued], position: Callable[[int], int], low: Bound, high: Bound
    ) -> None:
        self.items = items
        self.pos: dict[int, int] = {}
        self.lo: dict[int, int | None] = {}
        self.hi: dict[int, int | None] = {}
        self.outgoing: dict[int, list[int]] = {}
        self.incoming: dict[int, list[int]] = {}
        self.order: list[int] = []
        for k, q in enumerate(items):
            for pid in (q.payer_id, q.payee_id):
                if pid not in self.pos:
                    now = position(pid)
                    self.pos[pid] = now
                    self.lo[pid] = _effective(low(pid), now, lower=True)
                    self.hi[pid] = _effective(high(pid), now, lower=False)
                    self.order.append(pid)
            self.pos[q.payer_id] -= q.amount
            self.pos[q.payee_id] += q.amount
            self.outgoing.setdefault(q.payer_id, []).append(k)
            self.incoming.setdefault(q.payee_id, []).append(k)
        self.kept = [True] * len(items)

    def outside(self, pid: int) -> int:
        """-1 below the lower bound, +1 above the upper one, 0 within."""
        low_p, high_p = self.lo[pid], self.hi[pid]
        if low_p is not None and self.pos[pid] < low_p:
            return -1
        if high_p is not None and self.pos[pid] > high_p:
            return 1
        return 0

    def _move(self, k: int, sign: int) -> None:
        q = self.items[k]
        self.pos[q.payer_id] -= sign * q.amount
        self.pos[q.payee_id] += sign * q.amount
        self.kept[k] = sign > 0

    def offset(self) -> None:
        """Step A: drop, from the first participant out of bounds, its latest offending item."""
        work = deque(pid for pid in self.order if self.outside(pid))
        waiting = set(work)
        while work:
            pid = work.popleft()
            waiting.discard(pid)
            while (side := self.outside(pid)) != 0:
                stack = self.outgoing[pid] if side < 0 else self.incoming.get(pid, [])
                while stack and not self.kept[stack[-1]]:
                    stack.pop()
                if not stack:
                    break  # cannot happen with effective bounds; kept as a guard
                k = stack.pop()
                self._move(k, -1)
                q = self.items[k]
                other = q.payee_id if side < 0 else q.payer_id
                if other not in waiting and self.outside(other):
                    waiting.add(other)
                    work.append(other)

    def fill(self) -> None:
        """Step B: retry what was dropped, in arrival order, while a pass releases something."""
        dropped = [k for k in range(len(self.items)) if not self.kept[k]]
        progress = True
        while dropped and progress:
            progress = False
            still: list[int] = []
            for k in dropped:
                q = self.items[k]
                low_s, high_r = self.lo[q.payer_id], self.hi[q.payee_id]
                if (low_s is None or self.pos[q.payer_id] - q.amount >= low_s) and (
                    high_r is None or self.pos[q.payee_id] + q.amount <= high_r
                ):
                    self._move(k, 1)
                    progress = True
                else:
                    still.append(k)
            dropped = still


def search(
    queued: Iterable[Queued],
    position: Callable[[int], int],
    low: Bound,
    high: Bound,
) -> list[Queued]:
    """The obligations to release together (steps A and B above), in arrival order."""
    items = list(queued)
    if not items:
        return []
    state = _Search(items, position, low, high)
    state.offset()
    state.fill()
    return [q for k, q in enumerate(items) if state.kept[k]]


def fits(
    item: Queued,
    position: Callable[[int], int],
    low: Bound,
    high: Bound,
) -> bool:
    """Would this one obligation, alone, keep both parties within their bounds?"""
    payer_now, payee_now = position(item.payer_id), position(item.payee_id)
    low_s = _effective(low(item.payer_id), payer_now, lower=True)
    high_r = _effective(high(item.payee_id), payee_now, lower=False)
    return (low_s is None or payer_now - item.amount >= low_s) and (
        high_r is None or payee_now + item.amount <= high_r
    )


def cascade(
    queue: ObligationQueue,
    credited: Iterable[int],
    position: Callable[[int], int],
    low: Bound,
    high: Bound,
) -> list[Queued]:
    """Release, from the credited participants outwards, each queued obligation that fits.

    Works on a private view: ``queue`` is not changed (the caller's event does that) and
    ``position`` is read once per participant, then followed through the releases.
    """
    moved: dict[int, int] = {}
    released: list[Queued] = []
    taken: set[int] = set()

    def pos(pid: int) -> int:
        return position(pid) + moved.get(pid, 0)

    work = deque(dict.fromkeys(credited))
    waiting = set(work)
    while work:
        pid = work.popleft()
        waiting.discard(pid)
        smallest = queue.min_outgoing(pid)
        if smallest is None:
            continue
        bound = low(pid)
        now = pos(pid)
        if bound is not None and now - smallest < min(bound, now):
            continue  # headroom below the smallest queued amount: nothing of pid's fits
        for q in queue.outgoing(pid):
            if q.obligation_id not in taken and fits(q, pos, low, high):
                taken.add(q.obligation_id)
                released.append(q)
                moved[q.payer_id] = moved.get(q.payer_id, 0) - q.amount
                moved[q.payee_id] = moved.get(q.payee_id, 0) + q.amount
                if q.payee_id not in waiting:
                    waiting.add(q.payee_id)
                    work.append(q.payee_id)
    return released
