"""OrderBook: one instrument's continuous limit order book, matched by price-time priority.

Definition
    One aggregate per instrument, stream ``book:<instrument id>``. Its first event lists the
    instrument (:mod:`domain.trading.instrument`); the rest are the orders' lives
    (:mod:`domain.trading.events`). Each side holds price levels; each level a FIFO queue of
    resting orders. Prices are whole ticks, quantities whole lots.

Guarantees
    * Price-time priority: an incoming order trades with the best opposite price first and,
      within a price, with the order that rested first. Every trade is at the resting
      (maker's) price, never beyond the incoming order's limit.
    * The book never rests crossed: after every command the best bid is below the best ask.
    * Quantity is conserved per order: accepted (+ amendments' increases) = filled + open +
      cancelled/reduced/expired.
    * ``ioc``, ``fok`` and market orders never rest; a ``fok`` order fills in full or not at
      all; a post-only order never takes (rejected, or re-priced one tick behind the best
      opposite price with ``post_only_reprice``).
    * Reductions keep the order's place in its queue; an amendment of price or an increase
      of quantity sends it to the back (and may trade at once, as an incoming order).
    * Deterministic: the book is a pure function of its commands (times come in as
      ``now_ns``); the same commands give byte-identical events. Orders cancelled together
      (mass cancel, halt, close) go in the order they rested.
    * A 'gtd' order is gone at its expiry time: the first command at or after ``expire_at_ns``
      (or the ``expire`` command the runtime sends) writes its ``OrderExpired`` before anything
      else, and until then no command can trade with it, cancel it, reduce it or amend it.

Constraints (the contract with the command processor, ``MUTATES_IN_PLACE = True``)
    The processor hands out the cached book itself, not a copy. Every command method checks
    all its rules first and raises before its first ``_trigger``; state changes only through
    ``_trigger``/``apply``. The only other writes are to the representation: dropping
    cancelled entries from the front of a queue or a stale expiry entry (lazy deletion).

Data structures
    Per side: a sorted list of level keys (ask keys are negated prices, so the best level of
    either side is always the last element: O(1) to read and pop, ``bisect`` for the rest), a
    dict price -> level, and per level a ``deque`` of order entries with its live order count
    and open lots. One dict order id -> entry. An entry is a small list
    ``[open lots, order id, account id, price, rest sequence, order, self-trade mode]``
    (``order`` is the ``NewOrder`` as placed: side, time in force, expiry, post-only), the
    cheapest mutable record in CPython. A cancelled entry is marked (open lots 0) and left in
    its queue until it reaches the front or the level empties (lazy deletion, O(1) cancel); a
    level holding more than twice as many dead entries as live ones (plus 16) is compacted.
    A heap of (expire_at_ns, rest sequence, entry) finds due 'gtd' orders.

Rejections (in precedence order)
    Place (``PLACE_ORDER_ORDER``): ``id_must_not_be_zero``, ``id_must_not_be_int_max``,
    ``invalid_side``,
    ``invalid_order_type``, ``invalid_time_in_force``, ``invalid_self_trade_prevention``,
    ``market_order_cannot_rest``, ``price_required``, ``price_not_allowed``,
    ``quantity_required``, ``quote_quantity_not_allowed``, ``post_only_not_allowed``,
    ``expire_at_required``, ``expire_at_not_allowed``, ``invalid_price``,
    ``price_must_be_positive``, ``price_not_on_tick``, ``invalid_quantity``,
    ``quantity_must_be_positive``, ``quantity_not_on_lot``, ``invalid_quote_quantity``,
    ``quote_quantity_must_be_positive``, ``quantity_below_minimum``, ``expire_at_in_past``,
    ``instrument_closed``, ``instrument_halted``, ``duplicate_order_id``,
    ``price_out_of_band``, ``post_only_would_take``; then, in settlement mode ``ledger``,
    the venue's ``account_not_linked`` and ``insufficient_funds``. (The ``invalid_*`` and
    ``*_not_on_*`` codes come from parsing decimal strings, :func:`orders.parse_order`; the
    book itself takes whole ticks and lots. The rules up to ``quantity_below_minimum`` but
    that one are the order's own, checked when a ``NewOrder`` is built.)
    Ids come first everywhere: ``id_must_not_be_zero``, ``id_must_not_be_int_max``.
    Cancel (``CANCEL_ORDER_ORDER``): the ids, ``order_not_found``.
    Reduce (``REDUCE_ORDER_ORDER``): the ids, ``reduce_needs_one_quantity``,
    ``quantity_must_be_positive``, ``order_not_found``, ``reduce_must_decrease``.
    Amend (``AMEND_ORDER_ORDER``): the ids, ``amend_requires_change`` (nothing
    given), ``price_must_be_positive``, ``quantity_must_be_positive``,
    ``quantity_below_minimum``, ``order_not_found``, ``instrument_halted``,
    ``amend_requires_change`` (same price and quantity), ``price_out_of_band``,
    ``post_only_would_take``.
    Halt: ``instrument_closed``, ``instrument_halted``. Resume: ``instrument_closed``,
    ``instrument_not_halted``. Close: ``instrument_closed``. Mass cancel: the account id.
    Expire: none.

Self-trade prevention (the incoming order's mode; two orders of one account would trade)
    ``none``: they trade. ``cancel_newest``: the incoming order's rest is cancelled.
    ``cancel_oldest``: the resting order is cancelled and matching goes on. ``cancel_both``:
    both are cancelled. ``decrement``: both lose the smaller open quantity; an order left
    with nothing is cancelled, the other is reduced (a quote-budget order has no quantity to
    decrement and is cancelled as with ``cancel_newest``). Cancels and reductions carry
    reason ``self_trade``.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Self

from domain.aggregate import Aggregate
from domain.invariant import invariant
from domain.trading import errors as e
from domain.trading.events import (
    InstrumentClosed,
    InstrumentHalted,
    InstrumentListed,
    InstrumentResumed,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderReduced,
    OrderRested,
    TradeExecuted,
    TradingEvent,
    new_order_accepted,
    new_order_cancelled,
    new_order_rested,
    new_trade_executed,
)
from domain.trading.instrument import BPS, Instrument, InstrumentSpec, check_id
from domain.trading.orders import NewOrder, parse_order

_NO_LIMIT = -(2**256)  # a level key every price passes

PLACE_ORDER_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "invalid_side",
    "invalid_order_type",
    "invalid_time_in_force",
    "invalid_self_trade_prevention",
    "market_order_cannot_rest",
    "price_required",
    "price_not_allowed",
    "quantity_required",
    "quote_quantity_not_allowed",
    "post_only_not_allowed",
    "expire_at_required",
    "expire_at_not_allowed",
    "invalid_price",
    "price_must_be_positive",
    "price_not_on_tick",
    "invalid_quantity",
    "quantity_must_be_positive",
    "quantity_not_on_lot",
    "invalid_quote_quantity",
    "quote_quantity_must_be_positive",
    "quantity_below_minimum",
    "expire_at_in_past",
    "instrument_closed",
    "instrument_halted",
    "duplicate_order_id",
    "price_out_of_band",
    "post_only_would_take",
    "account_not_linked",
    "insufficient_funds",
)
CANCEL_ORDER_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "order_not_found",
)
REDUCE_ORDER_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "reduce_needs_one_quantity",
    "quantity_must_be_positive",
    "order_not_found",
    "reduce_must_decrease",
)
AMEND_ORDER_ORDER: tuple[str, ...] = (
    "id_must_not_be_zero",
    "id_must_not_be_int_max",
    "amend_requires_change",
    "price_must_be_positive",
    "quantity_must_be_positive",
    "quantity_below_minimum",
    "order_not_found",
    "instrument_halted",
    "price_out_of_band",
    "post_only_would_take",
)


def stream_id(instrument_id: int) -> str:
    return f"book:{instrument_id}"


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """A resting order as the book's queries show it (a copy; the book keeps its entries)."""

    order_id: int
    account_id: int
    side: str
    price_ticks: int
    remaining_lots: int
    seq: int  # the book sequence of its OrderRested: its time priority
    time_in_force: str
    expire_at_ns: int | None
    self_trade_prevention: str
    post_only: bool
    post_only_reprice: bool

    def to_row(self) -> list[Any]:
        return [getattr(self, f.name) for f in fields(self)]


# An order entry: [open lots, order id, account id, price ticks, rest seq, NewOrder, stp].
Entry = list[Any]
_LOTS, _OID, _ACCT, _PRICE, _SEQ, _ORDER, _STP = range(7)


def _view(entry: Entry) -> RestingOrder:
    o = entry[_ORDER]
    return RestingOrder(
        entry[_OID],
        entry[_ACCT],
        o.side,
        entry[_PRICE],
        entry[_LOTS],
        entry[_SEQ],
        o.time_in_force,
        o.expire_at_ns,
        entry[_STP],
        o.post_only,
        o.post_only_reprice,
    )


class Level:
    """One price level: FIFO of entries (dead ones allowed), live count and open lots."""

    __slots__ = ("live", "lots", "orders")

    def __init__(self) -> None:
        self.orders: deque[Entry] = deque()
        self.live = 0
        self.lots = 0


class BookSide:
    """Levels of one side. ``keys`` sorted ascending, best last: bids by price, asks by -price."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign  # price = key * sign
        self.keys: list[int] = []
        self.levels: dict[int, Level] = {}

    def best(self) -> int | None:
        return self.keys[-1] * self.sign if self.keys else None

    def prices_best_first(self) -> Iterator[int]:
        sign = self.sign
        for key in reversed(self.keys):
            yield key * sign


class OrderBook(Aggregate):
    """See the module docstring."""

    MUTATES_IN_PLACE = True

    __slots__ = (
        "_asks",
        "_band_bps",
        "_bids",
        "_default_stp",
        "_expiries",
        "_incoming",
        "_index",
        "_min_lots",
        "_reference_ticks",
        "instrument",
        "last_price_ticks",
        "listed_at_ns",
        "status",
    )

    def __init__(self, instrument_id: int) -> None:
        super().__init__(stream_id(instrument_id))
        self.instrument: Instrument | None = None
        self.status = "new"
        self.listed_at_ns = 0
        self.last_price_ticks: int | None = None
        self._bids = BookSide(1)
        self._asks = BookSide(-1)
        self._index: dict[int, Entry] = {}
        self._expiries: list[tuple[int, int, Entry]] = []
        # The order being placed or amended while its events apply: (NewOrder, stp mode).
        self._incoming: tuple[NewOrder, str] | None = None
        self._min_lots = 1
        self._band_bps = 0
        self._reference_ticks: int | None = None
        self._default_stp = "cancel_newest"

    # ================================================================== commands: instrument

    @classmethod
    def list_instrument(
        cls, spec: InstrumentSpec, now_ns: int, existing: OrderBook | None = None
    ) -> OrderBook:
        Instrument.validate(spec)
        if existing is not None:
            raise e.InstrumentExists(
                f"instrument {spec.instrument_id} is already listed",
                instrument_id=spec.instrument_id,
            )
        book = cls(spec.instrument_id)
        book._trigger(InstrumentListed(1, now_ns, *(getattr(spec, f.name) for f in _SPEC_FIELDS)))
        return book

    def halt(self, now_ns: int, cancel_orders: bool = False) -> int:
        """Stop trading: new orders and amendments are refused; cancels and reductions still
        work. With ``cancel_orders`` every resting order is cancelled (reason ``halt``)."""
        ids = self._ids()
        if self.status == "closed":
            raise e.InstrumentClosed("the instrument is closed", **ids)
        if self.status == "halted":
            raise e.InstrumentHalted("the instrument is already halted", **ids)
        self._sweep(now_ns)
        self._trigger(InstrumentHalted(self.version + 1, now_ns, self._instrument_id))
        return self._cancel_where(now_ns, None, "halt") if cancel_orders else 0

    def resume(self, now_ns: int) -> None:
        ids = self._ids()
        if self.status == "closed":
            raise e.InstrumentClosed("the instrument is closed", **ids)
        if self.status != "halted":
            raise e.InstrumentNotHalted("the instrument is not halted", **ids)
        self._sweep(now_ns)
        self._trigger(InstrumentResumed(self.version + 1, now_ns, self._instrument_id))

    def close(self, now_ns: int) -> int:
        """Delist for good: every resting order is cancelled (reason ``close``)."""
        if self.status == "closed":
            raise e.InstrumentClosed("the instrument is already closed", **self._ids())
        self._sweep(now_ns)
        count = self._cancel_where(now_ns, None, "close")
        self._trigger(InstrumentClosed(self.version + 1, now_ns, self._instrument_id))
        return count

    # ================================================================== commands: orders

    def parse_order(self, **fields: Any) -> NewOrder:
        """An order with decimal strings as a :class:`NewOrder`: :func:`orders.parse_order`."""
        return parse_order(self._instrument(), **fields)

    def check_place(self, o: NewOrder, now_ns: int) -> tuple[str, int | None]:
        """The book's rules for a placement in the documented order, changing nothing.

        (The order's own rules were checked when the ``NewOrder`` was built.) Returns the
        self-trade prevention mode in force and the price the order would rest at (a
        re-priced post-only order's differs from its own). Pass the result to :meth:`place`
        when nothing else touched the book in between.
        """
        qty = o.quantity_lots
        if qty is not None and qty < self._min_lots:
            raise e.QuantityBelowMinimum(
                f"{qty} lots is below the minimum of {self._min_lots}", order_id=o.order_id
            )
        expire_at = o.expire_at_ns
        if expire_at is not None and expire_at <= now_ns:
            raise e.ExpireAtInPast("the order would expire before it arrives", order_id=o.order_id)
        if self.status != "open":
            self._refuse_status(o.order_id)
        if o.order_id in self._index:
            raise e.DuplicateOrderId(f"order {o.order_id} is live on the book", order_id=o.order_id)
        price = o.price_ticks
        if price is not None:
            if self._band_bps:
                self._check_band(price, o.order_id)
            if o.post_only:
                price = self._post_only_price(
                    o.side, price, o.post_only_reprice, now_ns, o.order_id
                )
        return o.self_trade_prevention or self._default_stp, price

    def place(  # noqa: PLR0912 - the hot path, inlined on purpose
        self, o: NewOrder, now_ns: int, checked: tuple[str, int | None] | None = None
    ) -> None:
        """Place an order: accept it, match it, rest, cancel or kill what is left."""
        stp, price = checked or self.check_place(o, now_ns)
        # ---- decided: from here on every branch only triggers events
        heap = self._expiries
        if heap and heap[0][0] <= now_ns:
            self._sweep(now_ns)
        oid, side, qty, tif = o.order_id, o.side, o.quantity_lots, o.time_in_force
        if side == "buy":
            own, opp = self._bids, self._asks
        else:
            own, opp = self._asks, self._bids
        keys = opp.keys
        # An order that cannot trade on arrival goes straight onto the book: one event.
        straight = (
            price is not None
            and (tif == "gtc" or tif == "gtd")  # noqa: PLR1714 - identity-fast compares
            and price == o.price_ticks  # not a re-priced post-only order
            and (o.post_only or not keys or keys[-1] < price * opp.sign)
        )
        seq = self.version + 1
        accepted = new_order_accepted(seq, now_ns, o, stp, qty if straight else 0)
        self.version = seq  # _trigger and _on_accepted, inlined: the hot path
        self._pending.append(accepted)
        if straight:  # _insert, inlined
            entry = [qty, oid, o.account_id, price, seq, o, stp]
            level = own.levels.get(price)  # type: ignore[arg-type]
            if level is None:
                level = own.levels[price] = Level()  # type: ignore[index]
                insort(own.keys, price * own.sign)  # type: ignore[operator]
            level.orders.append(entry)
            level.live += 1
            level.lots += qty  # type: ignore[operator]
            self._index[oid] = entry
            if o.expire_at_ns is not None:
                heapq.heappush(self._expiries, (o.expire_at_ns, seq, entry))
            return
        self._incoming = (o, stp)
        if qty is None:
            self._take_budget(oid, o.account_id, price, o.quote_quantity, stp, now_ns)  # type: ignore[arg-type]
            return
        if not o.post_only:  # (a post-only order was checked not to cross)
            if price is None:
                price = self._market_limit(side)
            if tif == "fok" and not self._fok_fills(
                side, price, qty, o.quote_quantity, o.account_id, stp
            ):
                self._trigger(
                    new_order_cancelled(
                        seq + 1, now_ns, oid, side, None, qty, "fok_kill", False, None
                    )
                )
                return
            if keys and (price is None or keys[-1] >= price * opp.sign):
                qty = self._take(oid, o.account_id, side, price, qty, stp, now_ns)
                if not qty:
                    return
        if tif == "gtc" or tif == "gtd":  # noqa: PLR1714 - identity-fast compares
            self._trigger(new_order_rested(self.version + 1, now_ns, oid, side, price, qty))
        else:
            self._trigger(
                new_order_cancelled(
                    self.version + 1, now_ns, oid, side, None, qty, "ioc_remainder", False, None
                )
            )

    def cancel(self, order_id: int, account_id: int, now_ns: int) -> None:
        entry = self._index.get(order_id)
        if entry is None or entry[2] != account_id or entry[5].expire_at_ns is not None:
            entry = self._owned(order_id, account_id, now_ns)  # the rules, in order
        heap = self._expiries
        if heap and heap[0][0] <= now_ns:
            self._sweep(now_ns)
        seq = self.version + 1
        side, price, lots = entry[5].side, entry[3], entry[0]
        self._pending.append(
            new_order_cancelled(seq, now_ns, order_id, side, price, lots, "user", True, None)
        )
        self.version = seq
        # _on_cancelled (_remove), inlined: the hot path
        book_side = self._bids if side == "buy" else self._asks
        level = book_side.levels[price]
        level.live -= 1
        level.lots -= lots
        entry[0] = 0
        del self._index[order_id]
        if not level.live:
            _drop_level(book_side, price)
        elif len(level.orders) > 2 * level.live + 16:
            level.orders = deque(x for x in level.orders if x[0])

    def reduce(
        self,
        order_id: int,
        account_id: int,
        now_ns: int,
        *,
        reduce_by: int | None = None,
        reduce_to: int | None = None,
    ) -> int:
        """Lower the open quantity by ``reduce_by`` or to ``reduce_to`` lots; the order keeps
        its place. Reducing by at least the open quantity, or to 0, removes it. Returns the
        open quantity left."""
        self._check_ids(order_id, account_id)
        if (reduce_by is None) == (reduce_to is None):
            raise e.ReduceNeedsOneQuantity(
                "give exactly one of reduce_by and reduce_to", order_id=order_id
            )
        if (reduce_by is not None and reduce_by <= 0) or (reduce_to is not None and reduce_to < 0):
            raise e.QuantityMustBePositive(
                "reduce_by must be positive and reduce_to not negative", order_id=order_id
            )
        entry = self._owned(order_id, account_id, now_ns)
        remaining: int = entry[_LOTS]
        if reduce_to is not None:
            if reduce_to >= remaining:
                raise e.ReduceMustDecrease(
                    f"reduce_to {reduce_to} is not below the open quantity {remaining}",
                    order_id=order_id,
                )
            by = remaining - reduce_to
        else:
            by = min(reduce_by or 0, remaining)
        self._sweep(now_ns)
        self._reduce_resting(entry, by, now_ns, "user")
        return remaining - by

    def check_amend(
        self,
        order_id: int,
        account_id: int,
        now_ns: int,
        *,
        price_ticks: int | None = None,
        quantity_lots: int | None = None,
    ) -> tuple[int, int]:
        """Every rule of an amendment, changing nothing: ``(new price, new open lots)``.

        (A re-priced post-only order's new price is the re-priced one.) Pass the result to
        :meth:`amend` when nothing else touched the book in between.
        """
        self._check_ids(order_id, account_id)
        if price_ticks is None and quantity_lots is None:
            raise e.AmendRequiresChange("give a new price or quantity", order_id=order_id)
        if price_ticks is not None and price_ticks <= 0:
            raise e.PriceMustBePositive("the price must be positive", order_id=order_id)
        if quantity_lots is not None:
            if quantity_lots <= 0:
                raise e.QuantityMustBePositive("the quantity must be positive", order_id=order_id)
            if quantity_lots < self._min_lots:
                raise e.QuantityBelowMinimum(
                    f"{quantity_lots} lots is below the minimum of {self._min_lots}",
                    order_id=order_id,
                )
        entry = self._owned(order_id, account_id, now_ns)
        if self.status == "halted":
            raise e.InstrumentHalted("trading is halted", order_id=order_id, **self._ids())
        old_price, old_lots, terms = entry[_PRICE], entry[_LOTS], entry[_ORDER]
        new_price = old_price if price_ticks is None else price_ticks
        new_qty = old_lots if quantity_lots is None else quantity_lots
        if new_price == old_price and new_qty == old_lots:
            raise e.AmendRequiresChange(
                "the order already has this price and quantity", order_id=order_id
            )
        if new_price != old_price:
            if self._band_bps:
                self._check_band(new_price, order_id)
            if terms.post_only:
                new_price = self._post_only_price(
                    terms.side, new_price, terms.post_only_reprice, now_ns, order_id
                )
        return new_price, new_qty

    def amend(
        self,
        order_id: int,
        account_id: int,
        now_ns: int,
        *,
        price_ticks: int | None = None,
        quantity_lots: int | None = None,
        checked: tuple[int, int] | None = None,
    ) -> None:
        """Give a resting order a new price and/or open quantity.

        A lower quantity at the same price is a reduction (keeps its place). Anything else
        sends the order to the back of its (new) level, and it trades first if it crosses.
        """
        new_price, new_qty = checked or self.check_amend(
            order_id, account_id, now_ns, price_ticks=price_ticks, quantity_lots=quantity_lots
        )
        self._sweep(now_ns)
        entry = self._index[order_id]
        old_price, old_lots, terms = entry[_PRICE], entry[_LOTS], entry[_ORDER]
        if new_price == old_price and new_qty < old_lots:
            self._reduce_resting(entry, old_lots - new_qty, now_ns, "user")
            return
        side = terms.side
        self._trigger(
            OrderAmended(
                self.version + 1,
                now_ns,
                order_id,
                account_id,
                side,
                old_price,
                old_lots,
                new_price,
                new_qty,
            )
        )
        left = (
            new_qty
            if terms.post_only
            else self._take(order_id, account_id, side, new_price, new_qty, entry[_STP], now_ns)
        )
        if left:
            self._trigger(
                new_order_rested(self.version + 1, now_ns, order_id, side, new_price, left)
            )

    def cancel_all(self, now_ns: int, account_id: int | None = None) -> int:
        """Mass cancel: every resting order of ``account_id`` (None: of everyone)."""
        if account_id is not None:
            check_id(account_id, "the account id", account_id=account_id)
        self._sweep(now_ns)
        return self._cancel_where(now_ns, account_id, "mass_cancel")

    def expire(self, now_ns: int) -> int:
        """Expire every 'gtd' order whose time has come; returns how many."""
        before = self.version
        self._sweep(now_ns)
        return self.version - before

    # ================================================================== queries

    def order(self, order_id: int) -> RestingOrder | None:
        entry = self._index.get(order_id)
        return None if entry is None else _view(entry)

    def best_bid(self) -> int | None:
        return self._bids.best()

    def best_ask(self) -> int | None:
        return self._asks.best()

    def depth(self, levels: int | None = None) -> tuple[list[tuple[int, int, int]], ...]:
        """``(bids, asks)``: ``(price_ticks, open lots, order count)`` per level, best first."""

        def side(s: BookSide) -> list[tuple[int, int, int]]:
            out: list[tuple[int, int, int]] = []
            for price in s.prices_best_first():
                if levels is not None and len(out) >= levels:
                    break
                level = s.levels[price]
                out.append((price, level.lots, level.live))
            return out

        return side(self._bids), side(self._asks)

    def resting(self, side: str | None = None) -> Iterator[RestingOrder]:
        """Live orders in priority order (best price first, then time), bids then asks."""
        sides = (self._bids, self._asks) if side is None else (self._side(side),)
        for s in sides:
            for price in s.prices_best_first():
                for entry in s.levels[price].orders:
                    if entry[_LOTS]:
                        yield _view(entry)

    def open_orders(self) -> int:
        return len(self._index)

    def uncommitted(self) -> list[Any]:
        """The events triggered and not yet collected (the handler's view of what happened)."""
        return self._pending

    def simulate(  # noqa: PLR0912 - the matching walk, read-only
        self,
        side: str,
        limit: int | None,
        qty: int | None,
        budget: int | None,
        account_id: int,
        stp: str,
        now_ns: int | None = None,
    ) -> tuple[int, int]:
        """What an incoming order would fill, changing nothing: ``(lots, notional)``.

        Walks the opposite side exactly as matching would (price-time order, up to the
        limit, self-trade prevention applied; with ``now_ns``, orders due to expire by then
        skipped). ``qty`` None means a budget-only order.
        """
        opp, limit_key = self._opposite(side, limit)
        keys, levels, sign = opp.keys, opp.levels, opp.sign
        need, left = qty, budget
        filled = notional = 0
        guard = stp != "none"
        for i in range(len(keys) - 1, -1, -1):
            key = keys[i]
            if key < limit_key:
                break
            price = key * sign
            for m in levels[price].orders:
                mrem = m[_LOTS]
                if not mrem:
                    continue
                expire_at = m[_ORDER].expire_at_ns
                if now_ns is not None and expire_at is not None and expire_at <= now_ns:
                    continue
                if guard and m[_ACCT] == account_id:
                    if stp == "cancel_oldest":
                        continue
                    if stp == "decrement" and need is not None:
                        need -= min(mrem, need)
                        if not need:
                            return filled, notional
                        continue
                    return filled, notional
                f = mrem if need is None or mrem < need else need
                if left is not None:
                    afford = left // price
                    if not afford:
                        return filled, notional
                    f = min(f, afford)
                    left -= f * price
                filled += f
                notional += f * price
                if need is not None:
                    need -= f
                    if not need:
                        return filled, notional
        return filled, notional

    def market_limit(self, side: str) -> int | None:
        """The worst price a market order may trade at (the band's edge), None: no limit."""
        return self._market_limit(side)

    # ================================================================== snapshots

    def to_snapshot(self) -> dict[str, Any]:
        instrument = self._instrument()
        return {
            "instrument": {f.name: getattr(instrument.spec, f.name) for f in _SPEC_FIELDS},
            "status": self.status,
            "listed_at_ns": self.listed_at_ns,
            "last_price_ticks": self.last_price_ticks,
            "orders": [
                _view(entry).to_row() for s in (self._bids, self._asks) for entry in _queued(s)
            ],
        }

    @classmethod
    def from_snapshot(cls, stream_id: str, version: int, state: dict[str, Any]) -> Self:
        spec = InstrumentSpec(**state["instrument"])
        book = cls(spec.instrument_id)
        invariant(book.id == stream_id, f"snapshot of {book.id} restored as {stream_id}")
        book._set_instrument(Instrument.validate(spec))
        book.status = state["status"]
        book.listed_at_ns = state["listed_at_ns"]
        book.last_price_ticks = state["last_price_ticks"]
        for row in state["orders"]:
            r = RestingOrder(*row)
            order = NewOrder.recorded(
                order_id=r.order_id,
                account_id=r.account_id,
                side=r.side,
                price_ticks=r.price_ticks,
                quantity_lots=r.remaining_lots,
                time_in_force=r.time_in_force,
                post_only=r.post_only,
                post_only_reprice=r.post_only_reprice,
                self_trade_prevention=r.self_trade_prevention,
                expire_at_ns=r.expire_at_ns,
            )
            entry = [r.remaining_lots, r.order_id, r.account_id, r.price_ticks, r.seq, order]
            book._insert([*entry, r.self_trade_prevention])
        book.version = version
        return book

    def approx_bytes(self) -> int:
        return 2_000 + 500 * len(self._index) + 300 * (len(self._bids.keys) + len(self._asks.keys))

    def check_integrity(self) -> None:
        """Recount every level and the index from the queues (tests, replay verification)."""
        seen: dict[int, Entry] = {}
        for s in (self._bids, self._asks):
            invariant(s.keys == sorted(s.keys), "level keys are sorted")
            invariant(sorted(k * s.sign for k in s.keys) == sorted(s.levels), "keys match levels")
            for price, level in s.levels.items():
                live = [x for x in level.orders if x[_LOTS]]
                invariant(len(live) == level.live > 0, f"level {price} live count")
                invariant(sum(x[_LOTS] for x in live) == level.lots, f"level {price} lots")
                for x in live:
                    invariant(x[_PRICE] == price, "an order rests at its level's price")
                    invariant((x[_ORDER].side == "buy") == (s is self._bids), "on its side")
                    invariant(x[_OID] not in seen, "an order rests once")
                    seen[x[_OID]] = x
        invariant(seen == self._index, "the index holds exactly the resting orders")
        bid, ask = self.best_bid(), self.best_ask()
        invariant(bid is None or ask is None or bid < ask, f"crossed book {bid} >= {ask}")

    # ================================================================== internals: checks

    def _instrument(self) -> Instrument:
        invariant(self.instrument is not None, f"{self.id} has no instrument")
        assert self.instrument is not None  # for the type checker
        return self.instrument

    @property
    def _instrument_id(self) -> int:
        return self._instrument().instrument_id

    def _ids(self) -> dict[str, Any]:
        return {"instrument_id": self._instrument_id}

    def _check_ids(self, order_id: int, account_id: int) -> None:
        check_id(order_id, "the order id", order_id=order_id)
        check_id(account_id, "the account id", order_id=order_id)

    def _refuse_status(self, order_id: int) -> None:
        if self.status == "closed":
            raise e.InstrumentClosed("the instrument is closed", order_id=order_id, **self._ids())
        raise e.InstrumentHalted("trading is halted", order_id=order_id, **self._ids())

    def _reference(self) -> int | None:
        return self.last_price_ticks if self.last_price_ticks is not None else self._reference_ticks

    def _check_band(self, price: int, order_id: int) -> None:
        ref = self._reference()
        if ref is None:
            return
        band = self._band_bps
        if price * BPS > ref * (BPS + band) or price * BPS < ref * (BPS - band):
            raise e.PriceOutOfBand(
                f"price {price} ticks is more than {band} bps from the reference {ref}",
                order_id=order_id,
                reference_price_ticks=ref,
            )

    def _market_limit(self, side: str) -> int | None:
        ref = self._reference() if self._band_bps else None
        if ref is None:
            return None
        band = self._band_bps
        if side == "buy":
            return ref * (BPS + band) // BPS
        return max(1, -(-ref * (BPS - band) // BPS))

    def _post_only_price(
        self, side: str, price: int, reprice: bool, now_ns: int, order_id: int
    ) -> int:
        best = self._best_live_opposite(side, now_ns)
        if best is None or (price < best if side == "buy" else price > best):
            return price
        new = best - 1 if side == "buy" else best + 1
        if not reprice or new <= 0:
            raise e.PostOnlyWouldTake(
                f"a post-only {side} at {price} would trade with the best opposite price {best}",
                order_id=order_id,
            )
        if self._band_bps:
            self._check_band(new, order_id)
        return new

    def _best_live_opposite(self, side: str, now_ns: int) -> int | None:
        opp = self._asks if side == "buy" else self._bids
        heap = self._expiries
        if not heap or heap[0][0] > now_ns:
            return opp.best()
        for price in opp.prices_best_first():  # skip orders due to expire
            for entry in opp.levels[price].orders:
                expire_at = entry[_ORDER].expire_at_ns
                if entry[_LOTS] and (expire_at is None or expire_at > now_ns):
                    return price
        return None

    def _owned(self, order_id: int, account_id: int, now_ns: int) -> Entry:
        self._check_ids(order_id, account_id)
        entry = self._index.get(order_id)
        if entry is not None and entry[_ACCT] == account_id:
            expire_at = entry[_ORDER].expire_at_ns
            if expire_at is None or expire_at > now_ns:
                return entry
        raise e.OrderNotFound(f"no open order {order_id} for this account", order_id=order_id)

    def _opposite(self, side: str, limit: int | None) -> tuple[BookSide, int]:
        opp = self._asks if side == "buy" else self._bids
        return opp, (_NO_LIMIT if limit is None else limit * opp.sign)

    def _fok_fills(
        self, side: str, limit: int | None, qty: int, budget: int | None, acct: int, stp: str
    ) -> bool:
        """Would a fill-or-kill order fill in full (within its budget, if it has one)?"""
        filled, notional = self.simulate(side, limit, qty, None, acct, stp)
        if filled < qty:
            return False
        return budget is None or (notional <= budget if side == "buy" else notional >= budget)

    # ================================================================== internals: matching

    def _take(  # noqa: PLR0912, PLR0915 - the hot loop, inlined on purpose
        self, oid: int, acct: int, side: str, limit: int | None, qty: int, stp: str, now_ns: int
    ) -> int:
        """Match ``qty`` lots against the opposite side up to ``limit``; returns lots left.

        The hot loop: each fill's event is built and its change applied right here, exactly
        as :meth:`_on_trade` applies it on replay (the maker is the first live entry of the
        best level; tests check replay gives the same book).
        """
        if side == "buy":
            opp = self._asks
            limit_key = _NO_LIMIT if limit is None else -limit
        else:
            opp = self._bids
            limit_key = _NO_LIMIT if limit is None else limit
        keys, levels, sign = opp.keys, opp.levels, opp.sign
        guard = stp != "none"
        pending, index, make = self._pending, self._index, new_trade_executed
        seq = self.version
        while keys:
            key = keys[-1]
            if key < limit_key:
                break
            price = key * sign
            level = levels[price]
            q = level.orders
            while True:
                m = q[0]  # [open lots, order id, account id, price, rest seq, order, stp]
                mrem = m[0]
                if not mrem:
                    q.popleft()  # a cancelled entry (lazy deletion): representation only
                    continue
                if guard and m[2] == acct:  # the same account on both sides
                    self.version = seq
                    qty = self._prevent_self_trade(m, oid, side, qty, None, stp, now_ns)
                    seq = self.version
                    if not qty:
                        return 0
                elif mrem > qty:  # the maker keeps the rest: the incoming order is done
                    seq += 1
                    pending.append(
                        make(seq, now_ns, m[1], oid, m[2], acct, price, qty, mrem - qty, side)
                    )
                    m[0] = mrem - qty
                    level.lots -= qty
                    self.last_price_ticks = price
                    self.version = seq
                    return 0
                else:  # the maker fills in full and leaves the book
                    seq += 1
                    pending.append(make(seq, now_ns, m[1], oid, m[2], acct, price, mrem, 0, side))
                    m[0] = 0
                    q.popleft()
                    del index[m[1]]
                    level.lots -= mrem
                    level.live -= 1
                    self.last_price_ticks = price
                    qty -= mrem
                    if not level.live:
                        del levels[price]
                        keys.pop()
                        if not qty:
                            self.version = seq
                            return 0
                        break
                    if not qty:
                        self.version = seq
                        return 0
                if not level.live:
                    break
        self.version = seq
        return qty

    def _take_budget(
        self, oid: int, acct: int, limit: int | None, budget: int, stp: str, now_ns: int
    ) -> None:
        """A buy that spends a quote budget (notional units) from the best ask up.

        It stops complete when what is left cannot buy one lot at the best remaining price
        (after buying something), and is cancelled (``ioc_remainder``, with the unspent
        budget) when no price within its limit is left or it bought nothing.
        """
        if limit is None:
            limit = self._market_limit("buy")
        opp, limit_key = self._opposite("buy", limit)
        keys, levels = opp.keys, opp.levels
        guard = stp != "none"
        spent = 0
        while keys and keys[-1] >= limit_key:
            price = -keys[-1]
            afford = budget // price
            if not afford:
                if spent:
                    return
                break
            level = levels[price]
            m = level.orders[0]
            mrem = m[_LOTS]
            if not mrem:
                level.orders.popleft()  # a cancelled entry (lazy deletion)
                continue
            if guard and m[_ACCT] == acct:
                budget = self._prevent_self_trade(m, oid, "buy", afford, budget, stp, now_ns)
                if budget < 0:
                    return
                continue
            fill = mrem if mrem < afford else afford
            self._trigger(
                new_trade_executed(
                    self.version + 1,
                    now_ns,
                    m[_OID],
                    oid,
                    m[_ACCT],
                    acct,
                    price,
                    fill,
                    mrem - fill,
                    "buy",
                )
            )
            budget -= fill * price
            spent += fill * price
        if spent and not budget:
            return
        self._trigger(
            OrderCancelled(
                self.version + 1, now_ns, oid, "buy", None, 0, "ioc_remainder", False, budget
            )
        )

    def _prevent_self_trade(
        self,
        m: Entry,
        oid: int,
        side: str,
        qty: int,
        budget: int | None,
        stp: str,
        now_ns: int,
    ) -> int:
        """Apply ``stp`` to the incoming order ``oid`` meeting its account's resting ``m``.

        For a quantity order returns the incoming lots left (0: it is gone). For a budget
        order (``budget`` given, ``qty`` the lots it could buy here) returns the budget
        left, or -1 when the incoming order is gone.
        """
        if stp == "decrement" and budget is None:
            d: int = min(qty, m[_LOTS])
            if d == m[_LOTS]:
                self._cancel_resting(m, now_ns, "self_trade")
            else:
                self._reduce_resting(m, d, now_ns, "self_trade")
            if d == qty:
                self._trigger(
                    OrderCancelled(
                        self.version + 1, now_ns, oid, side, None, d, "self_trade", False
                    )
                )
                return 0
            self._trigger(
                OrderReduced(
                    self.version + 1, now_ns, oid, side, None, d, qty - d, "self_trade", False
                )
            )
            return qty - d
        if stp == "cancel_oldest":
            self._cancel_resting(m, now_ns, "self_trade")
            return qty if budget is None else budget
        if stp == "cancel_both":
            self._cancel_resting(m, now_ns, "self_trade")
        # cancel_newest, cancel_both, and decrement for a budget order
        self._trigger(
            OrderCancelled(
                self.version + 1,
                now_ns,
                oid,
                side,
                None,
                qty if budget is None else 0,
                "self_trade",
                False,
                budget,
            )
        )
        return 0 if budget is None else -1

    def _cancel_resting(self, entry: Entry, now_ns: int, reason: str) -> None:
        self._trigger(
            OrderCancelled(
                self.version + 1,
                now_ns,
                entry[_OID],
                entry[_ORDER].side,
                entry[_PRICE],
                entry[_LOTS],
                reason,
                True,
            )
        )

    def _reduce_resting(self, entry: Entry, by: int, now_ns: int, reason: str) -> None:
        self._trigger(
            OrderReduced(
                self.version + 1,
                now_ns,
                entry[_OID],
                entry[_ORDER].side,
                entry[_PRICE],
                by,
                entry[_LOTS] - by,
                reason,
                True,
            )
        )

    def _cancel_where(self, now_ns: int, account_id: int | None, reason: str) -> int:
        chosen = sorted(
            (x for x in self._index.values() if account_id is None or x[_ACCT] == account_id),
            key=_rest_seq,
        )
        for entry in chosen:
            self._cancel_resting(entry, now_ns, reason)
        return len(chosen)

    def _sweep(self, now_ns: int) -> None:
        """Expire every 'gtd' order due at ``now_ns``, earliest (then first rested) first."""
        heap = self._expiries
        index = self._index
        while heap and heap[0][0] <= now_ns:
            expire_at, _, entry = heap[0]
            if index.get(entry[_OID]) is not entry:
                heapq.heappop(heap)  # a stale entry (the order is gone): representation only
                continue
            self._trigger(
                OrderExpired(
                    self.version + 1,
                    now_ns,
                    entry[_OID],
                    entry[_ORDER].side,
                    entry[_PRICE],
                    entry[_LOTS],
                    expire_at,
                )
            )

    # ================================================================== apply: assign only

    def _trigger(self, event: Any) -> None:
        _APPLY[event.__class__](self, event)
        self.version += 1
        self._pending.append(event)

    def apply(self, event: Any) -> None:
        _APPLY[event.__class__](self, event)

    def _on_listed(self, ev: InstrumentListed) -> None:
        spec = InstrumentSpec(*(getattr(ev, f.name) for f in _SPEC_FIELDS))
        self._set_instrument(Instrument.validate(spec))
        self.status = ev.status
        self.listed_at_ns = ev.at_ns

    def _set_instrument(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._min_lots = instrument.min_lots
        self._band_bps = instrument.spec.price_band_bps
        self._reference_ticks = instrument.reference_price_ticks
        self._default_stp = instrument.spec.self_trade_prevention

    def _on_halted(self, ev: InstrumentHalted) -> None:
        self.status = "halted"

    def _on_resumed(self, ev: InstrumentResumed) -> None:
        self.status = "open"

    def _on_closed(self, ev: InstrumentClosed) -> None:
        self.status = "closed"

    def _on_accepted(self, ev: OrderAccepted) -> None:
        o, stp = ev.order, ev.self_trade_prevention
        if ev.rested_lots:
            self._insert([ev.rested_lots, o.order_id, o.account_id, o.price_ticks, ev.seq, o, stp])
        else:
            self._incoming = (o, stp)

    def _on_trade(self, ev: TradeExecuted) -> None:
        side = self._asks if ev.aggressor_side == "buy" else self._bids
        self._fill(side, side.levels[ev.price_ticks], self._index[ev.maker_order_id], ev)

    def _fill(self, side: BookSide, level: Level, m: Entry, ev: TradeExecuted) -> None:
        """A trade's change to the book: the maker (first live entry of ``level``) fills."""
        level.lots -= ev.quantity_lots
        left = m[_LOTS] = ev.maker_remaining_lots
        self.last_price_ticks = ev.price_ticks
        if not left:
            q = level.orders
            while q[0] is not m:  # cancelled entries ahead of it (on replay)
                q.popleft()
            q.popleft()
            del self._index[m[_OID]]
            level.live -= 1
            if not level.live:
                _drop_level(side, ev.price_ticks)

    def _on_rested(self, ev: OrderRested) -> None:
        incoming = self._incoming  # (NewOrder, self-trade mode) of the accepted or amended
        invariant(incoming is not None, "an order rests after its acceptance or amendment")
        assert incoming is not None  # for the type checker
        order, stp = incoming
        invariant(order.order_id == ev.order_id, "the order that rests is the incoming one")
        self._insert(
            [ev.quantity_lots, ev.order_id, order.account_id, ev.price_ticks, ev.seq, order, stp]
        )
        self._incoming = None

    def _on_reduced(self, ev: OrderReduced) -> None:
        if not ev.rested:
            return
        entry = self._index[ev.order_id]
        if not ev.remaining_lots:
            self._remove(entry)
            return
        self._side(entry[_ORDER].side).levels[entry[_PRICE]].lots -= ev.reduced_by_lots
        entry[_LOTS] = ev.remaining_lots

    def _on_amended(self, ev: OrderAmended) -> None:
        entry = self._index[ev.order_id]
        self._remove(entry)
        self._incoming = (entry[_ORDER], entry[_STP])

    def _on_cancelled(self, ev: OrderCancelled) -> None:
        if ev.rested:
            self._remove(self._index[ev.order_id])

    def _on_expired(self, ev: OrderExpired) -> None:
        entry = self._index[ev.order_id]
        heap = self._expiries
        while heap[0][2] is not entry:  # stale entries ahead of it
            stale = heapq.heappop(heap)[2]
            invariant(self._index.get(stale[_OID]) is not stale, "expiry heap order")
        heapq.heappop(heap)
        self._remove(entry)

    # ================================================================== representation

    def _side(self, side: str) -> BookSide:
        return self._bids if side == "buy" else self._asks

    def _insert(self, entry: Entry) -> None:
        order = entry[_ORDER]
        side = self._bids if order.side == "buy" else self._asks
        price = entry[_PRICE]
        level = side.levels.get(price)
        if level is None:
            level = side.levels[price] = Level()
            insort(side.keys, price * side.sign)
        level.orders.append(entry)
        level.live += 1
        level.lots += entry[_LOTS]
        self._index[entry[_OID]] = entry
        if order.expire_at_ns is not None:
            heapq.heappush(self._expiries, (order.expire_at_ns, entry[_SEQ], entry))

    def _remove(self, entry: Entry) -> None:
        side = self._bids if entry[_ORDER].side == "buy" else self._asks
        price = entry[_PRICE]
        level = side.levels[price]
        level.live -= 1
        level.lots -= entry[_LOTS]
        entry[_LOTS] = 0
        del self._index[entry[_OID]]
        if not level.live:
            _drop_level(side, price)
        elif len(level.orders) > 2 * level.live + 16:
            level.orders = deque(x for x in level.orders if x[_LOTS])


_SPEC_FIELDS = fields(InstrumentSpec)


def _rest_seq(entry: Entry) -> int:
    seq: int = entry[_SEQ]
    return seq


def _queued(side: BookSide) -> Iterator[Entry]:
    """Live entries by ascending level key, each level in time priority (snapshot order)."""
    for key in side.keys:
        for entry in side.levels[key * side.sign].orders:
            if entry[_LOTS]:
                yield entry


def _drop_level(side: BookSide, price: int) -> None:
    del side.levels[price]
    keys = side.keys
    key = price * side.sign
    if keys[-1] == key:
        keys.pop()
    else:
        del keys[bisect_left(keys, key)]


_APPLY: dict[type[TradingEvent], Callable[[OrderBook, Any], None]] = {
    InstrumentListed: OrderBook._on_listed,
    InstrumentHalted: OrderBook._on_halted,
    InstrumentResumed: OrderBook._on_resumed,
    InstrumentClosed: OrderBook._on_closed,
    OrderAccepted: OrderBook._on_accepted,
    TradeExecuted: OrderBook._on_trade,
    OrderRested: OrderBook._on_rested,
    OrderReduced: OrderBook._on_reduced,
    OrderAmended: OrderBook._on_amended,
    OrderCancelled: OrderBook._on_cancelled,
    OrderExpired: OrderBook._on_expired,
}
