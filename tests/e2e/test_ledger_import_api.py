"""Imported history, linked chains of accounts, period close and the chart over HTTP (issue
13): a month of a small bank imported from a file, the books closed, balances as of mid-month
right; an import that stops at a bad line and resumes from its checkpoint."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Server
from tests.e2e.test_cli import run
from tests.e2e.test_ledger_api import assert_problem


def ns(text: str) -> int:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000


MARCH = ns("2026-03-01T00:00:00Z")
DAY = 86_400 * 1_000_000_000
END_OF_MARCH = ns("2026-04-01T00:00:00Z") - 1


def seen(c: httpx.Client, path: str, position: int, **params: Any) -> dict[str, Any]:
    r = c.get(path, params={"min_position": position, **params})
    assert r.status_code == 200, r.text
    return dict(r.json())


# ------------------------------------------------------------------ HTTP: imports and chains


def test_imported_accounts_and_transfers_keep_their_times_and_the_rules_name_bad_ones(
    server: Server,
) -> None:
    with server.client() as c:
        base = {"ledger": 1, "currency": "USD", "code": 1}
        r = c.post(
            "/v1/accounts",
            json={"id": 1, **base, "flags": {"imported": True}, "timestamp": MARCH + 1},
        )
        assert r.status_code == 201, r.text
        assert r.json()["flags"]["imported"] is True
        # Accounts' imported timestamps strictly increase.
        again = {"id": 2, **base, "flags": {"imported": True}, "timestamp": MARCH + 1}
        assert_problem(
            c.post("/v1/accounts", json=again), 409, "imported_event_timestamp_must_not_regress"
        )
        assert_problem(
            c.post("/v1/accounts", json={"id": 2, **base, "timestamp": MARCH + 5}),
            409,
            "timestamp_must_be_zero",
        )
        future = {"id": 2, **base, "flags": {"imported": True}, "timestamp": str(2**62)}
        assert_problem(
            c.post("/v1/accounts", json=future), 409, "imported_event_timestamp_must_not_advance"
        )
        assert c.post("/v1/accounts", json={**again, "timestamp": MARCH + 2}).status_code == 201

        def t(i: int, amount: str, at: int, **kw: Any) -> dict[str, Any]:
            return {
                "id": i,
                "debit_account_id": 1,
                "credit_account_id": 2,
                "amount": amount,
                "ledger": 1,
                "code": 1,
                "imported": True,
                "timestamp": at,
                **kw,
            }

        batch = [t(10, "5.00", MARCH + 2 * DAY), t(11, "7.00", MARCH + 3 * DAY)]
        r = c.post("/v1/transfer-batches", json={"transfers": batch})
        assert r.status_code == 201, r.text
        assert [i["status"] for i in r.json()["results"]] == ["created", "created"]
        assert r.json()["results"][0]["transfer"]["flags"] == {"imported": True}
        position = r.json()["position"]
        # A batch that mixes imported and live events names the odd one out.
        mixed = [
            t(12, "1.00", MARCH + 4 * DAY),
            {**t(13, "1.00", 0), "imported": False},
        ]
        r = c.post("/v1/transfer-batches", json={"transfers": mixed})
        assert [i["status"] for i in r.json()["results"]] == [
            "created",
            "imported_event_expected",
        ]
        # Before the last imported transfer: refused by name.
        assert_problem(
            c.post("/v1/transfers", json=t(14, "1.00", MARCH + 3 * DAY - 1)),
            409,
            "imported_event_timestamp_must_not_regress",
        )
        # Balances at the imported times, not at the time of the import.
        mid = "2026-03-03T12:00:00Z"
        acct = seen(c, "/v1/accounts/2", position, as_of=mid)
        assert acct["balances"]["credits_posted"] == "5.00"
        end = seen(c, "/v1/accounts/2", r.json()["position"], as_of="2026-03-10T00:00:00Z")
        assert end["balances"]["credits_posted"] == "13.00"
        listed = seen(c, "/v1/transfers/10", position)
        assert listed["timestamp"] == str(MARCH + 2 * DAY)


def test_linked_chains_of_accounts_and_per_item_chains_of_transfers(server: Server) -> None:
    with server.client() as c:

        def a(i: int, **flags: bool) -> dict[str, Any]:
            return {"id": i, "ledger": 1, "currency": "USD", "code": 1, "flags": flags}

        # [1 linked, 2] is a chain that fails on 2 (code 0 is refused by the schema, so a
        # ledger rule: 2 exists with another currency after the first batch).
        r = c.post("/v1/account-batches", json={"accounts": [a(1), a(2)]})
        assert r.status_code == 201, r.text
        other = {**a(2), "currency": "EUR"}
        r = c.post(
            "/v1/account-batches",
            json={"accounts": [a(3, linked=True), other, a(4), a(5, linked=True)]},
        )
        assert r.status_code == 201, r.text
        assert [i["status"] for i in r.json()["results"]] == [
            "linked_event_failed",
            "exists_with_different_currency",
            "created",
            "linked_event_chain_open",
        ]
        assert c.get("/v1/accounts/3").status_code == 404
        assert (
            c.get("/v1/accounts/4", params={"min_position": r.json()["position"]}).status_code
            == 200
        )
        # The batch as one chain: 409 and nothing applied.
        r = c.post("/v1/account-batches", json={"linked": True, "accounts": [a(6), other]})
        body = assert_problem(r, 409, "linked_event_failed")
        assert body["failed_index"] == 1
        assert c.get("/v1/accounts/6").status_code == 404

        def t(i: int, debit: int, amount: str = "1.00", **kw: Any) -> dict[str, Any]:
            return {
                "id": i,
                "debit_account_id": debit,
                "credit_account_id": 2,
                "amount": amount,
                "ledger": 1,
                "code": 1,
                **kw,
            }

        items = [t(20, 1, linked=True), t(21, 99), t(22, 1), t(23, 1, linked=True)]
        r = c.post("/v1/transfer-batches", json={"transfers": items})
        assert r.status_code == 201, r.text
        assert [i["status"] for i in r.json()["results"]] == [
            "linked_event_failed",
            "debit_account_not_found",
            "created",
            "linked_event_chain_open",
        ]
        # 21 failed on the ledger's state: its id is spent, and reads say so.
        assert_problem(c.post("/v1/transfers", json=t(21, 1)), 409, "id_already_failed")
        gone = c.get("/v1/transfers/21", params={"min_position": r.json()["position"]})
        assert gone.status_code == 404
        assert gone.json()["failed_code"] == "debit_account_not_found"
        # 20 only went down with its chain.
        assert c.post("/v1/transfers", json=t(20, 1)).status_code == 201


def test_a_reversal_is_linked_both_ways_in_the_read_model(server: Server) -> None:
    with server.client() as c:
        for i in (1, 2):
            r = c.post("/v1/accounts", json={"id": i, "ledger": 1, "currency": "USD", "code": 1})
            assert r.status_code == 201
        body = {"id": 5, "debit_account_id": 1, "credit_account_id": 2, "amount": "3"}
        assert c.post("/v1/transfers", json={**body, "ledger": 1, "code": 1}).status_code == 201
        r = c.post("/v1/transfers/5/reverse", json={"id": 6, "reason": "duplicate"})
        assert r.status_code == 201, r.text
        original = seen(c, "/v1/transfers/5", r.json()["position"])
        reversal = seen(c, "/v1/transfers/6", r.json()["position"])
        assert original["reversal_id"] == "6"
        assert reversal["reverses_id"] == "5"


# ------------------------------------------------------------------ a month of a small bank


CHART = [
    # id, type, parent, name
    (10, "asset", 0, "Cash"),
    (11, "asset", 10, "Cash at bank A"),
    (12, "asset", 10, "Cash at bank B"),
    (20, "liability", 0, "Customer deposits"),
    (21, "liability", 20, "Alice"),
    (22, "liability", 20, "Bob"),
    (30, "equity", 0, "Retained earnings"),
    (40, "income", 0, "Fee income"),
    (50, "expense", 0, "Operating costs"),
]


def month_of_a_bank(seed: int = 13) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chart's accounts, then a month of deposits, fees and costs at increasing times."""
    rng = random.Random(seed)
    accounts = [
        {
            "kind": "account",
            "id": i,
            "ledger": 1,
            "currency": "USD",
            "code": 1,
            "account_type": kind,
            "parent_id": parent,
            "name": name,
            "timestamp": MARCH + 1 + n,
        }
        for n, (i, kind, parent, name) in enumerate(CHART)
    ]
    transfers = []
    at = MARCH + DAY
    for n in range(90):
        at += rng.randrange(DAY // 4, DAY // 3)
        debit, credit = rng.choice([(11, 21), (12, 22), (21, 40), (22, 40), (50, 11), (50, 12)])
        cents = rng.randrange(100, 50_000)
        transfers.append(
            {
                "kind": "transfer",
                "id": 1000 + n,
                "debit_account_id": debit,
                "credit_account_id": credit,
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "ledger": 1,
                "code": 7,
                "timestamp": at,
            }
        )
    return accounts, transfers


def expected(transfers: list[dict[str, Any]], through: int) -> dict[int, tuple[int, int]]:
    """(debits posted, credits posted) in cents per account, of the transfers up to ``through``."""
    sums = {i: [0, 0] for i, *_ in CHART}
    for t in transfers:
        if t["timestamp"] <= through:
            whole, cents = t["amount"].split(".")
            amount = int(whole) * 100 + int(cents)
            sums[t["debit_account_id"]][0] += amount
            sums[t["credit_account_id"]][1] += amount
    return {i: (d, c) for i, (d, c) in sums.items()}


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def test_a_month_imported_from_a_file_closed_and_read_as_of_mid_month(
    server: Server, db_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    accounts, transfers = month_of_a_bank()
    path = tmp_path / "march.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*accounts, *transfers]))
    env = {**cli_env, "DATABASE_URL": db_url}
    done = run("import", str(path), "--batch-size", "25", "--json", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["accounts"], summary["transfers"]) == (len(CHART), len(transfers))

    head = server.runtime.store.recorder.head().position
    mid = ns("2026-03-16T00:00:00Z")
    want = expected(transfers, mid)
    with server.client() as c:
        chart = seen(c, "/v1/charts/1", head, as_of="2026-03-16T00:00:00Z")
        nodes = {int(n["id"]): n for n in chart["nodes"]}
        for account_id, (debits, credits) in want.items():
            acct = seen(c, f"/v1/accounts/{account_id}", head, as_of="2026-03-16T00:00:00Z")
            assert acct["balances"]["debits_posted"] == money(debits), account_id
            assert acct["balances"]["credits_posted"] == money(credits), account_id
            assert nodes[account_id]["balances"]["credits_posted"] == money(credits)
        # Roll-ups: a parent's is its own plus its children's.
        cash = want[11][0] + want[12][0]
        assert nodes[10]["rollup"]["debits_posted"] == money(cash)
        assert sorted(nodes[20]["children"]) == ["21", "22"]
        assert chart["balanced"] is True
        by_type = {line["account_type"]: line for line in chart["trial_balance"]}
        assert by_type["income"]["credits_posted"] == money(want[40][1])

        # Close March: income and expense move to equity, dated at the period's end.
        r = c.post(
            "/v1/ledgers/1/period-closes",
            json={"through_ns": END_OF_MARCH, "equity_account_id": 30, "code": 99},
        )
        assert r.status_code == 201, r.text
        closed = r.json()
        assert closed["period"] == 1
        assert len(closed["transfers"]) == 2
        end = expected(transfers, ns("2026-04-01T00:00:00Z"))
        after = seen(c, "/v1/charts/1", closed["position"])
        final = {int(n["id"]): n for n in after["nodes"]}
        net_income = end[40][1] - end[40][0] - (end[50][0] - end[50][1])
        equity = final[30]["balances"]
        assert (
            int(equity["credits_posted"].replace(".", ""))
            - int(equity["debits_posted"].replace(".", ""))
            == net_income
        )
        for account_id in (40, 50):
            b = final[account_id]["balances"]
            assert b["debits_posted"] == b["credits_posted"]
        # Mid-month balances are as they were; the same close again is a replay.
        again = seen(c, "/v1/accounts/21", closed["position"], as_of="2026-03-16T00:00:00Z")
        assert again["balances"]["credits_posted"] == money(want[21][1])
        assert (
            c.post(
                "/v1/ledgers/1/period-closes",
                json={"through_ns": END_OF_MARCH, "equity_account_id": 30, "code": 99},
            ).status_code
            == 200
        )
        # A back-dated import into the closed period is refused by name.
        late = {
            "id": 5000,
            "debit_account_id": 11,
            "credit_account_id": 21,
            "amount": "1.00",
            "ledger": 1,
            "code": 7,
            "imported": True,
            "timestamp": ns("2026-03-20T00:00:00Z"),
        }
        assert_problem(
            c.post("/v1/transfers", json=late), 409, "imported_event_timestamp_in_closed_period"
        )


def test_an_import_stops_at_a_bad_line_and_resumes_from_its_checkpoint(
    server: Server, db_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    accounts, transfers = month_of_a_bank(seed=7)
    lines = [json.dumps(r) for r in [*accounts, *transfers[:30]]]
    bad_line = len(accounts) + 13  # a transfer in the middle of its batch of 5
    good = lines[bad_line - 1]
    lines[bad_line - 1] = json.dumps({**json.loads(good), "debit_account_id": 999})
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = {**cli_env, "DATABASE_URL": db_url}

    first = run("import", str(path), "--batch-size", "5", env=env, timeout=300)
    assert first.returncode == 1
    error = first.stderr.strip().splitlines()[-1]
    assert error.startswith("ledgerline: error: ")
    assert f"line {bad_line}: debit_account_not_found" in error
    assert "Traceback" not in first.stderr
    checkpoint = json.loads(Path(f"{path}.checkpoint.json").read_text())
    batch_start = bad_line - (bad_line - len(accounts) - 1) % 5
    assert checkpoint["line"] == batch_start - 1
    with server.client() as c:
        head = server.runtime.store.recorder.head().position
        # Nothing of the bad line's batch was applied, and its ids are not spent.
        first_of_batch = json.loads(lines[batch_start - 1])["id"]
        assert (
            c.get(f"/v1/transfers/{first_of_batch}", params={"min_position": head}).status_code
            == 404
        )

    lines[bad_line - 1] = good
    path.write_text("\n".join(lines) + "\n")
    resumed = run("import", str(path), "--batch-size", "5", "--json", env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["last_line"] == len(lines)
    head = server.runtime.store.recorder.head().position

    # A finished file sends nothing; without its checkpoint (a kill before it was written),
    # every record exists as given and nothing changes either.
    again = run("import", str(path), "--json", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    Path(f"{path}.checkpoint.json").unlink()
    fresh = run("import", str(path), "--batch-size", "7", "--json", env=env, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["already_there"] == len(lines)
    assert server.runtime.store.recorder.head().position == head
