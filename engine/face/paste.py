"""Putting the swap back: Lab colour match inside the mask, inverse warp and blend.

The blend touches only the face's bounding region of the frame: swap and mask are warped
straight into that region (one `warpAffine` each with the crop matrix shifted to the
region's corner), and the float arithmetic covers just those pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def color_match(swap: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The swap with its Lab mean and standard deviation inside `mask` moved to the
    target's (both 224 RGB uint8 crops; `mask` weights in [0, 1])."""
    w = np.asarray(mask, dtype=np.float32)[..., None]
    total = float(w.sum())
    if total < 1.0:
        return swap
    s_lab = cv2.cvtColor(swap, cv2.COLOR_RGB2LAB).astype(np.float32)
    t_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean = (s_lab * w).sum((0, 1)) / total
    t_mean = (t_lab * w).sum((0, 1)) / total
    s_std = np.sqrt(((s_lab - s_mean) ** 2 * w).sum((0, 1)) / total)
    t_std = np.sqrt(((t_lab - t_mean) ** 2 * w).sum((0, 1)) / total)
    gain = t_std / np.maximum(s_std, 1e-3)
    out = (s_lab - s_mean) * gain + t_mean
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_LAB2RGB)


def face_region(
    matrix: np.ndarray, crop_size: int, frame_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the frame pixels the crop covers, clipped to the frame."""
    inv = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    s = float(crop_size)
    corners = np.array([[0, 0], [s, 0], [0, s], [s, s]]) @ inv[:, :2].T + inv[:, 2]
    h, w = frame_shape[:2]
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - 1, 0, w))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - 1, 0, h))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + 2, 0, w))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + 2, 0, h))
    return x0, y0, x1, y1


def paste_back(frame: np.ndarray, swap: np.ndarray, mask: np.ndarray, matrix: np.ndarray) -> None:
    """Blend `swap` (S, S, 3) uint8 into `frame` (H, W, 3) uint8 in place through the
    inverse of `matrix` (frame -> crop): `mask*swap + (1-mask)*frame`, rounded."""
    x0, y0, x1, y1 = face_region(matrix, swap.shape[0], frame.shape)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    swap_roi = cv2.warpAffine(swap, m, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)
    mask_roi = cv2.warpAffine(
        np.asarray(mask, dtype=np.float32), m, size, flags=flags, borderMode=cv2.BORDER_CONSTANT
    )
    roi = frame[y0:y1, x0:x1]
    base = roi.astype(np.float32)
    blended = base + mask_roi[..., None] * (swap_roi.astype(np.float32) - base)
    roi[...] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
