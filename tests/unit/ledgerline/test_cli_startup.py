"""The command line starts without loading the HTTP layer: every ``ledgerline`` command pays
for what its parser imports, and most commands (verify, replay, import, worker, relay, the
benches) serve no route."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from ledgerline.cli import build_parser
build_parser().parse_args(["verify"])
heavy = ("fastapi", "starlette", "api.console", "api.ledger_routes", "commands.ledger")
print(" ".join(m for m in heavy if m in sys.modules))
"""


def test_building_the_parser_imports_no_route_no_console_and_no_command_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


def test_the_app_still_mounts_every_contexts_routes() -> None:
    from fastapi import FastAPI

    from ledgerline import contexts

    mounted = contexts.routers()
    assert len(mounted) == sum(len(m.routers) for m in contexts.CONTEXTS) >= 9
    app = FastAPI()
    for router in mounted:
        app.include_router(router)
    paths = set(app.openapi()["paths"])
    assert {"/v1/transfers", "/v1/transfer-batches", "/v1/aml/alerts"} <= paths
