"""The fixed pools of buffers device (and pinned host) frames live in.

A pool allocates its buffers once and hands them out; a frame gives its buffer back
with `Frame.release()` when the next step is done with it. `acquire` blocks while every buffer
is out, which is what keeps GPU and pinned memory constant on any video length: the
decoder cannot run further ahead than the pool allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from ghost_engine.types import Frame


class BufferPool:
    """`count` buffers made by `make()` once; `acquire` waits for a free one."""

    def __init__(self, make: Callable[[], Any], count: int, name: str = "buffer") -> None:
        if count < 1:
            raise ValueError(f"a pool needs at least one buffer, got {count}")
        self.name = name
        self.count = count
        self._free = [make() for _ in range(count)]
        self._out: set[int] = set()
        self._ready = threading.Condition()

    def acquire(self, timeout: float | None = None, stop: threading.Event | None = None) -> Any:
        """A free buffer; waits (in short steps, so `stop` is honoured) until one is."""
        with self._ready:
            waited = 0.0
            while not self._free:
                if stop is not None and stop.is_set():
                    raise InterruptedError(f"{self.name} pool: stopped while waiting")
                if timeout is not None and waited >= timeout:
                    raise TimeoutError(
                        f"{self.name} pool: all {self.count} buffers still in use after "
                        f"{timeout:.1f} s (a frame was never released)"
                    )
                self._ready.wait(0.05)
                waited += 0.05
            buffer = self._free.pop()
            self._out.add(id(buffer))
            return buffer

    def release(self, buffer: Any) -> None:
        """Give `buffer` back; releasing one that is not out is a bug and raises."""
        with self._ready:
            if id(buffer) not in self._out:
                raise ValueError(f"{self.name} pool: released a buffer that was not handed out")
            self._out.discard(id(buffer))
            self._free.append(buffer)
            self._ready.notify()

    @property
    def in_use(self) -> int:
        with self._ready:
            return len(self._out)


def device_frame(
    index: int,
    image: Any,
    pts: int | None,
    time_base: Fraction | None,
    pool: BufferPool | None = None,
    meta: dict | None = None,
) -> Frame:
    """A `Frame` whose pixels are a device array; with `pool`, `Frame.release()` gives
    the buffer back to it."""
    return Frame(
        index,
        image,
        pts,
        time_base,
        meta if meta is not None else {},
        on_device=True,
        releaser=None if pool is None else pool.release,
    )
