"""AML over HTTP with the real server: ingest, alert, case to a SAR draft; roles; bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server

DAY = "2026-11-02"  # a Monday, in the past of the server's clock


def tx(tx_id: str, at: str, src: str, dst: str, amount: str, **kw: Any) -> dict[str, Any]:
    record = {
        "id": tx_id,
        "timestamp": f"{DAY}T{at}-05:00",
        "from_account": src,
        "to_account": dst,
        "amount": amount,
        "currency": kw.pop("currency", "USD"),
        "channel": kw.pop("channel", "ach"),
        "kind": kw.pop("kind", "transfer"),
        "from_country": "US",
        "to_country": "US",
    }
    record.update(kw)
    return record


def deposit(tx_id: str, at: str, account: str, amount: str, branch: str) -> dict[str, Any]:
    return tx(
        tx_id, at, "CASH", account, amount,
        channel="cash", kind="cash_deposit", conducted_by=f"P-{account}", branch=branch,
    )  # fmt: skip


def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["type"].endswith(f"/problems/{code}")
    return body


@pytest.fixture
def loaded(server: Server) -> dict[str, Any]:
    """Rates, a KYC profile, a fan-in into H and a day of cash over the CTR threshold."""
    op = server.client("operator")
    ok(op.post("/v1/aml/rates", json={"rates": {"EUR": "1.10"}, "source": "test"}))
    ok(
        op.post(
            "/v1/aml/accounts",
            json={
                "account": "H",
                "name": "Hugo Hub",
                "segment": "individual",
                "risk_rating": "medium",
            },
        )
    )
    senders = [{"account": f"S{i}", "segment": "individual"} for i in range(6)]
    ok(op.post("/v1/aml/account-batches", json={"accounts": senders}))
    fan_in = [tx(f"f{i}", f"1{i}:00:00", f"S{i}", "H", "1500.00") for i in range(6)]
    cash = [
        deposit("d1", "10:00:00", "K", "6000.00", "BR1"),
        deposit("d2", "15:00:00", "K", "5000.00", "BR2"),
    ]
    body = ok(op.post("/v1/aml/transaction-batches", json={"transactions": fan_in + cash}))
    assert body["created"] == 8
    return {"position": body["position"]}


def test_ingest_alert_case_and_sar_draft_over_http(server: Server, loaded: dict[str, Any]) -> None:
    analyst = server.client("analyst")
    alerts = ok(
        analyst.get(
            "/v1/aml/alerts", params={"typology": "fan_in", "min_position": loaded["position"]}
        ),
        200,
    )["alerts"]
    [alert] = alerts
    assert (alert["subject"], alert["rule_id"], alert["rule_version"]) == ("H", "fan_in", 1)
    assert alert["transaction_ids"] == [f"f{i}" for i in range(6)]
    assert alert["features"]["risk_rating"] == "medium"
    assert 0 < alert["position"] <= loaded["position"]

    case = ok(
        analyst.post(
            "/v1/aml/cases",
            json={"case_id": "C-1", "alert_ids": [alert["alert_id"]], "title": "fan-in on H"},
        )
    )
    assert case["status"] == "open"
    steps = [
        {"action": "assign", "assignee": "ana"},
        {"action": "note", "text": "six new senders in six hours"},
        {"action": "evidence", "kind": "statement", "reference": "doc://H/2026-11"},
        {"action": "escalate", "text": "no economic purpose"},
        {"action": "file_sar", "filing_reference": "BSA-0001", "text": "Funds gathered..."},
    ]
    for i, step in enumerate(steps):
        case = ok(analyst.post("/v1/aml/cases/C-1/actions", json={"request_id": f"r{i}", **step}))
    assert case["status"] == "sar_filed"

    auditor = server.client("auditor")
    read = ok(auditor.get("/v1/aml/cases/C-1", params={"min_position": case["position"]}), 200)
    assert [t["event"] for t in read["trail"]] == [
        "CaseOpened", "CaseAssigned", "CaseNoteAdded", "CaseEvidenceAttached",
        "CaseEscalated", "SarFiled",
    ]  # fmt: skip
    assert all(t["by"].startswith("analyst:") for t in read["trail"])
    sar = ok(auditor.get("/v1/aml/cases/C-1/sar"), 200)
    assert sar["report"] == "SAR" and sar["status"] == "filed"
    assert [s["account"] for s in sar["part_i_subjects"] if s["role"] == "subject"] == ["H"]
    assert sar["part_i_subjects"][0]["name"] == "Hugo Hub"
    assert sar["part_ii_suspicious_activity"]["total_amount_usd"] == "9000.00"
    assert [t["tx_id"] for t in sar["transactions"]] == [f"f{i}" for i in range(6)]
    assert sar["evidence"]["log_positions"]["highest"] <= loaded["position"]
    page = auditor.get("/v1/aml/cases/C-1/sar", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Suspicious Activity Report" in page.text and "f5" in page.text


def test_the_ctr_draft_of_a_day_lists_the_cash_over_10000(
    server: Server, loaded: dict[str, Any]
) -> None:
    auditor = server.client("auditor")
    report = ok(
        auditor.get(
            "/v1/aml/reports/ctr", params={"date": DAY, "min_position": loaded["position"]}
        ),
        200,
    )
    [ctr] = report["reports"]
    assert ctr["subject"] == "K"
    assert ctr["part_ii_amount"]["cash_in_usd"] == "11000.00"
    assert ctr["part_iii_locations"] == ["BR1", "BR2"]
    assert [t["tx_id"] for t in ctr["transactions"]] == ["d1", "d2"]


def test_the_graph_answers_neighbourhood_paths_and_cycles(
    server: Server, loaded: dict[str, Any]
) -> None:
    op = server.client("operator")
    extra = [tx("c1", "20:00:00", "H", "S0", "1400.00")]
    position = ok(op.post("/v1/aml/transaction-batches", json={"transactions": extra}))["position"]
    hood = ok(op.get("/v1/aml/graph/H", params={"hops": 1, "min_position": position}), 200)
    assert set(hood["nodes"]) == {"H", *(f"S{i}" for i in range(6))}
    assert {"from": "S0", "to": "H"}.items() <= hood["edges"][0].items() or any(
        e["from"] == "S0" and e["to"] == "H" and e["sum_usd"] == "1500.00" for e in hood["edges"]
    )
    paths = ok(op.get("/v1/aml/graph/paths", params={"from": "S1", "to": "S0"}), 200)["paths"]
    assert [[(e["from"], e["to"]) for e in p] for p in paths] == [[("S1", "H"), ("H", "S0")]]
    cycles = ok(op.get("/v1/aml/graph/H/cycles"), 200)["cycles"]
    assert [[(e["from"], e["to"]) for e in c] for c in cycles] == [[("H", "S0"), ("S0", "H")]]


ROLE_RULES = [
    ("operator", "post", "/v1/aml/cases", {"case_id": "X", "alert_ids": ["a"]}, 403),
    ("operator", "put", "/v1/aml/rules/ctr", {"request_id": "r", "reason": "x"}, 403),
    ("analyst", "put", "/v1/aml/rules/ctr", {"request_id": "r", "reason": "x"}, 403),
    ("auditor", "post", "/v1/aml/cases/C/actions", {"request_id": "r", "action": "note"}, 403),
    ("auditor", "post", "/v1/aml/transactions", {"id": "t"}, 403),
    ("analyst", "post", "/v1/aml/transactions", {"id": "t"}, 403),
    ("regulator", "get", "/v1/aml/alerts", None, 403),
    ("operator", "get", "/v1/aml/cases", None, 403),
    (None, "get", "/v1/aml/alerts", None, 401),
    ("auditor", "get", "/v1/aml/alerts", None, 200),
    ("auditor", "get", "/v1/aml/cases", None, 200),
    ("operator", "get", "/v1/aml/alerts", None, 200),
    ("analyst", "get", "/v1/aml/rules", None, 200),
]


def test_roles_decide_who_works_cases_reads_them_and_changes_rules(server: Server) -> None:
    for role, method, path, body, status in ROLE_RULES:
        response = server.client(role).request(method.upper(), path, json=body)
        assert response.status_code == status, (role, method, path, response.text)


def test_only_an_admin_changes_a_rule_and_the_new_version_applies_from_then_on(
    server: Server,
) -> None:
    admin = server.client("admin")
    changed = ok(
        admin.put(
            "/v1/aml/rules/ctr",
            json={
                "request_id": "r1",
                "reason": "a lower state threshold",
                "params": {"threshold_usd_minor": 300_000},
            },
        )
    )
    assert changed["rule"]["version"] == 2 and changed["rule"]["author"].startswith("admin:")
    op = server.client("operator")
    body = ok(
        op.post(
            "/v1/aml/transaction-batches",
            json={"transactions": [deposit("d9", "11:00:00", "Z", "4000.00", "BR9")]},
        )
    )
    [alert] = ok(
        op.get("/v1/aml/alerts", params={"typology": "ctr", "min_position": body["position"]}),
        200,
    )["alerts"]
    assert (alert["subject"], alert["rule_version"]) == ("Z", 2)
    rules = ok(op.get("/v1/aml/rules", params={"min_position": body["position"]}), 200)["rules"]
    assert rules["ctr"]["version"] == 2 and rules["fan_in"]["version"] == 1
    problem(
        admin.put(
            "/v1/aml/rules/ctr", json={"request_id": "r2", "reason": "x", "params": {"nope": 1}}
        ),
        409,
        "unknown_rule_parameter",
    )


def test_bad_input_gets_a_named_problem_and_changes_nothing(server: Server) -> None:
    op = server.client("operator")
    ok(op.post("/v1/aml/rates", json={"rates": {"EUR": "1.10"}}))
    first = tx("t1", "09:00:00", "A", "B", "100.00")
    created = ok(op.post("/v1/aml/transactions", json=first))
    assert created["status"] == "created"
    again = ok(op.post("/v1/aml/transactions", json=first), 200)
    assert again["status"] == "created"  # the first outcome, answered again
    problem(
        op.post("/v1/aml/transactions", json={**first, "amount": "100.01"}),
        409,
        "exists_with_different_amount",
    )
    problem(
        op.post(
            "/v1/aml/transactions", json=tx("t2", "09:00:00", "A", "B", "5.00", currency="GBP")
        ),
        409,
        "currency_without_rate",
    )
    future = {**tx("t3", "09:00:00", "A", "B", "5.00"), "timestamp": "2099-01-01T00:00:00Z"}
    problem(op.post("/v1/aml/transactions", json=future), 409, "timestamp_in_future")
    problem(
        op.post(
            "/v1/aml/transactions", json=tx("t4", "09:00:00", "A", "B", "5.00", currency="XYZ")
        ),
        409,
        "unknown_currency",
    )
    problem(
        op.post("/v1/aml/transactions", json=tx("t5", "09:00:00", "A", "B", "5.00", kind="gift")),
        409,
        "invalid_kind",
    )
    # The rejected ids were not recorded: fixed, they go through.
    ok(op.post("/v1/aml/rates", json={"rates": {"GBP": "1.27"}}))
    ok(op.post("/v1/aml/transactions", json=tx("t2", "09:00:00", "A", "B", "5.00", currency="GBP")))
    # A batch answers item by item and applies the valid ones.
    batch = ok(
        op.post(
            "/v1/aml/transaction-batches",
            json={
                "transactions": [
                    tx("t6", "09:00:00", "A", "B", "5.00"),
                    {**first, "amount": "1.00"},
                    tx("t7", "09:00:00", "A", "A", "5.00"),
                ]
            },
        )
    )
    assert [r["status"] for r in batch["results"]] == [
        "created",
        "exists_with_different_amount",
        "accounts_must_be_different",
    ]
    problem(op.post("/v1/aml/rates", json={"rates": {"EUR": "-1"}}), 409, "invalid_rate")
    problem(
        op.post("/v1/aml/accounts", json={"account": "A", "risk_rating": "extreme"}),
        409,
        "invalid_risk_rating",
    )
    analyst = server.client("analyst")
    problem(
        analyst.post(
            "/v1/aml/cases/none/actions", json={"request_id": "r", "action": "note", "text": "x"}
        ),
        404,
        "case_not_found",
    )
