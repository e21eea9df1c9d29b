"""Reading the log one batch ahead of its consumer.

Definition
    :func:`prefetched` wraps an iterator of event batches (``HashChainRecorder.iter_all``) with
    a reader thread: the next batch travels from the database, with the interpreter lock
    released while PostgreSQL answers, while the consumer works on this one. Replay's log
    check and every projection rebuild read the log this way.

Guarantees
    The same batches in the same order; an error in the reader is raised in the consumer; a
    consumer that stops early leaves no thread blocked behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from queue import Empty, Queue

from eventstore.model import StoredEvent


def prefetched(batches: Iterator[list[StoredEvent]], ahead: int = 1) -> Iterator[list[StoredEvent]]:
    """``batches``, read by a thread up to ``ahead`` batches in front of the consumer: the
    next batch travels from the database (the GIL released while waiting) while this one is
    projected. Same batches, same order; an error in the reader is raised here."""
    queue: Queue[tuple[list[StoredEvent] | None, BaseException | None]] = Queue(ahead)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    return
                queue.put((batch, None))
            queue.put((None, None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((None, exc))

    reader = threading.Thread(target=read, name="rebuild-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = queue.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put, then let it end
            try:
                queue.get_nowait()
            except Empty:
                reader.join(0.05)
