"""The trading venue over HTTP, against a real server, a real database and the ledger."""

from __future__ import annotations

import concurrent.futures
import json
import random
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from commands import trading as tc
from domain.trading.book import OrderBook
from domain.trading.events import TradeExecuted, decode_event
from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem, transfer

FX = {"tick_size": "0.0001", "lot_size": "1000", "maker_fee_bps": 1, "taker_fee_bps": 3}


def instrument(
    c: httpx.Client, instrument_id: int, symbol: str, base: str, quote: str, **kw: Any
) -> dict[str, Any]:
    r = c.post(
        "/v1/instruments",
        json={
            "id": instrument_id,
            "symbol": symbol,
            "base_asset": base,
            "quote_asset": quote,
            **FX,
            **kw,
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def place(
    c: httpx.Client,
    oid: int,
    instrument_id: int,
    account_id: int,
    side: str,
    price: str | None,
    quantity: str | None,
    **kw: Any,
) -> httpx.Response:
    body = {
        "id": oid,
        "instrument_id": instrument_id,
        "account_id": account_id,
        "side": side,
        "price": price,
        "quantity": quantity,
        **kw,
    }
    return c.post("/v1/orders", json={k: v for k, v in body.items() if v is not None})


def ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


def balance(c: httpx.Client, account_id: int, position: int) -> Decimal:
    b = c.get(f"/v1/accounts/{account_id}", params={"min_position": position}).json()["balances"]
    return Decimal(b["credits_posted"]) - Decimal(b["debits_posted"])


# ------------------------------------------------------------------ a trading day


@pytest.fixture
def venue(server: Server) -> Server:
    """Ledger 1: banks 1 (USD) 2 (EUR) 3 (GBP); traders 100 (accounts 10-12) and 200 (20-22)
    funded 100,000 of each; the venue's holds 90 (EUR) 91 (USD) 93 (GBP) and fees 92 (USD);
    EUR/USD (1) and GBP/USD (2) settle into the ledger."""
    with server.client() as c:
        for account_id, currency in ((1, "USD"), (2, "EUR"), (3, "GBP")):
            account(c, account_id, currency)
        for account_id, currency in (
            (10, "USD"),
            (11, "EUR"),
            (12, "GBP"),
            (20, "USD"),
            (21, "EUR"),
            (22, "GBP"),
            (90, "EUR"),
            (91, "USD"),
            (92, "USD"),
            (93, "GBP"),
        ):
            account(c, account_id, currency, debits_must_not_exceed_credits=True)
        tid = 1
        for trader in (10, 20):
            for offset, bank in enumerate((1, 2, 3)):
                assert transfer(c, tid, bank, trader + offset, "100000.00").status_code == 201
                tid += 1
        for trader, first in ((100, 10), (200, 20)):
            for offset, asset in enumerate(("USD", "EUR", "GBP")):
                ok(
                    c.put(
                        f"/v1/trading-accounts/{trader}/ledger-accounts/{asset}",
                        json={"ledger_account_id": first + offset},
                    ),
                    200,
                )
        ledger = {
            "settlement": "ledger",
            "ledger": 1,
            "quote_hold_account_id": 91,
            "fee_account_id": 92,
        }
        instrument(c, 1, "EUR/USD", "EUR", "USD", base_hold_account_id=90, **ledger)
        instrument(c, 2, "GBP/USD", "GBP", "USD", base_hold_account_id=93, **ledger)
    return server


def test_a_trading_day_on_two_instruments_settles_into_the_ledger_and_the_trial_balance_holds(
    venue: Server,
) -> None:
    with venue.client() as c:
        # EUR/USD: Bob (200) offers, Alice (100) lifts, partly; fees 1 bp maker, 3 bp taker
        ok(place(c, 1, 1, 200, "sell", "1.0850", "10000"))
        ok(place(c, 2, 1, 200, "sell", "1.0852", "5000"))
        lift = ok(place(c, 3, 1, 100, "buy", "1.0851", "12000"))
        assert lift["status"] == "partially_filled"
        assert lift["trades"] == [
            {"trade_id": 5, "maker_order_id": 1, "price": "1.0850", "quantity": "10000"}
        ]
        assert (lift["filled_quantity"], lift["open_quantity"], lift["price"]) == (
            "10000",
            "2000",
            "1.0851",
        )
        # GBP/USD: Alice sells at market into Bob's bids, then Bob cancels the rest
        ok(place(c, 10, 2, 200, "buy", "1.2700", "3000"))
        ok(place(c, 11, 2, 200, "buy", "1.2698", "3000"))
        hit = ok(place(c, 12, 2, 100, "sell", None, "4000", type="market", time_in_force="ioc"))
        assert [t["price"] for t in hit["trades"]] == ["1.2700", "1.2698"] and hit[
            "status"
        ] == "filled"
        cancelled = ok(c.delete("/v1/orders/11", params={"account_id": 200}), 200)
        assert cancelled["status"] == "cancelled" and cancelled["open_quantity"] == "0"
        # Alice raises her EUR bid (loses priority, trades at once with Bob's 1.0852)
        amended = ok(c.patch("/v1/orders/3", json={"account_id": 100, "price": "1.0852"}), 200)
        assert amended["trades"] == [
            {
                "trade_id": amended["trades"][0]["trade_id"],
                "maker_order_id": 2,
                "price": "1.0852",
                "quantity": "2000",
            }
        ]
        position = amended["position"]
        # the ledger: notionals move, fees accrue, the hold accounts net to nothing
        eur_usd = Decimal("1.0850") * 10000 + Decimal("1.0852") * 2000
        gbp_usd = Decimal("1.2700") * 3000 + Decimal("1.2698") * 1000
        taker_fee = sum(
            _fee(x, 3)
            for x in (
                Decimal("1.0850") * 10000,
                Decimal("1.0852") * 2000,
                Decimal("1.2700") * 3000,
                Decimal("1.2698") * 1000,
            )
        )
        maker_fee = sum(
            _fee(x, 1)
            for x in (
                Decimal("1.0850") * 10000,
                Decimal("1.0852") * 2000,
                Decimal("1.2700") * 3000,
                Decimal("1.2698") * 1000,
            )
        )
        assert balance(c, 11, position) == Decimal("100000.00") + 12000
        assert balance(c, 21, position) == Decimal("100000.00") - 12000
        assert balance(c, 12, position) == Decimal("100000.00") - 4000
        assert balance(c, 22, position) == Decimal("100000.00") + 4000
        alice_fees = (
            _fee(Decimal("1.0850") * 10000, 3)
            + _fee(Decimal("1.2700") * 3000, 3)
            + _fee(Decimal("1.2698") * 1000, 3)
            + _fee(Decimal("1.0852") * 2000, 3)
        )
        bob_fees = (
            _fee(Decimal("1.0850") * 10000, 1)
            + _fee(Decimal("1.0852") * 2000, 1)
            + _fee(Decimal("1.2700") * 3000, 1)
            + _fee(Decimal("1.2698") * 1000, 1)
        )
        assert balance(c, 10, position) == Decimal("100000.00") - eur_usd + gbp_usd - alice_fees
        assert balance(c, 20, position) == Decimal("100000.00") + eur_usd - gbp_usd - bob_fees
        assert balance(c, 92, position) == taker_fee + maker_fee
        for hold in (90, 91, 93):
            assert balance(c, hold, position) == 0
        # Bob's remaining EUR offer (5000 - 2000 at 1.0852) still holds his euros
        acc21 = c.get("/v1/accounts/21").json()["balances"]
        assert Decimal(acc21["debits_pending"]) == 3000
        tb = c.get("/v1/ledgers/1/trial-balance", params={"min_position": position}).json()
        assert tb["lines"] and all(line["balanced"] for line in tb["lines"])
        # the read models: depth, tape, orders, candles
        book = ok(
            c.get("/v1/instruments/1/book", params={"depth": 5, "min_position": position}), 200
        )
        assert book["asks"] == [["1.0852", "3000", 1]] and book["bids"] == []
        tape = ok(c.get("/v1/instruments/1/trades", params={"limit": 1}), 200)
        assert tape["items"][0]["price"] == "1.0852" and tape["next_cursor"] is not None
        older = ok(c.get("/v1/instruments/1/trades", params={"cursor": tape["next_cursor"]}), 200)
        assert [t["price"] for t in older["items"]] == ["1.0850"]
        order3 = ok(c.get("/v1/orders/3"), 200)
        assert (order3["status"], order3["filled_quantity"], order3["open_quantity"]) == (
            "filled",
            "12000",
            "0",
        )
        open_bob = ok(c.get("/v1/accounts/200/orders", params={"status": "open"}), 200)
        assert [o["id"] for o in open_bob["items"]] == [2]  # resting, partially filled or not
        partly = ok(c.get("/v1/accounts/200/orders", params={"status": "partially_filled"}), 200)
        assert [o["id"] for o in partly["items"]] == [2]
        candles = ok(c.get("/v1/instruments/1/candles", params={"interval": "1m"}), 200)
        total = sum(Decimal(k["volume"]) for k in candles["candles"])
        assert total == 12000 and candles["candles"][0]["open"] == "1.0850"
        instrument1 = ok(c.get("/v1/instruments/1"), 200)
        assert instrument1["last_price"] == "1.0852" and instrument1["settlement"] == "ledger"


def _fee(notional_usd: Decimal, bps: int) -> Decimal:
    cents = int(notional_usd * 100) * bps // 10_000
    return Decimal(cents) / 100


def test_an_order_the_funds_cannot_cover_is_refused_and_holds_nothing(venue: Server) -> None:
    with venue.client() as c:
        r = place(c, 1, 1, 100, "buy", "2.0000", "60000")  # 120,000 USD > 100,000
        body = assert_problem(r, 409, "insufficient_funds")
        assert body["ledger_account_id"] == 10
        assert Decimal(c.get("/v1/accounts/10").json()["balances"]["debits_pending"]) == 0
        assert_problem(place(c, 1, 1, 100, "buy", "2.0000", "60000"), 409, "insufficient_funds")
        assert_problem(place(c, 1, 1, 100, "buy", "1.0000", "1000"), 409, "id_already_failed")
        assert_problem(place(c, 2, 1, 999, "buy", "1.0000", "1000"), 409, "account_not_linked")


# ------------------------------------------------------------------ bad input


@pytest.fixture
def plain(server: Server) -> Server:
    with server.client() as c:
        instrument(c, 1, "EUR/USD", "EUR", "USD")
        instrument(c, 2, "GBP/USD", "GBP", "USD")
        ok(c.post("/v1/instruments/2/halt"), 200)
    return server


BAD_ORDERS = [
    ({"instrument_id": 77, "price": "1.0850", "quantity": "1000"}, 409, "instrument_not_found"),
    ({"instrument_id": 2, "price": "1.0850", "quantity": "1000"}, 409, "instrument_halted"),
    ({"instrument_id": 1, "price": "1.08505", "quantity": "1000"}, 409, "price_not_on_tick"),
    ({"instrument_id": 1, "price": "1.0850", "quantity": "1500"}, 409, "quantity_not_on_lot"),
    (
        {"instrument_id": 1, "price": "-1.0850", "quantity": "1000"},
        409,
        "price_must_be_positive",
    ),
    (
        {"instrument_id": 1, "price": "1.0850", "quantity": "0"},
        409,
        "quantity_must_be_positive",
    ),
    (
        {"instrument_id": 1, "price": "1.0850", "quantity": "1000", "quote_quantity": "5000"},
        409,
        "quote_quantity_not_allowed",
    ),
    (
        {
            "instrument_id": 1,
            "price": "1.0850",
            "quantity": "1000",
            "quote_quantity": "5000",
            "time_in_force": "gtd",
            "expire_at": "2099-01-01T00:00:00Z",
        },
        409,
        "quote_quantity_not_allowed",
    ),
    (
        {"instrument_id": 1, "price": "1.0850", "quantity": "1000", "time_in_force": "gtd"},
        409,
        "expire_at_required",
    ),
    (
        {"instrument_id": 1, "price": "1.0850", "quantity": "1000", "side": "hold"},
        409,
        "invalid_side",
    ),
    (
        {"instrument_id": 1, "quantity": "1000", "type": "market"},
        409,
        "market_order_cannot_rest",
    ),
    ({"instrument_id": 1, "price": "abc", "quantity": "1000"}, 409, "invalid_price"),
]


def test_bad_orders_get_a_named_problem_and_change_nothing(plain: Server) -> None:
    with plain.client() as c:
        before = c.get("/v1/instruments/1/book").json()
        for n, (body, status, code) in enumerate(BAD_ORDERS, start=1):
            r = c.post("/v1/orders", json={"id": n, "account_id": 7, "side": "buy", **body})
            assert_problem(r, status, code)
            assert c.get("/v1/instruments/1/book").json() == before, code


def test_ids_are_integers_or_canonical_decimal_strings(plain: Server) -> None:
    with plain.client() as c:
        for bad_id in (True, 1.5, "01", "-3", "1e3", "0x10"):
            r = c.post(
                "/v1/orders",
                json={
                    "id": bad_id,
                    "instrument_id": 1,
                    "account_id": 7,
                    "side": "buy",
                    "price": "1",
                    "quantity": "1000",
                },
            )
            assert_problem(r, 422, "invalid_request")
        good = c.post(
            "/v1/orders",
            json={
                "id": "12345678901234567890123",
                "instrument_id": "1",
                "account_id": 7,
                "side": "buy",
                "price": "1",
                "quantity": "1000",
            },
        )
        assert good.status_code == 201, good.text
        assert good.json()["id"] == 12345678901234567890123
        reserved = c.post(
            "/v1/orders",
            json={
                "id": str(2**128 - 1),
                "instrument_id": 1,
                "account_id": 7,
                "side": "buy",
                "price": "1",
                "quantity": "1000",
            },
        )
        assert_problem(reserved, 409, "id_must_not_be_int_max")


def test_a_batch_of_ten_thousand_with_one_bad_order_is_refused_whole(plain: Server) -> None:
    orders = [
        {
            "id": 1000 + n,
            "instrument_id": 1,
            "account_id": 1 + n % 50,
            "side": "buy" if n % 2 else "sell",
            "price": f"{1.0 + (n % 40) / 1000 + (0.1 if n % 2 == 0 else 0):.4f}",
            "quantity": "1000",
        }
        for n in range(10_000)
    ]
    orders[7_777] = {**orders[7_777], "price": "1.00001"}
    with plain.client() as c:
        r = c.post("/v1/order-batches", json={"orders": orders})
        body = assert_problem(r, 409, "invalid_batch")
        assert body["invalid"] == 1 and body["errors"][0]["index"] == 7777
        assert body["errors"][0]["code"] == "price_not_on_tick"
        assert c.get("/v1/instruments/1/book").json()["bids"] == []
        assert c.get("/v1/instruments/1").json()["sequence"] == 1
        assert_problem(c.get("/v1/orders/1000"), 404, "order_not_found")
        # and a good batch: per-item outcomes, business rejections per item
        small = [*orders[:50], {**orders[0], "id": 5000, "instrument_id": 2}]
        done = ok(c.post("/v1/order-batches", json={"orders": small}))
        statuses = [i["status"] for i in done["results"]]
        assert statuses[:50] == ["accepted"] * 50 and statuses[50] == "instrument_halted"
        book = ok(
            c.get(
                "/v1/instruments/1/book", params={"min_position": done["position"], "depth": 100}
            ),
            200,
        )
        assert sum(Decimal(q) for _, q, _ in book["bids"]) == 25 * 1000


def test_cancel_reduce_amend_and_mass_cancel_answer_order_not_found_for_other_accounts(
    plain: Server,
) -> None:
    with plain.client() as c:
        ok(place(c, 1, 1, 7, "buy", "1.0000", "5000"))
        ok(place(c, 2, 1, 7, "sell", "1.2000", "3000"))
        ok(place(c, 3, 1, 8, "sell", "1.3000", "1000"))
        assert_problem(c.delete("/v1/orders/1", params={"account_id": 8}), 404, "order_not_found")
        assert_problem(
            c.patch("/v1/orders/1", json={"account_id": 8, "quantity": "1000"}),
            404,
            "order_not_found",
        )
        assert_problem(
            c.delete("/v1/orders/424242", params={"account_id": 7}), 404, "order_not_found"
        )
        reduced = ok(c.patch("/v1/orders/1", json={"account_id": 7, "reduce_by": "2000"}), 200)
        assert reduced["open_quantity"] == "3000"
        assert_problem(
            c.patch("/v1/orders/1", json={"account_id": 7, "quantity": "1500"}),
            409,
            "quantity_not_on_lot",
        )
        mass = ok(c.post("/v1/accounts/7/orders/cancel-all"), 200)
        assert mass["cancelled"] == 2 and mass["instruments"] == [1]
        book = ok(c.get("/v1/instruments/1/book", params={"min_position": mass["position"]}), 200)
        assert (book["bids"], book["asks"]) == ([], [["1.3000", "1000", 1]])


def test_halt_resume_and_the_instrument_rules(plain: Server) -> None:
    with plain.client() as c:
        assert_problem(c.post("/v1/instruments/2/halt"), 409, "instrument_halted")
        assert ok(c.post("/v1/instruments/2/resume"), 200)["status"] == "open"
        assert_problem(c.post("/v1/instruments/2/resume"), 409, "instrument_not_halted")
        r = c.post(
            "/v1/instruments",
            json={
                "id": 9,
                "symbol": "X",
                "base_asset": "X",
                "quote_asset": "Y",
                "tick_size": "0",
                "lot_size": "1",
            },
        )
        assert_problem(r, 409, "invalid_tick_size")
        again = c.post(
            "/v1/instruments",
            json={"id": 1, "symbol": "EUR/USD", "base_asset": "EUR", "quote_asset": "USD", **FX},
        )
        assert again.status_code == 200
        assert_problem(
            c.post(
                "/v1/instruments",
                json={"id": 1, "symbol": "OTHER", "base_asset": "EUR", "quote_asset": "USD", **FX},
            ),
            409,
            "exists_with_different_payload",
        )
    with plain.client("auditor") as auditor:
        assert_problem(auditor.post("/v1/orders", json={}), 403, "forbidden")
        assert auditor.get("/v1/instruments/1/book").status_code == 200


def test_the_stream_sends_a_snapshot_then_updates_and_resumes_from_a_sequence(
    plain: Server,
) -> None:
    with plain.client() as c:
        ok(place(c, 1, 1, 7, "sell", "1.1000", "5000"))
        last = ok(place(c, 2, 1, 8, "buy", "1.1000", "2000"))
        c.get("/v1/instruments/1/book", params={"min_position": last["position"]})
        events = _sse(c, "/v1/instruments/1/stream", {"idle_timeout_s": 0.3})
        assert events[0][0] == "snapshot" and events[0][2]["asks"] == [["1.1000", "3000", 1]]
        replayed = _sse(c, "/v1/instruments/1/stream", {"since": 0, "idle_timeout_s": 0.3})
        assert [(k, s) for k, s, _ in replayed] == [("level", 2), ("trade", 4), ("level", 4)]
        assert replayed[1][2]["price"] == "1.1000" and replayed[2][2]["quantity"] == "3000"
        resumed = _sse(c, "/v1/instruments/1/stream", {"idle_timeout_s": 0.3}, last_event_id="2")
        assert [(k, s) for k, s, _ in resumed] == [("trade", 4), ("level", 4)]
        # a plain HTTP client gets what is there and the end; an EventSource stays subscribed
        plain_get = c.get("/v1/instruments/1/stream", params={"since": 3})
        assert plain_get.status_code == 200 and plain_get.text.count("\n\n") == 2

        def another_order() -> None:
            with plain.client() as other:
                place(other, 3, 1, 9, "sell", "1.2000", "1000")

        live = _sse(
            c,
            "/v1/instruments/1/stream",
            {"since": 4, "max_events": 1},
            accept="text/event-stream",
            then=another_order,
        )
        assert live == [
            (
                "level",
                5,
                {
                    "sequence": 5,
                    "side": "sell",
                    "price": "1.2000",
                    "quantity": "1000",
                    "order_count": 1,
                },
            )
        ]


def _sse(
    c: httpx.Client,
    path: str,
    params: dict[str, Any],
    last_event_id: str | None = None,
    accept: str | None = None,
    then: Any = None,
) -> list[tuple[str, int, dict[str, Any]]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    if accept:
        headers["Accept"] = accept
    if then is not None:  # something happens while the feed is open
        threading.Timer(0.5, then).start()
    out: list[tuple[str, int, dict[str, Any]]] = []
    with c.stream("GET", path, params=params, headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in r.iter_lines():
            if not line:
                if event:
                    out.append((event["event"], int(event["id"]), json.loads(event["data"])))
                event = {}
                continue
            key, _, value = line.partition(": ")
            event[key] = value
    return out


# ------------------------------------------------------------------ concurrency


def test_thirty_two_clients_on_one_book_lose_and_duplicate_no_trade_and_the_book_equals_replay(
    plain: Server,
) -> None:
    def client_run(n: int) -> list[dict[str, Any]]:
        rng = random.Random(n)
        results = []
        with plain.client() as c:
            for k in range(20):
                side = rng.choice(["buy", "sell"])
                price = f"{1.1 + rng.randint(-5, 5) / 10000:.4f}"
                r = place(
                    c,
                    n * 1000 + k + 1,
                    1,
                    n + 1,
                    side,
                    price,
                    str(rng.randint(1, 5) * 1000),
                    self_trade_prevention="none",
                )
                assert r.status_code == 201, r.text
                results.append(r.json())
        return results

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = [o for batch in pool.map(client_run, range(32)) for o in batch]
    store = plain.runtime.store
    events = store.recorder.read_streams(["book:1"])["book:1"]
    trades = [
        decode_event(e.topic, json.loads(e.payload))
        for e in events
        if e.topic == TradeExecuted.TOPIC
    ]
    assert trades
    ids = [t.seq for t in trades]
    assert len(ids) == len(set(ids))
    # every trade a client was told about is in the log exactly once, and vice versa
    told = sorted(t["trade_id"] for o in results for t in o["trades"])
    assert told == sorted(ids)
    live = plain.runtime.processor.cache.get("book:1")
    replayed = tc.rebuild(None, events)
    assert isinstance(live, OrderBook) and isinstance(replayed, OrderBook)
    assert replayed.to_snapshot() == live.to_snapshot()
    head = max(o["position"] for o in results)
    with plain.client() as c:
        book = ok(
            c.get("/v1/instruments/1/book", params={"depth": 1000, "min_position": head}), 200
        )
        tape = []
        cursor = None
        while True:
            page = ok(
                c.get(
                    "/v1/instruments/1/trades",
                    params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                ),
                200,
            )
            tape += [t["trade_id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    bids, asks = replayed.depth()
    instrument = replayed.instrument
    assert instrument is not None
    assert book["bids"] == [
        [instrument.ticks_to_price(p), instrument.lots_to_quantity(q), n] for p, q, n in bids
    ]
    assert book["asks"] == [
        [instrument.ticks_to_price(p), instrument.lots_to_quantity(q), n] for p, q, n in asks
    ]
    assert sorted(tape) == sorted(ids)
