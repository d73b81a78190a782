"""Gaussian blur of a mask matching `cv2.GaussianBlur(mask, (0, 0), sigmaX, sigmaY)`.

OpenCV's kernel size rule for sigma-only calls is `round(sigma * 3 * 2 + 1) | 1` for uint8
(4 instead of 3 for float), the taps come from `cv2.getGaussianKernel`, and the border is
reflected without repeating the edge pixel (BORDER_REFLECT_101).
"""

from __future__ import annotations

import cv2
import numpy as np


def gaussian_ksize(sigma: float, dtype: np.dtype | type = np.uint8) -> int:
    """Odd kernel size OpenCV picks for `sigma` when asked for size 0."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    factor = 3 if np.dtype(dtype) == np.uint8 else 4
    return int(np.rint(sigma * factor * 2 + 1)) | 1


def gaussian_taps(sigma: float, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """float32 taps of OpenCV's 1-D Gaussian for `sigma` (sums to 1)."""
    k = gaussian_ksize(sigma, dtype)
    return cv2.getGaussianKernel(k, sigma, ktype=cv2.CV_64F).ravel().astype(np.float32)


def reflect101(i: int, n: int) -> int:
    """Index `i` folded into 0..n-1 by BORDER_REFLECT_101 (for n > 1)."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * n - 2 - i
    return i


def gaussian_blur(mask: np.ndarray, sigma_x: float, sigma_y: float) -> np.ndarray:
    """The CPU kernel: OpenCV's blur with the kernel size derived from the sigmas."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got {mask.shape}")
    return cv2.GaussianBlur(mask, (0, 0), sigmaX=float(sigma_x), sigmaY=float(sigma_y))
