"""Download progress: one redrawn status line on a terminal, plain lines otherwise.

Several files download in parallel threads, so every method takes a lock; the terminal
line shows each active file and the overall rate.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

MB = 1024 * 1024


@dataclass
class _Task:
    total: int | None
    done: int
    started: float


class Progress:
    """Thread-safe progress reporter for parallel downloads."""

    def __init__(self, stream: TextIO | None = None, *, interval_s: float = 0.1) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval_s = interval_s
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._line_len = 0

    def start(self, label: str, total: int | None, already: int = 0, source: str = "") -> None:
        """A file begins (or resumes at `already` bytes) downloading."""
        with self._lock:
            self._tasks[label] = _Task(total=total, done=already, started=time.monotonic())
            resume = f", resuming at {already / MB:.1f} MB" if already else ""
            size = f" ({total / MB:.1f} MB)" if total else ""
            if not self.tty:
                self._line(f"downloading {label}{size} from {source}{resume}")
            self._draw(force=True)

    def advance(self, label: str, nbytes: int) -> None:
        """`nbytes` more bytes of `label` arrived."""
        with self._lock:
            task = self._tasks.get(label)
            if task is not None:
                task.done += nbytes
                self._draw(force=False)

    def finish(self, label: str, message: str) -> None:
        """`label` is done (successfully or not); `message` says how it ended."""
        with self._lock:
            self._tasks.pop(label, None)
            self._line(f"{label}: {message}")
            self._draw(force=True)

    def note(self, message: str) -> None:
        """A line that must stay visible (retries, warnings)."""
        with self._lock:
            self._line(message)
            self._draw(force=True)

    def _line(self, text: str) -> None:
        if self.tty and self._line_len:
            self.stream.write("\r" + " " * self._line_len + "\r")
            self._line_len = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self, *, force: bool) -> None:
        if not self.tty or not self._tasks:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < self.interval_s:
            return
        self._last_draw = now
        parts = []
        for label, task in self._tasks.items():
            if task.total:
                parts.append(f"{label} {100 * task.done / task.total:5.1f}%")
            else:
                parts.append(f"{label} {task.done / MB:.1f} MB")
        text = " | ".join(parts)
        pad = max(0, self._line_len - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._line_len = len(text)
