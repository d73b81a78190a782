"""A one-slot "latest frame wins" buffer between the capture thread and the swap loop.

A live swap must show the newest camera frame, not work through a backlog: when the loop
is slower than the camera, a frame that is overwritten before the loop takes it is
dropped (and counted), never queued. The slot is thread-safe (one lock, one condition).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

T = TypeVar("T")


@dataclass(frozen=True)
class SlotCounts:
    """Frames put in, overwritten before being taken, taken out, and left at close."""

    captured: int
    overwritten: int
    taken: int
    left: int

    @property
    def dropped(self) -> int:
        """Captured frames the loop never got: overwritten or still waiting at the end."""
        return self.overwritten + self.left


class SlotClosed(Exception):
    """The producer closed the slot and no frame is left: the stream has ended."""


class LatestSlot(Generic[T]):
    """Holds at most one item; `put` overwrites, `take` waits for a new one."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._captured = 0
        self._overwritten = 0
        self._taken = 0

    def put(self, item: T) -> None:
        """Store `item`, replacing (and counting as dropped) one not yet taken."""
        with self._cond:
            if self._closed:
                raise SlotClosed("put on a closed slot")
            if self._full:
                self._overwritten += 1
            self._item = item
            self._full = True
            self._captured += 1
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> T:
        """The newest item not yet taken; waits for one. Raises SlotClosed at the end of
        the stream and TimeoutError when `timeout` seconds pass without an item."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._full:
                if self._closed:
                    raise SlotClosed("the capture has ended")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no frame within {timeout} s")
                self._cond.wait(remaining)
            item = cast(T, self._item)  # `_full`: an item is there (it may be None itself)
            self._item = None
            self._full = False
            self._taken += 1
            return item

    def close(self) -> None:
        """End of stream: wake every waiter; an item still in the slot can be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def counts(self) -> SlotCounts:
        with self._cond:
            return SlotCounts(
                captured=self._captured,
                overwritten=self._overwritten,
                taken=self._taken,
                left=int(self._full),
            )
