"""An export of positions A..B costs what the range costs: it reads the range's events and a
few rows per account it touches, and its reports equal those of a full replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from eventstore.recorder import HashChainRecorder
from eventstore.store import EventStore, connect_owner
from ledgerline.runtime import migrate_all
from readmodels import ledger as rm
from replay import reports
from replay.export import export_bundle
from replay.replay import replay
from replay.signing import generate_signing_key, load_signing_key
from replay.verifier import verify_bundle
from tests.integration.ledger_fixtures import run_history
from tests.integration.test_replay import project_live


class CountingRecorder:
    """The store's recorder, counting every event row it hands out."""

    def __init__(self, recorder: HashChainRecorder) -> None:
        self._recorder = recorder
        self.rows_read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._recorder, name)

    def read_from(self, *args: Any, **kwargs: Any) -> Any:
        rows = self._recorder.read_from(*args, **kwargs)
        self.rows_read += len(rows)
        return rows

    def read_streams(self, *args: Any, **kwargs: Any) -> Any:
        found = self._recorder.read_streams(*args, **kwargs)
        self.rows_read += sum(len(v) for v in found.values())
        return found

    def iter_all(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a range export must not walk the whole log")


def full_reports(store: EventStore, url: str, upto: int) -> dict[str, pa.Table]:
    result = replay(store.recorder, url, to_position=upto, keep_schema=True)
    with connect_owner(url) as conn:
        try:
            return reports.compute(conn, str(result.schema))
        finally:
            conn.execute(f'DROP SCHEMA "{result.schema}" CASCADE')


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: (int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float) else v)
             for k, v in row.items()} for row in table.to_pylist()]  # fmt: skip


@pytest.fixture
def history(db_url: str) -> Iterator[EventStore]:
    migrate_all(db_url)
    with EventStore(db_url, run_migrations=False) as store:
        run_history(store, seed=5, transfers=30)
        project_live(store)
        run_history(store, seed=6, transfers=20)  # not projected yet: an export catches it up
        yield store


def test_reports_over_the_whole_log_equal_a_full_replays(history: EventStore, db_url: str) -> None:
    head = history.recorder.head().position
    with connect_owner(db_url) as conn:
        ranged = reports.compute_range(conn, history.recorder, 1, head)
    full = full_reports(history, db_url, head)
    for name in reports.LEDGER_REPORTS:
        assert _rows(ranged[name]) == _rows(full[name]), name
    assert all(row["balanced"] for row in ranged["trial_balance"].to_pylist())


def test_reports_over_a_range_start_from_the_balances_before_it(
    history: EventStore, db_url: str
) -> None:
    head = history.recorder.head().position
    first = head // 2
    with connect_owner(db_url) as conn:
        ranged = reports.compute_range(conn, history.recorder, first, head)
        reports.ensure_read_model_at(conn, history.recorder, head)  # for the expected values
        opening = {a: rm.get_account(conn, a, as_of_position=first - 1) for a in range(1, 7)}
        closing = {a: rm.get_account(conn, a, as_of_position=head) for a in range(1, 7)}
    statements = ranged["statements"].to_pylist()
    for account_id in range(1, 7):
        mine = [r for r in statements if r["account_id"] == account_id]
        assert mine, account_id
        assert mine[0]["change"] == "opening"
        before = opening[account_id]
        assert before is not None
        assert [mine[0][f] for f in rm.BALANCE_FIELDS] == [before[f] for f in rm.BALANCE_FIELDS]
        assert all(first <= r["position"] <= head for r in mine[1:])
        after = closing[account_id]
        assert after is not None
        assert [mine[-1][f] for f in rm.BALANCE_FIELDS] == [after[f] for f in rm.BALANCE_FIELDS]
    [tb] = ranged["trial_balance"].to_pylist()
    assert tb["balanced"]
    moved = sum(closing[a]["debits_posted"] - opening[a]["debits_posted"] for a in range(1, 7))
    assert tb["debits_posted"] == moved
    assert all(first <= r["created_position"] <= head for r in ranged["large_value"].to_pylist())


def test_an_export_of_the_last_events_reads_only_those_events(
    history: EventStore, db_url: str, tmp_path: Path
) -> None:
    generate_signing_key(tmp_path / "k.key", "ledgerline.local/ledger")
    key = load_signing_key(tmp_path / "k.key")
    head = history.recorder.head().position
    counting = CountingRecorder(history.recorder)
    with connect_owner(db_url) as conn:
        reports.ensure_read_model_at(conn, history.recorder, head - 20)
        tables = reports.compute_range(conn, counting, head - 19, head)  # type: ignore[arg-type]
    assert counting.rows_read <= 20 + 2 * 20  # the range, and the transfers it settles
    counting.rows_read = 0
    manifest = export_bundle(
        counting,  # type: ignore[arg-type]
        tmp_path / "bundle",
        key,
        from_position=head - 19,
        reports=tables,
    )
    assert manifest["event_count"] == 20
    assert counting.rows_read == 21  # the range and the event before it (its global hash)
    verify_bundle(str(tmp_path / "bundle"))


def test_ids_past_64_bits_are_reported_as_a_full_replay_reports_them(
    history: EventStore, db_url: str
) -> None:
    import time

    from commands.ledger import (
        CreateAccount,
        CreateTransfer,
        account_command,
        build_ledger_processor,
        transfer_command,
    )

    big = 2**127 + 5  # settlement instructions and venue transfers live up there
    p = build_ledger_processor(history.recorder, time.time_ns).start()
    try:
        for account in (big, big + 1):
            opened = p.execute(
                account_command(CreateAccount(id=account, ledger=1, currency="USD", code=1))
            )
            assert opened.accepted, opened.result
        moved = p.execute(
            transfer_command(
                CreateTransfer(
                    id=big, debit_account_id=big, credit_account_id=big + 1,
                    amount="20000.00", ledger=1, code=1,
                )
            )
        )  # fmt: skip
        assert moved.accepted, moved.result
    finally:
        p.stop()
    head = history.recorder.head().position
    with connect_owner(db_url) as conn:
        ranged = reports.compute_range(conn, history.recorder, 1, head)
    full = full_reports(history, db_url, head)
    for name in reports.LEDGER_REPORTS:
        assert _rows(ranged[name]) == _rows(full[name]), name
    assert str(big) in ranged["large_value"].column("transfer_id").to_pylist()
