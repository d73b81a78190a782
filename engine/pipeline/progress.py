"""Progress output: a bar with frames/s and ETA on a terminal, plain lines otherwise.

Called from the pipeline's sink thread once per frame; it prints at most a few times a
second so it never slows the run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from ghost_engine.choices import PROGRESS_MODES, check_choice


@dataclass(frozen=True)
class ProgressConfig:
    """`mode`: "auto" (bar on a terminal, lines otherwise), "bar", "log" or "quiet"."""

    mode: str = "auto"
    bar_interval_s: float = 0.2
    log_interval_s: float = 10.0
    width: int = 30


class Progress:
    """Counts finished frames and reports rate and ETA against `total` (0 = unknown)."""

    def __init__(
        self, total: int, config: ProgressConfig = ProgressConfig(), stream: TextIO | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        mode = config.mode
        if mode == "auto":
            mode = "bar" if _isatty(self.stream) else "log"
        check_choice(
            "--progress",
            mode,
            PROGRESS_MODES,
            f"progress mode must be {', '.join(PROGRESS_MODES)}, got {mode!r}",
        )
        self.mode, self.total, self.config = mode, total, config
        self.done = 0
        self._start = time.monotonic()
        self._last_print = self._start

    def __call__(self, _frame: object = None) -> None:
        self.done += 1
        now = time.monotonic()
        interval = self.config.bar_interval_s if self.mode == "bar" else self.config.log_interval_s
        if self.mode != "quiet" and now - self._last_print >= interval:
            self._last_print = now
            self._emit(now)

    def close(self) -> None:
        """Print the final state (and end the bar's line)."""
        if self.mode == "quiet":
            return
        self._emit(time.monotonic())
        if self.mode == "bar":
            self.stream.write("\n")
        self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """The status text: done/total, percent, frames/s, elapsed and ETA."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        fps = self.done / elapsed
        if self.total > 0:
            pct = min(100.0, 100.0 * self.done / self.total)
            eta = (self.total - self.done) / fps if fps > 0 else float("inf")
            return (
                f"{self.done}/{self.total} frames ({pct:5.1f}%) {fps:6.1f} frames/s "
                f"elapsed {_clock(elapsed)} ETA {_clock(eta)}"
            )
        return f"{self.done} frames {fps:6.1f} frames/s elapsed {_clock(elapsed)}"

    def _emit(self, now: float) -> None:
        text = self.line(now)
        if self.mode == "bar":
            filled = 0
            if self.total > 0:
                filled = int(self.config.width * min(1.0, self.done / self.total))
            bar = "#" * filled + "-" * (self.config.width - filled)
            self.stream.write(f"\r[{bar}] {text}")
        else:
            self.stream.write(f"progress: {text}\n")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _clock(seconds: float) -> str:
    if seconds == float("inf") or seconds != seconds:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
