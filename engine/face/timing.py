"""Seconds per sub-step of a face stage, safe to add to from several threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class StepTimer:
    """Accumulates wall seconds per named step; `timed(step)` is a context manager."""

    def __init__(self, steps: Iterable[str]) -> None:
        self._seconds = dict.fromkeys(steps, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._seconds[step] = self._seconds.get(step, 0.0) + time.perf_counter() - start

    def timings(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)


def add_timings(total: dict[str, float], more: dict[str, float]) -> dict[str, float]:
    """`total` with `more` added step by step (stages that share a step name, such as
    "align", are summed, not overwritten)."""
    for step, seconds in more.items():
        total[step] = total.get(step, 0.0) + seconds
    return total
