"""Paste a swapped face back: inverse-warp the swap and its mask, blend into the frame.

As the official `get_final_image`: the swap is warped back with BORDER_REPLICATE (and
rounded to uint8 by the warp), the mask (float, 0..1) with border 0, then
`mask * swap + (1 - mask) * frame`, truncated to uint8. Only the face's bounding region
is computed and written; outside it the warped mask is 0 and the frame is unchanged.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def paste_region(
    matrix: np.ndarray, crop_size: int, height: int, width: int
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive, of frame pixels the crop can reach, clipped."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    s = float(crop_size)
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float64)
    pts = corners @ inv.T
    x0 = max(int(math.floor(pts[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(pts[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + 2, width)
    y1 = min(int(math.ceil(pts[:, 1].max())) + 2, height)
    return x0, y0, max(x1, x0), max(y1, y0)


def mask_scale(mask: np.ndarray) -> float:
    """Factor taking mask values to 0..1: 1/255 for uint8 masks, 1 for float ones."""
    if mask.dtype == np.uint8:
        return 1.0 / 255.0
    if mask.dtype in (np.float32, np.float64):
        return 1.0
    raise ValueError(f"mask must be uint8 (0..255) or float (0..1), got {mask.dtype}")


def blend_inverse_warp(
    frame: np.ndarray, swap: np.ndarray, mask: np.ndarray, matrix: np.ndarray
) -> np.ndarray:
    """Blend `swap` (S, S, 3) through `mask` (S, S) into `frame` (H, W, 3) in place.

    `matrix` is the crop's frame -> crop 2x3 matrix. Returns `frame`.
    """
    s = swap.shape[0]
    if swap.shape != (s, s, 3) or mask.shape != (s, s) or frame.ndim != 3:
        raise ValueError(
            f"need frame (H, W, 3), swap (S, S, 3), mask (S, S); got {frame.shape}, "
            f"{swap.shape}, {mask.shape}"
        )
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = paste_region(matrix, s, h, w)
    if x1 <= x0 or y1 <= y0:
        return frame
    inv = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    inv[:, 2] -= (x0, y0)  # warp straight into the region
    size = (x1 - x0, y1 - y0)
    swap_t = cv2.warpAffine(
        swap, inv, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    m = mask.astype(np.float32) * np.float32(mask_scale(mask))
    mask_t = cv2.warpAffine(m, inv, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    out = mask_t * swap_t.astype(np.float32) + (1.0 - mask_t) * region
    frame[y0:y1, x0:x1] = np.clip(out, 0, 255).astype(np.uint8)
    return frame
