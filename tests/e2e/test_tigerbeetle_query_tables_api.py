"""TigerBeetle's query tables (``query_accounts``, ``query_transfers``, the three
``get_account_transfers`` and the three ``get_account_balances``), vendored unchanged in
``tests/unit/domain/tigerbeetle_tables.py``, run over HTTP against the read model.

The creates of a table go through ``POST /v1/account-batches`` and
``POST /v1/transfer-batches``; each query through ``GET /v1/accounts`` or
``GET /v1/transfers``. A filter field of 0 is "any" (as in TigerBeetle), a timestamp bound
named by an id is that account's or transfer's timestamp (``timestamp`` of its read), and the
ids answered must be the table's, in its order. Where Ledgerline differs by design:
a page holds at most 1000 items (``L-0``, 2^32-1, asks for 1000), and a limit of 0 is a
request the schema refuses (422) where TigerBeetle answers nothing: both mean no results.
``get_account_transfers`` is ``GET /v1/transfers?account_id=&debits=&credits=``,
``get_account_balances`` ``GET /v1/accounts/{id}/balances`` and ``get_change_events``
``GET /v1/change-events``: each event's type, transfer, amount, pending transfer and both
accounts' balances and ``closed`` flag must be the table's, and its time that of the
transfer it names (an expiry's at or past the pending transfer's deadline). ``tick N
seconds`` moves the server's injected clock and runs the expiry sweep (the runtime's duty)
once the read model has applied what came before, as TigerBeetle's pulse does.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.unit.domain.tigerbeetle_runner import U64, Runner, number
from tests.unit.domain.tigerbeetle_tables import TABLES

PAGE_MAX = 1000
BALANCE_KEYS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
RUN = (
    "query_accounts",
    "query_transfers",
    "get_account_transfers",
    "get_account_balances",
    "get_change_events",
)
EVENT_TYPES = {
    "_": "single_phase",
    "PEN": "two_phase_pending",
    "POS": "two_phase_posted",
    "VOI": "two_phase_voided",
    "EXP": "two_phase_expired",
}
CASES = [
    (name, i, t)
    for name, tables in TABLES.items()
    if name.startswith(RUN)
    for i, t in enumerate(tables)
]


def _account_json(spec: Any) -> dict[str, Any]:
    return {
        "id": spec.account_id,
        "ledger": spec.ledger,
        "currency": "USD",
        "code": spec.code,
        "flags": {
            "debits_must_not_exceed_credits": spec.debits_must_not_exceed_credits,
            "credits_must_not_exceed_debits": spec.credits_must_not_exceed_debits,
            "linked": spec.linked,
            "history": spec.history,
        },
        "user_data_128": spec.user_data_128,
        "user_data_64": spec.user_data_64,
        "user_data_32": spec.user_data_32,
    }


def _transfer_json(spec: Any) -> dict[str, Any]:
    return {
        "id": spec.transfer_id,
        "debit_account_id": spec.debit_account_id,
        "credit_account_id": spec.credit_account_id,
        "amount": f"{spec.amount // 100}.{spec.amount % 100:02d}",
        "ledger": spec.ledger,
        "code": spec.code,
        "user_data_128": spec.user_data_128,
        "user_data_64": spec.user_data_64,
        "user_data_32": spec.user_data_32,
        "linked": spec.linked,
        "pending": spec.pending,
        "timeout_s": spec.timeout_s,
        "pending_id": spec.pending_id,
        "post_pending_transfer": spec.post_pending_transfer,
        "void_pending_transfer": spec.void_pending_transfer,
        "balancing_debit": spec.balancing_debit,
        "balancing_credit": spec.balancing_credit,
        "closing_debit": spec.closing_debit,
        "closing_credit": spec.closing_credit,
    }


def _cents(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int(frac or 0)


class HttpTable:
    def __init__(self, c: httpx.Client, server: Server | None = None) -> None:
        self.c = c
        self.server = server
        self.parser = Runner()
        self.position = 0
        self.query: tuple[str, list[str]] | None = None
        self.expected: list[Any] = []
        self.mismatches: list[str] = []
        self.queries = 0

    def run(self, table: str) -> None:
        for raw in table.splitlines():
            line = raw.strip()
            if not line:
                continue
            word, *w = line.split()
            if word in ("account", "transfer"):
                getattr(self.parser, f"_{word}")(line, w)
            elif word in (
                "query_accounts",
                "query_transfers",
                "get_account_transfers",
                "get_account_balances",
                "get_change_events",
            ):
                self.query, self.expected = (word, w), []
            elif word == "get_account_balances_result":
                self.expected.append((number(w[0]), *(number(x) for x in w[1:5])))
            elif word == "get_change_events_result":
                self.expected.append(self._change_event_expected(w))
            elif word == "tick":
                self._tick(w)
            elif word.endswith("_result"):
                self.expected.append(number(w[0]))
            elif word == "commit":
                self._commit(w[0], line)
            else:  # pragma: no cover - the tables run here hold nothing else
                raise AssertionError(f"unexpected line {line!r}")

    def _commit(self, operation: str, line: str) -> None:
        if operation in ("create_accounts", "create_transfers"):
            batch, self.parser.batch = self.parser.batch, []
            if operation == "create_accounts":
                body = {"accounts": [_account_json(s) for _, s, _ in batch]}
                r = self.c.post("/v1/account-batches", json=body)
            else:
                body = {"transfers": [_transfer_json(s) for _, s, _ in batch]}
                r = self.c.post("/v1/transfer-batches", json=body)
            assert r.status_code in (200, 201), r.text
            self.position = max(self.position, r.json()["position"] or 0)
            for (text, _, expected), item in zip(batch, r.json()["results"], strict=True):
                if item["status"] != expected:
                    self.mismatches.append(f"{text}: expected {expected}, got {item['status']}")
            return
        assert self.query is not None
        self.queries += 1
        actual = self._ask(*self.query)
        if actual != self.expected:
            self.mismatches.append(f"{self.query}: expected {self.expected}, got {actual}")
        self.query = None

    def _timestamp(self, kind: str, token: str) -> int | None:
        if token == "_":
            return None
        r = self.c.get(f"/v1/{kind}/{number(token)}", params={"min_position": self.position})
        assert r.status_code == 200, r.text
        return int(r.json()["timestamp"])

    def _tick(self, w: list[str]) -> None:
        """TigerBeetle's pulse after its clock moves: expire what has come due."""
        assert self.server is not None and int(w[0]) > 0 and w[1] == "seconds", w
        self.server.clock.advance(int(w[0]))
        # The sweep finds due holds in the read model: let it apply the creates first.
        r = self.c.get("/v1/change-events", params={"min_position": self.position, "limit": 1})
        assert r.status_code == 200, r.text
        self.server.runtime.sweep_expired()
        self.position = self.server.runtime.store.recorder.head().position

    def _change_event_expected(self, w: list[str]) -> tuple[Any, ...]:
        """``TYPE TRANSFER AMOUNT PENDING DR dp dpo cp cpo CLSD CR dp dpo cp cpo CLSD`` (the
        table's TestGetChangeEventsResult), with the time the event must carry."""
        kind, transfer, pending = EVENT_TYPES[w[0]], number(w[1]), number(w[3])
        if kind == "two_phase_expired":  # at or after the pending transfer's deadline
            r = self.c.get(f"/v1/transfers/{pending}", params={"min_position": self.position})
            assert r.status_code == 200, r.text
            stamp = ("at_least", int(r.json()["timestamp"]) + r.json()["timeout_s"] * 10**9)
        else:
            stamp = ("equal", self._timestamp("transfers", w[1]))
        sides = [(number(w[i]), *(number(x) for x in w[i + 1 : i + 5]), w[i + 5] == "CLSD")
                 for i in (4, 10)]  # fmt: skip
        return (kind, transfer, number(w[2]), pending, *sides, stamp)

    def _change_events(self, w: list[str]) -> list[Any]:
        """``get_change_events TMIN TMAX LIMIT``: bounds named by transfers (``_``: none)."""
        params: dict[str, Any] = {"min_position": self.position}
        for name, token in (("timestamp_min", w[0]), ("timestamp_max", w[1])):
            stamp = self._timestamp("transfers", token)
            if stamp is not None:
                params[name] = stamp
        params["limit"] = min(number(w[2], 2**32 - 1), PAGE_MAX)
        r = self.c.get("/v1/change-events", params=params)
        if params["limit"] == 0:
            assert r.status_code == 422, r.text
            return []
        assert r.status_code == 200, r.text
        actual: list[Any] = []
        for i, item in enumerate(r.json()["items"]):
            stamp = int(item["timestamp"])
            want = self.expected[i][-1] if i < len(self.expected) else None
            holds = want is not None and (
                stamp == want[1] if want[0] == "equal" else stamp >= want[1]
            )
            sides = [
                (int(a["id"]), *(_cents(a["balances"][k]) for k in BALANCE_KEYS), a["closed"])
                for a in (item["debit_account"], item["credit_account"])
            ]
            actual.append(
                (
                    item["type"],
                    int(item["transfer_id"] or 0),
                    _cents(item["amount"]),
                    int(item["pending_id"] or 0),
                    *sides,
                    want if holds else ("timestamp", stamp),  # the time, when it is wrong
                )
            )
        return actual

    def _ask(self, word: str, w: list[str]) -> list[Any]:
        if word == "get_change_events":
            return self._change_events(w)
        if word == "get_account_transfers":
            return self._account_transfers(w)
        if word == "get_account_balances":
            return self._account_balances(w)
        kind = "accounts" if word == "query_accounts" else "transfers"
        params: dict[str, Any] = {"min_position": self.position}
        for name, token in zip(
            ("user_data_128", "user_data_64", "user_data_32", "ledger", "code"), w[:5], strict=True
        ):
            value = number(token, U64)
            if value:  # 0: any
                params[name] = value
        for name, token in (("timestamp_min", w[5]), ("timestamp_max", w[6])):
            stamp = self._timestamp(kind, token)
            if stamp is not None:
                params[name] = stamp
        params["limit"] = min(number(w[7], 2**32 - 1), PAGE_MAX)
        params["reversed"] = "true" if w[8] == "REV" else "false"
        r = self.c.get(f"/v1/{kind}", params=params)
        if params["limit"] == 0:
            assert r.status_code == 422, r.text
            return []
        assert r.status_code == 200, r.text
        return [int(item["id"]) for item in r.json()["items"]]

    def _account_balances(self, w: list[str]) -> list[Any]:
        """``get_account_balances``, the same filter: (transfer, dp, dpo, cp, cpo) in cents."""
        r = self._account_filter(w, f"/v1/accounts/{number(w[0])}/balances")
        if r is None:
            return []
        if r.status_code == 404:  # an account that does not exist has no balances
            return []
        assert r.status_code == 200, r.text
        return [
            (int(i["transfer_id"]), *(_cents(i["balances"][k]) for k in BALANCE_KEYS))
            for i in r.json()["items"]
        ]

    def _account_transfers(self, w: list[str]) -> list[int]:
        """``get_account_transfers A UD128 UD64 UD32 CODE TMIN TMAX LIMIT DR CR REV``."""
        r = self._account_filter(w, "/v1/transfers", account_param=True)
        if r is None:
            return []
        assert r.status_code == 200, r.text
        return self._ids(r)

    def _account_filter(
        self, w: list[str], path: str, *, account_param: bool = False
    ) -> httpx.Response | None:
        """TigerBeetle's AccountFilter as query parameters; None when the schema refuses it
        (a limit of 0, account 0), where TigerBeetle answers nothing."""
        account = number(w[0])
        params: dict[str, Any] = {"min_position": self.position}
        for name, token in zip(
            ("user_data_128", "user_data_64", "user_data_32", "code"), w[1:5], strict=True
        ):
            value = number(token, U64)
            if value:
                params[name] = value
        for name, token in (("timestamp_min", w[5]), ("timestamp_max", w[6])):
            stamp = self._timestamp("transfers", token)
            if stamp is not None:
                params[name] = stamp
        params["limit"] = min(number(w[7], 2**32 - 1), PAGE_MAX)
        params["debits"] = "true" if w[8] == "DR" else "false"
        params["credits"] = "true" if w[9] == "CR" else "false"
        params["reversed"] = "true" if w[10] == "REV" else "false"
        if account_param:
            params["account_id"] = account
        r = self.c.get(path, params=params)
        if params["limit"] == 0 or not account:  # refused by the schema: no results
            assert r.status_code == 422, r.text
            return None
        return r

    @staticmethod
    def _ids(r: httpx.Response) -> list[int]:
        return [int(item["id"]) for item in r.json()["items"]]


@pytest.mark.parametrize(("name", "index", "table"), CASES, ids=[f"{n}[{i}]" for n, i, _ in CASES])
def test_tigerbeetle_query_table_gives_the_same_results_over_http(
    server: Server, name: str, index: int, table: str
) -> None:
    with server.client() as c:
        runner = HttpTable(c, server)
        runner.run(table)
    assert not runner.mismatches, "\n".join(runner.mismatches)
    assert runner.queries == table.count(f"commit {name.split(':', maxsplit=1)[0]}")
