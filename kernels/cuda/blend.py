"""CUDA twin of `ghost_engine.kernels.blend.blend_inverse_warp`, writing only the face region."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ghost_engine.kernels import blend as ref
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_2d

cuda = cuda_module()


@cuda.jit(device=True)
def _clamp(i, n):
    return min(max(i, 0), n - 1)


@cuda.jit
def _blend_kernel(frame, swap, mask, fwd, x0, y0, rw, rh, scale):
    x, y = cuda.grid(2)
    if x >= rw or y >= rh:
        return
    s = swap.shape[0]
    sx = fwd[0, 0] * x + fwd[0, 1] * y + fwd[0, 2]
    sy = fwd[1, 0] * x + fwd[1, 1] * y + fwd[1, 2]
    ix = int(math.floor(sx))
    iy = int(math.floor(sy))
    ax = sx - ix
    ay = sy - iy
    m = 0.0
    for dy in range(2):
        for dx in range(2):
            yy = iy + dy
            xx = ix + dx
            if 0 <= yy < s and 0 <= xx < s:
                wgt = (ax if dx else 1.0 - ax) * (ay if dy else 1.0 - ay)
                m += wgt * mask[yy, xx] * scale
    if m <= 0.0:
        return
    fy = y0 + y
    fx = x0 + x
    for c in range(3):
        v = 0.0
        for dy in range(2):
            for dx in range(2):
                wgt = (ax if dx else 1.0 - ax) * (ay if dy else 1.0 - ay)
                v += wgt * swap[_clamp(iy + dy, s), _clamp(ix + dx, s), c]
        sw = math.floor(v + 0.5)
        out = m * sw + (1.0 - m) * frame[fy, fx, c]
        frame[fy, fx, c] = min(max(int(out), 0), 255)


def blend_inverse_warp(frame, swap, mask, matrix: np.ndarray):
    """Blend device `swap` (S, S, 3) through device `mask` (S, S) into device `frame`.

    `matrix` (host, 2x3, frame -> crop) comes from the crop; the frame is changed in place
    and returned. Mask: uint8 0..255 or float 0..1.
    """
    s = swap.shape[0]
    h, w = frame.shape[0], frame.shape[1]
    x0, y0, x1, y1 = ref.paste_region(matrix, s, h, w)
    if x1 <= x0 or y1 <= y0:
        return frame
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    inv[:, 2] -= (x0, y0)
    fwd = cv2.invertAffineTransform(inv).astype(np.float32)  # region pixel -> crop pixel
    scale = ref.mask_scale(np.empty(0, dtype=str(mask.dtype)))
    grid, block = grid_2d(y1 - y0, x1 - x0)
    _blend_kernel[grid, block](
        frame, swap, mask, device_arrays().to_device(fwd), x0, y0, x1 - x0, y1 - y0, scale
    )
    return frame
