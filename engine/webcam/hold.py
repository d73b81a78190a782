"""Hold the last good swap for a few frames when the face is lost.

A detector that misses one frame would otherwise flash the original face. After each
frame with a swap, the swapped face region and its mask (in frame coordinates) are kept;
on a following frame without a swap they are blended back in place, for at most
`max_frames` frames in a row, then the output falls back to the camera image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ghost_engine.face.paste import face_region
from ghost_engine.types import Frame


@dataclass
class HeldFace:
    """A swapped face region (x0, y0, x1, y1) of a frame: pixels and blend weights."""

    region: tuple[int, int, int, int]
    pixels: np.ndarray  # (h, w, 3) uint8, the swapped output
    weights: np.ndarray  # (h, w) float32 in [0, 1], the mask warped into the frame


def hold_face(image: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> HeldFace:
    """Keep the region of `image` a swap with crop `matrix` and 224 `mask` covered."""
    x0, y0, x1, y1 = face_region(matrix, mask.shape[0], image.shape)
    m = np.asarray(matrix, dtype=np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    weights = cv2.warpAffine(
        np.asarray(mask, dtype=np.float32),
        m,
        (max(x1 - x0, 1), max(y1 - y0, 1)),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )[: y1 - y0, : x1 - x0]
    return HeldFace((x0, y0, x1, y1), image[y0:y1, x0:x1].copy(), weights)


def paste_held(image: np.ndarray, held: HeldFace) -> None:
    """Blend a held face into `image` in place: `w*held + (1-w)*image`, rounded."""
    x0, y0, x1, y1 = held.region
    roi = image[y0:y1, x0:x1]
    base = roi.astype(np.float32)
    out = base + held.weights[..., None] * (held.pixels.astype(np.float32) - base)
    roi[...] = np.clip(np.rint(out), 0, 255).astype(np.uint8)


class SwapHold:
    """Per stream: remembers the last swapped faces and fills short gaps with them."""

    def __init__(self, max_frames: int = 5) -> None:
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self.max_frames = max_frames
        self._held: list[HeldFace] = []
        self._shape: tuple[int, ...] | None = None
        self._age = 0

    def reset(self) -> None:
        self._held = []
        self._age = 0

    def update(self, frame: Frame) -> bool:
        """Remember `frame`'s swaps, or paste the held ones into it when it has none.
        Returns True when held faces were pasted (also noted as `meta["held"]`)."""
        swapped = [f for f in frame.meta.get("faces", ()) if "matrix" in f and "mask" in f]
        if swapped:
            self._held = [hold_face(frame.image, f["matrix"], f["mask"]) for f in swapped]
            self._shape = frame.image.shape
            self._age = 0
            frame.meta["held"] = False
            return False
        usable = self._held and self._shape == frame.image.shape
        if not usable or self._age >= self.max_frames:
            self.reset()
            frame.meta["held"] = False
            return False
        for held in self._held:
            paste_held(frame.image, held)
        self._age += 1
        frame.meta["held"] = True
        return True
