"""`ghost_engine.kernels.colour`'s conversion compiled for the CPU by Numba.

Imported on the first conversion (importing Numba costs a fraction of a second that runs
which decode nothing should not pay); compiled code is cached next to this file.

Per row: the two chroma rows blended vertically once, then two luma columns per chroma
column with the taps `chroma_taps` gives, unrolled. Exact integer maths, so fastmath
would change nothing. One thread: Numba's parallel loops run on a threading layer that
is either not thread-safe (workqueue) or not fork-safe (GNU OpenMP), and decoding runs
in a reader thread of processes that may fork (data loader workers).
"""

from __future__ import annotations

import numba
import numpy as np

from ghost_engine.kernels.colour import chroma_taps, yuv_pixel

_taps = numba.njit(cache=True)(chroma_taps)
_pixel = numba.njit(cache=True)(yuv_pixel)


@numba.njit(cache=True)
def _put(out, row, x, y, u16, v16, c):  # pragma: no cover (compiled)
    r, g, b = _pixel(np.int64(y[row, x]), u16, v16, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
    out[row, x, 0] = r
    out[row, x, 1] = g
    out[row, x, 2] = b


@numba.njit(cache=True)
def convert(y, u, v, out, sub_y, sub_x, a, b, c):  # pragma: no cover (compiled)
    """RGB into `out` (H, W, 3) uint8 from planes `y`, `u`, `v`; `c` the int64
    `YuvFormat.fixed_point()`, (a, b) its `siting_weights`, sub_* its subsampling."""
    height, width = y.shape
    ch, cw = u.shape
    for row in range(height):
        k0, k1, wk0, wk1 = _taps(row, ch, sub_y, 1, 1)
        # vertical blend, padded by one repeated sample on each side
        uu = np.empty(cw + 2, np.int64)
        vv = np.empty(cw + 2, np.int64)
        for j in range(cw):
            uu[j + 1] = wk0 * np.int64(u[k0, j]) + wk1 * np.int64(u[k1, j])
            vv[j + 1] = wk0 * np.int64(v[k0, j]) + wk1 * np.int64(v[k1, j])
        uu[0], vv[0], uu[cw + 1], vv[cw + 1] = uu[1], vv[1], uu[cw], vv[cw]
        if not sub_x:
            for x in range(width):
                _put(out, row, x, y, 4 * uu[x + 1], 4 * vv[x + 1], c)
            continue
        for j in range(width // 2):
            x = 2 * j
            u16 = a * uu[j] + (4 - a) * uu[j + 1]
            v16 = a * vv[j] + (4 - a) * vv[j + 1]
            _put(out, row, x, y, u16, v16, c)
            u16 = (4 - b) * uu[j + 1] + b * uu[j + 2]
            v16 = (4 - b) * vv[j + 1] + b * vv[j + 2]
            _put(out, row, x + 1, y, u16, v16, c)
        if width % 2:
            j = width // 2
            u16 = a * uu[j] + (4 - a) * uu[j + 1]
            v16 = a * vv[j] + (4 - a) * vv[j + 1]
            _put(out, row, width - 1, y, u16, v16, c)
