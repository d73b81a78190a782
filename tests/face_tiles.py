"""Square face tiles cut from the shared photos, for clips built in tests."""

from __future__ import annotations

import cv2
import numpy as np


def tile(photo: np.ndarray, size: int) -> np.ndarray:
    """The photo's centred square, resized to `size` x `size`."""
    h, w = photo.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(
        photo[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA
    )
