"""``ledgerline demo``: a few thousand events through the application layer, then verify."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from commands.tally import (
    IncrementTally,
    OpenTally,
    build_processor,
    increment_command,
    open_tally_command,
)
from eventstore.store import EventStore
from eventstore.verify import verify_store

TALLIES = 50
INCREMENTS = 3000
WRITERS = 16


def run_demo(url: str, out: TextIO) -> int:
    started = time.perf_counter()
    with EventStore(url) as store:
        processor = build_processor(store.recorder, time.time_ns).start()
        run = str(time.time_ns())
        try:
            for n in range(TALLIES):
                processor.execute(open_tally_command(OpenTally(tally_id=f"{run}-{n}")))
            accepted = [0] * WRITERS

            def writer(k: int) -> None:
                for i in range(k, INCREMENTS, WRITERS):
                    cmd = IncrementTally(
                        command_id=f"{run}-{i}", tally_id=f"{run}-{i % TALLIES}", amount=i % 7 + 1
                    )
                    if processor.execute(increment_command(cmd)).accepted:
                        accepted[k] += 1

            threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            retry = processor.execute(
                increment_command(
                    IncrementTally(command_id=f"{run}-0", tally_id=f"{run}-0", amount=1)
                )
            )
            rejected = processor.execute(
                increment_command(
                    IncrementTally(command_id=f"{run}-bad", tally_id=f"{run}-0", amount=-5)
                )
            )
        finally:
            processor.stop()
        report = verify_store(store.recorder)
    elapsed = time.perf_counter() - started
    out.write(
        f"Ledgerline demo\n"
        f"  tallies opened                {TALLIES}\n"
        f"  increments accepted           {sum(accepted)} from {WRITERS} concurrent writers\n"
        f"  retry of a command id         {'first outcome returned' if retry.replayed else 'NEW'}"
        f" (position {retry.position})\n"
        f"  negative increment            rejected: {rejected.result.get('code')}\n"
        f"  commits (group commit)        {processor.batches_committed} transactions for "
        f"{processor.commands_committed} commands\n"
        f"  verify                        {report.events_checked} events, "
        f"{report.streams_checked} streams, "
        f"{'intact' if report.ok else 'BROKEN: ' + str(report.first_break)}\n"
        f"  head                          position {report.head_position} "
        f"hash {report.head_hash.hex()[:16]}...\n"
        f"  took                          {elapsed:.1f} s\n"
    )
    return 0 if report.ok else 1
