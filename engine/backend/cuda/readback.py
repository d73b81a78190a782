"""The CUDA backend's last stage: device frames -> host frames in pinned memory.

With `planar=True` (the encoder takes yuv420p, the default for H.264/HEVC/VP9/AV1) the
frame is first converted to I420 on the device (`kernels.cuda.color.rgb_to_i420`), so
half the bytes cross and the encoder thread does no colour conversion; the stage then
yields i420 `Frame`s.

Each frame's copy is started for the whole batch before the first is waited on, so the
copies overlap each other and the next batch's compute (they run on their own stream,
see `DeviceContext.download`). The device buffer goes back to its pool as soon as its
copy has landed; the pinned buffer goes back when the encoder has taken the frame (the
runner calls `Frame.release()` after the sink).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ghost_engine.backend.cuda.context import DeviceContext
from ghost_engine.backend.cuda.frames import BufferPool
from ghost_engine.backend.cuda.kernel_set import KernelSet
from ghost_engine.interfaces import PassStage
from ghost_engine.types import I420, RGB, Frame


class DownloadStage(PassStage):
    """StreamStage: device `Frame`s in, host `Frame`s (RGB or I420, pinned, pooled) out."""

    name = "download"

    def __init__(
        self,
        ctx: DeviceContext,
        pool_size: int,
        timeout_s: float = 120.0,
        *,
        kernels: KernelSet | None = None,
        planar: bool = False,
    ) -> None:
        if planar and kernels is None:
            raise ValueError("planar output needs the kernel set (its RGB -> I420 kernel)")
        self.ctx = ctx
        self.kernels = kernels
        self.planar = planar
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self.pool: BufferPool | None = None

    def _planar(self, frame: Frame) -> bool:
        return self.planar and frame.height % 2 == 0 and frame.width % 2 == 0

    def _pool_for(self, frame: Frame) -> BufferPool:
        if self.pool is None:
            h, w = frame.height, frame.width
            shape = (h * 3 // 2, w) if self._planar(frame) else (h, w, 3)
            self.pool = BufferPool(
                lambda: self.ctx.pinned_empty(shape, np.uint8), self.pool_size, "pinned frame"
            )
        return self.pool

    def process(self, frames: list[Frame]) -> list[Frame]:
        started = []
        for frame in frames:
            host = self._pool_for(frame).acquire(timeout=self.timeout_s)
            started.append((frame, self.ctx.download(self._device_pixels(frame), out=host)))
        out: list[Frame] = []
        for frame, ticket in started:
            pixels = ticket.wait()
            frame.release()
            layout = I420 if pixels.ndim == 2 else RGB
            out.append(
                Frame(
                    frame.index,
                    pixels,
                    frame.pts,
                    frame.time_base,
                    dict(frame.meta),
                    layout=layout,
                    releaser=self._pool_for(frame).release,
                )
            )
        return out

    def _device_pixels(self, frame: Frame) -> Any:
        """What is copied: the RGB frame, or its I420 conversion in a per-frame buffer
        (the copies of a batch are in flight together, so each needs its own)."""
        if not self._planar(frame):
            return frame.image
        assert self.kernels is not None  # planar output comes with its kernels (__init__)
        return self.kernels.rgb_to_i420(frame.image)
