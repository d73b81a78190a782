"""CUDA twin of `ghost_engine.kernels.letterbox.letterbox`: resize, pad, normalise, NCHW."""

from __future__ import annotations

import math

from ghost_engine.kernels import letterbox as ref
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_3d

cuda = cuda_module()


@cuda.jit
def _letterbox_kernel(frames, out, new_w, new_h, scale_x, scale_y, pad):
    x, y, n = cuda.grid(3)
    size = out.shape[2]
    if x >= size or y >= size or n >= out.shape[0]:
        return
    if x >= new_w or y >= new_h:
        for c in range(3):
            out[n, c, y, x] = pad
        return
    h = frames.shape[1]
    w = frames.shape[2]
    fx = (x + 0.5) * scale_x - 0.5
    fy = (y + 0.5) * scale_y - 0.5
    x0 = int(math.floor(fx))
    y0 = int(math.floor(fy))
    ax = fx - x0
    ay = fy - y0
    if x0 < 0:
        x0, ax = 0, 0.0
    if y0 < 0:
        y0, ay = 0, 0.0
    if x0 >= w - 1:
        x0, ax = w - 1, 0.0
    if y0 >= h - 1:
        y0, ay = h - 1, 0.0
    x1 = min(x0 + 1, w - 1)
    y1 = min(y0 + 1, h - 1)
    for c in range(3):
        top = frames[n, y0, x0, c] * (1.0 - ax) + frames[n, y0, x1, c] * ax
        bot = frames[n, y1, x0, c] * (1.0 - ax) + frames[n, y1, x1, c] * ax
        v = math.floor(top * (1.0 - ay) + bot * ay + 0.5)
        out[n, c, y, x] = (v - ref.MEAN) / ref.STD


def letterbox(frames, size: int = 640, out=None):
    """((N, 3, size, size) float32 device array, geometry) from device frames (N, H, W, 3)."""
    if len(frames.shape) == 3:
        frames = frames.reshape((1,) + tuple(frames.shape))
    n, h, w, c = frames.shape
    if c != 3:
        raise ValueError(f"frames must be (N, H, W, 3), got {frames.shape}")
    geo = ref.letterbox_geometry(h, w, size)
    if out is None:
        out = device_arrays().empty((n, 3, size, size), "float32")
    grid, block = grid_3d(n, size, size)
    _letterbox_kernel[grid, block](
        frames,
        out,
        geo.new_width,
        geo.new_height,
        w / geo.new_width,
        h / geo.new_height,
        (0.0 - ref.MEAN) / ref.STD,
    )
    return out, geo
