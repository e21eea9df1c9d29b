"""The ledger over HTTP, against a real server and a real database."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server

PROBLEM = "application/problem+json"


def account(
    c: httpx.Client, account_id: int, currency: str = "USD", ledger: int = 1, **flags: bool
) -> dict[str, Any]:
    r = c.post(
        "/v1/accounts",
        json={"id": account_id, "ledger": ledger, "currency": currency, "code": 1, "flags": flags},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def transfer(
    c: httpx.Client, transfer_id: int, debit: int, credit: int, amount: str, **extra: Any
) -> httpx.Response:
    return c.post(
        "/v1/transfers",
        json={
            "id": transfer_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "ledger": extra.pop("ledger", 1),
            "code": 1,
            **extra,
        },
    )


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = dict(r.json())
    assert body["code"] == code
    assert body["type"] == f"https://ledgerline.dev/problems/{code}"
    assert body["status"] == status
    assert body["detail"]
    return body


@pytest.fixture
def funded(server: Server) -> Server:
    """Accounts: 1 (bank), 2 (limited: debits <= credits, holds 100.00), 3 (EUR), 4 (ledger 2)."""
    with server.client() as c:
        account(c, 1)
        account(c, 2, debits_must_not_exceed_credits=True)
        account(c, 3, currency="EUR")
        account(c, 4, ledger=2)
        funding = transfer(c, 100, 1, 2, "100.00")
        assert funding.status_code == 201
        # The read model has applied the funding before any test reads "nothing changed".
        seen = c.get("/v1/accounts/2", params={"min_position": funding.json()["position"]})
        assert seen.json()["balances"]["credits_posted"] == "100.00"
    return server


# ------------------------------------------------------------------ auth


def test_requests_without_a_valid_key_get_401_and_wrong_roles_get_403(funded: Server) -> None:
    with funded.client(None) as anonymous:
        assert_problem(anonymous.get("/v1/accounts/1"), 401, "unauthenticated")
    with httpx.Client(base_url=funded.url, headers={"Authorization": "Bearer ll_nope_x"}) as bad:
        assert_problem(bad.get("/v1/accounts/1"), 401, "invalid_token")
    with funded.client("auditor") as auditor:
        assert auditor.get("/v1/accounts/1").status_code == 200
        assert_problem(transfer(auditor, 5, 1, 2, "1"), 403, "forbidden")
    with funded.client("regulator") as regulator:
        assert_problem(regulator.get("/v1/accounts/1"), 403, "forbidden")
    with funded.client("admin") as admin:
        assert transfer(admin, 6, 1, 2, "1").status_code == 201


# ------------------------------------------------------------------ idempotency


def test_a_retry_returns_200_with_the_first_outcome_and_a_changed_body_409(funded: Server) -> None:
    with funded.client() as c:
        first = transfer(c, 7, 1, 2, "5.25")
        again = transfer(c, 7, 1, 2, "5.25")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        assert first.json()["amount"] == "5.25"
        assert_problem(transfer(c, 7, 1, 2, "5.26"), 409, "exists_with_different_amount")
        assert_problem(transfer(c, 7, 2, 1, "5.25"), 409, "exists_with_different_debit_account_id")
        rejected = transfer(c, 8, 2, 1, "1000")
        assert_problem(rejected, 409, "exceeds_credits")
        assert_problem(transfer(c, 8, 2, 1, "1000"), 409, "exceeds_credits")  # first outcome
        assert_problem(transfer(c, 8, 2, 1, "1"), 409, "id_already_failed")
        assert (
            c.get("/v1/accounts/2", params={"min_position": first.json()["position"]}).json()[
                "balances"
            ]["credits_posted"]
            == "105.25"
        )


# ------------------------------------------------------------------ every problem type


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 1, "amount": "1"},
            409,
            "accounts_must_be_different",
        ),
        (
            {"id": 9, "debit_account_id": 99, "credit_account_id": 1, "amount": "1"},
            409,
            "debit_account_not_found",
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 99, "amount": "1"},
            409,
            "credit_account_not_found",
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 4, "amount": "1"},
            409,
            "accounts_must_have_the_same_ledger",  # TigerBeetle's name (was ledger_must_match)
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 3, "amount": "1"},
            409,
            "currency_must_match",
        ),
        (
            {"id": 9, "debit_account_id": 2, "credit_account_id": 1, "amount": "100.01"},
            409,
            "exceeds_credits",
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 2, "amount": "1.001"},
            409,
            "amount_precision_exceeded",
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 2, "amount": "-1"},
            422,
            "invalid_request",
        ),
        (
            {"id": 9, "debit_account_id": 1, "credit_account_id": 2, "amount": "1", "timeout_s": 5},
            409,
            "timeout_reserved_for_pending_transfer",
        ),
        (
            {"id": 0, "debit_account_id": 1, "credit_account_id": 2, "amount": "1"},
            422,
            "invalid_request",
        ),
    ],
)
def test_each_transfer_rule_is_a_problem_with_its_own_type(
    funded: Server, request_body: dict[str, Any], status: int, code: str
) -> None:
    with funded.client() as c:
        body = {"ledger": 1, "code": 1, **request_body}
        assert_problem(c.post("/v1/transfers", json=body), status, code)
        # and nothing changed
        assert c.get("/v1/accounts/2").json()["balances"]["credits_posted"] == "100.00"


def test_account_rules_and_unknown_things_are_problems(funded: Server) -> None:
    with funded.client() as c:
        assert_problem(
            c.post("/v1/accounts", json={"id": 1, "ledger": 1, "currency": "EUR", "code": 1}),
            409,
            "exists_with_different_currency",
        )
        assert_problem(
            c.post("/v1/accounts", json={"id": 20, "ledger": 1, "currency": "usd", "code": 1}),
            422,
            "unknown_currency",
        )
        assert_problem(
            c.post(
                "/v1/accounts",
                json={
                    "id": 20,
                    "ledger": 1,
                    "currency": "USD",
                    "code": 1,
                    "flags": {
                        "debits_must_not_exceed_credits": True,
                        "credits_must_not_exceed_debits": True,
                    },
                },
            ),
            422,
            "flags_are_mutually_exclusive",
        )
        assert_problem(
            c.post("/v1/accounts", json={"id": 20, "ledger": 1, "currency": "XYZ", "code": 1}),
            422,
            "unknown_currency",
        )
        assert_problem(c.get("/v1/accounts/12345"), 404, "account_not_found")
        assert_problem(c.get("/v1/transfers/12345"), 404, "transfer_not_found")
        assert_problem(c.get("/v1/nowhere"), 404, "not_found")
        assert_problem(c.delete("/v1/accounts/1"), 405, "method_not_allowed")
        assert_problem(
            c.post(
                "/v1/accounts", content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
            "invalid_json",
        )


def test_two_phase_transfers_post_void_and_their_problems(funded: Server) -> None:
    with funded.client() as c:
        held = transfer(c, 30, 2, 1, "60", pending=True)
        assert held.status_code == 201
        assert held.json()["state"] == "pending"
        assert_problem(transfer(c, 31, 2, 1, "40.01"), 409, "exceeds_credits")  # 60 are held
        assert_problem(
            c.post("/v1/transfers/30/post", json={"amount": "60.01"}),
            409,
            "exceeds_pending_transfer_amount",
        )
        done = c.post("/v1/transfers/30/post", json={"amount": "25"})
        assert done.status_code == 200
        assert (done.json()["state"], done.json()["posted_amount"]) == ("posted", "25.00")
        assert_problem(c.post("/v1/transfers/30/void"), 409, "pending_transfer_already_posted")
        assert_problem(c.post("/v1/transfers/999/void"), 404, "pending_transfer_not_found")
        assert_problem(c.post("/v1/transfers/100/post"), 409, "pending_transfer_not_pending")
        assert transfer(c, 32, 2, 1, "10", pending=True).status_code == 201
        void = c.post("/v1/transfers/32/void")
        assert void.json()["state"] == "voided"
        assert_problem(c.post("/v1/transfers/32/post"), 409, "pending_transfer_already_voided")
        acct = c.get("/v1/accounts/2", params={"min_position": void.json()["position"]}).json()
        assert acct["balances"] == {
            "debits_pending": "0.00",
            "debits_posted": "25.00",
            "credits_pending": "0.00",
            "credits_posted": "100.00",
        }


def test_an_expired_hold_releases_its_amount_and_cannot_be_posted(funded: Server) -> None:
    with funded.client() as c:
        held = transfer(c, 40, 2, 1, "70", pending=True, timeout_s=30)
        assert held.status_code == 201
        funded.clock.advance(31)
        assert_problem(c.post("/v1/transfers/40/post"), 409, "pending_transfer_expired")
        c.get("/v1/transfers/40", params={"min_position": held.json()["position"]})
        assert funded.runtime.sweep_expired() == 1
        head = funded.runtime.store.recorder.head().position
        assert c.get("/v1/transfers/40", params={"min_position": head}).json()["state"] == "expired"
        balances = c.get("/v1/accounts/2").json()["balances"]
        assert balances["debits_pending"] == "0.00"
        assert transfer(c, 41, 2, 1, "100").status_code == 201  # the hold is free again


def test_a_linked_batch_applies_all_or_nothing_with_per_item_outcomes(funded: Server) -> None:
    with funded.client() as c:
        items = [
            {
                "id": 50,
                "debit_account_id": 1,
                "credit_account_id": 2,
                "amount": "1",
                "ledger": 1,
                "code": 1,
            },
            {
                "id": 51,
                "debit_account_id": 2,
                "credit_account_id": 1,
                "amount": "500",
                "ledger": 1,
                "code": 1,
            },
        ]
        r = c.post("/v1/transfer-batches", json={"linked": True, "transfers": items})
        assert_problem(r, 409, "linked_event_failed") if r.status_code != 201 else None
        body = r.json()
        assert [x["status"] for x in body["results"]] == ["linked_event_failed", "exceeds_credits"]
        assert_problem(c.get("/v1/transfers/50"), 404, "transfer_not_found")
        again = c.post("/v1/transfer-batches", json={"linked": True, "transfers": items})
        assert again.json() == body  # the same batch again: the first outcome
        items[1]["amount"] = "50"
        # A transiently failed id never succeeds (TigerBeetle's id_already_failed) ...
        assert_problem(
            c.post("/v1/transfer-batches", json={"linked": True, "transfers": items}),
            409,
            "id_already_failed",
        )
        # ... so the client retries with fresh ids.
        items = [{**items[0], "id": 52}, {**items[1], "id": 53}]
        ok = c.post("/v1/transfer-batches", json={"linked": True, "transfers": items})
        assert ok.status_code == 201, ok.text
        assert [x["status"] for x in ok.json()["results"]] == ["created", "created"]
        loose = c.post(
            "/v1/transfer-batches",
            json={
                "linked": False,
                "transfers": [{**items[0], "id": 60}, {**items[1], "id": 61, "amount": "9999"}],
            },
        )
        assert loose.status_code == 201
        assert [x["status"] for x in loose.json()["results"]] == ["created", "exceeds_credits"]


# ------------------------------------------------------------------ queries


def test_account_history_pages_newest_first_with_a_cursor(funded: Server) -> None:
    with funded.client() as c:
        for n in range(7):
            assert transfer(c, 200 + n, 1, 2, f"{n + 1}").status_code == 201
        head = funded.runtime.store.recorder.head().position
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, "min_position": head}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/accounts/2/transfers", params=params).json()
            seen += [item["transfer"]["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [206, 205, 204, 203, 202, 201, 200, 100]
        assert pages == 3


def test_balances_at_a_past_position_or_time_come_from_history(funded: Server) -> None:
    with funded.client() as c:
        before = c.get("/v1/accounts/2").json()
        moment = dt.datetime.now(dt.UTC).isoformat()
        later = transfer(c, 300, 1, 2, "11.11").json()
        now = c.get("/v1/accounts/2", params={"min_position": later["position"]}).json()
        assert now["balances"]["credits_posted"] == "111.11"
        past = c.get("/v1/accounts/2", params={"as_of_position": before["position"]}).json()
        assert past["balances"]["credits_posted"] == "100.00"
        at_time = c.get("/v1/accounts/2", params={"as_of": moment}).json()
        assert at_time["balances"]["credits_posted"] == "100.00"
        assert_problem(c.get("/v1/accounts/2", params={"as_of": "yesterday"}), 422, "invalid_as_of")
        assert_problem(
            c.get("/v1/accounts/2", params={"as_of_position": 0}), 404, "account_not_found"
        )
        tb = {
            line["currency"]: line for line in c.get("/v1/ledgers/1/trial-balance").json()["lines"]
        }
        assert tb["USD"]["balanced"] is True
        assert tb["USD"]["debits_posted"] == tb["USD"]["credits_posted"] == "111.11"
        assert tb["EUR"]["debits_posted"] == "0.00"
        tb_past = {
            line["currency"]: line
            for line in c.get(
                "/v1/ledgers/1/trial-balance", params={"as_of_position": before["position"]}
            ).json()["lines"]
        }
        assert tb_past["USD"]["credits_posted"] == "100.00"


def test_reads_wait_for_a_write_and_give_503_when_the_read_model_is_behind(
    funded: Server,
) -> None:
    with funded.client() as c:
        w = transfer(c, 400, 1, 2, "1")
        r = c.get("/v1/accounts/2", params={"min_position": w.json()["position"]})
        assert r.json()["balances"]["credits_posted"] == "101.00"
        assert_problem(
            c.get("/v1/accounts/2", params={"min_position": 10**9}),
            422,
            "min_position_not_committed",
        )
        # Hold the projector back: a committed position it has not applied yet is a 503.
        funded.runtime.projector.stop()  # type: ignore[union-attr]
        w2 = transfer(c, 401, 1, 2, "1")
        behind = c.get("/v1/accounts/2", params={"min_position": w2.json()["position"]})
        assert_problem(behind, 503, "read_model_behind")
        assert behind.headers["retry-after"] == "1"


def test_operations_endpoints_and_a_complete_openapi(funded: Server) -> None:
    with httpx.Client(base_url=funded.url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["lag_events"] == 0
        metrics = c.get("/metrics").text
        assert "ledgerline_http_requests_total" in metrics
        assert (
            'ledgerline_command_outcomes_total{command="create_transfer",outcome="created"}'
            in metrics
        )
        assert "ledgerline_projection_lag_events" in metrics
        spec = c.get("/openapi.json").json()
        paths = set(spec["paths"])
        assert {
            "/v1/accounts",
            "/v1/transfers",
            "/v1/transfer-batches",
            "/v1/transfers/{transfer_id}/post",
            "/v1/transfers/{transfer_id}/void",
            "/v1/accounts/{account_id}",
            "/v1/accounts/{account_id}/transfers",
            "/v1/transfers/{transfer_id}",
            "/v1/ledgers/{ledger}/trial-balance",
            "/healthz",
            "/readyz",
            "/metrics",
        } <= paths


# ------------------------------------------------------------------ concurrency


def test_many_clients_hammering_one_limited_account_never_overdraw_it(funded: Server) -> None:
    def spend(n: int) -> int:
        with funded.client() as c:
            return transfer(c, 1000 + n, 2, 1, "7").status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(spend, range(64)))
    assert codes.count(201) == 14  # 14 * 7 = 98 <= 100 < 105
    assert codes.count(409) == 50
    with funded.client() as c:
        head = funded.runtime.store.recorder.head().position
        balances = c.get("/v1/accounts/2", params={"min_position": head}).json()["balances"]
        assert balances["debits_posted"] == "98.00"
        assert balances["credits_posted"] == "100.00"


def test_ids_up_to_2_to_the_128_minus_2_survive_every_layer(server: Server) -> None:
    big, bigger = 2**128 - 3, 2**128 - 2
    with server.client() as c:
        account(c, big)
        account(c, bigger)
        r = transfer(c, 2**100, big, bigger, "7.00")
        assert r.status_code == 201, r.text
        assert r.json()["id"] == 2**100
        got = c.get(f"/v1/accounts/{bigger}", params={"min_position": r.json()["position"]})
        assert got.json()["id"] == bigger
        assert got.json()["balances"]["credits_posted"] == "7.00"
        assert c.get(f"/v1/transfers/{2**100}").json()["debit_account_id"] == big
