"""Batched affine crops: many faces, each with its own 2x3 matrix, from a batch of frames.

The reference is `cv2.warpAffine(..., flags=INTER_LINEAR, borderValue=0)` with the
matrix mapping frame to crop, as insightface's `norm_crop` uses it.
"""

from __future__ import annotations

import cv2
import numpy as np


def check_batch(
    frames: np.ndarray, matrices: np.ndarray, frame_index: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames as (F, H, W, C), matrices as (N, 2, 3) float64 and indices (N,) int32."""
    frames_4d = frames[None] if frames.ndim == 3 else frames
    if frames_4d.ndim != 4:
        raise ValueError(f"frames must be (H, W, C) or (F, H, W, C), got {frames.shape}")
    mats = np.asarray(matrices, dtype=np.float64)
    if mats.ndim == 2:
        mats = mats[None]
    if mats.shape[1:] != (2, 3):
        raise ValueError(f"matrices must be (N, 2, 3), got {mats.shape}")
    if frame_index is None:
        idx = np.zeros(len(mats), np.int32)
    else:
        idx = np.asarray(frame_index, dtype=np.int32).reshape(-1)
    if len(idx) != len(mats) or (len(idx) and (idx.min() < 0 or idx.max() >= len(frames_4d))):
        raise ValueError(
            f"frame_index must give one frame in 0..{len(frames_4d) - 1} per matrix "
            f"({len(mats)}), got {idx.tolist()}"
        )
    return frames_4d, mats, idx


def warp_affine_batch(
    frames: np.ndarray,
    matrices: np.ndarray,
    size: int = 224,
    frame_index: np.ndarray | None = None,
) -> np.ndarray:
    """(N, size, size, C) crops; crop i is frame `frame_index[i]` warped by `matrices[i]`."""
    frames_4d, mats, idx = check_batch(frames, matrices, frame_index)
    out = np.empty((len(mats), size, size, frames_4d.shape[3]), frames_4d.dtype)
    for i, (m, f) in enumerate(zip(mats, idx, strict=True)):
        crop = cv2.warpAffine(frames_4d[f], m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        out[i] = crop.reshape(out.shape[1:])
    return out
