"""YUV to RGB: the one colour definition both decode paths use.

The CPU path (PyAV's planes) and the NVDEC path (NV12 in device memory) turn YUV into RGB
with the same arithmetic: `chroma_taps` and `yuv_pixel` below are compiled by Numba for
the CPU (`yuv_to_rgb`, cached beside this file) and, from the same Python source, for
CUDA (`ghost_engine.kernels.cuda.colour`), so the two paths agree bit for bit. Everything
Numba compiles for the CPU lives in this one file because its cache is invalidated only
when the file defining a cached function changes.

What a stream's numbers mean (`YuvFormat`):

- matrix: the luma weights (Kr, Kb) of BT.601, BT.709, BT.2020 (non-constant
  luminance) or SMPTE 240M; R = Y' + 2(1 - Kr) Pr, B = Y' + 2(1 - Kb) Pb, G from Y'.
- range: limited (Y 16..235, C 16..240 at 8 bits, scaled by 2^(bits-8)) or full
  (0..2^bits - 1, chroma centred on 2^(bits-1), H.273's definition).
- chroma siting of subsampled chroma, which sets the bilinear upsampling grid:
  "left" (MPEG-2, H.264, HEVC: co-sited with even luma columns, between luma rows) or
  "center" (JPEG, MPEG-1: between luma columns and rows). Edges repeat the last sample.

Arithmetic, in exact integers (so fastmath would change nothing): upsampled chroma is
kept in 1/16 steps (weights of 1/4 per direction, no intermediate rounding); the matrix
is applied in fixed point with 20 + (bits - 8) fraction bits and rounded once (all sums
fit in int64), which is within 1 level of the exact float formulas: off by one only where
the exact value lies within ~1e-4 of a half level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np

Matrix = Literal["bt601", "bt709", "bt2020", "smpte240m"]
ChromaSiting = Literal["left", "center"]

# (Kr, Kb) per matrix: ITU-R BT.601, BT.709, BT.2020 and SMPTE 240M.
LUMA_WEIGHTS: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
}
SITINGS: tuple[str, ...] = ("left", "center")
MAX_BITS = 16


@dataclass(frozen=True)
class YuvFormat:
    """How to read a stream's YUV samples: matrix, range, chroma siting, bit depth."""

    matrix: Matrix = "bt601"
    full_range: bool = False
    siting: ChromaSiting = "left"
    bits: int = 8

    def __post_init__(self) -> None:
        if self.matrix not in LUMA_WEIGHTS:
            raise ValueError(f"matrix must be one of {sorted(LUMA_WEIGHTS)}, got {self.matrix!r}")
        if self.siting not in SITINGS:
            raise ValueError(f"chroma siting must be one of {SITINGS}, got {self.siting!r}")
        if not 8 <= self.bits <= MAX_BITS:
            raise ValueError(f"bit depth must be 8..{MAX_BITS}, got {self.bits}")

    def float_coefficients(self) -> tuple[float, float, float, float, float, float, float]:
        """(ky, y_offset, c_offset, r_v, g_u, g_v, b_u): RGB (0..255) = ky (Y - y_offset)
        + k (C - c_offset) per term, in the stream's sample units."""
        kr, kb = LUMA_WEIGHTS[self.matrix]
        kg = 1.0 - kr - kb
        scale = 1 << (self.bits - 8)
        if self.full_range:
            top = float((1 << self.bits) - 1)
            ky, kc, y_offset = 255.0 / top, 255.0 / top, 0.0
        else:
            ky, kc, y_offset = 255.0 / (219 * scale), 255.0 / (224 * scale), 16.0 * scale
        c_offset = float(1 << (self.bits - 1))
        return (
            ky,
            y_offset,
            c_offset,
            kc * 2 * (1 - kr),
            -kc * 2 * kb * (1 - kb) / kg,
            -kc * 2 * kr * (1 - kr) / kg,
            kc * 2 * (1 - kb),
        )

    def fixed_point(self) -> tuple[int, int, int, int, int, int, int, int]:
        """(ky, y_offset16, c_offset16, r_v, g_u, g_v, b_u, shift) for `yuv_pixel`:
        coefficients times 2^(shift - 4), offsets in 1/16 sample steps."""
        ky, y_offset, c_offset, rv, gu, gv, bu = self.float_coefficients()
        fraction = 20 + self.bits - 8
        one = 1 << fraction
        return (
            round(ky * one),
            round(y_offset * 16),
            round(c_offset * 16),
            round(rv * one),
            round(gu * one),
            round(gv * one),
            round(bu * one),
            fraction + 4,
        )


def siting_weights(siting: ChromaSiting) -> tuple[int, int]:
    """(a, b): horizontal weights (of 4) of the outer chroma neighbour for even and odd
    luma columns. Left-sited chroma lies on even columns (0, then halfway: 2); centred
    chroma lies between two columns (1 and 1: 3/4 of the near sample, 1/4 of the far)."""
    return (0, 2) if siting == "left" else (1, 1)


@numba.njit(cache=True)
def chroma_taps(pos: int, size: int, subsampled: int, a: int, b: int) -> tuple[int, int, int, int]:
    """(first, second, w_first, w_second): the two chroma samples (of `size`) and their
    weights (of 4) for luma position `pos` on one axis; `subsampled` 1 for half-resolution
    chroma, (a, b) from `siting_weights` (vertically always (1, 1): chroma between rows)."""
    if not subsampled:
        return pos, pos, 4, 0
    j = pos >> 1
    if pos & 1:
        return j, min(j + 1, size - 1), 4 - b, b
    return max(j - 1, 0), j, a, 4 - a


@numba.njit(cache=True)
def yuv_pixel(
    y: int,
    u16: int,
    v16: int,
    ky: int,
    y_offset16: int,
    c_offset16: int,
    rv: int,
    gu: int,
    gv: int,
    bu: int,
    shift: int,
) -> tuple[int, int, int]:
    """R, G, B (0..255) of luma `y` and chroma `u16`, `v16` in 1/16 sample steps."""
    luma = ky * (16 * y - y_offset16) + (1 << (shift - 1))
    du = u16 - c_offset16
    dv = v16 - c_offset16
    r = (luma + rv * dv) >> shift
    g = (luma + gu * du + gv * dv) >> shift
    b = (luma + bu * du) >> shift
    return min(max(r, 0), 255), min(max(g, 0), 255), min(max(b, 0), 255)


def subsampling(luma_shape: tuple[int, ...], chroma_shape: tuple[int, ...]) -> tuple[int, int]:
    """(vertical, horizontal): 1 where the chroma plane has half the luma's samples."""
    (h, w), (ch, cw) = luma_shape[:2], chroma_shape[:2]
    for n, c in ((h, ch), (w, cw)):
        if c not in (n, (n + 1) // 2):
            raise ValueError(
                f"chroma plane {tuple(chroma_shape)} is neither full nor half of the luma "
                f"plane {tuple(luma_shape)}"
            )
    return int(ch != h), int(cw != w)


def check_planes(y: Any, u: Any, v: Any) -> tuple[int, int]:
    """The chroma subsampling of three 2-D planes, after checking their shapes."""
    if len(y.shape) != 2 or len(u.shape) != 2 or tuple(u.shape) != tuple(v.shape):
        raise ValueError(
            f"need 2-D Y, U, V planes with U and V alike, got {tuple(y.shape)}, "
            f"{tuple(u.shape)}, {tuple(v.shape)}"
        )
    return subsampling(tuple(y.shape), tuple(u.shape))


@numba.njit(cache=True, nogil=True)  # other pipeline threads run meanwhile
def _convert(y, u, v, out, sub_y, sub_x, a, b, c):  # pragma: no cover (compiled)
    """RGB into `out` (H, W, 3) C-contiguous uint8 from planes `y`, `u`, `v`; `c` the
    int64 `YuvFormat.fixed_point()`, (a, b) its `siting_weights`, sub_* its subsampling.

    Per row: the two chroma rows blended vertically once, then upsampled to every luma
    column with the taps `chroma_taps` gives (unrolled by column parity), then
    `yuv_pixel` on contiguous rows, which the compiler vectorises (twice as fast as one
    pixel at a time). One thread: Numba's parallel loops run on a threading layer that
    is either not thread-safe (workqueue) or not fork-safe (GNU OpenMP), and decoding
    runs in a reader thread of processes that may fork (data loader workers)."""
    height, width = y.shape
    ch, cw = u.shape
    uu = np.empty(cw + 2, np.int64)  # one chroma row pair blended, one sample of padding
    vv = np.empty(cw + 2, np.int64)
    uh = np.empty(width, np.int64)  # upsampled to every luma column, 1/16 steps
    vh = np.empty(width, np.int64)
    rr = np.empty(width, np.uint8)
    gg = np.empty(width, np.uint8)
    bb = np.empty(width, np.uint8)
    for row in range(height):
        k0, k1, wk0, wk1 = chroma_taps(row, ch, sub_y, 1, 1)
        for j in range(cw):
            uu[j + 1] = wk0 * np.int64(u[k0, j]) + wk1 * np.int64(u[k1, j])
            vv[j + 1] = wk0 * np.int64(v[k0, j]) + wk1 * np.int64(v[k1, j])
        uu[0], vv[0], uu[cw + 1], vv[cw + 1] = uu[1], vv[1], uu[cw], vv[cw]
        if sub_x:
            # chroma_taps for luma column 2j: (j - 1, j) weighted (a, 4 - a); for 2j + 1:
            # (j, j + 1) weighted (4 - b, b); uu[i + 1] holds chroma column i
            for j in range(width // 2):
                uh[2 * j] = a * uu[j] + (4 - a) * uu[j + 1]
                vh[2 * j] = a * vv[j] + (4 - a) * vv[j + 1]
                uh[2 * j + 1] = (4 - b) * uu[j + 1] + b * uu[j + 2]
                vh[2 * j + 1] = (4 - b) * vv[j + 1] + b * vv[j + 2]
            if width % 2:
                j = width // 2
                uh[width - 1] = a * uu[j] + (4 - a) * uu[j + 1]
                vh[width - 1] = a * vv[j] + (4 - a) * vv[j + 1]
        else:
            for x in range(width):
                uh[x] = 4 * uu[x + 1]
                vh[x] = 4 * vv[x + 1]
        # the matrix on contiguous rows (vectorised), then interleaved into RGB
        luma = y[row]
        for x in range(width):
            r, g, bl = yuv_pixel(
                np.int64(luma[x]), uh[x], vh[x], c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
            )
            rr[x] = r
            gg[x] = g
            bb[x] = bl
        line = out[row].reshape(-1)
        for x in range(width):
            line[3 * x] = rr[x]
            line[3 * x + 1] = gg[x]
            line[3 * x + 2] = bb[x]


def yuv_to_rgb(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, fmt: YuvFormat, out: np.ndarray | None = None
) -> np.ndarray:
    """RGB uint8 (H, W, 3) from Y (H, W) and U, V planes at full or half resolution on
    each axis (4:4:4, 4:2:2, 4:2:0; odd sizes round the chroma up), uint8 or uint16
    samples of `fmt.bits`. Planes may be strided views (PyAV's padded lines, NV12's
    interleaved chroma)."""
    sub_y, sub_x = check_planes(y, u, v)
    if out is None:
        out = np.empty((*y.shape, 3), np.uint8)
    elif out.shape != (*y.shape, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be C-contiguous uint8 {(*y.shape, 3)}, got {out.dtype} {out.shape}"
        )
    a, b = siting_weights(fmt.siting)
    coefficients = np.array(fmt.fixed_point(), np.int64)
    _convert(y, u, v, out, sub_y, sub_x, a, b, coefficients)  # compiled on first use
    return out


def nv12_planes(nv12: Any) -> tuple[Any, Any, Any]:
    """Y, U, V views (no copy) of one NV12 frame stored as (H * 3 // 2, W)."""
    if len(nv12.shape) != 2 or nv12.shape[0] % 3 or nv12.shape[1] % 2:
        raise ValueError(
            f"NV12 frame must be (H * 3 // 2, W) with even H and W, got {tuple(nv12.shape)}"
        )
    height = nv12.shape[0] * 2 // 3
    chroma = nv12[height:]
    return nv12[:height], chroma[:, 0::2], chroma[:, 1::2]


def nv12_to_rgb(
    nv12: np.ndarray, fmt: YuvFormat = YuvFormat(), out: np.ndarray | None = None
) -> np.ndarray:
    """RGB uint8 (H, W, 3) from one 8-bit NV12 frame (H * 3 // 2, W) uint8 (NVDEC's and
    FFmpeg's layout: luma rows, then interleaved U, V at half resolution)."""
    if nv12.dtype != np.uint8:
        raise ValueError(f"NV12 frame must be uint8, got {nv12.dtype}")
    return yuv_to_rgb(*nv12_planes(nv12), fmt, out=out)
