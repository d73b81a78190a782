"""Progress: a bar on a terminal, plain lines otherwise, nothing when quiet."""

from __future__ import annotations

import io

from ghost_engine.pipeline.progress import Progress, ProgressConfig


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_mode_picks_bar_on_a_terminal_and_lines_elsewhere() -> None:
    assert Progress(10, stream=_Tty()).mode == "bar"
    assert Progress(10, stream=io.StringIO()).mode == "log"


def test_lines_carry_count_rate_and_eta() -> None:
    out = io.StringIO()
    progress = Progress(200, ProgressConfig(mode="log", log_interval_s=0.0), stream=out)
    for _ in range(50):
        progress()
    progress.close()
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("progress: 50/200 frames ( 25.0%)")
    assert "frames/s" in last and "ETA" in last


def test_bar_redraws_in_place_and_quiet_prints_nothing() -> None:
    tty = _Tty()
    bar = Progress(4, ProgressConfig(mode="bar", bar_interval_s=0.0, width=8), stream=tty)
    for _ in range(2):
        bar()
    bar.close()
    text = tty.getvalue()
    assert text.count("\r") == 3 and "[####----] 2/4 frames" in text and text.endswith("\n")
    quiet = io.StringIO()
    silent = Progress(4, ProgressConfig(mode="quiet"), stream=quiet)
    silent()
    silent.close()
    assert quiet.getvalue() == ""
