"""The SCRFD detector's input: resize keeping aspect, pad bottom/right, normalise, NCHW.

Matches insightface's SCRFD preprocessing: the frame is resized (bilinear, OpenCV's
INTER_LINEAR) into the top-left of a zero uint8 canvas, then `(x - 127.5) / 128`, so
the padding reads -127.5/128 after normalisation, exactly as the official code feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MEAN = 127.5
STD = 128.0


@dataclass(frozen=True)
class LetterboxGeometry:
    """Where a (height, width) frame lands in the square input, and the scale back."""

    new_width: int
    new_height: int
    scale: float  # input pixels per frame pixel: divide detections by it


def letterbox_geometry(height: int, width: int, size: int = 640) -> LetterboxGeometry:
    """insightface's rule: the longer side becomes `size`, the other is truncated."""
    if height <= 0 or width <= 0 or size <= 0:
        raise ValueError(f"sizes must be positive, got frame {height}x{width}, input {size}")
    if height / width > 1.0:
        new_h = size
        new_w = int(new_h / (height / width))
    else:
        new_w = size
        new_h = int(new_w * (height / width))
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    return LetterboxGeometry(new_w, new_h, new_h / height)


def letterbox(frames: np.ndarray, size: int = 640) -> tuple[np.ndarray, LetterboxGeometry]:
    """(N, 3, size, size) float32 from RGB uint8 frames (N, H, W, 3) of one size."""
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    geo = letterbox_geometry(h, w, size)
    canvas = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        canvas[i, : geo.new_height, : geo.new_width] = cv2.resize(
            frames[i], (geo.new_width, geo.new_height), interpolation=cv2.INTER_LINEAR
        )
    blob = (canvas.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(blob.transpose(0, 3, 1, 2)), geo
