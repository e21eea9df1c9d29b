"""schemathesis runs every check over every operation of /openapi.json and finds nothing.

Among them: no 5xx, responses and statuses as documented, a request the schema allows is not
refused for its shape, one it forbids is refused (see ``schemathesis.toml`` for the single
documented exception).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from tests.e2e.conftest import Server


def test_fuzzing_the_openapi_schema_finds_no_server_error_or_schema_violation(
    server: Server, tmp_path: Path
) -> None:
    with server.client() as c:  # some data, so lookups can hit real rows too
        for account_id in (1, 2):
            c.post(
                "/v1/accounts", json={"id": account_id, "ledger": 1, "currency": "USD", "code": 1}
            )
        c.post(
            "/v1/transfers",
            json={
                "id": 1,
                "debit_account_id": 1,
                "credit_account_id": 2,
                "amount": "1.00",
                "ledger": 1,
                "code": 1,
            },
        )
    st = shutil.which("st") or str(Path(__file__).resolve().parents[2] / ".venv/bin/st")
    result = subprocess.run(
        [
            st,
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {server.tokens['admin']}",
            "--max-examples",
            "25",
            "--seed",
            "20261124",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    (tmp_path / "st.log").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # and the server is still healthy afterwards
    assert httpx.get(f"{server.url}/readyz").status_code == 200
