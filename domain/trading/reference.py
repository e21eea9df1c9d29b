"""A minimal reference matching engine: a test oracle and the bench's baseline, not product.

Definition
    Limit orders (optionally immediate-or-cancel, or with no price limit for a market order)
    and cancels on one book, matched by price-time priority at the resting order's price. A
    sorted list of level prices per side (asks negated so the best level is the last
    element), a ``deque`` of ``[order id, open lots]`` per level, and a dict index. No
    events, no validation, no self-trade prevention, no accounts: trades are appended to
    :attr:`ReferenceBook.trades` as ``(taker id, maker id, price, lots)``.

Use
    ``tests/property/test_trading_differential.py`` checks that the domain's
    :class:`~domain.trading.book.OrderBook` makes exactly the same trades and leaves exactly
    the same book on random limit/cancel streams; ``ledgerline bench matching`` times both on
    the same stream (``engine_vs_reference``).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque


class ReferenceBook:
    __slots__ = ("ask_keys", "asks", "bid_keys", "bids", "index", "trades")

    def __init__(self) -> None:
        self.bid_keys: list[int] = []  # prices ascending: best bid last
        self.ask_keys: list[int] = []  # -prices ascending: best ask last
        self.bids: dict[int, deque[list[int]]] = {}
        self.asks: dict[int, deque[list[int]]] = {}
        self.index: dict[int, tuple[bool, int, list[int]]] = {}
        self.trades: list[tuple[int, int, int, int]] = []

    def add(self, oid: int, is_buy: bool, price: int | None, qty: int, rest: bool = True) -> int:
        """Match, then rest what is left when ``rest``; returns the lots left unfilled."""
        trades = self.trades
        if is_buy:
            keys, levels, sign = self.ask_keys, self.asks, -1
            limit_key = None if price is None else -price
        else:
            keys, levels, sign = self.bid_keys, self.bids, 1
            limit_key = price
        while qty and keys and (limit_key is None or keys[-1] >= limit_key):
            level_price = keys[-1] * sign
            q = levels[level_price]
            while qty and q:
                maker = q[0]
                fill = maker[1] if maker[1] < qty else qty
                trades.append((oid, maker[0], level_price, fill))
                qty -= fill
                maker[1] -= fill
                if not maker[1]:
                    q.popleft()
                    del self.index[maker[0]]
            if not q:
                del levels[level_price]
                keys.pop()
        if qty and rest and price is not None:
            own_keys, own = (self.bid_keys, self.bids) if is_buy else (self.ask_keys, self.asks)
            level = own.get(price)
            if level is None:
                level = own[price] = deque()
                insort(own_keys, price if is_buy else -price)
            entry = [oid, qty]
            level.append(entry)
            self.index[oid] = (is_buy, price, entry)
        return qty

    def cancel(self, oid: int) -> bool:
        found = self.index.pop(oid, None)
        if found is None:
            return False
        is_buy, price, entry = found
        keys, levels = (self.bid_keys, self.bids) if is_buy else (self.ask_keys, self.asks)
        q = levels[price]
        q.remove(entry)
        if not q:
            del levels[price]
            del keys[bisect_left(keys, price if is_buy else -price)]
        return True

    def depth(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """``(bids, asks)`` as ``(price, open lots, order count)`` per level, best first."""
        bids = [
            (p, sum(e[1] for e in self.bids[p]), len(self.bids[p])) for p in reversed(self.bid_keys)
        ]
        asks = [
            (-k, sum(e[1] for e in self.asks[-k]), len(self.asks[-k]))
            for k in reversed(self.ask_keys)
        ]
        return bids, asks
