"""The CUDA backend's last stage: device frames -> host frames in pinned memory.

Each frame's copy is started for the whole batch before the first is waited on, so the
copies overlap each other and the next batch's compute (they run on their own stream,
see `DeviceContext.download`). The device buffer goes back to its pool as soon as its
copy has landed; the pinned buffer goes back when the encoder has taken the frame (the
runner calls `meta["release"]` after the sink).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ghost_engine.cuda.context import DeviceContext
from ghost_engine.cuda.frames import BufferPool, DeviceFrame
from ghost_engine.types import Frame


class DownloadStage:
    """StreamStage: `DeviceFrame`s in, host `Frame`s (pinned, pooled) out."""

    name = "download"

    def __init__(self, ctx: DeviceContext, pool_size: int, timeout_s: float = 120.0) -> None:
        self.ctx = ctx
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self.pool: BufferPool | None = None

    def _pool_for(self, frame: DeviceFrame) -> BufferPool:
        if self.pool is None:
            shape = (frame.height, frame.width, 3)
            self.pool = BufferPool(
                lambda: self.ctx.pinned_empty(shape, np.uint8), self.pool_size, "pinned frame"
            )
        return self.pool

    def process(self, frames: list[DeviceFrame]) -> list[Frame]:
        started = []
        for frame in frames:
            host = self._pool_for(frame).acquire(timeout=self.timeout_s)
            started.append((frame, self.ctx.download(frame.image, out=host)))
        out = []
        for frame, ticket in started:
            image = ticket.wait()
            frame.release()
            meta = {**frame.meta, "release": partial(self.pool.release, image)}
            out.append(Frame(frame.index, image, frame.pts, frame.time_base, meta))
        return out

    def flush(self) -> list[Frame]:
        return []
