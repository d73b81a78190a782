"""`--debug-overlay`: boxes, points and mask outlines drawn on the swapped frames.

A stage of its own after synthesis, reading what synthesis recorded in
`meta["faces"]`, so the face stages carry no drawing code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import cv2
import numpy as np

from ghost_engine.interfaces import ImageOps, PassStage
from ghost_engine.types import Frame


class OverlayStage(PassStage):
    """Implements `StreamStage` on frames: draws each frame's faces in place."""

    name = "debug-overlay"

    def __init__(self, ops: ImageOps) -> None:
        self.ops = ops

    def process(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            faces = frame.meta.get("faces", [])
            blends = [
                {"matrix": f["matrix"], "mask": self.ops.host_mask(f["mask"])}
                for f in faces
                if "mask" in f
            ]
            self.ops.draw(frame, partial(draw_overlay, faces=faces, blends=blends))
        return frames


def mask_outline(mask: np.ndarray, matrix: np.ndarray) -> list[np.ndarray]:
    """The mask's half-strength contour, in frame coordinates."""
    binary = (np.asarray(mask) >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    return [cv2.transform(c.astype(np.float64), inverse).round().astype(np.int32) for c in contours]


def draw_overlay(image: np.ndarray, faces: Sequence[dict], blends: Sequence[dict] = ()) -> None:
    """Boxes with track and score (green), the 5 points (red), mask outlines (yellow);
    `faces` are `meta["faces"]` entries (box, score, kps, track_id)."""
    for blend in blends:
        cv2.polylines(image, mask_outline(blend["mask"], blend["matrix"]), True, (255, 255, 0), 1)
    for face in faces:
        x1, y1, x2, y2 = (int(v) for v in face["box"])
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        for x, y in face["kps"]:
            cv2.circle(image, (int(x), int(y)), 3, (255, 0, 0), -1)
        label = f"{face['track_id']}:{face['score']:.2f}"
        cv2.putText(
            image, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1
        )
