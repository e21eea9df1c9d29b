"""Any order stream on a ledger-settled instrument keeps the ledger whole and every asset's sum."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import errors as le
from domain.ledger.account import Account
from domain.trading import errors as e
from domain.trading import venue
from domain.trading.holds import OrderHold
from domain.trading.orders import NewOrder
from tests.unit.domain.trading.venue_support import (
    ALICE,
    BOB,
    T0,
    book_of,
    funded_venue,
    totals_by_currency,
)

TRADERS = st.sampled_from([ALICE, BOB])
ORDER = st.tuples(
    st.just("place"),
    TRADERS,
    st.sampled_from(["buy", "sell"]),
    st.sampled_from(["gtc", "gtc", "gtc", "gtc", "gtc", "ioc", "fok", "market", "budget", "post"]),
    st.integers(95, 105),
    st.integers(1, 150),
    st.sampled_from(["none", "cancel_newest", "cancel_oldest", "decrement"]),
)
MAINTENANCE = st.one_of(
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("reduce"), st.integers(0, 30), st.integers(0, 300)),
    st.tuples(st.just("amend"), st.integers(0, 30), st.integers(95, 105), st.integers(1, 500)),
    st.tuples(st.just("mass_cancel"), TRADERS),
)
# seven orders for every three cancels, reductions, amendments or mass cancels
COMMAND = st.tuples(st.integers(0, 9), ORDER, MAINTENANCE).map(lambda t: t[1] if t[0] < 7 else t[2])
# what each trader and the venue hold of each currency, in minor units, outside the banks
WATCHED = {"USD": (10, 20, 91, 92), "EUR": (11, 21, 90)}


def _order(oid: int, command: tuple[Any, ...]) -> NewOrder:
    _, trader, side, kind, price, lots, stp = command
    fields: dict[str, Any] = {"self_trade_prevention": stp}
    if kind == "market":
        return NewOrder(oid, trader, side, None, lots, "market", "ioc", **fields)
    if kind == "budget":
        return NewOrder(
            oid, trader, "buy", None, None, "market", "ioc", quote_quantity=price * lots, **fields
        )
    if kind == "post":
        fields.update(post_only=True, post_only_reprice=True)
        kind = "gtc"
    return NewOrder(oid, trader, side, price, lots, time_in_force=kind, **fields)


@settings(max_examples=60, deadline=None)
@given(st.lists(COMMAND, min_size=20, max_size=60))
def test_every_asset_is_conserved_and_the_ledger_balances_at_every_step(
    stream: list[tuple[Any, ...]],
) -> None:
    src = funded_venue(usd_cents=60_000, eur_cents=60_000)
    watched_total = {c: _sum(src, ids) for c, ids in WATCHED.items()}
    oid = 0
    for command in stream:
        if command[0] == "place":
            oid += 1
        with contextlib.suppress(e.TradingRejection, le.LedgerRejection):
            src.run(lambda s, c=command, o=oid: _execute(s, c, o))
        book_of(src).check_integrity()
        # the ledger balances, per currency, pending and posted
        for dp, dpo, cp, cpo in totals_by_currency(src).values():
            assert (dp, dpo) == (cp, cpo)
        # trading only moves money between the traders and the venue: each sum is unchanged
        assert {c: _sum(src, ids) for c, ids in WATCHED.items()} == watched_total
        # the hold accounts hold exactly the open holds, and nothing posted
        open_holds = {"USD": 0, "EUR": 0}
        for agg in src.committed.values():
            if isinstance(agg, OrderHold) and agg.open:
                open_holds[agg.currency] += agg.amount_minor
                assert book_of(src).order(agg.order_id) is not None, "only resting orders hold"
        for account_id, currency in ((90, "EUR"), (91, "USD")):
            acc = src.committed[f"account:{account_id}"]
            assert isinstance(acc, Account)
            assert acc.credits_posted == acc.debits_posted
            assert acc.credits_pending == open_holds[currency]
        # every resting order holds what it needs
        for rest in book_of(src).resting():
            h = src.committed[f"hold:{rest.order_id}"]
            assert isinstance(h, OrderHold) and h.open
            need = venue._need(
                book_of(src).instrument, rest.side, rest.price_ticks, rest.remaining_lots
            )  # type: ignore[arg-type]
            assert h.amount_minor >= need


def _execute(src: Any, command: tuple[Any, ...], oid: int) -> None:
    book = book_of(src)
    kind = command[0]
    if kind == "place":
        venue.place(src, book, _order(oid, command), T0)
        return
    if kind == "mass_cancel":
        venue.cancel_all(src, book, T0, command[1])
        return
    live = sorted(o.order_id for o in book.resting())
    if not live:
        return
    target = live[command[1] % len(live)]
    owner = book.order(target).account_id  # type: ignore[union-attr]
    if kind == "cancel":
        venue.cancel(src, book, target, owner, T0)
    elif kind == "reduce":
        venue.reduce(src, book, target, owner, T0, reduce_to=command[2])
    else:
        venue.amend(src, book, target, owner, T0, price_ticks=command[2], quantity_lots=command[3])


def _sum(src: Any, account_ids: tuple[int, ...]) -> int:
    total = 0
    for account_id in account_ids:
        acc = src.committed[f"account:{account_id}"]
        total += acc.credits_posted - acc.debits_posted
    return total
