"""Long jobs show count, rate and ETA on a terminal, and nothing anywhere else."""

from __future__ import annotations

import io

from ledgerline.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_shows_count_share_rate_and_eta_then_ends_with_elapsed_time() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("replay", 10_000, stream=out, enabled=True, clock=clock)
    clock.now += 2.0
    progress(2_500)
    assert progress.line() == "replay: 2.5k/10.0k events (25%), 1.2k/s, ETA 0:06"
    clock.now += 6.0
    progress(7_500)
    progress.finish()
    drawn = out.getvalue()
    assert drawn.startswith("\rreplay: 2.5k/10.0k events (25%)")
    assert drawn.endswith("\rreplay: 10.0k/10.0k events (100%), 1.2k/s, 0:08 elapsed\n")


def test_redraws_are_throttled_and_a_shorter_line_wipes_a_longer_one() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress("export", None, stream=out, enabled=True, clock=clock, every_s=1.0)
    for _ in range(100):
        clock.now += 0.001
        progress(1_000_000)
    assert out.getvalue().count("\r") == 1  # one draw in the first second
    frames = out.getvalue().split("\r")[1:]
    assert frames[0].startswith("export: 1.0M events")


def test_disabled_progress_writes_nothing_but_still_counts() -> None:
    out = io.StringIO()
    with Progress("verify", 10, stream=out, enabled=False) as progress:
        progress(4)
        progress(6)
    assert out.getvalue() == ""
    assert progress.done == 10


def test_off_a_terminal_it_is_disabled_by_default() -> None:
    out = io.StringIO()  # isatty() is False
    with Progress("rebuild", 5, stream=out) as progress:
        progress(5)
    assert out.getvalue() == ""
