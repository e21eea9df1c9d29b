"""The hot command route answers exactly as the framework's route for the same requests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Server


def scenario(c: httpx.Client, base: int, token: str) -> list[tuple[int, str, Any]]:
    """Every kind of answer POST /v1/transfers gives, for transfer ids from ``base``."""

    def transfer(**overrides: Any) -> dict[str, Any]:
        body = {
            "id": base + 1,
            "debit_account_id": 1,
            "credit_account_id": 2,
            "amount": "1.00",
            "ledger": 1,
            "code": 1,
        }
        return {**body, **overrides}

    requests: list[tuple[dict[str, str], Any]] = [
        ({}, transfer()),  # created
        ({}, transfer()),  # a retry: the first outcome
        ({}, transfer(amount="2.00")),  # exists_with_different_amount
        ({}, transfer(id=base + 2, debit_account_id=99)),  # debit_account_not_found (409)
        ({}, transfer(id=base + 2, amount="5.00")),  # id_already_failed
        ({}, transfer(id=base + 3, debit_account_id=2, amount="999999.00")),  # exceeds_credits
        ({}, transfer(id=base + 4, amount="0.001")),  # amount_precision_exceeded
        ({}, transfer(id=base + 5, pending=True, timeout_s=60)),  # a pending transfer
        ({}, transfer(id=str(base + 6))),  # a string id
        ({}, transfer(id=True)),  # invalid_request (the framework's 422)
        ({}, {"id": base + 7}),  # fields missing
        ({}, [1, 2]),  # not an object
        ({"authorization": ""}, transfer(id=base + 8)),  # unauthenticated
        ({"authorization": "Bearer ll_x_y"}, transfer(id=base + 8)),  # invalid_token
        ({"authorization": "Basic abc"}, transfer(id=base + 8)),
    ]
    out = []
    for headers, body in requests:
        h = {"authorization": f"Bearer {token}", **headers}
        if not h["authorization"]:
            del h["authorization"]
        r = c.post("/v1/transfers", json=body, headers=h)
        data = _relabel(r.json(), base) if r.content else None
        if isinstance(data, dict):
            data.pop("position", None)
        out.append((r.status_code, r.headers.get("content-type", ""), data))
    return out


def _relabel(value: Any, base: int) -> Any:
    """Replace this run's transfer ids by labels, wherever they appear."""
    if isinstance(value, dict):
        return {k: _relabel(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v, base) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and base < value < base + 10:
        return f"ID{value - base}"
    if isinstance(value, str):
        for n in range(1, 10):
            value = value.replace(str(base + n), f"ID{n}")
    return value


def test_the_fast_route_and_the_framework_route_answer_alike(server: Server) -> None:
    token = server.tokens["operator"]
    extra = server.runtime.app.state.services.extra
    with server.client() as c:
        for account_id, limited in ((1, False), (2, True)):
            c.post(
                "/v1/accounts",
                json={
                    "id": account_id,
                    "ledger": 1,
                    "currency": "USD",
                    "code": 1,
                    "flags": {"debits_must_not_exceed_credits": limited},
                },
            )
        extra["fast_paths"] = True
        fast = scenario(c, 10_000, token)
        extra["fast_paths"] = False
        slow = scenario(c, 20_000, token)
        extra["fast_paths"] = True
    assert [s for s, _, _ in fast][:3] == [201, 200, 409]
    assert fast == slow
