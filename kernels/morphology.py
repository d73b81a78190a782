"""Erode (or dilate) a mask with a square kernel, and zero its border, as GHOST's mask does.

A positive size erodes, a negative one dilates by its magnitude (the official
`erode_and_blur` convention). OpenCV anchors an even kernel at size // 2, so the window
spans offsets -(size // 2) .. (size - 1 - size // 2); pixels outside the image never win.
"""

from __future__ import annotations

import cv2
import numpy as np


def window(size: int) -> tuple[int, int]:
    """(before, after) offsets of OpenCV's square window of `size` with default anchor."""
    k = abs(int(size))
    return k // 2, k - 1 - k // 2


def erode_dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """uint8 mask eroded by a size x size square (size > 0), dilated (< 0), or copied (0)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8 (H, W), got {mask.dtype} {mask.shape}")
    if size == 0:
        return mask.copy()
    kernel = np.ones((abs(size), abs(size)), np.uint8)
    op = cv2.erode if size > 0 else cv2.dilate
    return op(mask, kernel, iterations=1)


def zero_border(mask: np.ndarray, width: int) -> np.ndarray:
    """Copy of `mask` with `width` pixels zeroed along every edge (the fade to the border)."""
    out = mask.copy()
    if width > 0:
        out[:width] = 0
        out[-width:] = 0
        out[:, :width] = 0
        out[:, -width:] = 0
    return out
