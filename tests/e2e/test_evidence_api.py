"""Checkpoints, proofs and exports over HTTP, checked with the standalone verifier."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from replay import verifier
from replay.log import make_checkpoint
from tests.e2e.conftest import Server
from tests.e2e.test_ledger_api import account, assert_problem, transfer


def test_checkpoints_and_proofs_verify_with_the_standalone_verifier(
    server: Server, tmp_path: Path
) -> None:
    with server.client() as c:
        assert_problem(c.get("/v1/checkpoints/latest"), 404, "checkpoint_not_found")
        account(c, 1)
        account(c, 2)
        for n in range(5):
            assert transfer(c, 10 + n, 1, 2, "1.00").status_code == 201
    key = server.runtime.app.state.services.extra["signing_key"]
    first = make_checkpoint(server.runtime.store.recorder, key)
    with server.client() as c:
        assert transfer(c, 20, 1, 2, "2.00").status_code == 201
    second = make_checkpoint(server.runtime.store.recorder, key)
    with server.client("auditor") as c:
        latest = c.get("/v1/checkpoints/latest").json()
        assert latest["size"] == second.size
        older = c.get(f"/v1/checkpoints/{first.size}").json()
        name = latest["key_name"]
        public = key.public_key()
        size, root = verifier.verify_checkpoint(latest["note"], name, name, public)
        old_size, old_root = verifier.verify_checkpoint(older["note"], name, name, public)
        proof = c.get("/v1/proofs/consistency", params={"from": old_size, "to": size}).json()
        verifier.verify_consistency(
            old_size, size, [bytes.fromhex(h) for h in proof["proof"]], old_root, root
        )
        inc = c.get("/v1/proofs/inclusion", params={"position": 3, "size": size}).json()
        verifier.verify_inclusion(
            bytes.fromhex(inc["leaf_hash"]), 2, size, [bytes.fromhex(h) for h in inc["proof"]], root
        )
        assert_problem(
            c.get("/v1/proofs/inclusion", params={"position": 99, "size": 10**6}),
            422,
            "proof_out_of_range",
        )
        assert_problem(c.get("/v1/exports"), 403, "forbidden")
    with server.client("regulator") as c:
        r = c.get("/v1/exports", params={"trusted_size": old_size})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        tar.extractall(tmp_path, filter="data")
    held = tmp_path / "held"
    held.write_text(older["note"])
    report = verifier.verify_bundle(
        str(tmp_path / "bundle"),
        pinned_key=verifier.format_verifier_key(name, public),
        trusted_checkpoint=str(held),
    )
    assert report.last_position == server.runtime.store.recorder.head().position
    # the bundle carries the ledger's reports over its range, like `ledgerline export`'s
    import pyarrow.parquet as pq

    reports = tmp_path / "bundle" / "reports"
    assert sorted(p.stem for p in reports.iterdir()) == [
        "daily_totals", "large_value", "statements", "trial_balance"
    ]  # fmt: skip
    balance = pq.read_table(reports / "trial_balance.parquet").to_pylist()
    assert balance and all(row["balanced"] for row in balance)
