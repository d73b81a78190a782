"""Typed data passed between pipeline stages.

Frames are RGB uint8 (H, W, 3) throughout the engine; conversion to and from other
layouts happens only at the edges (decoders, encoders, image files). Each dataclass checks
its own shapes and prints shapes, not contents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

import numpy as np


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


@dataclass
class Frame:
    """One decoded video frame (or a still image, index 0), RGB uint8 (H, W, 3).

    `pts` counts `time_base` units, so variable frame rate survives the round trip;
    `pts_seconds` is the same instant in seconds.
    """

    index: int
    image: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None
    # Per-frame results that later stages add (faces found, timings); free-form by design
    # so a stage can annotate without every other stage knowing its type.
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        img = self.image
        _check(
            isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3,
            f"Frame.image must be (H, W, 3), got {getattr(img, 'shape', type(img))}",
        )
        _check(img.dtype == np.uint8, f"Frame.image must be uint8, got {img.dtype}")

    @property
    def pts_seconds(self) -> float | None:
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def __repr__(self) -> str:
        return (
            f"Frame(index={self.index}, image={self.image.shape}, pts={self.pts}, "
            f"time_base={self.time_base})"
        )


@dataclass
class PlanarFrame:
    """A frame already in 8-bit 4:2:0 for the encoder: I420 (H * 3 // 2, W), the Y plane,
    then U and V (H/2 x W/2 each). The CUDA backend converts on the GPU, so half the bytes
    cross to the host and the encoder thread converts nothing. Same index/pts/meta as
    `Frame`."""

    index: int
    i420: np.ndarray
    pts: int | None = None
    time_base: Fraction | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.i420
        _check(
            isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] % 3 == 0,
            f"PlanarFrame.i420 must be (H * 3 // 2, W), got {getattr(a, 'shape', type(a))}",
        )
        _check(a.dtype == np.uint8, f"PlanarFrame.i420 must be uint8, got {a.dtype}")

    @property
    def height(self) -> int:
        return int(self.i420.shape[0]) * 2 // 3

    @property
    def width(self) -> int:
        return int(self.i420.shape[1])


@dataclass
class Face:
    """One detected face in one frame: box (x1, y1, x2, y2), score, 5 points (x, y).

    The five points are, in order: left eye, right eye (as seen in the image), nose tip,
    left and right mouth corners, as SCRFD and insightface order them.
    """

    box: np.ndarray
    score: float
    kps: np.ndarray
    track_id: int | None = None
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.kps = np.asarray(self.kps, dtype=np.float32)
        _check(self.kps.shape == (5, 2), f"Face.kps must be (5, 2), got {self.kps.shape}")
        self.score = float(self.score)

    def __repr__(self) -> str:
        box = ", ".join(f"{v:.1f}" for v in self.box)
        return f"Face(box=[{box}], score={self.score:.3f}, track_id={self.track_id})"


@dataclass
class AlignedCrop:
    """A face cropped to the model's square input and the 2x3 matrix frame -> crop.

    The inverse of `matrix` takes the crop (and anything made from it: the swap, its
    mask) back into the frame.
    """

    image: np.ndarray
    matrix: np.ndarray
    template: int = 2

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64)
        _check(self.matrix.shape == (2, 3), f"matrix must be (2, 3), got {self.matrix.shape}")
        _check(
            self.image.ndim == 3 and self.image.shape[0] == self.image.shape[1],
            f"crop must be square (S, S, C), got {self.image.shape}",
        )

    @property
    def size(self) -> int:
        return int(self.image.shape[0])

    def __repr__(self) -> str:
        return f"AlignedCrop(image={self.image.shape}, template={self.template})"


class StreamStage(Protocol):
    """A pipeline step over frames in order.

    `process` takes the next frames (in index order) and returns the frames it has
    finished, in order; a stage that needs look-ahead (temporal smoothing) may hold a
    bounded number back. `flush` returns everything still held at the end of the stream.
    """

    name: str

    def process(self, frames: list[Frame]) -> list[Frame]: ...

    def flush(self) -> list[Frame]: ...
