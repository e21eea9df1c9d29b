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


def test_every_page_shows_its_landmarks_and_elements_without_errors(
    console: Server, context: Any, tmp_path: Path
) -> None:
    page = sign_in(context, console, console.tokens["admin"])
    watched = watch(page)
    for path, heading, selectors in PAGES:
        watched.clear()
        response = page.goto(console.url + path)
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
        shot = tmp_path / (path.strip("/").replace("/", "_").replace("?", "_") + ".png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000, path  # a rendered page, not a blank one
        watched.assert_clean()
    assert "style-src 'self'" in (response.headers.get("content-security-policy") or "")


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
        "operator": ["Overview", "Accounts", "Trial balance", "Streams", "Checkpoints"],
        "auditor": ["Overview", "Accounts", "Trial balance", "Streams", "Checkpoints"],
        "regulator": ["Overview", "Streams", "Checkpoints", "Exports"],
        "admin": [
            "Overview", "Accounts", "Trial balance", "Streams", "Checkpoints", "Exports",
            "API keys",
        ],
    }  # fmt: skip
    for role, titles in expected.items():
        page = sign_in(context, console, console.tokens[role])
        assert page.locator("header nav a").all_inner_texts() == titles, role
        for path, title in (
            ("/console/keys", "API keys"),
            ("/console/exports", "Exports"),
            ("/console/accounts", "Accounts"),
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
