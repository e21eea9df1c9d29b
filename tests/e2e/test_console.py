"""The console in a real browser (headless Chromium): what a person signing in would do.

One server with a seeded ledger serves the whole module; each test opens its own browser
context (no shared cookies) and signs in with the role it needs.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.console.session import csrf_token
from api.security import CONSOLE_COOKIE
from replay.log import make_checkpoint
from tests.conftest import _create_database, admin_connection
from tests.e2e.browser import browser, watch
from tests.e2e.conftest import Server, running_server
from tests.e2e.test_ledger_api import account, transfer

__all__ = ["browser"]

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def console(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with three USD accounts and one EUR account, 20 posted transfers, a pending
    one, and two signed checkpoints (sizes 25 and the head)."""
    name, url = _create_database(pg_admin_url)
    try:
        with running_server(url, tmp_path_factory.mktemp("console")) as server:
            key = server.runtime.app.state.services.extra["signing_key"]
            with server.client() as c:
                for account_id in (1, 2, 3):
                    account(c, account_id)
                assert (
                    c.post(
                        "/v1/accounts",
                        json={"id": 4, "ledger": 1, "currency": "EUR", "code": 10},
                    ).status_code
                    == 201
                )
                for n in range(20):
                    r = transfer(c, 10 + n, 1 + n % 3, 1 + (n + 1) % 3, f"{n + 1}.25")
                    assert r.status_code == 201, r.text
                    if n == 9:
                        make_checkpoint(server.runtime.store.recorder, key)
                r = c.post(
                    "/v1/transfers",
                    json={
                        "id": 99,
                        "debit_account_id": 1,
                        "credit_account_id": 2,
                        "amount": "5.00",
                        "ledger": 1,
                        "code": 1,
                        "pending": True,
                        "timeout_s": 3600,
                    },
                )
                assert r.status_code == 201, r.text
                c.get("/v1/transfers/99", params={"min_position": r.json()["position"]})
            make_checkpoint(server.runtime.store.recorder, key)
            yield server
    finally:
        with admin_connection(pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield ctx
    finally:
        ctx.close()


def sign_in(context: Any, server: Server, token: str, path: str = "/console/") -> Any:
    page = context.new_page()
    page.goto(server.url + path)
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_load_state()
    return page


# ------------------------------------------------------------------ every page, structurally

PAGES: list[tuple[str, str, list[str]]] = [
    ("/console/", "Overview", ["[data-testid=head-position]", "#proj-h", "table tbody tr"]),
    ("/console/accounts", "Accounts", ["table a[href='/console/accounts/1']", "#acct-id"]),
    (
        "/console/accounts/1",
        "Account 1",
        ["svg.chart[role=img] title", "[data-testid=balance-now]", "#tx-h"],
    ),
    ("/console/transfers/99", "Transfer 99", ["[data-testid=transfer-state]", "table.events"]),
    ("/console/trial-balance", "Trial balance", ["[data-testid=balanced-USD]"]),
    ("/console/streams", "Streams", ["table.events tbody tr", "#stream-id"]),
    ("/console/streams?stream=account:1", "Stream account:1", ["table.events tbody tr"]),
    ("/console/events/1", "Event 1", ["#verify-inclusion", "[data-testid=leaf-hash]"]),
    ("/console/checkpoints", "Checkpoints", ["#cons-from", "#cons-to"]),
    ("/console/exports", "Exports", ["form[action='/console/exports/download'] button"]),
    ("/console/keys", "API keys", ["form[action='/console/keys'] button", "#new-role"]),
]

UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML)"""


def check_pages(
    server: Server, context: Any, shots: Path, pages: list[tuple[str, str, list[str]]]
) -> None:
    """Each page answers 200 with its heading, landmarks, elements, labelled fields and one
    current navigation entry, renders (a screenshot in ``shots``), and logs no error."""
    page = sign_in(context, server, server.tokens["admin"])
    watched = watch(page)
    for path, heading, selectors in pages:
        watched.clear()
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        assert page.inner_text("h1") == heading, path
        for landmark in ("header nav[aria-label=Console]", "main#main", "footer"):
            assert page.locator(landmark).count() == 1, (path, landmark)
        for selector in selectors:
            assert page.locator(selector).count() >= 1, (path, selector)
        assert page.evaluate(UNLABELLED) == [], path
        current = page.locator("nav a[aria-current=page]")
        assert current.count() == 1, path
        shot = shots / (path.strip("/").replace("/", "_").replace("?", "_") + ".png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, path  # a rendered page, not a blank one
        watched.assert_clean()
        assert "style-src 'self'" in (response.headers.get("content-security-policy") or "")


def test_every_page_shows_its_landmarks_and_elements_without_errors(
    console: Server, context: Any, tmp_path: Path
) -> None:
    check_pages(console, context, tmp_path, PAGES)


# ------------------------------------------------------------------ the journeys


def test_sign_in_refuses_an_unknown_key_and_returns_to_the_page_asked_for(
    console: Server, context: Any
) -> None:
    page = context.new_page()
    watched = watch(page, expected_statuses=frozenset({401}))
    page.goto(console.url + "/console/accounts/2")
    assert "/console/login" in page.url
    page.fill("#token", "ll_000000000000_not-a-key")
    page.click("main button[type=submit]")
    assert page.get_by_role("alert").inner_text().endswith("unknown or has been revoked.")
    page.fill("#token", console.tokens["auditor"])
    page.click("main button[type=submit]")
    page.wait_for_url("**/console/accounts/2")
    assert page.inner_text("h1") == "Account 2"
    cookie = next(c for c in context.cookies() if c["name"] == CONSOLE_COOKIE)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts never see the key
    page.click("header button:has-text('Sign out')")
    page.wait_for_url("**/console/login")
    page.goto(console.url + "/console/")
    assert "/console/login" in page.url
    watched.assert_clean()


def test_an_account_is_looked_up_and_its_balances_match_the_api_now_and_as_of(
    console: Server, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["operator"], "/console/accounts")
    watched = watch(page)
    page.fill("#acct-id", "2")
    page.press("#acct-id", "Enter")
    page.wait_for_url("**/console/accounts/2")
    with console.client("operator") as c:
        now = c.get("/v1/accounts/2").json()
        history = c.get("/v1/accounts/2/transfers", params={"limit": 1000}).json()["items"]
        middle = history[len(history) // 2]["position"]
        then = c.get("/v1/accounts/2", params={"as_of_position": middle}).json()
    row = page.locator("[data-testid=balance-now] td").all_inner_texts()
    assert row[:4] == [
        now["balances"][k]
        for k in ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
    ]
    page.fill("#as-of-position", str(middle))
    page.press("#as-of-position", "Enter")
    page.wait_for_selector("[data-testid=balance-then]")
    row = page.locator("[data-testid=balance-then] td").all_inner_texts()
    assert row[:2] == [then["balances"]["debits_posted"], then["balances"]["credits_posted"]]
    assert row[:2] != [now["balances"]["debits_posted"], now["balances"]["credits_posted"]]
    # The chart says what it draws, for those who cannot see it.
    desc = page.locator("svg.balance-chart desc").text_content() or ""
    assert f"{len(history)} balance changes" in desc
    watched.assert_clean()
    # A position past the head is the API's own named problem, shown on the page.
    response = page.goto(console.url + "/console/accounts/2?as_of_position=999999")
    assert response is not None and response.status == 422
    assert "as_of_position_not_committed" in page.inner_text("main")


def test_a_transfer_is_followed_from_its_account_to_its_events(
    console: Server, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["admin"], "/console/accounts/1")
    watched = watch(page)
    page.click("table a[href='/console/transfers/99']")
    page.wait_for_url("**/console/transfers/99")
    assert page.inner_text("[data-testid=transfer-state]") == "pending"
    topics = page.locator("table.events tbody tr td:nth-child(4)").all_inner_texts()
    assert topics == ["ledger.TransferCreated.v1"]
    assert "hashes match" in page.inner_text("table.events")
    page.click("table.events tbody tr td:first-child a")
    page.wait_for_url("**/console/events/*")
    assert "transfer:99" in page.inner_text("main dl")
    watched.assert_clean()


def test_an_inclusion_proof_is_checked_in_the_browser_and_a_changed_byte_fails_it(
    console: Server, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["auditor"], "/console/events/7")
    watched = watch(page)
    page.click("#verify-inclusion")
    result = page.wait_for_selector("#proof-result [data-result]")
    assert result is not None and result.get_attribute("data-result") == "verified"
    head = console.runtime.store.recorder.head().position
    assert f"signed tree of size {head}" in result.inner_text()
    # The browser computes the leaf itself: one changed byte of the event and it refuses.
    page.eval_on_selector(
        "#verify-inclusion",
        "b => { const h = b.dataset.eventBytes;"
        " b.dataset.eventBytes = h.slice(0, -2) + (h.endsWith('00') ? '01' : '00'); }",
    )
    page.click("#verify-inclusion")
    page.wait_for_selector("#proof-result [data-result=failed]")
    assert "leaf hash differs" in page.inner_text("#proof-result")
    watched.assert_clean()


def test_consistency_between_two_checkpoints_is_checked_in_the_browser(
    console: Server, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["regulator"], "/console/checkpoints")
    watched = watch(page)
    sizes = page.eval_on_selector_all("#cons-from option", "os => os.map(o => Number(o.value))")
    assert len(sizes) == 2
    page.select_option("#cons-from", str(min(sizes)))
    page.select_option("#cons-to", str(max(sizes)))
    page.click("main form button[type=submit]")
    assert "consistent" in page.inner_text("[data-testid=server-consistency]")
    page.click("#verify-consistency")
    page.wait_for_selector("#consistency-result [data-result=verified]")
    # A root that is not the signed one is not consistent.
    page.eval_on_selector("#verify-consistency", "b => { b.dataset.toRoot = '00'.repeat(32); }")
    page.click("#verify-consistency")
    page.wait_for_selector("#consistency-result [data-result=failed]")
    watched.assert_clean()


def test_an_admin_issues_and_revokes_a_key_and_the_revoked_key_is_refused(
    console: Server, browser: Any, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["admin"], "/console/keys")
    watched = watch(page)
    page.select_option("#new-role", "operator")
    page.fill("#new-label", "night shift")
    page.click("form[action='/console/keys'] button")
    token = page.input_value("[data-testid=new-token]")
    key_id = token.split("_")[1]
    assert f"Key {key_id} issued" in page.inner_text("main")
    with httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/v1/accounts/1").status_code == 200
    # The new key's holder signs in to the console in a browser of their own.
    other = browser.new_context()
    try:
        theirs = sign_in(other, console, token, "/console/accounts")
        assert theirs.inner_text("h1") == "Accounts"
        page.goto(console.url + "/console/keys")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"tr[data-key-id='{key_id}'] button")
        page.wait_for_load_state()
        assert "revoked" in page.inner_text(f"tr[data-key-id='{key_id}']")
        with httpx.Client(base_url=console.url, headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.get("/v1/accounts/1")
            assert r.status_code == 401 and r.json()["code"] == "invalid_token"
        theirs.goto(console.url + "/console/accounts")
        assert "/console/login" in theirs.url
    finally:
        other.close()
    watched.assert_clean()


def test_each_role_sees_only_its_pages(console: Server, context: Any) -> None:
    expected = {
        "operator": [
            "Overview", "Accounts", "Trial balance", "Trading", "Settlement", "AML alerts",
            "AML graph", "Streams", "Checkpoints",
        ],
        "auditor": [
            "Overview", "Accounts", "Trial balance", "Trading", "Settlement", "AML alerts",
            "AML cases", "AML graph", "Streams", "Checkpoints",
        ],
        "analyst": ["Overview", "AML alerts", "AML cases", "AML graph"],
        "regulator": ["Overview", "Streams", "Checkpoints", "Exports"],
        "admin": [
            "Overview", "Accounts", "Trial balance", "Trading", "Settlement", "AML alerts",
            "AML cases", "AML graph", "Streams", "Checkpoints", "Exports", "API keys",
        ],
    }  # fmt: skip
    for role, titles in expected.items():
        page = sign_in(context, console, console.tokens[role])
        assert page.locator("header nav a").all_inner_texts() == titles, role
        for path, title in (
            ("/console/keys", "API keys"),
            ("/console/exports", "Exports"),
            ("/console/accounts", "Accounts"),
            ("/console/instruments", "Trading"),
            ("/console/schemes", "Settlement"),
            ("/console/aml/alerts", "AML alerts"),
            ("/console/aml/cases", "AML cases"),
            ("/console/aml/graph", "AML graph"),
        ):
            response = page.goto(console.url + path)
            assert response is not None
            if title in titles:
                assert response.status == 200, (role, path)
            else:
                assert response.status == 403, (role, path)
                assert "forbidden" in page.inner_text("main")
        page.close()
        context.clear_cookies()


def test_a_regulator_downloads_an_evidence_bundle_through_v1_exports(
    console: Server, context: Any
) -> None:
    page = sign_in(context, console, console.tokens["regulator"], "/console/exports")
    page.select_option("#x-trusted", index=1)
    with page.expect_download() as info:
        page.click("main form button[type=submit]")
    data = Path(info.value.path()).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert any(n.endswith("manifest.json") for n in names), names


def test_the_session_cookie_never_authorises_a_change_or_another_sites_request(
    console: Server, context: Any
) -> None:
    sign_in(context, console, console.tokens["admin"])
    cookie = {CONSOLE_COOKIE: console.tokens["admin"]}
    with httpx.Client(base_url=console.url, cookies=cookie) as c:
        assert c.get("/v1/keys").status_code == 200
        # Unsafe methods on /v1 need the Authorization header.
        r = c.post("/v1/keys", json={"role": "admin"})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        # A request the browser marks cross-site does not carry the session.
        assert c.get("/v1/keys", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 401
        # Console forms need the session's CSRF token and the console's own origin.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = c.post("/console/keys", content="role=admin", headers=form)
        assert r.status_code == 403 and "csrf_failed" in r.text
        r = c.post(
            "/console/keys",
            content="role=admin",
            headers={**form, "Origin": "https://evil.example"},
        )
        assert r.status_code == 403 and "csrf_failed" in r.text
        r = c.post("/console/keys", json={"role": "admin"})
        assert r.status_code == 415


def test_the_log_is_verified_on_demand_and_the_result_shown(console: Server, context: Any) -> None:
    page = sign_in(context, console, console.tokens["auditor"])
    watched = watch(page)
    page.click("text=Verify the whole log now")
    deadline = time.monotonic() + 30
    while page.locator("[data-testid=verify-result]").count() == 0:
        assert time.monotonic() < deadline, "no verification result appeared"
        time.sleep(0.2)
        page.reload()
    head = console.runtime.store.recorder.head().position
    assert "intact" in page.inner_text("[data-testid=verify-result]")
    assert f"{head} events" in page.inner_text("main")
    watched.assert_clean()


# ------------------------------------------------------------------ keyboard


def _focused(page: Any) -> dict[str, Any]:
    return dict(
        page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
            return {id: e.id, tag: e.tagName, text: (e.innerText || '').trim().slice(0, 40),
                    outline: s.outlineStyle !== 'none' && s.outlineWidth !== '0px'}; }"""
        )
    )


def test_tab_reaches_every_control_in_order_with_a_visible_focus(
    console: Server, context: Any
) -> None:
    page = context.new_page()
    page.goto(console.url + "/console/login")
    assert _focused(page)["id"] == "token"  # the only field has the focus already
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["text"] == "Ledgerline"
    page.keyboard.press("Shift+Tab")
    skip = _focused(page)
    assert skip["tag"] == "A" and skip["text"] == "Skip to main content" and skip["outline"]
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert _focused(page)["id"] == "token"
    page.keyboard.type(console.tokens["operator"])
    page.keyboard.press("Tab")
    button = _focused(page)
    assert button["tag"] == "BUTTON" and button["text"] == "Sign in" and button["outline"]
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")
    page.goto(console.url + "/console/accounts")
    seen: list[dict[str, Any]] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.append(_focused(page))
    ids = [s["id"] for s in seen if s["id"]]
    controls = ["acct-id", "f-ledger", "f-code"]
    # Each reached, in reading order (40 presses go round the page more than once).
    assert [i for i in dict.fromkeys(ids) if i in controls] == controls
    assert all(s["outline"] for s in seen if s["tag"] in {"A", "BUTTON", "INPUT"})
    texts = [s["text"] for s in seen]
    assert "Accounts" in texts and "Sign out" in texts and "Open" in texts
    # The first Tab on a page reaches the skip link, which moves focus to the main content.
    page.goto(console.url + "/console/accounts")
    page.keyboard.press("Tab")
    assert _focused(page)["text"] == "Skip to main content"
    page.keyboard.press("Enter")
    assert _focused(page)["id"] == "main"


# ------------------------------------------------------------------ trading and settlement

PARTICIPANTS = (11, 12, 13)
HUB = {"USD": 9001, "EUR": 9002}
FUNDS = {"USD": 9101, "EUR": 9102}
# Cycle 1-1 (DNS): G 83.00, B 17.00, M 13.00 in USD (positions 11: -4.00, 12: 13.00,
# 13: -9.00), and two EUR obligations; it is cut off and settled into the ledger.
OBLIGATIONS = [
    (11, 12, "25", "USD"),
    (11, 13, "7", "USD"),
    (12, 11, "17", "USD"),
    (12, 13, "9", "USD"),
    (13, 11, "11", "USD"),
    (13, 12, "14", "USD"),
    (11, 12, "10.50", "EUR"),
    (12, 11, "3.00", "EUR"),
]
TRADES = 25  # more than one page of the console's tape
RESTING = [  # (side, price, quantity): three bid levels (one of two orders), three ask levels
    ("buy", "1.0840", "3000"),
    ("buy", "1.0830", "2000"),
    ("buy", "1.0830", "3000"),
    ("buy", "1.0820", "2000"),
    ("sell", "1.0860", "4000"),
    ("sell", "1.0870", "1000"),
    ("sell", "1.0880", "6000"),
]


def _ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def markets(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own with a trading day and a settled cycle, made through the API.

    Trading: EUR/USD (1) with 25 trades of 1,000 at 1.0850 (one buyer against 25 resting
    sellers) and a book of three levels a side; GBP/USD (2) listed and halted. Settlement:
    participants 11, 12, 13 funded with 100.00 USD and EUR each, DNS scheme 1 whose cycle
    1-1 is cut off and settled, and cycle 1-2 open with one obligation."""
    name, url = _create_database(pg_admin_url)
    try:
        with running_server(url, tmp_path_factory.mktemp("markets")) as server:
            _trading_day_and_settled_cycle(server)
            yield server
    finally:
        with admin_connection(pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _trading_day_and_settled_cycle(server: Server) -> None:
    with server.client() as c:
        fx = {"tick_size": "0.0001", "lot_size": "1000", "maker_fee_bps": 1, "taker_fee_bps": 3}
        for iid, symbol in ((1, "EUR/USD"), (2, "GBP/USD")):
            body = {"id": iid, "symbol": symbol, "quote_asset": "USD", **fx}
            _ok(c.post("/v1/instruments", json={**body, "base_asset": symbol[:3]}))
        _ok(c.post("/v1/instruments/2/halt"), 200)
        sells = [
            {"id": n, "instrument_id": 1, "account_id": 7, "side": "sell", "price": "1.0850",
             "quantity": "1000"}
            for n in range(1, TRADES + 1)
        ]  # fmt: skip
        _ok(c.post("/v1/order-batches", json={"orders": sells}))
        buy = {"id": 100, "instrument_id": 1, "account_id": 8, "side": "buy", "price": "1.0850"}
        assert len(_ok(c.post("/v1/orders", json={**buy, "quantity": "25000"}))["trades"]) == 25
        for n, (side, price, quantity) in enumerate(RESTING, start=200):
            order = {"id": n, "instrument_id": 1, "side": side, "price": price}
            account_id = 7 if side == "sell" else 8
            _ok(
                c.post("/v1/orders", json={**order, "account_id": account_id, "quantity": quantity})
            )

        for currency in ("USD", "EUR"):
            account(c, HUB[currency], currency)
            account(c, FUNDS[currency], currency)
            for pid in PARTICIPANTS:
                acct = pid * 100 + (1 if currency == "USD" else 2)
                account(c, acct, currency, debits_must_not_exceed_credits=True)
                assert transfer(c, acct * 10, FUNDS[currency], acct, "100.00").status_code == 201
        for pid in PARTICIPANTS:
            accounts = {"USD": pid * 100 + 1, "EUR": pid * 100 + 2}
            caps = {"USD": "100.00", "EUR": "100.00"}
            body = {"id": pid, "name": f"bank {pid}", "accounts": accounts, "caps": caps}
            _ok(c.post("/v1/participants", json=body))
        scheme = {"id": 1, "name": "Night DNS", "mode": "dns", "settlement_accounts": HUB}
        _ok(c.post("/v1/schemes", json={**scheme, "participants": list(PARTICIPANTS)}))
        for n, (payer, payee, amount, currency) in enumerate(OBLIGATIONS, start=1):
            body = {"id": n, "scheme_id": 1, "payer_id": payer, "payee_id": payee}
            _ok(c.post("/v1/obligations", json={**body, "amount": amount, "currency": currency}))
        _ok(c.post("/v1/cycles/1-1/cut-off"), 200)
        _ok(c.post("/v1/cycles/1-1/settle"), 200)
        body = {"id": 50, "scheme_id": 1, "payer_id": 13, "payee_id": 11, "currency": "USD"}
        last = _ok(c.post("/v1/obligations", json={**body, "amount": "2.50"}))["position"]
        _ok(c.get("/v1/cycles/1-2", params={"min_position": last}), 200)


MARKET_PAGES: list[tuple[str, str, list[str]]] = [
    ("/console/instruments", "Instruments", ["#inst-id", "[data-instrument-id='2']"]),
    (
        "/console/instruments/1",
        "Instrument EUR/USD",
        ["svg.depth-chart[role=img] desc", "[data-testid=bids] tbody tr", "[data-testid=tape]"],
    ),
    ("/console/schemes", "Settlement schemes", ["#cycle-id", "[data-scheme-id='1']"]),
    ("/console/schemes/1", "Scheme Night DNS", ["[data-cycle-id='1-1']", "[data-cycle-id='1-2']"]),
    (
        "/console/cycles/1-1",
        "Cycle 1-1",
        ["table.heat[data-testid=matrix-USD]", "[data-testid=positions]", "#cy-pos"],
    ),
    ("/console/cycles/1-2", "Cycle 1-2", ["[data-testid=matrix-USD]"]),
]


def test_the_trading_and_settlement_pages_show_their_elements_without_errors(
    markets: Server, context: Any, tmp_path: Path
) -> None:
    check_pages(markets, context, tmp_path, MARKET_PAGES)


def _rows(page: Any, selector: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()]
        for row in page.locator(selector).all()
    ]


def test_the_book_and_the_tape_show_what_the_trading_api_answers(
    markets: Server, context: Any
) -> None:
    page = sign_in(context, markets, markets.tokens["auditor"], "/console/instruments")
    watched = watch(page)
    with markets.client("auditor") as c:
        spec = _ok(c.get("/v1/instruments/1"), 200)
        book = _ok(c.get("/v1/instruments/1/book", params={"depth": 50}), 200)
        first = _ok(c.get("/v1/instruments/1/trades", params={"limit": 20}), 200)
        cursor = first["next_cursor"]
        second = _ok(c.get("/v1/instruments/1/trades", params={"limit": 20, "cursor": cursor}), 200)
    assert page.inner_text("[data-instrument-id='1'] [data-testid=last-price]") == "1.0850"
    assert spec["last_price"] == "1.0850"
    assert "halted" in page.inner_text("[data-instrument-id='2']")
    page.click("[data-instrument-id='1'] a")
    page.wait_for_url("**/console/instruments/1")
    for side in ("bids", "asks"):
        shown = [r[:3] for r in _rows(page, f"[data-testid={side}] tbody tr")]
        assert shown == [[p, q, str(n)] for p, q, n in book[side]], side
    assert [r[3] for r in _rows(page, "[data-testid=bids] tbody tr")] == ["3000", "8000", "10000"]
    assert page.inner_text("[data-testid=best-bid]") == book["bids"][0][0] == "1.0840"
    desc = page.locator("svg.depth-chart desc").text_content() or ""
    assert desc == "3 bid levels (best 1.0840) and 3 ask levels (best 1.0860)."

    def tape() -> list[list[str]]:
        return [[r[0], r[2], r[3], r[4]] for r in _rows(page, "[data-testid=tape] tbody tr")]

    def api(items: list[dict[str, Any]]) -> list[list[str]]:
        return [[str(t["trade_id"]), t["price"], t["quantity"], t["aggressor_side"]] for t in items]

    assert len(first["items"]) == 20 and tape() == api(first["items"])
    page.click("a[rel=next]:has-text('Older trades')")
    page.wait_for_url(f"**/console/instruments/1?cursor={cursor}")
    assert tape() == api(second["items"]) and len(second["items"]) == TRADES - 20
    assert page.locator("a[rel=next]").count() == 0  # the oldest page
    watched.assert_clean()
    # An unknown instrument is the API's own named problem, shown on the page.
    response = page.goto(markets.url + "/console/instruments/77")
    assert response is not None and response.status == 404
    assert "instrument_not_found" in page.inner_text("main")


def test_a_settled_cycle_shows_the_matrix_and_positions_the_settlement_api_answers(
    markets: Server, context: Any
) -> None:
    page = sign_in(context, markets, markets.tokens["operator"], "/console/schemes")
    watched = watch(page)
    with markets.client("operator") as c:
        scheme = _ok(c.get("/v1/schemes/1"), 200)
        cycle = _ok(c.get("/v1/cycles/1-1"), 200)
        pairs = _ok(c.get("/v1/cycles/1-1/bilateral"), 200)["pairs"]
        positions = _ok(c.get("/v1/cycles/1-1/positions"), 200)["positions"]
        instructions = _ok(c.get("/v1/cycles/1-1/instructions"), 200)["instructions"]
        cut = cycle["cut_position"]
        then = _ok(c.get("/v1/cycles/1-1", params={"as_of_position": cut}), 200)
    assert page.inner_text("[data-scheme-id='1'] [data-testid=open-cycle]") == "1-2"
    assert scheme["open_cycle_id"] == "1-2"
    # The keyboard alone reaches a cycle by its id.
    page.focus("#cycle-id")
    page.keyboard.type("1-1")
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/cycles/1-1")
    assert page.inner_text("[data-testid=cycle-state]") == cycle["state"] == "settled"
    for t in cycle["totals"]:
        row = _rows(page, f"[data-testid=totals] tr[data-currency={t['currency']}]")[0]
        assert row[1:4] == [t["gross"], t["bilateral"], t["multilateral"]]
    usd = next(t for t in cycle["totals"] if t["currency"] == "USD")
    assert (usd["gross"], usd["bilateral"], usd["multilateral"]) == ("83.00", "17.00", "13.00")
    # Every cell of the heat map holds the gross the API answers for that ordered pair.
    for p in pairs:
        matrix = f"[data-testid=matrix-{p['currency']}]"
        a, b = p["participant_a"], p["participant_b"]
        assert page.inner_text(f"{matrix} td[data-payer='{a}'][data-payee='{b}']") == p["a_to_b"]
        assert page.inner_text(f"{matrix} td[data-payer='{b}'][data-payee='{a}']") == p["b_to_a"]
    assert page.locator("[data-testid=matrix-USD] tbody td[data-payer]").count() == 6
    assert "h5" in (page.get_attribute("td[data-payer='11'][data-payee='12']", "class") or "")
    shown = {(r[0], int(r[1])): r[2:5] for r in _rows(page, "[data-testid=positions] tbody tr")}
    assert shown == {
        (p["currency"], p["participant_id"]): [p["sent"], p["received"], p["net"]]
        for p in positions
    }
    assert shown[("USD", 12)][2] == "13.00" and shown[("USD", 13)][2] == "-9.00"
    states = {
        r[1]: r[4] for r in _rows(page, "[data-testid=instructions] tbody tr") if r[0] == "USD"
    }
    assert states == {
        str(i["participant_id"]): i["state"] for i in instructions if i["currency"] == "USD"
    }
    assert set(states.values()) == {"posted"}
    # As of its cut-off the cycle was cut off, not yet settled.
    page.fill("#cy-pos", str(cut))
    page.press("#cy-pos", "Enter")
    page.wait_for_url(f"**/console/cycles/1-1?as_of_position={cut}")
    assert page.inner_text("[data-testid=cycle-state]") == then["state"] == "cut_off"
    assert {r[4] for r in _rows(page, "[data-testid=instructions] tbody tr")} == {"pending"}
    watched.assert_clean()
    response = page.goto(markets.url + "/console/cycles/1-99")
    assert response is not None and response.status == 404
    assert "cycle_not_found" in page.inner_text("main")


# ------------------------------------------------------------------ AML

AML_DAY = "2026-11-02"  # a Monday, in the past of the server's clock
CTR_PEOPLE = 21  # one CTR alert each: more than a page of alerts


def aml_tx(tx_id: str, at: str, src: str, dst: str, amount: str, **kw: Any) -> dict[str, Any]:
    return {
        "id": tx_id,
        "timestamp": f"{AML_DAY}T{at}Z",
        "from_account": src,
        "to_account": dst,
        "amount": amount,
        "currency": "USD",
        "channel": kw.pop("channel", "wire"),
        "kind": kw.pop("kind", "transfer"),
        "from_country": "US",
        "to_country": "US",
        **kw,
    }


def cash_in(tx_id: str, at: str, account: str, amount: str, branch: str) -> dict[str, Any]:
    return aml_tx(
        tx_id, at, "CASH", account, amount,
        channel="cash", kind="cash_deposit", conducted_by=f"P-{tx_id}", branch=branch,
    )  # fmt: skip


@pytest.fixture(scope="module")
def aml(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own with AML activity ingested through the API: a cycle A -> B -> C ->
    A of decaying wires, structuring on K (three cash deposits under 10,000 USD at three
    branches in one day, 11,700 in all), and 21 people depositing 10,500 USD cash each (a
    CTR alert apiece); case C-SEED is open on the first CTR alert."""
    name, url = _create_database(pg_admin_url)
    try:
        with running_server(url, tmp_path_factory.mktemp("aml")) as server:
            with server.client("operator") as op:
                kyc = [{"account": a, "segment": "individual"} for a in ("A", "B", "C", "K")]
                _ok(op.post("/v1/aml/account-batches", json={"accounts": kyc}))
                batch = [
                    aml_tx("cy1", "09:00:00", "A", "B", "5000.00"),
                    aml_tx("cy2", "11:00:00", "B", "C", "4800.00"),
                    aml_tx("cy3", "13:00:00", "C", "A", "4600.00"),
                    cash_in("k1", "10:00:00", "K", "4000.00", "BR1"),
                    cash_in("k2", "12:00:00", "K", "3900.00", "BR2"),
                    cash_in("k3", "14:00:00", "K", "3800.00", "BR3"),
                    *(
                        cash_in(f"p{n:02}", f"15:{n:02}:00", f"P{n:02}", "10500.00", "BR9")
                        for n in range(CTR_PEOPLE)
                    ),
                ]
                body = _ok(op.post("/v1/aml/transaction-batches", json={"transactions": batch}))
                assert body["created"] == len(batch), body
            with server.client("analyst") as an:
                ctr = _ok(
                    an.get(
                        "/v1/aml/alerts",
                        params={"typology": "ctr", "min_position": body["position"]},
                    ),
                    200,
                )["alerts"]
                case = {"case_id": "C-SEED", "alert_ids": [ctr[0]["alert_id"]], "title": "seed"}
                seeded = _ok(an.post("/v1/aml/cases", json=case))
                _ok(
                    an.get("/v1/aml/cases/C-SEED", params={"min_position": seeded["position"]}), 200
                )
            yield server
    finally:
        with admin_connection(pg_admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alerts(server: Server, **params: Any) -> list[dict[str, Any]]:
    with server.client("auditor") as c:
        found: list[dict[str, Any]] = _ok(c.get("/v1/aml/alerts", params=params), 200)["alerts"]
    return found


def _alert(server: Server, typology: str, subject: str) -> dict[str, Any]:
    return next(a for a in _alerts(server, typology=typology) if a["subject"] == subject)


def test_the_aml_pages_show_their_elements_without_errors(
    aml: Server, context: Any, tmp_path: Path
) -> None:
    cycle = _alert(aml, "cycle", "A")["alert_id"]
    pages: list[tuple[str, str, list[str]]] = [
        ("/console/aml/alerts", "AML alerts", ["#al-typology", "[data-testid=alerts] tbody tr"]),
        (
            f"/console/aml/alerts/{cycle}",
            f"Alert {cycle}",
            ["[data-testid=features]", "[data-testid=evidence] tbody tr", "#oc-id"],
        ),
        ("/console/aml/cases", "AML cases", ["[data-case-id=C-SEED]", "#oc-alerts"]),
        ("/console/aml/cases/C-SEED", "Case C-SEED", ["[data-testid=trail]", "#ca-note"]),
        ("/console/aml/graph", "AML graph", ["#g-account", "#g-hops"]),
        (
            "/console/aml/graph/A",
            "AML graph of A",
            ["svg.flow-graph[role=img] desc", "[data-testid=cycles] li", "[data-testid=flows]"],
        ),
    ]
    check_pages(aml, context, tmp_path, pages)


def test_alerts_are_listed_newest_first_filtered_and_paged_as_the_api_answers(
    aml: Server, context: Any
) -> None:
    page = sign_in(context, aml, aml.tokens["operator"], "/console/aml/alerts")
    watched = watch(page)
    newest_first = list(reversed(_alerts(aml)))
    assert len(newest_first) > 20

    def shown() -> list[str]:
        rows = page.locator("[data-testid=alerts] tbody tr").all()
        return [r.get_attribute("data-alert-id") or "" for r in rows]

    first = shown()
    assert first == [a["alert_id"] for a in newest_first[:20]]
    page.click("a[rel=next]:has-text('Older alerts')")
    page.wait_for_url("**/console/aml/alerts?before=*")
    assert shown() == [a["alert_id"] for a in newest_first[20:]]
    assert page.locator("a[rel=next]").count() == 0
    # An operator reads alerts but opens no case: no boxes to tick, no form.
    assert page.locator("input[type=checkbox], form#open-case").count() == 0
    # The filters are the API's: typology, then account.
    page.click("text=← Newest alerts")
    page.select_option("#al-typology", "structuring")
    page.click("form[aria-label='Filter alerts'] button")
    page.wait_for_url("**typology=structuring**")
    structuring = _alerts(aml, typology="structuring")
    assert shown() == [a["alert_id"] for a in reversed(structuring)]
    assert [r["subject"] for r in structuring] == ["K"]
    page.select_option("#al-typology", "")
    page.fill("#al-account", "B")
    page.press("#al-account", "Enter")
    page.wait_for_url("**account=B**")
    on_b = _alerts(aml, account="B")
    assert shown() == [a["alert_id"] for a in reversed(on_b)]
    assert {a["typology"] for a in on_b} == {"cycle", "rapid_movement"}
    page.select_option("#al-status", "open")
    page.click("form[aria-label='Filter alerts'] button")
    page.wait_for_url("**status=open**")
    assert shown() == [a["alert_id"] for a in reversed(on_b)]
    watched.assert_clean()


def test_an_alert_shows_its_evidence_and_leads_to_the_graph_of_its_accounts(
    aml: Server, context: Any
) -> None:
    found = _alert(aml, "cycle", "A")
    page = sign_in(context, aml, aml.tokens["auditor"], f"/console/aml/alerts/{found['alert_id']}")
    watched = watch(page)
    assert page.inner_text("[data-testid=rule]").startswith(
        f"cycle version {found['rule_version']}"
    )
    assert page.inner_text("[data-testid=score]") == str(found["score"]) == "70"
    features = dict(_rows(page, "[data-testid=features] tbody tr"))
    assert features["hops"] == "3" and features["cycle_usd_minor"] == "5000.00 USD"
    assert features["risk_rating"] == "low" and features["weight"] == "70"
    evidence = _rows(page, "[data-testid=evidence] tbody tr")
    assert [r[0] for r in evidence] == found["transaction_ids"] == ["cy1", "cy2", "cy3"]
    with aml.client("auditor") as c:
        api = _ok(c.get(f"/v1/aml/alerts/{found['alert_id']}"), 200)
    assert [r[-1] for r in evidence] == [str(t["position"]) for t in api["evidence"]]
    assert [r[1] for r in evidence] == [f"{AML_DAY} {h}:00:00" for h in ("09", "11", "13")]
    assert page.inner_text("[data-testid=raised]") == f"{AML_DAY} 13:00:00.000 UTC"
    assert page.inner_text("[data-testid=alert-position]").startswith(str(found["position"]))
    assert "No case holds this alert yet." in page.inner_text("[data-testid=alert-cases]")
    # An auditor may follow a position to the event in the log.
    assert page.locator("[data-testid=evidence] a[href^='/console/events/']").count() == 3
    assert page.locator("form[action='/console/aml/cases']").count() == 0  # auditors read
    page.click("[data-testid=accounts] a[data-account=B]")
    page.wait_for_url("**/console/aml/graph/B")
    assert page.inner_text("h1") == "AML graph of B"
    assert page.locator("[data-testid=cycles] li[data-cycle='B>C>A>B']").count() == 1
    watched.assert_clean()
    response = page.goto(aml.url + "/console/aml/alerts/nope")
    assert response is not None and response.status == 404
    assert "alert_not_found" in page.inner_text("main")


def test_the_graph_draws_the_neighbourhood_with_its_flows_and_lists_the_cycle(
    aml: Server, context: Any
) -> None:
    page = sign_in(context, aml, aml.tokens["operator"], "/console/aml/graph")
    watched = watch(page)
    page.fill("#g-account", "A")
    page.select_option("#g-hops", "2")
    page.press("#g-account", "Enter")
    page.wait_for_url("**/console/aml/graph/A?hops=2")
    with aml.client("operator") as c:
        hood = _ok(c.get("/v1/aml/graph/A", params={"hops": 2}), 200)
        cycles = _ok(c.get("/v1/aml/graph/A/cycles"), 200)["cycles"]
    drawn = page.locator("svg.flow-graph g.node").all()
    assert sorted(n.get_attribute("data-account") or "" for n in drawn) == hood["nodes"]
    assert hood["nodes"] == ["A", "B", "C"]
    flows = {
        (f.get_attribute("data-from"), f.get_attribute("data-to")): f.get_attribute("class")
        for f in page.locator("svg.flow-graph path.flow").all()
    }
    assert set(flows) == {(e["from"], e["to"]) for e in hood["edges"]}
    assert all("marked" in (cls or "") for cls in flows.values())  # every flow is on the cycle
    labels = page.locator("svg.flow-graph text.flow-label").all_text_contents()
    assert sorted(labels) == sorted(f"{e['count']}\u00d7 {e['sum_usd']} USD" for e in hood["edges"])
    assert "1\u00d7 5000.00 USD" in labels
    table = _rows(page, "[data-testid=flows] tbody tr")
    assert [r[:4] for r in table] == [
        ["A", "B", "1", "5000.00"], ["B", "C", "1", "4800.00"], ["C", "A", "1", "4600.00"],
    ]  # fmt: skip
    assert [[(e["from"], e["to"]) for e in c] for c in cycles] == [
        [("A", "B"), ("B", "C"), ("C", "A")]
    ]
    assert page.locator("[data-testid=cycles] li").all_inner_texts() == [
        "A →(1\u00d7 5000.00 USD)→ B →(1\u00d7 4800.00 USD)→ C →(1\u00d7 4600.00 USD)→ A"
    ]
    # An account in the drawing is a link: the graph centres on it.
    page.click("svg.flow-graph g.node[data-account=C] a")
    page.wait_for_url("**/console/aml/graph/C?hops=2")
    assert page.inner_text("h1") == "AML graph of C"
    # Since a later day, nothing flowed.
    page.fill("#g-since", "2026-11-03")
    page.click('form[aria-label="Draw an account\'s flows"] button')
    page.wait_for_url("**since=2026-11-03**")
    assert "no flows in this window" in (page.locator("svg.flow-graph").text_content() or "")
    assert "No flows leave C" in page.inner_text("[data-testid=cycles]")
    watched.assert_clean()


def test_an_analyst_works_a_case_from_an_alert_to_a_filed_sar(
    aml: Server, context: Any, tmp_path: Path
) -> None:
    structuring = _alert(aml, "structuring", "K")
    ctr = _alert(aml, "ctr", "K")
    page = sign_in(context, aml, aml.tokens["analyst"], "/console/aml/alerts?account=K")
    watched = watch(page, expected_statuses=frozenset({409}))
    # Tick both of K's alerts and open a case from them.
    for a in (structuring, ctr):
        page.check(f"tr[data-alert-id='{a['alert_id']}'] input[type=checkbox]")
    page.fill("#oc-id", "C-K/1")  # a slash in an id is kept, not taken for a path
    page.fill("#oc-title", "Structuring on K")
    page.click("form#open-case button")
    page.wait_for_url("**/console/aml/cases/C-K%2F1?*")
    assert page.inner_text("h1") == "Case C-K/1"
    assert page.inner_text("[data-testid=done]").endswith("Case opened.")
    assert page.inner_text("[data-testid=case-status]") == "open"
    held = page.locator("[data-testid=case-alerts] tbody tr").all()
    assert sorted(r.get_attribute("data-alert-id") or "" for r in held) == sorted(
        [structuring["alert_id"], ctr["alert_id"]]
    )
    case_url = page.url.split("?")[0]
    page.fill("#ca-assignee", "ana")
    page.click("form[data-action=assign] button")
    page.wait_for_selector("[data-testid=done]:has-text('Case assigned')")
    assert page.inner_text("[data-testid=case-assignee]") == "ana"
    page.fill("#ca-note", "three branches in five hours, 11,700 USD")
    page.click("form[data-action=note] button")
    page.wait_for_selector("[data-testid=done]:has-text('Note added')")
    assert "three branches in five hours" in page.inner_text("[data-testid=notes]")
    page.fill("#ca-ev-kind", "statement")
    page.fill("#ca-ev-ref", "doc://K/2026-11")
    page.fill("#ca-ev-desc", "November statement")
    page.click("form[data-action=evidence] button")
    page.wait_for_selector("[data-testid=done]:has-text('Evidence attached')")
    assert "doc://K/2026-11" in page.inner_text("[data-testid=case-evidence]")
    # A second tab still shows the open case; escalate in the first.
    stale = context.new_page()
    stale.goto(case_url)
    page.fill("#ca-esc", "no business reason for the split")
    page.click("form[data-action=escalate] button")
    page.wait_for_selector("[data-testid=done]:has-text('Case escalated')")
    assert page.inner_text("[data-testid=case-status]") == "escalated"
    assert page.locator("form[data-action=escalate]").count() == 0
    # The stale tab's escalation is refused by the case, named, and changes nothing.
    stale.fill("#ca-esc", "again")
    stale.click("form[data-action=escalate] button")
    refused = stale.wait_for_selector("[data-testid=refused]")
    assert refused is not None and "case_already_escalated" in refused.inner_text()
    assert "Nothing was changed." in refused.inner_text()
    stale.screenshot(path=str(tmp_path / "case_refused.png"), full_page=True)
    assert stale.inner_text("[data-testid=case-status]") == "escalated"
    events = [r[1] for r in _rows(stale, "[data-testid=trail] tbody tr")]
    assert events.count("CaseEscalated") == 1 and len(events) == 5
    page.fill("#ca-sar-ref", "BSA-2026-0001")
    page.fill("#ca-sar-text", "Cash split across three branches to stay under the CTR.")
    page.click("form[data-action=file_sar] button")
    page.wait_for_selector("[data-testid=done]:has-text('SAR filed')")
    assert page.inner_text("[data-testid=case-status]") == "sar_filed"
    assert "BSA-2026-0001" in page.inner_text("[data-testid=sar]")
    assert page.locator("form[data-action]").count() == 0  # a filed SAR is final
    page.screenshot(path=str(tmp_path / "case_sar_filed.png"), full_page=True)
    trail = _rows(page, "[data-testid=trail] tbody tr")
    assert [r[1] for r in trail] == [
        "CaseOpened", "CaseAssigned", "CaseNoteAdded", "CaseEvidenceAttached",
        "CaseEscalated", "SarFiled",
    ]  # fmt: skip
    key_id = aml.tokens["analyst"].split("_")[1]
    assert {r[2] for r in trail} == {f"analyst:{key_id}"}
    # The alert now names its case, and the case lists open the SAR draft.
    page.goto(aml.url + f"/console/aml/alerts/{structuring['alert_id']}")
    assert "C-K/1" in page.inner_text("[data-testid=alert-cases]")
    page.goto(aml.url + "/console/aml/cases?status=sar_filed")
    assert _rows(page, "[data-testid=cases] tbody tr")[0][:2] == ["C-K/1", "sar_filed"]
    page.click("[data-testid=cases] a")
    page.click("[data-testid=sar-link]")
    page.wait_for_url("**/console/aml/sar/C-K%2F1")
    assert "Suspicious Activity Report" in page.inner_text("body")
    assert "k3" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "sar_draft.png"), full_page=True)
    watched.assert_clean()


def test_an_auditor_reads_cases_but_cannot_act_and_an_operator_cannot_open_them(
    aml: Server, context: Any
) -> None:
    page = sign_in(context, aml, aml.tokens["auditor"], "/console/aml/cases/C-SEED")
    watched = watch(page)
    assert page.inner_text("h1") == "Case C-SEED"
    assert page.locator("form[data-action], #oc-id").count() == 0  # nothing to act with
    assert "Work the case" not in page.inner_text("main")
    page.goto(aml.url + "/console/aml/cases")
    assert page.locator("form[method=post][action='/console/aml/cases']").count() == 0
    watched.assert_clean()
    with aml.client("auditor") as c:
        before = _ok(c.get("/v1/aml/cases/C-SEED"), 200)
    # A post the auditor forges anyway, with a valid session and CSRF token, is refused by
    # role before it reaches the processor.
    cookie = {CONSOLE_COOKIE: aml.tokens["auditor"]}
    form = {
        "csrf": csrf_token(aml.tokens["auditor"]),
        "request_id": "forged-1",
        "action": "note",
        "text": "an auditor's note",
    }
    with httpx.Client(base_url=aml.url, cookies=cookie) as c:
        r = c.post("/console/aml/cases/C-SEED", data=form)
        assert r.status_code == 403 and "forbidden" in r.text
        assert "may read cases but not work them" in r.text
        r = c.post("/console/aml/cases", data={**form, "case_id": "C-X", "alert_ids": "a"})
        assert r.status_code == 403
    with aml.client("auditor") as c:
        after = _ok(c.get("/v1/aml/cases/C-SEED"), 200)
        assert "C-X" not in {k["case_id"] for k in _ok(c.get("/v1/aml/cases"), 200)["cases"]}
    assert (after["version"], after["notes"]) == (before["version"], before["notes"]) == (1, [])
    # An operator reads alerts and the graph, not cases: no navigation entry, 403 if typed.
    context.clear_cookies()
    op = sign_in(context, aml, aml.tokens["operator"])
    nav = op.locator("header nav a").all_inner_texts()
    assert "AML alerts" in nav and "AML graph" in nav and "AML cases" not in nav
    response = op.goto(aml.url + "/console/aml/cases/C-SEED")
    assert response is not None and response.status == 403
    assert "Not for your role" in op.inner_text("main")
