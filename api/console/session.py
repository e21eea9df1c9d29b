"""Console sign-in: the API key in a cookie, a CSRF token for every form, and who sees what.

Definition
    Signing in checks the API key exactly as a bearer token is checked
    (:class:`api.keys.KeyStore`) and stores it in the cookie :data:`CONSOLE_COOKIE`:
    ``HttpOnly`` (page scripts never see it), ``SameSite=Strict`` (no other site's page can
    make the browser send it), ``Secure`` when the console is served over https, no expiry
    (it ends with the browser session), ``Path=/`` (so ``GET /v1/...`` downloads and proof
    requests from the console's pages carry it; see :mod:`api.security`).

    Every request re-checks the key, so a revoked key signs its sessions out (at once in the
    process that revoked it, within a second elsewhere).

    Every form that changes something carries :func:`csrf_token`, an HMAC of a fixed label
    under the session's own key: a page of another origin can neither read it nor compute
    it, and it needs no server-side state, so it holds across ``serve --workers N``. A post
    must also come from the console's own origin (``Origin`` / ``Sec-Fetch-Site``).

Guarantees
    * A role sees only the pages (and navigation entries) :data:`PAGES` grants it, and a page
      it may not see answers 403, whatever the URL.
    * A state-changing console request without the session's CSRF token, or from another
      origin, is refused (403 ``csrf_failed``) before it does anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from api.evidence_routes import EVIDENCE_READERS
from api.keys import Role
from api.problems import Problem
from api.security import (
    AML_READERS,
    CASE_READERS,
    CONSOLE_COOKIE,
    READERS,
    REGULATORS,
    key_id_of,
)

EVERYONE = frozenset(Role)
ADMINS = frozenset({Role.ADMIN})
_CSRF_LABEL = b"ledgerline console csrf v1"


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    title: str
    roles: frozenset[Role]


# The navigation, in order; each page's roles are those of the JSON routes it reads.
PAGES: tuple[Page, ...] = (
    Page("overview", "/console/", "Overview", EVERYONE),
    Page("accounts", "/console/accounts", "Accounts", READERS),
    Page("trial-balance", "/console/trial-balance", "Trial balance", READERS),
    Page("instruments", "/console/instruments", "Trading", READERS),
    Page("settlement", "/console/schemes", "Settlement", READERS),
    Page("aml-alerts", "/console/aml/alerts", "AML alerts", AML_READERS),
    Page("aml-cases", "/console/aml/cases", "AML cases", CASE_READERS),
    Page("aml-graph", "/console/aml/graph", "AML graph", AML_READERS),
    Page("streams", "/console/streams", "Streams", EVIDENCE_READERS),
    Page("checkpoints", "/console/checkpoints", "Checkpoints", EVIDENCE_READERS),
    Page("exports", "/console/exports", "Exports", REGULATORS),
    Page("keys", "/console/keys", "API keys", ADMINS),
)
PAGE_ROLES = {p.name: p.roles for p in PAGES}


@dataclass(frozen=True)
class Session:
    token: str
    role: Role

    @property
    def key_id(self) -> str:
        return key_id_of(self.token)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def may(self, page: str) -> bool:
        return self.role in PAGE_ROLES[page]

    def nav(self) -> list[Page]:
        return [p for p in PAGES if self.role in p.roles]


def csrf_token(token: str) -> str:
    mac = hmac.new(token.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def current_session(request: Request) -> Session | None:
    """The signed-in session, if the cookie holds a live key."""
    token = request.cookies.get(CONSOLE_COOKIE)
    if not token:
        return None
    role = request.app.state.keys.role_of(token)
    return Session(token, role) if role is not None else None


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from the console's own origin."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send Origin on every POST; a client that sends none is not a browser
        # page of another site (and still needs the CSRF token).
        return origin is None
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.netloc == host and parts.scheme in {"http", "https"}


def check_form(request: Request, session: Session | None, form: dict[str, str]) -> None:
    """Refuse a console post that another origin could have made."""
    if not same_origin(request):
        raise Problem(403, "csrf_failed", "the form was not sent from this console's origin")
    if session is not None and not hmac.compare_digest(
        form.get("csrf", "").encode(), session.csrf.encode()
    ):
        raise Problem(403, "csrf_failed", "the form's CSRF token is missing or stale; reload")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    unsafe = ("//", "\\", "\n", "\r")
    if value and value.startswith("/console/") and not any(u in value[1:] for u in unsafe):
        return value
    return "/console/"
