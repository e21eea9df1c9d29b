"""Progress of long jobs on a terminal: count, rate and ETA, redrawn in place on stderr.

A job reports what it did with ``progress(n)``; the line is redrawn at most a few times a
second, and finished with a newline. Off the terminal (a pipe, a file, CI) or with ``--json``
it writes nothing, so scripts and logs see only the job's own output.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def _human(n: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``Progress("replay", total=head)`` is a callable ``progress(n)`` adding ``n`` done."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "events",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = 0.2,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._clock = clock
        self._start = clock()
        self._every_s = every_s
        self._drawn_at: float | None = None
        self._width = 0

    def __call__(self, n: int) -> None:
        self.done += n
        if not self._enabled:
            return
        now = self._clock()
        if self._drawn_at is None or now - self._drawn_at >= self._every_s:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The progress line as it would be drawn now."""
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {_human(self.done)}"
        if self.total:
            share = min(self.done / self.total, 1.0)
            text += f"/{_human(self.total)} {self.unit} ({share:.0%})"
        else:
            text += f" {self.unit}"
        text += f", {_human(rate)}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        else:
            text += f", {_duration(elapsed)} elapsed"
        return text

    def _draw(self, now: float) -> None:
        text = self.line(now)
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)
        self._drawn_at = now

    def finish(self) -> None:
        """Draw the final line and end it (nothing if nothing was ever drawn or enabled)."""
        if self._enabled:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
