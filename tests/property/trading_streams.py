"""Random command streams over a narrow price band, and a naive model to check books against."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from domain.trading import errors as e
from domain.trading.book import OrderBook
from domain.trading.events import (
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderReduced,
    OrderRested,
    TradeExecuted,
    TradingEvent,
)
from domain.trading.instrument import InstrumentSpec
from domain.trading.orders import NewOrder

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
PRICES = st.integers(97, 103)
ACCOUNTS = st.integers(1, 3)
LOTS = st.integers(1, 20)
STP = st.sampled_from([None, "none", "cancel_newest", "cancel_oldest", "cancel_both", "decrement"])


@st.composite
def place(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(
        st.sampled_from(["gtc", "gtc", "gtc", "gtd", "ioc", "fok", "market", "budget", "post"])
    )
    side = draw(st.sampled_from(["buy", "sell"]))
    fields: dict[str, Any] = {"side": side, "self_trade_prevention": draw(STP)}
    if kind in ("gtc", "gtd", "ioc", "fok", "post"):
        fields.update(price_ticks=draw(PRICES), quantity_lots=draw(LOTS))
        fields["time_in_force"] = {"post": "gtc"}.get(kind, kind)
    if kind == "gtd":
        fields["expire_at_ns"] = draw(st.integers(1, 6))  # steps after now, made absolute later
    if kind == "fok" and draw(st.booleans()):
        fields["quote_quantity"] = draw(st.integers(50, 2500))
    if kind == "post":
        fields.update(post_only=True, post_only_reprice=draw(st.booleans()))
    if kind == "market":
        fields.update(order_type="market", time_in_force="ioc", quantity_lots=draw(LOTS))
    if kind == "budget":
        fields.update(order_type="market", time_in_force="ioc", side="buy")
        fields["quote_quantity"] = draw(st.integers(50, 3000))
    return ("place", draw(ACCOUNTS), fields)


# 0..15 pick a live order (k-th by id, modulo how many rest); 16..20 are raw ids (often gone)
TARGETS = st.integers(0, 20)
WHO = st.one_of(st.none(), st.none(), st.none(), ACCOUNTS)  # None: the order's own account
COMMAND = st.one_of(
    place(),
    place(),
    place(),
    place(),
    st.tuples(st.just("cancel"), TARGETS, WHO),
    st.tuples(st.just("reduce"), TARGETS, WHO, st.booleans(), st.integers(0, 12)),
    st.tuples(
        st.just("amend"),
        TARGETS,
        WHO,
        st.one_of(st.none(), PRICES),
        st.one_of(st.none(), LOTS),
    ),
    st.tuples(st.just("cancel_all"), st.one_of(st.none(), ACCOUNTS)),
    st.tuples(
        st.just("expire"),
    ),
    st.tuples(st.just("time"), st.integers(1, 3)),
)
STREAMS = st.lists(COMMAND, min_size=8, max_size=80)


def spec(stp: str = "cancel_newest", **kw: Any) -> InstrumentSpec:
    return InstrumentSpec(1, "PROP", "AAA", "BBB", "1", "1", self_trade_prevention=stp, **kw)


@dataclass
class Run:
    """A stream applied to a book: the events of each command and the orders placed."""

    book: OrderBook
    per_command: list[list[TradingEvent]] = field(default_factory=list)
    orders: dict[int, NewOrder | None] = field(default_factory=dict)
    rejected: int = 0

    @property
    def events(self) -> list[TradingEvent]:
        return [ev for batch in self.per_command for ev in batch]


def apply(stream: list[tuple[Any, ...]], **spec_kw: Any) -> Run:
    """Run ``stream`` on a fresh book, checking after every command that it is sound."""
    book = OrderBook.list_instrument(spec(**spec_kw), T0)
    run = Run(book, [book.collect_events()])
    now = T0
    for command in stream:
        if command[0] == "time":
            now += command[1] * S
            continue
        version = book.version
        try:
            _execute(run, command, now)
        except e.TradingRejection:
            assert book.version == version and book.uncommitted() == [], "a rejection changed it"
            run.rejected += 1
        run.per_command.append(book.collect_events())
        book.check_integrity()
    return run


def _execute(run: Run, command: tuple[Any, ...], now: int) -> None:
    book, kind = run.book, command[0]
    if kind in ("cancel", "reduce", "amend"):
        target = command[1]
        live = sorted(o.order_id for o in book.resting())
        if target < 16 and live:
            target = live[target % len(live)]
        placed = run.orders.get(target)
        owner = placed.account_id if placed else 1
        command = (kind, target, owner if command[2] is None else command[2], *command[3:])
    if kind == "place":
        fields = dict(command[2])
        if "expire_at_ns" in fields:
            fields["expire_at_ns"] = now + fields["expire_at_ns"] * S
        oid = len(run.orders) + 1
        run.orders[oid] = None  # the id is used even if the order is refused
        new = NewOrder(oid, command[1], **fields)
        run.orders[oid] = new
        book.place(new, now)
    elif kind == "cancel":
        book.cancel(command[1], command[2], now)
    elif kind == "reduce":
        how = "reduce_to" if command[3] else "reduce_by"
        book.reduce(command[1], command[2], now, **{how: command[4]})
    elif kind == "amend":
        book.amend(command[1], command[2], now, price_ticks=command[3], quantity_lots=command[4])
    elif kind == "cancel_all":
        book.cancel_all(now, command[1])
    else:
        book.expire(now)


class NaiveBook:
    """Resting orders as a plain list, driven by the events, checking every trade's priority."""

    def __init__(self) -> None:
        self.rest: dict[int, list[Any]] = {}  # id -> [side, price, seq, lots]
        self.limit: dict[int, int | None] = {}
        self.filled: defaultdict[int, int] = defaultdict(int)
        self.gone: defaultdict[int, int] = defaultdict(int)  # cancelled, reduced, expired
        self.asked: defaultdict[int, int] = defaultdict(int)  # accepted + amendments' increases
        self.spent: defaultdict[int, int] = defaultdict(int)
        self.sides: dict[int, str] = {}

    def best(self, side: str) -> int | None:
        mine = [(p, s, oid) for oid, (sd, p, s, _) in self.rest.items() if sd == side]
        if not mine:
            return None
        chosen = min(mine, key=lambda x: (-x[0] if side == "buy" else x[0], x[1]))
        return chosen[2]

    def apply(self, ev: TradingEvent) -> None:
        if isinstance(ev, OrderAccepted):
            o = ev.order
            self.sides[o.order_id] = o.side
            self.limit[o.order_id] = o.price_ticks
            self.asked[o.order_id] += o.quantity_lots or 0
            if ev.rested_lots:
                assert ev.rested_lots == o.quantity_lots
                self.rest[o.order_id] = [o.side, o.price_ticks, ev.seq, ev.rested_lots]
        elif isinstance(ev, TradeExecuted):
            maker_side = "sell" if ev.aggressor_side == "buy" else "buy"
            assert ev.maker_order_id == self.best(maker_side), "price-time priority"
            maker = self.rest[ev.maker_order_id]
            assert maker[1] == ev.price_ticks, "the trade is at the maker's price"
            limit = self.limit[ev.taker_order_id]
            if limit is not None:
                assert (
                    ev.price_ticks <= limit
                    if ev.aggressor_side == "buy"
                    else ev.price_ticks >= limit
                )
            assert 0 < ev.quantity_lots <= maker[3]
            maker[3] -= ev.quantity_lots
            assert maker[3] == ev.maker_remaining_lots
            if not maker[3]:
                del self.rest[ev.maker_order_id]
            self.filled[ev.maker_order_id] += ev.quantity_lots
            self.filled[ev.taker_order_id] += ev.quantity_lots
            self.spent[ev.taker_order_id] += ev.quantity_lots * ev.price_ticks
        elif isinstance(ev, OrderRested):
            self.rest[ev.order_id] = [ev.side, ev.price_ticks, ev.seq, ev.quantity_lots]
        elif isinstance(ev, OrderReduced):
            self.gone[ev.order_id] += ev.reduced_by_lots
            if ev.rested:
                entry = self.rest[ev.order_id]
                assert entry[3] - ev.reduced_by_lots == ev.remaining_lots
                entry[3] = ev.remaining_lots
                if not entry[3]:
                    del self.rest[ev.order_id]
        elif isinstance(ev, OrderAmended):
            entry = self.rest.pop(ev.order_id)
            assert (entry[1], entry[3]) == (ev.old_price_ticks, ev.old_remaining_lots)
            self.asked[ev.order_id] += ev.quantity_lots - ev.old_remaining_lots
            self.limit[ev.order_id] = ev.price_ticks
        elif isinstance(ev, OrderCancelled | OrderExpired):
            self.gone[ev.order_id] += ev.quantity_lots
            if isinstance(ev, OrderExpired) or ev.rested:
                entry = self.rest.pop(ev.order_id)
                assert entry[3] == ev.quantity_lots

    def resting(self) -> list[tuple[int, str, int, int]]:
        bids = sorted(
            (x for x in self.rest.items() if x[1][0] == "buy"), key=lambda x: (-x[1][1], x[1][2])
        )
        asks = sorted(
            (x for x in self.rest.items() if x[1][0] == "sell"), key=lambda x: (x[1][1], x[1][2])
        )
        return [(oid, v[0], v[1], v[3]) for oid, v in bids + asks]
