"""TigerBeetle's transfer semantics over HTTP (issue 13): ids spent by failures, retries
compared by value, posts and voids with their own ids, balancing and closing transfers."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem, funded, transfer

__all__ = ["funded"]  # the fixture, shared with the ledger's API tests


def balances(c: httpx.Client, account_id: int, position: int) -> dict[str, Any]:
    r = c.get(f"/v1/accounts/{account_id}", params={"min_position": position})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_failed_linked_member_spends_its_id_and_retries_compare_values(funded: Server) -> None:
    with funded.client() as c:
        items = [
            {"id": 70, "debit_account_id": 1, "credit_account_id": 2, "amount": "1"},
            {"id": 71, "debit_account_id": 99, "credit_account_id": 1, "amount": "1"},
        ]
        items = [{**i, "ledger": 1, "code": 1} for i in items]
        r = c.post("/v1/transfer-batches", json={"linked": True, "transfers": items})
        body = assert_problem(r, 409, "linked_event_failed")
        assert body["failed_index"] == 1
        assert [x["status"] for x in body["results"]] == [
            "linked_event_failed",
            "debit_account_not_found",
        ]
        # The member that failed on the ledger's state has spent its id, whatever the body ...
        assert_problem(transfer(c, 71, 1, 2, "2"), 409, "id_already_failed")
        # ... the one that only went down with it has not.
        assert transfer(c, 70, 1, 2, "1").status_code == 201

        # One amount, two spellings: the same transfer.
        first = transfer(c, 72, 1, 2, "12.3")
        assert first.status_code == 201
        again = transfer(c, 72, 1, 2, "12.30")
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert_problem(transfer(c, 72, 1, 2, "12.31"), 409, "exists_with_different_amount")

        # "Post it all", retried with the amount stated: the same post.
        assert transfer(c, 73, 1, 2, "5.00", pending=True).status_code == 201
        posted = c.post("/v1/transfers/73/post")
        assert posted.status_code == 200, posted.text
        stated = c.post("/v1/transfers/73/post", json={"amount": "5"})
        assert stated.status_code == 200, stated.text
        assert stated.json()["posted_amount"] == "5.00"
        assert_problem(
            c.post("/v1/transfers/73/post", json={"amount": "4"}),
            409,
            "exists_with_different_amount",
        )


def test_a_lone_transfer_that_failed_on_state_spends_its_id_for_batches_too(
    funded: Server,
) -> None:
    with funded.client() as c:
        # Account 2 holds 100.00 and may not overdraw: the lone transfer fails on state.
        assert_problem(transfer(c, 75, 2, 1, "500"), 409, "exceeds_credits")
        assert_problem(c.get("/v1/transfers/75"), 404, "transfer_not_found")
        # The same id in a batch, even one that would now succeed, is spent ...
        item = {"id": 75, "debit_account_id": 2, "credit_account_id": 1, "amount": "5"}
        for linked in (True, False):
            r = c.post(
                "/v1/transfer-batches",
                json={"linked": linked, "transfers": [{**item, "ledger": 1, "code": 1}]},
            )
            results = r.json()["results"]
            assert [x["status"] for x in results] == ["id_already_failed"], r.text
        # ... and so is it for another lone body, while the first body answers as first.
        assert_problem(transfer(c, 75, 2, 1, "5"), 409, "id_already_failed")
        assert_problem(transfer(c, 75, 2, 1, "500"), 409, "exceeds_credits")
        # A refusal of the request itself (not of the ledger's state) spends nothing.
        assert_problem(transfer(c, 76, 2, 2, "5"), 409, "accounts_must_be_different")
        r = transfer(c, 76, 2, 1, "5")
        assert r.status_code == 201, r.text
        assert balances(c, 2, r.json()["position"])["balances"]["debits_posted"] == "5.00"


def test_posts_and_voids_are_transfers_with_their_own_ids(funded: Server) -> None:
    with funded.client() as c:
        assert transfer(c, 80, 1, 2, "10", pending=True).status_code == 201
        post = {"id": 81, "pending_id": "80", "post_pending_transfer": True, "amount": "4"}
        r = c.post("/v1/transfers", json=post)
        assert r.status_code == 201, r.text
        out = r.json()
        assert (out["state"], out["amount"], out["pending_id"]) == ("posted", "4.00", "80")
        assert (out["debit_account_id"], out["credit_account_id"], out["ledger"]) == (1, 2, 1)
        assert c.post("/v1/transfers", json=post).status_code == 200  # idempotent by its own id
        pending = c.get("/v1/transfers/80", params={"min_position": out["position"]}).json()
        assert (pending["state"], pending["posted_amount"]) == ("posted", "4.00")
        assert_problem(
            c.post("/v1/transfers", json={**post, "id": 82}), 409, "pending_transfer_already_posted"
        )
        assert_problem(
            c.post("/v1/transfers", json={**post, "id": 80}), 409, "exists_with_different_flags"
        )
        # A void of 0 releases the whole hold.
        assert transfer(c, 83, 1, 2, "7", pending=True).status_code == 201
        void = {"id": 84, "pending_id": 83, "void_pending_transfer": True, "amount": "0"}
        r = c.post("/v1/transfers", json=void)
        assert r.status_code == 201, r.text
        held = balances(c, 1, r.json()["position"])["balances"]
        assert held["debits_pending"] == "0.00"
        assert_problem(
            c.post("/v1/transfers", json={**void, "id": 85, "pending_id": 999}),
            409,
            "pending_transfer_not_found",
        )


def test_balancing_closing_zero_amounts_and_user_data(funded: Server) -> None:
    with funded.client() as c:
        # Account 2 may not debit more than its credits (100.00): a balancing debit of "all you
        # can" sweeps exactly what it holds.
        r = transfer(c, 90, 2, 1, "1000", balancing_debit=True, user_data_128=str(2**100))
        assert r.status_code == 201, r.text
        swept = r.json()
        assert swept["amount"] == "100.00"
        assert swept["user_data_128"] == str(2**100)
        assert swept["flags"] == {"balancing_debit": True}
        after = balances(c, 2, swept["position"])["balances"]
        assert after["debits_posted"] == after["credits_posted"] == "100.00"
        # Nothing left: the next one moves zero, which TigerBeetle allows.
        r = transfer(c, 91, 2, 1, "5", balancing_debit=True)
        assert (r.status_code, r.json()["amount"]) == (201, "0.00")
        assert transfer(c, 92, 1, 2, "0").status_code == 201

        # A pending closing transfer closes the account; voiding it reopens it.
        account(c, 5)
        r = transfer(c, 93, 5, 1, "0", pending=True, closing_debit=True)
        assert r.status_code == 201, r.text
        assert balances(c, 5, r.json()["position"])["flags"]["closed"] is True
        assert_problem(transfer(c, 94, 5, 1, "1"), 409, "debit_account_already_closed")
        assert_problem(
            transfer(c, 95, 5, 1, "1", closing_debit=True), 409, "closing_transfer_must_be_pending"
        )
        r = c.post(
            "/v1/transfers", json={"id": 96, "pending_id": 93, "void_pending_transfer": True}
        )
        assert r.status_code == 201, r.text
        assert balances(c, 5, r.json()["position"])["flags"]["closed"] is False
        assert transfer(c, 97, 5, 1, "1").status_code == 201
        # Fields left out are zero, and the ledger names the rule (TigerBeetle's order).
        assert_problem(
            c.post("/v1/transfers", json={"id": 98, "credit_account_id": 1, "amount": "1"}),
            409,
            "debit_account_id_must_not_be_zero",
        )
        assert_problem(
            c.post(
                "/v1/transfers",
                json={"id": 98, "debit_account_id": 1, "credit_account_id": 2, "amount": "1"},
            ),
            409,
            "ledger_must_not_be_zero",
        )


def test_a_posted_transfer_is_reversed_once_and_a_pending_one_not_at_all(funded: Server) -> None:
    with funded.client() as c:
        assert transfer(c, 120, 1, 2, "30").status_code == 201
        r = c.post("/v1/transfers/120/reverse", json={"id": 121, "reason": "duplicate"})
        assert r.status_code == 201, r.text
        rev = r.json()
        assert (rev["debit_account_id"], rev["credit_account_id"], rev["amount"]) == (2, 1, "30.00")
        again = c.post("/v1/transfers/120/reverse", json={"id": 121, "reason": "duplicate"})
        assert (again.status_code, again.json()) == (200, rev)
        assert_problem(
            c.post("/v1/transfers/120/reverse", json={"id": 122, "reason": "again"}),
            409,
            "transfer_already_reversed",
        )
        after = balances(c, 2, rev["position"])["balances"]
        assert after["credits_posted"] == "130.00"  # funded 100, +30, reversed: debited 30
        assert after["debits_posted"] == "30.00"
        assert transfer(c, 123, 1, 2, "5", pending=True).status_code == 201
        assert_problem(
            c.post("/v1/transfers/123/reverse", json={"reason": "no"}),
            409,
            "pending_transfer_cannot_be_reversed",
        )
        assert_problem(
            c.post("/v1/transfers/999/reverse", json={"reason": "no"}), 404, "transfer_not_found"
        )


def test_accounts_carry_user_data_and_a_place_in_the_chart(server: Server) -> None:
    def open_(c: httpx.Client, account_id: int, **fields: Any) -> httpx.Response:
        body = {"id": account_id, "ledger": 1, "currency": "USD", "code": 1, **fields}
        return c.post("/v1/accounts", json=body)

    with server.client() as c:
        r = open_(c, 10, account_type="asset", name="Assets", user_data_128=str(2**127))
        assert r.status_code == 201, r.text
        assert (r.json()["account_type"], r.json()["user_data_128"]) == ("asset", str(2**127))
        cash = open_(c, 11, account_type="asset", parent_id=10, name="Cash")
        assert cash.status_code == 201, cash.text
        assert cash.json()["parent_id"] == "10"
        assert open_(c, 11, account_type="asset", parent_id=10, name="Cash").status_code == 200
        assert_problem(
            open_(c, 11, account_type="asset", parent_id=10, name="Till"),
            409,
            "exists_with_different_name",
        )
        assert_problem(
            open_(c, 12, account_type="liability", parent_id=10),
            409,
            "parent_account_must_have_the_same_type",
        )
        assert_problem(
            open_(c, 13, account_type="asset", parent_id=99), 409, "parent_account_not_found"
        )
        assert open_(c, 40, account_type="income", name="Fees").status_code == 201
        assert account(c, 1)["flags"]["closed"] is False  # a plain account is as it was


def test_transfers_and_accounts_are_found_by_user_data_code_and_time(funded: Server) -> None:
    order = str(2**90 + 7)
    with funded.client() as c:
        positions = []
        for n in range(5):
            r = transfer(c, 130 + n, 1, 2, "1", user_data_128=order if n % 2 == 0 else "0")
            assert r.status_code == 201, r.text
            positions.append(r.json()["position"])
        top = max(positions)
        q = {"user_data_128": order, "min_position": top}
        found = c.get("/v1/transfers", params={**q, "limit": 2})
        assert found.status_code == 200, found.text
        page = found.json()
        assert [t["id"] for t in page["items"]] == [130, 132]
        assert page["items"][0]["user_data_128"] == order
        rest = c.get("/v1/transfers", params={**q, "cursor": page["next_cursor"]}).json()
        assert [t["id"] for t in rest["items"]] == [134]
        assert rest["next_cursor"] is None
        newest = c.get("/v1/transfers", params={**q, "reversed": "true"}).json()
        assert [t["id"] for t in newest["items"]] == [134, 132, 130]
        none = c.get("/v1/transfers", params={"user_data_128": order, "code": 2}).json()
        assert none["items"] == []
        everything = c.get("/v1/transfers", params={"ledger": 1, "timestamp_min": 0}).json()
        assert {100, 130, 131, 132, 133, 134} <= {t["id"] for t in everything["items"]}

        r = c.post(
            "/v1/accounts",
            json={"id": 60, "ledger": 1, "currency": "USD", "code": 1, "user_data_64": 77},
        )
        assert r.status_code == 201, r.text
        accounts = c.get(
            "/v1/accounts", params={"user_data_64": 77, "min_position": r.json()["position"]}
        ).json()
        assert [a["id"] for a in accounts["items"]] == [60]
        assert accounts["items"][0]["user_data_64"] == "77"
