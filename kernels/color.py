"""NV12 to RGB, bit-exact with what PyAV 18 (FFmpeg 8 swscale) gives for an NV12 frame.

NVDEC hands frames over as NV12, the CPU path decodes with PyAV; both must give the same
RGB so the backends agree. Measured on `nggyup.mp4` and on synthetic frames, swscale's
NV12 -> rgb24 conversion (BT.601, limited range) is:

- chroma upsampled bilinearly: vertically at 1/4, 3/4 (chroma sited between luma rows),
  horizontally at 3/4, 1/4 for left-sited chroma (what H.264 streams carry) or by pairs
  for centre-sited chroma (frames whose chroma location is unspecified); one rounding;
- each chroma term turned into an offset in luma-table steps with integer floors
  (swscale's table lookup), then one table mapping the luma index to RGB.

The CUDA twin (`ghost_engine.kernels.cuda.color`) uses the same integer maths per pixel.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# swscale's fixed-point constants for BT.601 limited range, derived as swscale does:
# inverse-matrix entries (x 65536) divided by the luma gain with C (truncating) division.
_CY = 65536 * 255 // 219


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


INC_RV = _c_div((104597 << 16) + 0x8000, _CY)
INC_BU = _c_div((132201 << 16) + 0x8000, _CY)
INC_GU = _c_div((-25675 << 16) + 0x8000, _CY)
INC_GV = _c_div((-53279 << 16) + 0x8000, _CY)
LUMA_GAIN = _CY
# Measured: swscale 9.5's table sits 57/32 luma steps below the textbook (Y - 16) * 255/219.
LUMA_BIAS = -16 * _CY + 0x8000 - (57 << 16) // 32

ChromaSiting = Literal["left", "center"]


def chroma_weight(siting: ChromaSiting) -> int:
    """Weight (of 4) of the next chroma column: 1 for left-sited chroma, 0 for centre."""
    if siting == "left":
        return 1
    if siting == "center":
        return 0
    raise ValueError(f"chroma siting must be 'left' or 'center', got {siting!r}")


def _upsample(c: np.ndarray, height: int, hw: int) -> np.ndarray:
    h, w = c.shape
    c = c.astype(np.int32)
    nxt = np.minimum(np.arange(w) + 1, w - 1)
    horiz = (4 - hw) * c + hw * c[:, nxt]
    rows = np.arange(height)
    k = rows // 2
    other = np.clip(np.where(rows % 2 == 0, k - 1, k + 1), 0, h - 1)
    out = (3 * horiz[k] + horiz[other] + 8) >> 4
    return np.repeat(out, 2, axis=1)


def _term(c: np.ndarray, inc: int) -> np.ndarray:
    return ((c.astype(np.int64) * inc) >> 16) - (inc >> 9)


def luma_table(index: np.ndarray) -> np.ndarray:
    """RGB value for a (chroma-shifted) luma index, clipped to 0..255."""
    return np.clip((index.astype(np.int64) * LUMA_GAIN + LUMA_BIAS) >> 16, 0, 255)


def nv12_to_rgb(nv12: np.ndarray, *, chroma_siting: ChromaSiting = "left") -> np.ndarray:
    """RGB uint8 (H, W, 3) from one NV12 frame stored as (H * 3 // 2, W) uint8.

    Rows 0..H-1 are luma, the rest interleaved U, V at half resolution (NVDEC's and
    FFmpeg's layout). H and W must be even.
    """
    if nv12.ndim != 2 or nv12.dtype != np.uint8 or nv12.shape[0] % 3 or nv12.shape[1] % 2:
        raise ValueError(
            f"NV12 frame must be uint8 (H * 3 // 2, W) with even H and W, got "
            f"{nv12.dtype} {nv12.shape}"
        )
    height = nv12.shape[0] * 2 // 3
    width = nv12.shape[1]
    hw = chroma_weight(chroma_siting)
    y = nv12[:height].astype(np.int64)
    uv = nv12[height:].reshape(height // 2, width // 2, 2)
    u = _upsample(uv[..., 0], height, hw)
    v = _upsample(uv[..., 1], height, hw)
    r = luma_table(y + _term(v, INC_RV))
    g = luma_table(y + _term(u, INC_GU) + _term(v, INC_GV))
    b = luma_table(y + _term(u, INC_BU))
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def rgb_to_nv12(rgb: np.ndarray) -> np.ndarray:
    """NV12 (H * 3 // 2, W) from RGB uint8 via OpenCV's BT.601 I420, for tests and benches."""
    import cv2

    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    u = i420[h : h + h // 4].reshape(h // 2, w // 2)
    v = i420[h + h // 4 :].reshape(h // 2, w // 2)
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = i420[:h]
    out[h:] = np.stack([u, v], axis=-1).reshape(h // 2, w)
    return out


# BT.601 limited range in 8-bit fixed point (the encoder side; Y 16..235, U/V 16..240).
Y_COEFFS = (66, 129, 25)
U_COEFFS = (-38, -74, 112)
V_COEFFS = (112, -94, -18)


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """I420 (H * 3 // 2, W): Y, then U and V planes of (H/2, W/2) each, from RGB uint8.

    Luma per pixel, chroma from each 2x2 block's rounded mean RGB; integer maths the
    CUDA twin repeats exactly. Even H and W only (4:2:0 needs them).
    """
    h, w = rgb.shape[:2]
    if rgb.ndim != 3 or rgb.shape[2] != 3 or h % 2 or w % 2:
        raise ValueError(f"need RGB (H, W, 3) with even H and W, got {rgb.shape}")
    x = rgb.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = ((Y_COEFFS[0] * r + Y_COEFFS[1] * g + Y_COEFFS[2] * b + 128) >> 8) + 16
    block = (x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2] + 2) >> 2
    br, bg, bb = block[..., 0], block[..., 1], block[..., 2]
    u = ((U_COEFFS[0] * br + U_COEFFS[1] * bg + U_COEFFS[2] * bb + 128) >> 8) + 128
    v = ((V_COEFFS[0] * br + V_COEFFS[1] * bg + V_COEFFS[2] * bb + 128) >> 8) + 128
    quarter = h * w // 4
    planes = out[h:].reshape(-1)
    planes[:quarter] = u.reshape(-1)
    planes[quarter:] = v.reshape(-1)
    return out
