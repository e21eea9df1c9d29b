"""Strict input at the edge: every malformed request is a named problem and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = dict(r.json())
    assert body["code"] == code, body
    assert body["type"].endswith("/" + code)
    return body


def transfer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": 500,
        "debit_account_id": 1,
        "credit_account_id": 2,
        "amount": "1.00",
        "ledger": 1,
        "code": 1,
    }
    body.update(overrides)
    return body


@pytest.fixture
def accounts(server: Server) -> Server:
    with server.client() as c:
        for account_id, currency in ((1, "USD"), (2, "USD"), (3, "JPY"), (4, "JPY")):
            r = c.post(
                "/v1/accounts",
                json={"id": account_id, "ledger": 1, "currency": currency, "code": 1},
            )
            assert r.status_code == 201, r.text
    return server


def head(server: Server) -> int:
    return server.runtime.store.recorder.head().position


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", True),
        ("id", 779004.0),
        ("id", "0779005"),
        ("id", "+779005"),
        ("id", " 779005"),
        ("id", "7.79005e5"),
        ("id", "-1"),
        ("id", "0"),
        ("id", "1" + "0" * 39),
        ("debit_account_id", False),
        ("ledger", "1"),
        ("ledger", True),
        ("ledger", 1.0),
        ("code", 1.5),
        ("pending", "true"),
        ("pending", 1),
        ("timeout_s", 5.0),
        ("amount", 1),
        ("amount", "1e3"),
        ("amount", "1.12345"),
        ("amount", " 1"),
    ],
)
def test_ids_ledgers_codes_flags_and_amounts_of_the_wrong_type_are_422s_that_change_nothing(
    accounts: Server, field: str, value: Any
) -> None:
    before = head(accounts)
    with accounts.client() as c:
        assert_problem(
            c.post("/v1/transfers", json=transfer_body(**{field: value})), 422, "invalid_request"
        )
    assert head(accounts) == before


def test_an_id_may_be_a_canonical_decimal_string_for_clients_without_128_bit_numbers(
    accounts: Server,
) -> None:
    big = 2**128 - 2  # the largest usable id (2^128-1 is reserved)
    with accounts.client() as c:
        r = c.post("/v1/transfers", json=transfer_body(id=str(big)))
        assert r.status_code == 201, r.text
        assert r.json()["id"] == big
        # the same transfer retried as a number is the same command: the first outcome
        again = c.post("/v1/transfers", json=transfer_body(id=big))
        assert again.status_code == 200
        seen = c.get(f"/v1/transfers/{big}", params={"min_position": r.json()["position"]})
        assert seen.status_code == 200
        assert c.get(f"/v1/transfers/{big}").json()["id"] == big  # the path takes it too


def test_a_key_given_twice_is_refused_rather_than_guessed(accounts: Server) -> None:
    before = head(accounts)
    raw = (
        b'{"id": 501, "debit_account_id": 1, "credit_account_id": 2, "amount": "1.00",'
        b' "amount": "900.00", "ledger": 1, "code": 1}'
    )
    with accounts.client() as c:
        body = assert_problem(
            c.post("/v1/transfers", content=raw, headers={"content-type": "application/json"}),
            422,
            "duplicate_key",
        )
    assert body["key"] == "amount"
    assert head(accounts) == before


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (json.dumps(transfer_body()).encode(), "text/plain", 415, "unsupported_media_type"),
        (json.dumps(transfer_body()).encode(), None, 415, "unsupported_media_type"),
        (
            json.dumps(transfer_body()).encode(),
            "application/json; charset=latin-1",
            415,
            "unsupported_media_type",
        ),
        (
            b"\xef\xbb\xbf" + json.dumps(transfer_body()).encode(),
            "application/json",
            400,
            "invalid_json",
        ),
        (b'{"id": "\xff"}', "application/json", 400, "invalid_json"),
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"id": NaN}', "application/json", 400, "invalid_json"),
        (b"[1, 2", "application/json", 400, "invalid_json"),
    ],
)
def test_only_utf8_json_sent_as_application_json_is_read(
    accounts: Server, content: bytes, content_type: str | None, status: int, code: str
) -> None:
    before = head(accounts)
    headers = {"content-type": content_type} if content_type else {}
    with accounts.client() as c:
        request = c.build_request("POST", "/v1/transfers", content=content, headers=headers)
        if content_type is None:
            request.headers.pop("content-type", None)
        assert_problem(c.send(request), status, code)
    assert head(accounts) == before


def test_json_with_a_utf8_charset_parameter_is_fine(accounts: Server) -> None:
    with accounts.client() as c:
        r = c.post(
            "/v1/transfers",
            content=json.dumps(transfer_body(id=502)).encode(),
            headers={"content-type": "application/json; charset=UTF-8"},
        )
    assert r.status_code == 201, r.text


def test_a_body_over_the_limit_is_refused_before_it_is_read(accounts: Server) -> None:
    before = head(accounts)
    huge = b'{"id": 503, "pad": "' + b"x" * (10 << 20) + b'"}'
    with accounts.client() as c:
        body = assert_problem(
            c.post("/v1/transfers", content=huge, headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
        assert body["max_body_bytes"] == 1 << 20

        # Without a Content-Length (chunked), the limit applies as the body streams in.
        def chunks() -> Iterator[bytes]:
            yield b'{"id": 504, "pad": "'
            for _ in range(40):
                yield b"x" * 65536
            yield b'"}'

        assert_problem(
            c.post("/v1/transfers", content=chunks(), headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
    assert head(accounts) == before


def test_batch_routes_take_bodies_up_to_their_own_larger_limit(accounts: Server) -> None:
    items = [transfer_body(id=10_000 + i, amount="0.01") for i in range(8000)]
    body = json.dumps({"linked": False, "transfers": items}, indent=4).encode()  # pretty-printed
    assert len(body) > 1 << 20
    with accounts.client() as c:
        r = c.post(
            "/v1/transfer-batches", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == 201, r.text[:500]
    assert len(r.json()["results"]) == 8000


def test_amounts_the_account_currency_cannot_hold_are_named_conflicts(accounts: Server) -> None:
    before = head(accounts)
    with accounts.client() as c:
        assert_problem(
            c.post("/v1/transfers", json=transfer_body(id=505, amount="1.001")),
            409,
            "amount_precision_exceeded",
        )
        too_big = str(2**128)  # JPY has no minor unit: 2^128 minor units
        assert_problem(
            c.post(
                "/v1/transfers",
                json=transfer_body(id=506, debit_account_id=3, credit_account_id=4, amount=too_big),
            ),
            409,
            "amount_too_large",
        )
        # trailing zeros beyond the currency's exponent change nothing: 1.000 USD is 1.00
        ok = c.post("/v1/transfers", json=transfer_body(id=507, amount="1.000"))
        assert ok.status_code == 201, ok.text
        assert ok.json()["amount"] == "1.00"
    assert head(accounts) == before + 3  # only the last one wrote (a transfer and two legs)


def test_a_point_in_history_past_the_head_is_refused_not_echoed(accounts: Server) -> None:
    with accounts.client() as c:
        past = head(accounts) + 1
        assert_problem(
            c.get("/v1/accounts/1", params={"as_of_position": past}),
            422,
            "as_of_position_not_committed",
        )
        assert_problem(
            c.get("/v1/ledgers/1/trial-balance", params={"as_of_position": past}),
            422,
            "as_of_position_not_committed",
        )
        assert c.get("/v1/accounts/1", params={"as_of_position": past - 1}).status_code == 200


@pytest.mark.parametrize("value", ["01", "+1", "1.0", "-1", " 1", "1e2", "abc"])
def test_positions_and_limits_in_queries_are_canonical_digits(accounts: Server, value: str) -> None:
    with accounts.client() as c:
        assert_problem(
            c.get("/v1/accounts/1", params={"min_position": value}), 422, "invalid_request"
        )
        assert_problem(
            c.get("/v1/accounts/1/transfers", params={"limit": value}), 422, "invalid_request"
        )


def test_metrics_can_require_a_token(accounts: Server) -> None:
    accounts.runtime.app.state.services.extra["metrics_token"] = "s3cret"
    # The token is read when the app is built; build a second app with it to check the route.
    from api.app import create_app

    services = accounts.runtime.app.state.services
    app = create_app(services, routers=[])
    transport = httpx.ASGITransport(app=app)

    async def get(headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/metrics", headers=headers)

    import asyncio

    assert_problem(asyncio.run(get({})), 401, "unauthenticated")
    assert asyncio.run(get({"Authorization": "Bearer wrong"})).status_code == 401
    ok = asyncio.run(get({"Authorization": "Bearer s3cret"}))
    assert ok.status_code == 200
    assert "ledgerline_http_requests_total" in ok.text


def test_the_reserved_id_2_128_minus_1_is_a_named_ledger_rule(accounts: Server) -> None:
    int_max = 2**128 - 1
    with accounts.client() as c:
        for too_big in (int_max, str(int_max), 2**128, 10**60):
            assert_problem(
                c.post("/v1/transfers", json=transfer_body(id=too_big)),
                409,
                "id_must_not_be_int_max",
            )
        assert_problem(
            c.post("/v1/transfers", json=transfer_body(id=508, debit_account_id=str(int_max))),
            409,
            "debit_account_id_must_not_be_int_max",
        )
        assert_problem(
            c.post("/v1/accounts", json={"id": int_max, "ledger": 1, "currency": "USD", "code": 1}),
            409,
            "id_must_not_be_int_max",
        )
