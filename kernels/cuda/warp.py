"""CUDA twin of `ghost_engine.kernels.warp.warp_affine_batch` (bilinear, border 0)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_3d

cuda = cuda_module()


@cuda.jit(device=True)
def _tap(frames, f, yy, xx, c):
    if yy < 0 or xx < 0 or yy >= frames.shape[1] or xx >= frames.shape[2]:
        return 0.0
    return frames[f, yy, xx, c] * 1.0


@cuda.jit
def _warp_kernel(frames, inv, index, out):
    x, y, i = cuda.grid(3)
    size_h = out.shape[1]
    size_w = out.shape[2]
    if x >= size_w or y >= size_h or i >= out.shape[0]:
        return
    f = index[i]
    sx = inv[i, 0, 0] * x + inv[i, 0, 1] * y + inv[i, 0, 2]
    sy = inv[i, 1, 0] * x + inv[i, 1, 1] * y + inv[i, 1, 2]
    x0 = int(math.floor(sx))
    y0 = int(math.floor(sy))
    ax = sx - x0
    ay = sy - y0
    for c in range(out.shape[3]):
        top = _tap(frames, f, y0, x0, c) * (1.0 - ax) + _tap(frames, f, y0, x0 + 1, c) * ax
        bot = _tap(frames, f, y0 + 1, x0, c) * (1.0 - ax) + _tap(frames, f, y0 + 1, x0 + 1, c) * ax
        v = math.floor(top * (1.0 - ay) + bot * ay + 0.5)
        out[i, y, x, c] = min(max(v, 0.0), 255.0)


def inverse_matrices(matrices: np.ndarray) -> np.ndarray:
    """(N, 2, 3) float32 crop -> frame matrices (host side: matrices are small data)."""
    mats = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    return np.stack([cv2.invertAffineTransform(m) for m in mats]).astype(np.float32)


def warp_affine_batch(frames, matrices: np.ndarray, size: int = 224, frame_index=None, out=None):
    """(N, size, size, C) uint8 device crops from device frames (F, H, W, C) or (H, W, C).

    `matrices` (N, 2, 3, frame -> crop) and `frame_index` (N,) are host arrays.
    """
    if len(frames.shape) == 3:
        frames = frames.reshape((1,) + tuple(frames.shape))
    mats = np.asarray(matrices, np.float64).reshape(-1, 2, 3)
    n = len(mats)
    idx = np.zeros(n, np.int32) if frame_index is None else np.asarray(frame_index, np.int32)
    if len(idx) != n or (n and (idx.min() < 0 or idx.max() >= frames.shape[0])):
        raise ValueError(f"frame_index must give one frame per matrix, got {idx.tolist()}")
    arrays = device_arrays()
    if out is None:
        out = arrays.empty((n, size, size, frames.shape[3]), "uint8")
    if n == 0:
        return out
    inv = arrays.to_device(inverse_matrices(mats))
    grid, block = grid_3d(n, size, size)
    _warp_kernel[grid, block](frames, inv, arrays.to_device(idx), out)
    return out
