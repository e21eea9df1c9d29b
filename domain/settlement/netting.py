"""Netting arithmetic: gross, bilateral and multilateral positions, kept incrementally.

Definition (CPMI conventions, integer minor units, one currency per book)
    o(i->j)  the sum of the accepted obligations from payer i to payee j
    G        gross value: the sum of all obligations
    b(i,j)   bilateral net: o(i->j) - o(j->i); i pays j when positive
    B        bilateral settlement value: the sum over unordered pairs of |b(i,j)|
    n_i      multilateral net position: received_i - sent_i (= the sum over j of b(j,i));
             a net credit when positive, a net debit when negative
    M        multilateral settlement value: the sum of max(0, -n_i) (the net debits)
    E_bil = 1 - B/G and E_mult = 1 - M/G, the netting efficiencies (undefined when G = 0)

Guarantees
    * ``add`` is O(1): it updates G, the pair, both positions, B and M from their previous
      values; nothing is ever recomputed from all obligations on the hot path.
    * ``remove_participant`` (an unwind) is O(d), d = the participant's counterparties, using a
      per-participant index of counterparties; the result equals netting the remaining
      obligations from scratch.
    * After every change the O(1) identities are checked with ``invariant``: C = M, where
      C = sum of max(0, n_i) is kept apart from M (so sum n_i = 0), and 0 <= M <= B <= G.
      ``verify`` recomputes everything from the pair table (O(pairs)) and checks the same
      identities plus n_i = received_i - sent_i = sum_j b(j,i) for every participant; it runs
      at cut-off, unwind and snapshot restore.

Constraints
    Participants are numbered densely in order of first appearance; pairs are keyed by one int,
    ``payer_index << 32 | payee_index``, to keep a million-pair book small.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

from domain.invariant import invariant

_SHIFT = 32
_MASK = (1 << _SHIFT) - 1
EFFICIENCY_PLACES = 6


@dataclass(frozen=True, slots=True)
class Totals:
    """G, B and M of one book, in minor units."""

    gross: int
    bilateral: int
    multilateral: int

    def to_payload(self) -> dict[str, int]:
        return {"gross": self.gross, "bilateral": self.bilateral, "multilateral": self.multilateral}


def efficiency(net: int, gross: int) -> Fraction | None:
    """1 - net/gross as an exact fraction; ``None`` when nothing was netted (gross = 0)."""
    if gross == 0:
        return None
    return 1 - Fraction(net, gross)


def efficiency_text(value: Fraction | None, places: int = EFFICIENCY_PLACES) -> str | None:
    """The efficiency as a decimal string, rounded half-even to ``places`` digits."""
    if value is None:
        return None
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(quantum, rounding=ROUND_HALF_EVEN))


def fraction_text(value: Fraction | None) -> str | None:
    return None if value is None else f"{value.numerator}/{value.denominator}"


class NettingBook:
    """The netting state of one currency in one cycle."""

    __slots__ = (
        "_adjacent",
        "_credit_total",
        "_gross_pairs",
        "_index",
        "_received",
        "_sent",
        "bilateral_total",
        "count",
        "debit_total",
        "gross_total",
        "ids",
    )

    def __init__(self) -> None:
        self._index: dict[int, int] = {}
        self.ids: list[int] = []
        self._sent: list[int] = []
        self._received: list[int] = []
        self._adjacent: list[list[int]] = []
        self._gross_pairs: dict[int, int] = {}
        self.gross_total = 0
        self.bilateral_total = 0
        self.debit_total = 0  # M
        self._credit_total = 0  # C, kept apart from M so C == M checks sum(n) == 0
        self.count = 0

    # ------------------------------------------------------------------ reading

    def __contains__(self, participant_id: int) -> bool:
        i = self._index.get(participant_id)
        return i is not None and (self._sent[i] > 0 or self._received[i] > 0)

    def position(self, participant_id: int) -> int:
        i = self._index.get(participant_id)
        return 0 if i is None else self._received[i] - self._sent[i]

    def sent(self, participant_id: int) -> int:
        i = self._index.get(participant_id)
        return 0 if i is None else self._sent[i]

    def received(self, participant_id: int) -> int:
        i = self._index.get(participant_id)
        return 0 if i is None else self._received[i]

    def gross(self, payer_id: int, payee_id: int) -> int:
        s, r = self._index.get(payer_id), self._index.get(payee_id)
        if s is None or r is None:
            return 0
        return self._gross_pairs.get(s << _SHIFT | r, 0)

    def bilateral(self, i_id: int, j_id: int) -> int:
        """b(i,j) = o(i->j) - o(j->i)."""
        return self.gross(i_id, j_id) - self.gross(j_id, i_id)

    def totals(self) -> Totals:
        return Totals(self.gross_total, self.bilateral_total, self.debit_total)

    def positions(self) -> dict[int, int]:
        """n_i of every participant that sent or received anything, by participant id."""
        return {
            pid: self._received[i] - self._sent[i]
            for pid, i in sorted(self._index.items())
            if self._sent[i] or self._received[i]
        }

    def participants(self) -> list[int]:
        return sorted(pid for pid in self._index if pid in self)

    def counterparties(self, participant_id: int) -> list[int]:
        """Every participant with an obligation to or from ``participant_id``, by id."""
        i = self._index.get(participant_id)
        if i is None:
            return []
        found = {
            self.ids[j]
            for j in self._adjacent[i]
            if (i << _SHIFT | j) in self._gross_pairs or (j << _SHIFT | i) in self._gross_pairs
        }
        return sorted(found)

    def bilateral_nets(self) -> Iterator[tuple[int, int, int]]:
        """(i, j, b(i,j)) for every pair with i < j (by id) that has obligations."""
        seen: set[int] = set()
        for key in self._gross_pairs:
            s, r = key >> _SHIFT, key & _MASK
            lo, hi = (s, r) if s < r else (r, s)
            pair = lo << _SHIFT | hi
            if pair in seen:
                continue
            seen.add(pair)
            i_id, j_id = self.ids[lo], self.ids[hi]
            if i_id > j_id:
                lo, hi, i_id, j_id = hi, lo, j_id, i_id
            net = self._gross_pairs.get(lo << _SHIFT | hi, 0) - self._gross_pairs.get(
                hi << _SHIFT | lo, 0
            )
            yield i_id, j_id, net

    def gross_pairs(self) -> Iterator[tuple[int, int, int]]:
        """(payer, payee, o(payer->payee)) in insertion order."""
        ids = self.ids
        for key, amount in self._gross_pairs.items():
            yield ids[key >> _SHIFT], ids[key & _MASK], amount

    def approx_bytes(self) -> int:
        return 240 * len(self.ids) + 130 * len(self._gross_pairs) + 200

    # ------------------------------------------------------------------ changing

    def _slot(self, participant_id: int) -> int:
        i = self._index.get(participant_id)
        if i is None:
            i = len(self.ids)
            self._index[participant_id] = i
            self.ids.append(participant_id)
            self._sent.append(0)
            self._received.append(0)
            self._adjacent.append([])
        return i

    def _move_position(self, i: int, delta_sent: int, delta_received: int) -> None:
        before = self._received[i] - self._sent[i]
        self._sent[i] += delta_sent
        self._received[i] += delta_received
        after = self._received[i] - self._sent[i]
        self.debit_total += max(0, -after) - max(0, -before)
        self._credit_total += max(0, after) - max(0, before)

    def add(self, payer_id: int, payee_id: int, amount: int) -> None:
        """Net one obligation in: O(1). Written out flat: it runs once per obligation."""
        index = self._index
        s = index.get(payer_id)
        if s is None:
            s = self._slot(payer_id)
        r = index.get(payee_id)
        if r is None:
            r = self._slot(payee_id)
        forward, backward = s << _SHIFT | r, r << _SHIFT | s
        pairs = self._gross_pairs
        o_sr = pairs.get(forward)
        o_rs = pairs.get(backward, 0)
        if o_sr is None:
            o_sr = 0
            if backward not in pairs:
                self._adjacent[s].append(r)
                self._adjacent[r].append(s)
        pairs[forward] = o_sr + amount
        self.bilateral_total += abs(o_sr + amount - o_rs) - abs(o_sr - o_rs)
        self.gross_total += amount
        self.count += 1
        sent, received = self._sent, self._received
        was_s = received[s] - sent[s]
        was_r = received[r] - sent[r]
        sent[s] += amount
        received[r] += amount
        now_s, now_r = was_s - amount, was_r + amount
        # M and C move by the change of max(0, -n) and max(0, n) of both parties.
        self.debit_total += (
            (-now_s if now_s < 0 else 0)
            - (-was_s if was_s < 0 else 0)
            + (-now_r if now_r < 0 else 0)
            - (-was_r if was_r < 0 else 0)
        )
        self._credit_total += (
            (now_s if now_s > 0 else 0)
            - (was_s if was_s > 0 else 0)
            + (now_r if now_r > 0 else 0)
            - (was_r if was_r > 0 else 0)
        )
        if self._credit_total != self.debit_total or not (
            0 <= self.debit_total <= self.bilateral_total <= self.gross_total
        ):
            self._check_totals()  # raises, naming the broken identity

    def unwind_effect(self, participant_id: int) -> dict[int, int]:
        """How each counterparty's position would change if ``participant_id`` were removed.

        n_j' = n_j - b(x, j): every obligation to or from x disappears. O(d); changes nothing.
        """
        i = self._index.get(participant_id)
        if i is None:
            return {}
        pairs = self._gross_pairs
        effect: dict[int, int] = {}
        for j in self._adjacent[i]:
            o_xj = pairs.get(i << _SHIFT | j, 0)
            o_jx = pairs.get(j << _SHIFT | i, 0)
            if o_xj or o_jx:
                effect[self.ids[j]] = -(o_xj - o_jx)
        return effect

    def remove_participant(self, participant_id: int) -> dict[int, tuple[int, int]]:
        """Delete every obligation to or from ``participant_id``: O(d).

        Returns each counterparty's position before and after, by id.
        """
        i = self._index.get(participant_id)
        if i is None:
            return {}
        pairs = self._gross_pairs
        changed: dict[int, tuple[int, int]] = {}
        for j in self._adjacent[i]:
            o_xj = pairs.pop(i << _SHIFT | j, 0)
            o_jx = pairs.pop(j << _SHIFT | i, 0)
            if not (o_xj or o_jx):
                continue  # a stale adjacency entry, or a pair already removed
            before = self._received[j] - self._sent[j]
            self.bilateral_total -= abs(o_xj - o_jx)
            self.gross_total -= o_xj + o_jx
            self._move_position(j, -o_jx, -o_xj)
            self._move_position(i, -o_xj, -o_jx)
            changed[self.ids[j]] = (before, self._received[j] - self._sent[j])
        self._adjacent[i] = []
        invariant(
            self._sent[i] == 0 and self._received[i] == 0,
            f"participant {participant_id} still has obligations after its removal",
        )
        self._check_totals()
        return dict(sorted(changed.items()))

    # ------------------------------------------------------------------ checks

    def _check_totals(self) -> None:
        invariant(
            self._credit_total == self.debit_total,
            f"net credits {self._credit_total} != net debits {self.debit_total}: sum n_i != 0",
        )
        invariant(
            0 <= self.debit_total <= self.bilateral_total <= self.gross_total,
            f"0 <= M <= B <= G broken: M={self.debit_total} B={self.bilateral_total} "
            f"G={self.gross_total}",
        )

    def verify(self) -> None:
        """Recompute every total and position from the pair table; O(pairs + participants)."""
        n = len(self.ids)
        sent = [0] * n
        received = [0] * n
        bilateral_in = [0] * n  # sum over j of b(j, i)
        gross = 0
        bilateral = 0
        pairs = self._gross_pairs
        for key, amount in pairs.items():
            s, r = key >> _SHIFT, key & _MASK
            invariant(amount > 0 and s != r, "pairs hold positive amounts between two parties")
            sent[s] += amount
            received[r] += amount
            gross += amount
            back = pairs.get(r << _SHIFT | s, 0)
            if s < r or back == 0:  # each unordered pair once
                net = amount - back  # b(s, r) = -b(r, s)
                bilateral += abs(net)
                bilateral_in[r] += net
                bilateral_in[s] -= net
        debit = sum(max(0, s - r) for s, r in zip(sent, received, strict=True))
        credit = sum(max(0, r - s) for s, r in zip(sent, received, strict=True))
        invariant(sent == self._sent and received == self._received, "per-participant totals")
        invariant(gross == self.gross_total, f"G {self.gross_total} != recomputed {gross}")
        invariant(bilateral == self.bilateral_total, f"B {self.bilateral_total} != {bilateral}")
        invariant(debit == self.debit_total == credit, f"M {self.debit_total} != {debit}")
        for i in range(n):
            invariant(
                received[i] - sent[i] == bilateral_in[i],
                f"n_{self.ids[i]} != sum_j b(j, {self.ids[i]})",
            )
        self._check_totals()

    # ------------------------------------------------------------------ snapshots

    def to_snapshot(self) -> dict[str, Any]:
        flat: list[int] = []
        for key, amount in self._gross_pairs.items():
            flat.extend((key >> _SHIFT, key & _MASK, amount))
        return {
            "ids": list(self.ids),
            "adjacent": [list(a) for a in self._adjacent],
            "pairs": flat,
            "count": self.count,
        }

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> NettingBook:
        book = cls()
        book.ids = [int(x) for x in state["ids"]]
        book._index = {pid: i for i, pid in enumerate(book.ids)}
        n = len(book.ids)
        book._sent = [0] * n
        book._received = [0] * n
        book._adjacent = [list(a) for a in state["adjacent"]]
        flat = state["pairs"]
        pairs = book._gross_pairs
        for k in range(0, len(flat), 3):
            s, r, amount = flat[k], flat[k + 1], flat[k + 2]
            pairs[s << _SHIFT | r] = amount
            book._sent[s] += amount
            book._received[r] += amount
            book.gross_total += amount
        for key, amount in pairs.items():
            s, r = key >> _SHIFT, key & _MASK
            back = pairs.get(r << _SHIFT | s, 0)
            if s < r or back == 0:
                book.bilateral_total += abs(amount - back)
        for s, r in zip(book._sent, book._received, strict=True):
            book.debit_total += max(0, s - r)
            book._credit_total += max(0, r - s)
        book.count = int(state["count"])
        book.verify()
        return book


@dataclass(frozen=True, slots=True)
class UnwindPlan:
    """What removing one participant from a book does, computed without changing it."""

    participant_id: int
    removed_gross: int
    changes: tuple[tuple[int, int, int], ...]  # (participant, n before, n after), by id
    totals: Totals  # after the removal
    positions: dict[int, int]  # every remaining participant's n after, by id

    def debit_increases(self) -> list[tuple[int, int, int]]:
        """(participant, debit before, debit after) for every survivor whose debit grew."""
        return [
            (pid, max(0, -before), max(0, -after))
            for pid, before, after in self.changes
            if max(0, -after) > max(0, -before)
        ]


def plan_unwind(book: NettingBook, participant_id: int) -> UnwindPlan:
    """The effect of an unwind of ``participant_id``: O(d + P), d its counterparties."""
    effect = book.unwind_effect(participant_id)
    x_before = book.position(participant_id)
    gone = book.sent(participant_id) + book.received(participant_id)
    debit = book.debit_total - max(0, -x_before)
    bilateral = book.bilateral_total
    changes: list[tuple[int, int, int]] = []
    for pid in sorted(effect):
        before = book.position(pid)
        after = before + effect[pid]
        bilateral -= abs(book.bilateral(participant_id, pid))
        debit += max(0, -after) - max(0, -before)
        if after != before:
            changes.append((pid, before, after))
    positions = book.positions()
    positions.pop(participant_id, None)
    for pid, delta in effect.items():
        positions[pid] = positions.get(pid, 0) + delta
    return UnwindPlan(
        participant_id,
        gone,
        tuple(changes),
        Totals(book.gross_total - gone, bilateral, debit),
        positions,
    )


def unwind_stress(book: NettingBook) -> list[UnwindPlan]:
    """Lamfalussy IV: what an unwind of each participant would do to every other one.

    One plan per participant with obligations, by id; O(sum of d + P^2) in all.
    """
    return [plan_unwind(book, pid) for pid in book.participants()]


def net_from_scratch(obligations: Iterable[tuple[int, int, int]]) -> NettingBook:
    """Net (payer, payee, amount) triples into a fresh book: the reference for every check."""
    book = NettingBook()
    for payer, payee, amount in obligations:
        book.add(payer, payee, amount)
    return book


def plain_netting(
    obligations: Iterable[tuple[int, int, int]],
) -> tuple[int, int, int, dict[int, int]]:
    """The baseline: G, B, M and positions with plain dicts in one pass, then one more over pairs.

    Deliberately simple (what a clearing house would write first); used as the benchmark's
    from-scratch baseline and as an independent oracle in tests.
    """
    gross = 0
    pair: dict[tuple[int, int], int] = {}
    position: dict[int, int] = {}
    for payer, payee, amount in obligations:
        gross += amount
        key = (payer, payee)
        pair[key] = pair.get(key, 0) + amount
        position[payer] = position.get(payer, 0) - amount
        position[payee] = position.get(payee, 0) + amount
    bilateral = 0
    for (i, j), amount in pair.items():
        back = pair.get((j, i), 0)
        if i < j or back == 0:
            bilateral += abs(amount - back)
    multilateral = sum(-n for n in position.values() if n < 0)
    return gross, bilateral, multilateral, position
