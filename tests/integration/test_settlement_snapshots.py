"""Settlement aggregates through the processor's snapshots: restarts with cold caches (each
loading snapshot + tail) give the same log as a run without snapshots, and a cycle asks to be
snapshotted far less often than the processor's default."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from commands import ledger as ledger_commands
from commands import settlement as sc
from commands.context import build_processor
from commands.processor import Command, CommandProcessor
from domain.settlement.cycle import Cycle
from eventstore.store import EventStore
from tests.conftest import admin_connection

PIDS = (1, 2, 3, 4)


def _commands(seed: int) -> list[Command]:
    rng = random.Random(seed)
    cmds: list[Command] = [
        sc.register_command(
            sc.RegisterParticipant(
                id=p, name=f"bank {p}", accounts={"USD": 100 + p}, caps={"USD": "20.00"}
            )
        )
        for p in PIDS
    ]
    cmds.append(
        sc.scheme_command(
            sc.CreateScheme(
                id=1, name="s", mode="dns", settlement_accounts={"USD": 99}, participants=PIDS
            )
        )
    )
    for oid in range(1, 61):
        payer, payee = rng.sample(PIDS, 2)
        cmds.append(
            sc.obligation_command(
                sc.SubmitObligation(
                    id=oid,
                    scheme_id=1,
                    payer_id=payer,
                    payee_id=payee,
                    currency="USD",
                    amount=f"{rng.randint(1, 15)}.00",
                )
            )
        )
        if oid == 40:
            cmds.append(sc.release_command(sc.Release(scheme_id=1, request_id="r40")))
    cmds.append(sc.cut_off_command(sc.CutOff(scheme_id=1, seq=1)))
    cmds.append(sc.unwind_command(sc.Unwind(scheme_id=1, seq=1, participant_id=PIDS[0])))
    return cmds


def _processor(store: EventStore, snapshot_every: int) -> CommandProcessor[Any]:
    clock = itertools.count(1_700_000_000_000_000_000, 1_000)
    contexts = [
        ledger_commands.build_context(lambda: next(clock)),
        sc.build_context(lambda: next(clock)),
    ]
    return build_processor(store.recorder, contexts, snapshot_every=snapshot_every).start()


def _run(store: EventStore, cmds: list[Command], snapshot_every: int) -> tuple[list[Any], int]:
    """Run ``cmds`` in order, restarting the processor (a cold cache) every 9 commands."""
    outcomes: list[Any] = []
    loaded = 0
    for start in range(0, len(cmds), 9):
        p = _processor(store, snapshot_every)
        try:
            outcomes += [(o.accepted, o.result) for o in map(p.execute, cmds[start : start + 9])]
            loaded += p.snapshots_loaded
        finally:
            p.stop()
    return outcomes, loaded


def _log(store: EventStore) -> list[tuple[str, int, str, bytes]]:
    return [
        (e.stream_id, e.version, e.topic, e.payload)
        for batch in store.recorder.iter_all(10_000)
        for e in batch
    ]


@pytest.fixture
def second_store(pg_admin_url: str) -> Iterator[EventStore]:
    name = f"snap_settlement_{random.randrange(10**9)}"
    with admin_connection(pg_admin_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with EventStore(make_conninfo(pg_admin_url, dbname=name)) as s:
        yield s
    with admin_connection(pg_admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_cold_restarts_from_snapshots_give_the_log_of_a_run_without_them(
    store: EventStore, second_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Cycle, "SNAPSHOT_EVERY", 0)  # every 4 events here, to exercise them
    cmds = _commands(seed=5)
    with_snapshots, loaded = _run(store, cmds, snapshot_every=4)
    without, _ = _run(second_store, cmds, snapshot_every=0)
    assert with_snapshots == without
    assert _log(store) == _log(second_store)
    assert loaded > 5  # the cycle, the scheme and participants came back from snapshots


def test_a_cycle_is_snapshotted_at_most_every_hundred_thousand_events(store: EventStore) -> None:
    _run(store, _commands(seed=6), snapshot_every=4)
    with store.datastore.get_connection() as conn:
        rows = conn.execute("SELECT stream_id FROM ledgerline.snapshots").fetchall()
        events = conn.execute(
            "SELECT count(*) AS n FROM ledgerline.events WHERE originator_id = 'cycle:1:1'"
        ).fetchone()
    assert events is not None and events["n"] > 4 * 10  # the default would snapshot it often
    assert not any(r["stream_id"].startswith("cycle:") for r in rows)
