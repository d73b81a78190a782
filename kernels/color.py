"""RGB to YUV for the encoder side, and `nv12_to_rgb` for the kernel sets.

YUV to RGB has one definition, `ghost_engine.kernels.colour` (matrix, range, chroma
siting); `nv12_to_rgb` here is its BT.601 limited-range case, the colours of frames whose
stream says nothing about them, for callers that only have an NV12 frame. The CUDA twins
are in `ghost_engine.kernels.cuda.color`.
"""

from __future__ import annotations

import numpy as np

from ghost_engine.kernels import colour
from ghost_engine.kernels.colour import ChromaSiting


def nv12_to_rgb(
    nv12: np.ndarray, *, chroma_siting: ChromaSiting = "left", out: np.ndarray | None = None
) -> np.ndarray:
    """RGB uint8 (H, W, 3) from one NV12 frame stored as (H * 3 // 2, W) uint8, read as
    BT.601 limited range (`colour.nv12_to_rgb` for any other)."""
    return colour.nv12_to_rgb(nv12, colour.YuvFormat(siting=chroma_siting), out=out)


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
