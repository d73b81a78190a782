"""The swap stage's pixel work on host (numpy) frames: the CPU backend.

`SwapStage` decides what happens (which faces, which source, which mask parameters);
an image-ops object does it to the pixels. This one works on numpy frames with OpenCV;
`ghost_engine.backend.cuda.device_ops.DeviceImageOps` does the same on device frames, so both
backends share every decision and differ only in where the pixels are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ghost_engine.face.geometry import CROP_SIZE, estimate_norm
from ghost_engine.face.mask import LandmarkLayout, MaskParams, face_mask
from ghost_engine.face.paste import color_match, paste_back
from ghost_engine.types import Face

THUMB_SIZE = (64, 36)  # (width, height) of the grey thumbnails that detect scene cuts


@dataclass
class Crops:
    """Aligned face crops (N, size, size, 3) uint8 where the frames are, and their
    frame -> crop matrices (N, 2, 3) float64 on the host."""

    images: Any
    matrices: np.ndarray


class HostImageOps:
    """Pixel work on numpy frames (see module doc)."""

    name = "cpu"

    def detect(self, detector: Any, frames: Sequence[Any]) -> list[list[Face]]:
        return detector([f.image for f in frames])

    def thumbnail(self, frame: Any) -> np.ndarray:
        """Grey (36, 64) float32 thumbnail for scene-cut detection."""
        thumb = cv2.resize(frame.image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        return thumb.mean(axis=2, dtype=np.float32)

    def crops(self, jobs: Sequence[tuple[Any, np.ndarray]], size: int = CROP_SIZE) -> Crops:
        """GHOST's aligned crop of each (frame, 5 points), with its matrix."""
        images = np.empty((len(jobs), size, size, 3), np.uint8)
        matrices = np.empty((len(jobs), 2, 3))
        for i, (frame, kps) in enumerate(jobs):
            matrices[i], _ = estimate_norm(kps, size)
            images[i] = cv2.warpAffine(frame.image, matrices[i], (size, size), borderValue=0.0)
        return Crops(images, matrices)

    def to_host(self, images: Any) -> np.ndarray:
        return images

    def swaps(self, generator: Any, enhancer: Any, crops: Any, z: Any, timed: Any) -> Any:
        """Generated (and, with an enhancer, renovated) faces for the crops."""
        if enhancer is None:
            with timed("generator"):
                return generator(crops, z)
        with timed("generator"):
            batches = generator.generate(crops, z)
        with timed("enhance"):
            batches = [enhancer(b) for b in batches]
        with timed("generator"):
            return generator.to_pixels(batches)

    def mask(self, landmarks: np.ndarray, params: MaskParams, layout: LandmarkLayout) -> Any:
        """The blend mask, float32 (224, 224) in [0, 1]."""
        return face_mask(landmarks, params, layout)

    def host_mask(self, mask: Any) -> np.ndarray:
        return mask

    def color_match(self, swap: Any, target: Any, mask: Any) -> Any:
        return color_match(swap, target, mask)

    def paste(self, frame: Any, swap: Any, mask: Any, matrix: np.ndarray) -> None:
        paste_back(frame.image, swap, mask, matrix)

    def draw(self, frame: Any, painter: Any) -> None:
        """Let `painter(image)` draw on the frame's pixels (the debug overlay)."""
        painter(frame.image)
