"""TigerBeetle's own state-machine tests, run against Ledgerline's ledger domain.

Every table of ``src/state_machine_tests.zig`` that creates and looks up accounts and
transfers, vendored unchanged in ``tigerbeetle_tables.py``: each line's result must be the
one TigerBeetle's test expects, and every lookup must agree. The query tables
(``get_account_transfers``, ``query_*``, ...) are vendored but not run here: they need the
read model (``query_accounts`` and ``query_transfers`` run over HTTP in
``tests/e2e/test_tigerbeetle_query_tables_api.py``).
"""

from __future__ import annotations

import pytest

from tests.unit.domain.tigerbeetle_runner import run_table
from tests.unit.domain.tigerbeetle_tables import TABLES

QUERIES = ("get_account_transfers", "get_account_balances", "query_", "get_change_events")
CASES = [
    (name, index, table)
    for name, tables in TABLES.items()
    if not name.startswith(QUERIES)
    for index, table in enumerate(tables)
]


@pytest.mark.parametrize(("name", "index", "table"), CASES, ids=[f"{n}[{i}]" for n, i, _ in CASES])
def test_tigerbeetle_state_machine_table_gives_the_same_results(
    name: str, index: int, table: str
) -> None:
    runner = run_table(table)
    assert not runner.mismatches, "\n".join(
        f"{m.line}\n    expected {m.expected}, got {m.actual}" for m in runner.mismatches
    )
