"""Typed data passed between pipeline stages.

Frames are RGB uint8 (H, W, 3) throughout the engine; conversion to and from other
layouts happens only at the edges (decoders, encoders, image files). Each dataclass checks
its own shapes and prints shapes, not contents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


# frame.meta key: the output segment a frame belongs to (set by video jobs, which cut
# batches and take stage states at segment boundaries)
SEGMENT_KEY = "segment"

RGB = "rgb"  # (H, W, 3) uint8
I420 = "i420"  # (H * 3 // 2, W) uint8: the Y plane, then U and V (H/2 x W/2 each)
LAYOUTS = (RGB, I420)


@dataclass
class Frame:
    """One video frame (or a still image, index 0), wherever its pixels live.

    `image` is RGB uint8 (H, W, 3) by default; `layout="i420"` marks 8-bit 4:2:0 for the
    encoder (the CUDA backend converts on the GPU, so half the bytes cross to the host).
    `on_device` says the pixels are a device array (CuPy, or numpy when the CUDA backend
    is emulated on a CPU) rather than host memory. `pts` counts `time_base` units, so
    variable frame rate survives the round trip; `pts_seconds` is the same instant.

    Pixels in a pooled buffer carry a `releaser`: `release()` hands the buffer back once
    (after which the pixels must not be used); for other frames it does nothing. This is
    the one way buffers go back, on the host and on the device.
    """

    index: int
    image: Any
    pts: int | None = None
    time_base: Fraction | None = None
    # Per-frame results that later stages add (faces found, timings); free-form by design
    # so a stage can annotate without every other stage knowing its type.
    meta: dict = field(default_factory=dict)
    layout: str = RGB
    on_device: bool = False
    releaser: Callable[[Any], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        img = self.image
        shape = getattr(img, "shape", None)
        _check(
            self.layout in LAYOUTS, f"Frame.layout must be one of {LAYOUTS}, got {self.layout!r}"
        )
        if self.layout == RGB:
            _check(
                shape is not None and len(shape) == 3 and shape[2] == 3,
                f"Frame.image must be (H, W, 3), got {shape if shape is not None else type(img)}",
            )
        else:
            _check(
                shape is not None and len(shape) == 2 and shape[0] % 3 == 0,
                f"an i420 Frame.image must be (H * 3 // 2, W), got {shape}",
            )
        _check(
            np.dtype(getattr(img, "dtype", None)) == np.uint8,
            f"Frame.image must be uint8, got {getattr(img, 'dtype', None)}",
        )
        _check(
            self.on_device or isinstance(img, np.ndarray),
            f"a host Frame.image must be a numpy array, got {type(img).__name__}",
        )

    @property
    def pts_seconds(self) -> float | None:
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)

    @property
    def height(self) -> int:
        rows = int(self.image.shape[0])
        return rows * 2 // 3 if self.layout == I420 else rows

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def release(self) -> None:
        """Give a pooled buffer back (once); a no-op for frames that own their pixels."""
        if self.releaser is not None:
            releaser, self.releaser = self.releaser, None
            releaser(self.image)

    def __repr__(self) -> str:
        where = "device" if self.on_device else "host"
        return (
            f"Frame(index={self.index}, image={tuple(self.image.shape)} {self.layout} on "
            f"{where}, pts={self.pts}, time_base={self.time_base})"
        )


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
