"""The AML graph's flows, aggregated incrementally: who paid whom, how often, how much, when.

Definition
    Nodes are accounts and counterparties (``CASH`` included); an edge is the flow from one
    node to another within one window (a UTC day of business time): the number of
    transactions, their sum in US cents, and the first and last business time.
    :class:`FlowDeltas` accumulates the changes of a batch of transactions; the read model
    adds them to its rows (counts and sums add, first takes the minimum, last the maximum),
    so applying each batch once, in any batching, gives the same rows.

Guarantees
    Deltas commute and associate: the rows after a stream do not depend on how it was cut
    into batches, nor on the order within a batch.
"""

from __future__ import annotations

from domain.aml.model import Txn

WINDOW_NS = 86_400 * 1_000_000_000


class FlowDeltas:
    __slots__ = ("edges",)

    def __init__(self) -> None:
        # (src, dst, window) -> [count, usd, first_ts, last_ts]
        self.edges: dict[tuple[str, str, int], list[int]] = {}

    def add(self, t: Txn) -> None:
        key = (t.src, t.dst, t.ts_ns // WINDOW_NS)
        edge = self.edges.get(key)
        if edge is None:
            self.edges[key] = [1, t.usd, t.ts_ns, t.ts_ns]
        else:
            edge[0] += 1
            edge[1] += t.usd
            edge[2] = min(edge[2], t.ts_ns)
            edge[3] = max(edge[3], t.ts_ns)

    def drain(self) -> list[tuple[str, str, int, int, int, int, int]]:
        """``(src, dst, window, count, usd, first_ts, last_ts)`` rows (in the order the
        edges were first touched); then empty."""
        rows = [(s, d, w, v[0], v[1], v[2], v[3]) for (s, d, w), v in self.edges.items()]
        self.edges = {}
        return rows
