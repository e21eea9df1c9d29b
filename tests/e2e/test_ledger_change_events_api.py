"""Change events over HTTP (``GET /v1/change-events``, TigerBeetle's ``get_change_events``):
one record per event that changed balances, with both accounts right after it.

Each case: given some transfers, when one more thing happens, then the events it added, in
order: (type, transfer, pending transfer, amount, debit account, credit account), an account
being (id, debits_pending, debits_posted, credits_pending, credits_posted, closed).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem, transfer

BALANCES = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")

Step = tuple[Any, ...]


def pending(tid: int, amount: str = "5.00", **extra: Any) -> Step:
    return ("transfer", tid, 1, 2, amount, {"pending": True, **extra})


def settle(tid: int, pending_id: int, kind: str, **extra: Any) -> Step:
    return ("transfer", tid, 0, 0, None, {"pending_id": pending_id, f"{kind}": True, **extra})


POST, VOID = "post_pending_transfer", "void_pending_transfer"
OPEN = False
CLOSED = True

CASES: dict[str, tuple[list[Step], list[Step], list[tuple[Any, ...]]]] = {
    "a single-phase transfer": (
        [],
        [("transfer", 1, 1, 2, "10.00", {})],
        [("single_phase", "1", None, "10.00",
          (1, "0.00", "10.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "10.00", OPEN))],
    ),
    "a pending transfer": (
        [],
        [pending(1)],
        [("two_phase_pending", "1", None, "5.00",
          (1, "5.00", "0.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "5.00", "0.00", OPEN))],
    ),
    "a post with an id of its own, of part of the amount": (
        [pending(1)],
        [settle(2, 1, POST, amount="3.00")],
        [("two_phase_posted", "2", "1", "3.00",
          (1, "0.00", "3.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "3.00", OPEN))],
    ),
    "a post without an id of its own (/post)": (
        [pending(1)],
        [("post", 1)],
        [("two_phase_posted", None, "1", "5.00",
          (1, "0.00", "5.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "5.00", OPEN))],
    ),
    "a void with an id of its own": (
        [pending(1)],
        [settle(2, 1, VOID)],
        [("two_phase_voided", "2", "1", "5.00",
          (1, "0.00", "0.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "0.00", OPEN))],
    ),
    "a void without an id of its own (/void)": (
        [pending(1)],
        [("void", 1)],
        [("two_phase_voided", None, "1", "5.00",
          (1, "0.00", "0.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "0.00", OPEN))],
    ),
    "an expiry": (
        [pending(1, timeout_s=1), ("transfer", 2, 1, 2, "1.00", {})],
        [("tick", 2)],
        [("two_phase_expired", None, "1", "5.00",
          (1, "0.00", "1.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "1.00", OPEN))],
    ),
    "a closing transfer": (
        [],
        [pending(1, "0", closing_debit=True, closing_credit=True)],
        [("two_phase_pending", "1", None, "0.00",
          (1, "0.00", "0.00", "0.00", "0.00", CLOSED),
          (2, "0.00", "0.00", "0.00", "0.00", CLOSED))],
    ),
    "the void of a closing transfer": (
        [pending(1, "2.00", closing_debit=True)],
        [settle(2, 1, VOID)],
        [("two_phase_voided", "2", "1", "2.00",
          (1, "0.00", "0.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "0.00", OPEN))],
    ),
    "the void of a hold on an account another transfer closed": (
        [pending(1, "2.00"), ("transfer", 2, 3, 2, "0", {"pending": True, "closing_credit": True})],
        [settle(3, 1, VOID)],
        [("two_phase_voided", "3", "1", "2.00",
          (1, "0.00", "0.00", "0.00", "0.00", OPEN),
          (2, "0.00", "0.00", "0.00", "0.00", CLOSED))],
    ),
    "the expiry of a closing transfer": (
        [pending(1, "2.00", closing_credit=True, timeout_s=1)],
        [("tick", 2)],
        [("two_phase_expired", None, "1", "2.00",
          (1, "0.00", "0.00", "0.00", "0.00", OPEN), (2, "0.00", "0.00", "0.00", "0.00", OPEN))],
    ),
}  # fmt: skip


class Ledger:
    def __init__(self, server: Server, c: httpx.Client) -> None:
        self.server, self.c, self.position = server, c, 0

    def do(self, step: Step) -> None:
        if step[0] == "transfer":
            _, tid, dr, cr, amount, extra = step
            body = {**extra} if amount is None else {"amount": amount, **extra}
            if dr == 0:
                r = self.c.post("/v1/transfers", json={"id": tid, **body})
            else:
                r = transfer(self.c, tid, dr, cr, **{"amount": amount, **extra})
            assert r.status_code == 201, r.text
        elif step[0] in ("post", "void"):
            r = self.c.post(f"/v1/transfers/{step[1]}/{step[0]}")
            assert r.status_code == 200, r.text
        else:  # the clock moves on and the expiry duty runs
            self.events()  # the sweep reads due holds from the read model
            self.server.clock.advance(step[1])
            assert self.server.runtime.sweep_expired() >= 1
            self.position = self.server.runtime.store.recorder.head().position
            return
        self.position = max(self.position, r.json()["position"])

    def events(self, **params: Any) -> list[dict[str, Any]]:
        r = self.c.get("/v1/change-events", params={"min_position": self.position, **params})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def _seen(event: dict[str, Any]) -> tuple[Any, ...]:
    sides = [
        (a["id"], *(a["balances"][k] for k in BALANCES), a["closed"])
        for a in (event["debit_account"], event["credit_account"])
    ]
    return (event["type"], event["transfer_id"], event["pending_id"], event["amount"], *sides)


@pytest.mark.parametrize(("given", "when", "then"), CASES.values(), ids=list(CASES))
def test_each_event_that_changes_balances_is_one_change_event_with_the_balances_after_it(
    server: Server, given: list[Step], when: list[Step], then: list[tuple[Any, ...]]
) -> None:
    with server.client() as c:
        for a in (1, 2, 3):
            account(c, a)
        ledger = Ledger(server, c)
        for step in given:
            ledger.do(step)
        before = len(ledger.events())
        for step in when:
            ledger.do(step)
        events = ledger.events()
    assert [_seen(e) for e in events[before:]] == then
    stamps = [int(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps)


def test_change_events_page_through_time_and_bounds_are_inclusive(server: Server) -> None:
    with server.client() as c:
        for a in (1, 2):
            account(c, a)
        ledger = Ledger(server, c)
        for tid in range(1, 6):
            ledger.do(("transfer", tid, 1, 2, f"{tid}.00", {}))
        everything = ledger.events()
        assert [e["transfer_id"] for e in everything] == ["1", "2", "3", "4", "5"]
        pages, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            r = c.get("/v1/change-events", params=params)
            assert r.status_code == 200, r.text
            pages.append([e["transfer_id"] for e in r.json()["items"]])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        assert pages == [["1", "2"], ["3", "4"], ["5"]]
        second, fourth = everything[1]["timestamp"], everything[3]["timestamp"]
        bounded = ledger.events(timestamp_min=second, timestamp_max=fourth)
        assert [e["transfer_id"] for e in bounded] == ["2", "3", "4"]
        unbounded = ledger.events(timestamp_min=0, timestamp_max=0)  # 0: no bound
        assert unbounded == everything


def test_change_events_are_refused_as_the_other_queries_refuse(server: Server) -> None:
    with server.client() as c:
        for params in ({"limit": 0}, {"limit": 1001}, {"cursor": "x"}, {"timestamp_min": -1}):
            r = c.get("/v1/change-events", params=params)
            like = c.get("/v1/transfers", params=params)
            assert r.status_code == like.status_code == 422, r.text
            assert r.json()["code"] == like.json()["code"]
        assert_problem(
            c.get("/v1/change-events", params={"min_position": 10**9}),
            422,
            "min_position_not_committed",
        )
    with server.client(None) as anonymous:
        assert_problem(anonymous.get("/v1/change-events"), 401, "unauthenticated")
    with server.client("analyst") as analyst:
        assert analyst.get("/v1/change-events").status_code == 403
    with server.client("auditor") as auditor:
        assert auditor.get("/v1/change-events").status_code == 200
