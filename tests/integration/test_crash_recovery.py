"""A writer killed with SIGKILL mid-batch loses nothing it acknowledged and breaks no chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from commands.tally import IncrementTally, build_processor, increment_command
from eventstore.store import EventStore
from eventstore.verify import verify_store

WRITER = textwrap.dedent(
    """
    import sys, threading, time
    from commands.tally import (IncrementTally, OpenTally, build_processor, increment_command,
                                open_tally_command)
    from eventstore.store import EventStore

    store = EventStore(sys.argv[1], pool_size=4)
    recorder = store.recorder
    queue_insert = recorder._insert_commands
    def insert_then_linger(cur, commands):  # widen the window between deciding and commit
        queue_insert(cur, commands)
        time.sleep(0.003)
    recorder._insert_commands = insert_then_linger
    processor = build_processor(recorder, time.time_ns).start()
    processor.execute(open_tally_command(OpenTally(tally_id="t")))
    out_lock = threading.Lock()

    def writer(k):
        i = 0
        while True:
            cid = f"{k}-{i}"
            outcome = processor.execute(
                increment_command(IncrementTally(command_id=cid, tally_id="t", amount=1)))
            with out_lock:
                print(cid, outcome.position, flush=True)  # acknowledged to the client
            i += 1

    for k in range(8):
        threading.Thread(target=writer, args=(k,), daemon=True).start()
    time.sleep(600)
    """
)


def test_a_killed_writer_leaves_a_verifiable_log_with_every_acknowledged_command(
    db_url: str,
) -> None:
    EventStore(db_url, pool_size=1).close()  # migrate first, so the child starts writing at once
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, db_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: dict[str, int] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acknowledged) < 400 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        cid, position = line.split()
        acknowledged[f"increment:{cid}"] = int(position)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert len(acknowledged) >= 400, proc.stderr.read() if proc.stderr else ""

    with EventStore(db_url, pool_size=2) as store:
        report = verify_store(store.recorder)
        assert report.ok, report.first_break
        logged = store.recorder.find_commands(list(acknowledged))
        missing = sorted(set(acknowledged) - set(logged))
        assert not missing, f"acknowledged but lost: {missing[:5]}"
        assert all(logged[c].last_position == p for c, p in acknowledged.items())
        # The tally's total equals the number of increments in the log: nothing half-applied.
        events = store.recorder.read_streams(["tally:t"])["tally:t"]
        increments = len(events) - 1
        assert increments >= len(acknowledged)

        # A new writer carries on from where the dead one stopped, gaplessly.
        processor = build_processor(store.recorder, time.time_ns).start()
        try:
            after = processor.execute(
                increment_command(IncrementTally(command_id="after", tally_id="t", amount=1))
            )
        finally:
            processor.stop()
        assert after.result["total"] == increments + 1
        assert after.position == report.head_position + 1
        assert verify_store(store.recorder).ok
