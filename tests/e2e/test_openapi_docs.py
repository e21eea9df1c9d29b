"""The API documents itself usefully, and its docs work without the internet."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import Server

OPERATIONAL = {"/healthz", "/readyz", "/metrics"}
# The log served as a transparency log is public evidence, read by any C2SP client: no token.
PUBLIC_LOG = {"/log/checkpoint", "/log/tile/{path}"}


def test_every_operation_is_described_named_stably_and_secured(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert doc["openapi"] == "3.0.3"
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer ll_...`",
    }
    seen: set[str] = set()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert op.get("description"), f"{where} has no description"
            assert re.fullmatch(r"[a-z][a-z0-9_]*", op["operationId"]), where
            assert op["operationId"] not in seen, f"{where}: duplicate operation id"
            seen.add(op["operationId"])
            if path in PUBLIC_LOG:
                assert not op.get("security"), f"{where} should need no token"
            elif path not in OPERATIONAL:
                assert op.get("security") == [{"HTTPBearer": []}], f"{where} is not secured"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/problem+json"]["schema"]
                    assert "code" in schema["required"], f"{where} {status}"


def test_the_docs_pages_load_their_assets_from_this_server(server: Server) -> None:
    for page, asset in (
        ("/docs", "/static/swagger-ui/swagger-ui-bundle.js"),
        ("/redoc", "/static/redoc/redoc.standalone.js"),
    ):
        html = httpx.get(f"{server.url}{page}").text
        assert asset in html
        assert not re.search(r"https?://(?!127\.0\.0\.1)", html.replace("http://www.w3.org", ""))
        r = httpx.get(f"{server.url}{asset}")
        assert r.status_code == 200 and len(r.content) > 100_000
