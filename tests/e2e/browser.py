"""A real browser for the console's tests: the distribution's headless Chromium, driven by
Playwright (its driver only: no browser is ever downloaded).

A missing Chromium FAILS the tests that need it, with the command that installs it: a
console that was never opened in a browser is not tested.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ENV = "LEDGERLINE_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    configured = os.environ.get(CHROMIUM_ENV)
    path = configured or DEFAULT_CHROMIUM
    if not Path(path).exists():
        found = None if configured else shutil.which("chromium")
        if found is None:
            pytest.fail(
                f"the console's browser tests need Chromium at {path} and none is there: "
                "install it with `apt-get install -y chromium chromium-driver` "
                f"(.ci/run does), or name another with {CHROMIUM_ENV}",
                pytrace=False,
            )
        path = found
    return path


# Module scope: Playwright's sync API keeps an event loop running on the main thread while it
# is started, which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        pytest.fail("playwright is not installed: make .venv/.installed", pytrace=False)
    executable = chromium_path()
    # Playwright starts Chromium on a fresh temporary profile of its own (it refuses a
    # --user-data-dir flag), and each test opens its own context: no state carries over.
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_FLAGS)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class Watched:
    """A page with every console message, page error and failed request it had."""

    page: Any
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.errors.clear()
        self.failed.clear()

    def assert_clean(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.failed, f"failed requests: {self.failed}"


def watch(page: Any, *, expected_statuses: frozenset[int] = frozenset()) -> Watched:
    watched = Watched(page)

    def on_console(message: Any) -> None:
        # The browser reports every 4xx document as a console error; those the test expects
        # (a refused sign-in) are not errors of the page.
        if any(f"status of {s} " in message.text for s in expected_statuses):
            return
        if message.type in {"error", "warning"}:
            watched.errors.append(f"{message.type}: {message.text}")

    def on_response(response: Any) -> None:
        if response.status >= 400 and response.status not in expected_statuses:
            watched.failed.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on("requestfailed", lambda r: watched.failed.append(f"failed {r.url}: {r.failure}"))
    page.on("response", on_response)
    return watched
