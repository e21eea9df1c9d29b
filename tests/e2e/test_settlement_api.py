"""Clearing and settlement over HTTP, against a real server, database and ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem, transfer

A, B, C, D = 11, 12, 13, 14
DNS, RTGS = 1, 2
HUB = {"USD": 9001, "EUR": 9002}
FUNDS = {"USD": 9101, "EUR": 9102}  # where participants' settlement accounts are funded from


def acct(pid: int, currency: str) -> int:
    return pid * 100 + (1 if currency == "USD" else 2)


def ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


def balances(c: httpx.Client, account_id: int, position: int) -> dict[str, str]:
    body = ok(c.get(f"/v1/accounts/{account_id}", params={"min_position": position}), 200)
    return dict(body["balances"])


def obligation(
    c: httpx.Client, oid: int, scheme: int, payer: int, payee: int, amount: str, **kw: Any
) -> httpx.Response:
    return c.post(
        "/v1/obligations",
        json={
            "id": oid,
            "scheme_id": scheme,
            "payer_id": payer,
            "payee_id": payee,
            "currency": kw.pop("currency", "USD"),
            "amount": amount,
            **kw,
        },
    )


@pytest.fixture
def day(server: Server) -> Server:
    """Hub and participant accounts in USD and EUR (participants may not overdraw: each is
    funded with 100.00, C's USD account with only 5.00), four participants, a DNS scheme and
    an RTGS scheme, both clearing USD and EUR."""
    with server.client() as c:
        for currency in ("USD", "EUR"):
            account(c, HUB[currency], currency)
            account(c, FUNDS[currency], currency)
            for pid in (A, B, C, D):
                account(c, acct(pid, currency), currency, debits_must_not_exceed_credits=True)
                funds = "5.00" if (pid, currency) == (C, "USD") else "100.00"
                tid = acct(pid, currency) * 10
                assert (
                    transfer(c, tid, FUNDS[currency], acct(pid, currency), funds).status_code == 201
                )
        for pid in (A, B, C, D):
            ok(
                c.post(
                    "/v1/participants",
                    json={
                        "id": pid,
                        "name": f"bank {pid}",
                        "accounts": {cur: acct(pid, cur) for cur in ("USD", "EUR")},
                        "caps": {"USD": "50.00", "EUR": "50.00"},
                        "min_positions": {"USD": "-30.00", "EUR": "0"} if pid == A else {},
                        "max_positions": {"USD": "60.00"} if pid == B else {},
                    },
                )
            )
        for scheme, mode in ((DNS, "dns"), (RTGS, "rtgs")):
            body = ok(
                c.post(
                    "/v1/schemes",
                    json={
                        "id": scheme,
                        "name": f"{mode} scheme",
                        "mode": mode,
                        "settlement_accounts": HUB,
                        "participants": [A, B, C, D],
                    },
                )
            )
            assert body["cycle"]["id"] == f"{scheme}-1"
    return server


def test_a_day_of_two_schemes_with_a_default_and_an_unwind_balances_the_ledger(day: Server) -> None:
    with day.client() as c:
        # DNS, USD: the Banco de Mexico obligations; EUR: a few more.
        usd = [(A, B, "25"), (A, C, "7"), (B, A, "17"), (B, C, "9"), (C, A, "11"), (C, B, "14")]
        for k, (payer, payee, amount) in enumerate(usd, start=1):
            assert ok(obligation(c, k, DNS, payer, payee, amount))["status"] == "accepted"
        eur = [(A, D, "10.50"), (D, B, "4.25"), (B, A, "3.00")]
        for k, (payer, payee, amount) in enumerate(eur, start=20):
            assert (
                ok(obligation(c, k, DNS, payer, payee, amount, currency="EUR"))["status"]
                == "accepted"
            )
        # RTGS, USD: A may run 30.00 negative; B and C may not go below 0.
        assert ok(obligation(c, 40, RTGS, A, B, "30"))["status"] == "accepted"
        assert ok(obligation(c, 41, RTGS, B, C, "40"))["status"] == "queued"
        second = ok(obligation(c, 42, RTGS, C, B, "20"))  # offsets 41: both released together
        assert (second["status"], second["released"]) == ("released", [41, 42])
        fourth = ok(obligation(c, 43, RTGS, B, D, "70"))
        assert fourth["status"] == "queued"  # B has 10
        pos = fourth["position"]

        cycle = ok(c.get("/v1/cycles/1-1", params={"min_position": pos}), 200)
        usd_totals = next(t for t in cycle["totals"] if t["currency"] == "USD")
        assert (usd_totals["gross"], usd_totals["bilateral"], usd_totals["multilateral"]) == (
            "83.00",
            "17.00",
            "13.00",
        )
        assert usd_totals["efficiency_multilateral_exact"] == "70/83"
        queue = ok(c.get("/v1/schemes/2/queue", params={"min_position": pos}), 200)
        assert [q["obligation_id"] for q in queue["queue"]] == [43]
        live = ok(c.get(f"/v1/participants/{A}/position"), 200)
        dns_usd = next(
            p for p in live["positions"] if (p["scheme_id"], p["currency"]) == (DNS, "USD")
        )
        assert (dns_usd["net"], dns_usd["cap"], dns_usd["cap_headroom"]) == (
            "-4.00",
            "50.00",
            "46.00",
        )
        rtgs_usd = next(
            p for p in live["positions"] if (p["scheme_id"], p["currency"]) == (RTGS, "USD")
        )
        assert (rtgs_usd["net"], rtgs_usd["debit_headroom"]) == ("-30.00", "0.00")

        # Cut-off, then settlement fails: C cannot fund its 9.00 pay-in (it holds 5.00).
        cut = ok(c.post("/v1/cycles/1-1/cut-off"), 200)
        assert cut["next_cycle_id"] == "1-2"
        cut_position = cut["position"]
        before = {
            (cur, pid): balances(c, acct(pid, cur), cut_position)
            for cur in ("USD", "EUR")
            for pid in (A, B, C, D)
        }
        short = assert_problem(c.post("/v1/cycles/1-1/settle"), 409, "funding_shortfall")
        assert [s["participant_id"] for s in short["shortfalls"]] == [C]
        after_failure = {
            (cur, pid): balances(c, acct(pid, cur), cut_position)
            for cur in ("USD", "EUR")
            for pid in (A, B, C, D)
        }
        assert after_failure == before  # nothing half-posted, in any currency

        # C defaults: unwind it. A's debit doubles from 4.00 to 8.00.
        unwound = ok(c.post("/v1/cycles/1-1/unwind", json={"participant_id": C}), 200)
        assert unwound["debit_increases"] == [["USD", A, 400, 800]]
        settled = ok(c.post("/v1/cycles/1-1/settle"), 200)
        directions = {
            (i["currency"], i["participant_id"]): (i["direction"], i["amount_minor"])
            for i in settled["instructions"]
        }
        assert directions[("USD", A)] == ("pay_in", 800)
        assert directions[("USD", B)] == ("pay_out", 800)
        assert ("USD", C) not in directions
        settle_position = settled["position"]

        # The RTGS day ends: the queued 70.00 is dropped, the positions are paid out.
        rtgs_cut = ok(c.post("/v1/cycles/2-1/cut-off"), 200)
        assert rtgs_cut["dropped"] == {"USD": [43], "EUR": []}
        rtgs_settled = ok(c.post("/v1/cycles/2-1/settle"), 200)
        last = rtgs_settled["position"]

        # Every account moved by exactly its net positions; the hubs end flat.
        expected_usd = {A: -800 - 3000, B: 800 + 3000 - 4000 + 2000, C: 4000 - 2000, D: 0}
        for pid, delta_minor in expected_usd.items():
            now = balances(c, acct(pid, "USD"), last)
            was = before[("USD", pid)]
            moved = (_minor(now["credits_posted"]) - _minor(now["debits_posted"])) - (
                _minor(was["credits_posted"]) - _minor(was["debits_posted"])
            )
            assert moved == delta_minor, (pid, now, was)
        for cur in ("USD", "EUR"):
            hub = balances(c, HUB[cur], last)
            assert hub["debits_posted"] == hub["credits_posted"]
        trial = ok(c.get("/v1/ledgers/1/trial-balance", params={"min_position": last}), 200)
        assert all(line["balanced"] for line in trial["lines"])

        # The read models tell the whole story, now and at past positions.
        cycle = ok(c.get("/v1/cycles/1-1", params={"min_position": last}), 200)
        assert (cycle["state"], cycle["unwound"]) == ("settled", [C])
        instructions = ok(c.get("/v1/cycles/1-1/instructions"), 200)["instructions"]
        assert {(i["currency"], i["participant_id"], i["state"]) for i in instructions} >= {
            ("USD", A, "posted"),
            ("USD", B, "posted"),
        }
        frozen = ok(c.get("/v1/cycles/1-1/positions", params={"as_of_position": cut_position}), 200)
        frozen_usd = {
            p["participant_id"]: p["net"] for p in frozen["positions"] if p["currency"] == "USD"
        }
        assert frozen_usd == {A: "-4.00", B: "13.00", C: "-9.00"}
        pending = ok(
            c.get("/v1/cycles/1-1/instructions", params={"as_of_position": cut_position}), 200
        )
        assert {
            (i["participant_id"], i["state"])
            for i in pending["instructions"]
            if i["currency"] == "USD"
        } == {(A, "pending"), (B, "pending"), (C, "pending")}
        bilateral = ok(
            c.get("/v1/cycles/1-1/bilateral", params={"as_of_position": cut_position}), 200
        )
        ab = next(
            p
            for p in bilateral["pairs"]
            if (p["currency"], p["participant_a"], p["participant_b"]) == ("USD", A, B)
        )
        assert (ab["a_to_b"], ab["b_to_a"], ab["payer_id"], ab["amount"]) == (
            "25.00",
            "17.00",
            A,
            "8.00",
        )
        then = ok(c.get("/v1/cycles/1-1", params={"as_of_position": cut_position}), 200)
        assert (then["state"], then["unwound"]) == ("cut_off", [])
        ob = ok(c.get("/v1/obligations/2"), 200)  # A -> C: unwound with C
        assert ob["state"] == "unwound"
        assert ok(c.get("/v1/obligations/1"), 200)["state"] == "settled"
        assert ok(c.get("/v1/obligations/43"), 200)["state"] == "rejected"
        assert settle_position < last


def _minor(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int(fraction or 0)


# ------------------------------------------------------------------ bad input


def test_bad_input_gets_a_named_rejection_and_changes_nothing(day: Server) -> None:
    with day.client() as c:
        assert ok(obligation(c, 1, DNS, A, B, "10"))["status"] == "accepted"
        head = day.runtime.store.recorder.head().position
        cases = [
            (obligation(c, 101, DNS, A, 999, "1"), 409, "participant_not_found"),
            (obligation(c, 102, DNS, 999, A, "1"), 409, "participant_not_found"),
            (obligation(c, 103, DNS, A, A, "1"), 409, "payer_must_differ_from_payee"),
            (obligation(c, 104, DNS, A, B, "0"), 409, "amount_must_be_positive"),
            (obligation(c, 105, DNS, A, B, "0.00"), 409, "amount_must_be_positive"),
            (obligation(c, 106, DNS, A, B, "-5.00"), 409, "amount_must_be_positive"),
            (obligation(c, 107, DNS, A, B, "1", currency="GBP"), 409, "currency_not_cleared"),
            (obligation(c, 108, DNS, A, B, "1", currency="XXQ"), 409, "unknown_currency"),
            (obligation(c, 109, DNS, A, B, "1.001"), 409, "amount_precision_exceeded"),
            (obligation(c, 110, 77, A, B, "1"), 409, "scheme_not_found"),
            (obligation(c, 111, DNS, A, B, "1", cycle_id="1-9"), 409, "cycle_not_found"),
            (
                obligation(c, 112, DNS, A, B, "1", value_date="2001-01-01"),
                409,
                "value_date_mismatch",
            ),
            (c.post("/v1/cycles/1-1/settle"), 409, "cycle_not_cut_off"),
            (c.post("/v1/cycles/1-1/unwind", json={"participant_id": A}), 409, "cycle_not_cut_off"),
            (c.post("/v1/cycles/1-7/cut-off"), 404, "cycle_not_found"),
            (c.post("/v1/cycles/9-1/settle"), 404, "scheme_not_found"),
            (c.post("/v1/schemes/9/release"), 404, "scheme_not_found"),
            (
                c.post(
                    "/v1/participants",
                    json={"id": 50, "name": "x", "accounts": {"USD": 1}, "caps": {"USD": "-1"}},
                ),
                409,
                "cap_must_not_be_negative",
            ),
            (
                c.post(
                    "/v1/schemes",
                    json={"id": 5, "name": "x", "mode": "gross", "settlement_accounts": HUB},
                ),
                409,
                "unknown_mode",
            ),
            (
                c.post(
                    "/v1/schemes",
                    json={
                        "id": 5,
                        "name": "x",
                        "mode": "dns",
                        "settlement_accounts": HUB,
                        "cut_off_times": ["25:00"],
                    },
                ),
                409,
                "cut_off_time_invalid",
            ),
        ]
        for response, status, code in cases:
            assert_problem(response, status, code)
        # A recorded rejection: the same id never succeeds, whatever the body.
        assert_problem(obligation(c, 101, DNS, A, 999, "2"), 409, "id_already_failed")
        for bad_id in (True, 1.5, "007", "-3", "1e3", 0):
            assert_problem(obligation(c, bad_id, DNS, A, B, "1"), 422, "invalid_request")  # type: ignore[arg-type]
        assert_problem(obligation(c, 2**128 - 1, DNS, A, B, "1"), 409, "id_must_not_be_int_max")
        assert_problem(obligation(c, str(2**127), DNS, A, 999, "1"), 409, "participant_not_found")  # type: ignore[arg-type]
        assert day.runtime.store.recorder.head().position == head  # no event for any of them

        ok(c.post("/v1/cycles/1-1/cut-off"), 200)
        after_cut = day.runtime.store.recorder.head().position
        cases = [
            (obligation(c, 3, DNS, A, B, "1", cycle_id="1-1"), 409, "cycle_closed"),
            (c.post("/v1/cycles/1-1/unwind", json={"participant_id": D}), 409, "nothing_to_unwind"),
            (
                c.post("/v1/cycles/1-1/unwind", json={"participant_id": 999}),
                409,
                "participant_not_found",
            ),
            (
                c.post("/v1/cycles/1-1/cut-off", params={"again": 1}),
                200,
                None,
            ),  # a retry: the first outcome
            (
                c.post("/v1/cycles/2-1/unwind", json={"participant_id": A}),
                409,
                "rtgs_payments_are_final",
            ),
        ]
        for response, status, code in cases:
            if code is None:
                assert response.status_code == status
            else:
                assert_problem(response, status, code)
        assert day.runtime.store.recorder.head().position == after_cut
        # An id reused with another body is refused by name; the same body answers the same.
        assert ok(obligation(c, 1, DNS, A, B, "10"), 200)["status"] == "accepted"
        assert_problem(obligation(c, 1, DNS, A, B, "11"), 409, "exists_with_different_amount")
        assert_problem(obligation(c, 1, DNS, A, C, "10"), 409, "exists_with_different_payee_id")


def test_a_batch_answers_each_obligation_in_order(day: Server) -> None:
    with day.client() as c:
        items = [
            {
                "id": 1,
                "scheme_id": RTGS,
                "payer_id": B,
                "payee_id": C,
                "currency": "USD",
                "amount": "5",
            },
            {
                "id": 2,
                "scheme_id": RTGS,
                "payer_id": B,
                "payee_id": B,
                "currency": "USD",
                "amount": "5",
            },
            {
                "id": 3,
                "scheme_id": RTGS,
                "payer_id": C,
                "payee_id": B,
                "currency": "USD",
                "amount": "5",
            },
            {
                "id": 4,
                "scheme_id": DNS,
                "payer_id": A,
                "payee_id": B,
                "currency": "USD",
                "amount": "1.25",
            },
        ]
        body = ok(c.post("/v1/obligation-batches", json={"obligations": items}))
        assert [r["status"] for r in body["results"]] == [
            "queued",
            "payer_must_differ_from_payee",
            "released",
            "accepted",
        ]
        assert body["results"][1]["problem"]["code"] == "payer_must_differ_from_payee"
        assert body["results"][2]["obligation"]["released"] == [1, 3]
        queue = ok(c.get("/v1/schemes/2/queue", params={"min_position": body["position"]}), 200)
        assert queue["queue"] == []


def test_an_auditor_reads_but_cannot_submit(day: Server) -> None:
    head = day.runtime.store.recorder.head().position
    with day.client("auditor") as auditor:
        assert auditor.get("/v1/cycles/1-1", params={"min_position": head}).status_code == 200
        assert_problem(obligation(auditor, 1, DNS, A, B, "1"), 403, "forbidden")
    with day.client(None) as anonymous:
        assert_problem(anonymous.get("/v1/cycles/1-1"), 401, "unauthenticated")


def test_a_scheduled_cut_off_is_run_by_the_clock_duty(day: Server) -> None:
    from ledgerline.contexts import duties

    with day.client() as c:
        ok(
            c.post(
                "/v1/schemes",
                json={
                    "id": 3,
                    "name": "hourly",
                    "mode": "dns",
                    "settlement_accounts": HUB,
                    "cut_off_times": [f"{h:02d}:00" for h in range(24)],
                    "participants": [A, B],
                },
            )
        )
        first = ok(obligation(c, 1, 3, A, B, "2"))
        cycle = ok(c.get("/v1/cycles/3-1", params={"min_position": first["position"]}), 200)
        assert cycle["state"] == "open" and cycle["cut_off_at"] is not None
        cut_off = next(d for d in duties() if d.name == "cut-off")
        assert cut_off.run(day.runtime) == 0  # not due yet
        day.clock.advance(3601)
        assert cut_off.run(day.runtime) == 1
        assert cut_off.run(day.runtime) == 0  # the read model may lag: nothing twice
        cycle = ok(
            c.get(
                "/v1/cycles/3-1",
                params={"min_position": day.runtime.store.recorder.head().position},
            ),
            200,
        )
        assert (cycle["state"], cycle["cut_trigger"]) == ("cut_off", "scheduled")
        late = ok(obligation(c, 2, 3, A, B, "1"))
        assert late["cycle_id"] == "3-2"
