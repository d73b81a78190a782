"""CUDA twins of the mask kernels: hull fill, square erode/dilate, border zeroing, blur.

The hull is rasterised into row spans on the host (`kernels.hull_fill.hull_raster`,
small integer data); the device fills them. Erosion is separable (min over rows, then
columns) and exact; the blur is separable in float32 with OpenCV's taps and
BORDER_REFLECT_101, rounded once at the end.
"""

from __future__ import annotations

import numpy as np

from ghost_engine.kernels import blur as blur_ref
from ghost_engine.kernels import hull_fill, morphology
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_2d

cuda = cuda_module()


@cuda.jit
def _fill_spans_kernel(spans, out, value):
    x, y = cuda.grid(2)
    if y >= out.shape[0] or x >= out.shape[1]:
        return
    out[y, x] = value if spans[y, 0] <= x <= spans[y, 1] else 0


@cuda.jit
def _set_pixels_kernel(pixels, out, value):
    i = cuda.grid(1)
    if i < pixels.shape[0]:
        out[pixels[i, 1], pixels[i, 0]] = value


@cuda.jit
def _morph_kernel(src, dst, before, after, erode, along_x):
    x, y = cuda.grid(2)
    h = src.shape[0]
    w = src.shape[1]
    if y >= h or x >= w:
        return
    best = src[y, x]
    for d in range(-before, after + 1):
        xx = x + d if along_x else x
        yy = y if along_x else y + d
        if 0 <= xx < w and 0 <= yy < h:
            v = src[yy, xx]
            if erode:
                best = min(best, v)
            else:
                best = max(best, v)
    dst[y, x] = best


@cuda.jit
def _zero_border_kernel(mask, width):
    x, y = cuda.grid(2)
    h = mask.shape[0]
    w = mask.shape[1]
    if y < h and x < w and (y < width or x < width or y >= h - width or x >= w - width):
        mask[y, x] = 0


@cuda.jit(device=True)
def _reflect101(i, n):
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * n - 2 - i
    return i


@cuda.jit(device=True)
def _taps_sum(src, taps, y, x, along_x):
    """`taps` centred on (y, x) along one axis of `src`, edges reflected (REFLECT_101)."""
    h = src.shape[0]
    w = src.shape[1]
    r = taps.shape[0] // 2
    acc = 0.0
    for k in range(taps.shape[0]):
        xx = _reflect101(x + k - r, w) if along_x else x
        yy = y if along_x else _reflect101(y + k - r, h)
        acc += taps[k] * src[yy, xx]
    return acc


@cuda.jit
def _blur_rows_kernel(src, tmp, taps):
    x, y = cuda.grid(2)
    if y < src.shape[0] and x < src.shape[1]:
        tmp[y, x] = _taps_sum(src, taps, y, x, True)


@cuda.jit
def _blur_cols_kernel(tmp, dst, taps):
    x, y = cuda.grid(2)
    if y < tmp.shape[0] and x < tmp.shape[1]:
        acc = _taps_sum(tmp, taps, y, x, False)
        dst[y, x] = min(max(int(acc + 0.5), 0), 255)


def fill_hull(points: np.ndarray, height: int, width: int, value: int = 255, out=None):
    """uint8 (height, width) device mask of the convex hull of host integer points."""
    raster = hull_fill.hull_raster(points, height, width)
    arrays = device_arrays()
    if out is None:
        out = arrays.empty((height, width), "uint8")
    grid, block = grid_2d(height, width)
    _fill_spans_kernel[grid, block](arrays.to_device(raster.spans), out, value)
    m = len(raster.edge_pixels)
    if m:
        _set_pixels_kernel[(m + 127) // 128, 128](arrays.to_device(raster.edge_pixels), out, value)
    return out


def erode_dilate(mask, size: int, out=None):
    """Device twin of `kernels.morphology.erode_dilate` (size > 0 erodes, < 0 dilates)."""
    arrays = device_arrays()
    h, w = mask.shape
    if out is None:
        out = arrays.empty((h, w), "uint8")
    if size == 0:
        out[...] = mask
        return out
    before, after = morphology.window(size)
    tmp = arrays.empty((h, w), "uint8")
    grid, block = grid_2d(h, w)
    _morph_kernel[grid, block](mask, tmp, before, after, size > 0, True)
    _morph_kernel[grid, block](tmp, out, before, after, size > 0, False)
    return out


def zero_border(mask, width: int):
    """Zero `width` pixels along every edge of a device mask, in place; returns it."""
    if width > 0:
        grid, block = grid_2d(mask.shape[0], mask.shape[1])
        _zero_border_kernel[grid, block](mask, width)
    return mask


def gaussian_blur(mask, sigma_x: float, sigma_y: float, out=None):
    """Device twin of `kernels.blur.gaussian_blur` for uint8 masks."""
    arrays = device_arrays()
    h, w = mask.shape
    if out is None:
        out = arrays.empty((h, w), "uint8")
    tmp = arrays.empty((h, w), "float32")
    grid, block = grid_2d(h, w)
    _blur_rows_kernel[grid, block](mask, tmp, arrays.to_device(blur_ref.gaussian_taps(sigma_x)))
    _blur_cols_kernel[grid, block](tmp, out, arrays.to_device(blur_ref.gaussian_taps(sigma_y)))
    return out
