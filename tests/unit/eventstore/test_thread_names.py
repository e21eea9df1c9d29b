"""A thread's kernel name is what top -H and bench api's split by thread read."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from eventstore.thread_names import DECIDER, name_native_thread


def test_a_named_thread_shows_its_name_to_the_kernel_and_others_keep_theirs() -> None:
    seen: dict[str, str] = {}

    def body() -> None:
        name_native_thread(DECIDER + "-and-a-name-too-long")
        tid = threading.get_native_id()
        seen["comm"] = Path(f"/proc/{os.getpid()}/task/{tid}/comm").read_text().strip()

    main_before = Path(f"/proc/{os.getpid()}/comm").read_text()
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen["comm"] == (DECIDER + "-and-a-name-too-long")[:15]
    assert Path(f"/proc/{os.getpid()}/comm").read_text() == main_before
