"""Threads named for the operating system, so ``top -H``, ``ps -L`` and ``bench api`` can tell
Ledgerline's threads apart.

Definition
    :func:`name_native_thread` sets the calling thread's kernel name
    (``/proc/self/task/<tid>/comm``, at most 15 bytes). Python's own thread names stay
    inside the interpreter before 3.14; this makes them visible outside it. The names used:
    ``ll-decider`` (a command processor's decider), ``ll-snapshots`` (its snapshot writer),
    ``ll-projector`` (serve's projector process, every thread of it).

Guarantees
    Never raises: where the file is absent (not Linux) or refuses the write, nothing
    changes.
"""

from __future__ import annotations

import threading

DECIDER = "ll-decider"
SNAPSHOTS = "ll-snapshots"
PROJECTOR = "ll-projector"


def name_native_thread(name: str) -> None:
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:
        pass
