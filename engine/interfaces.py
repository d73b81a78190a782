"""The interfaces the pipeline's parts meet at, declared once as `typing.Protocol`s.

A stage, a model or a backend's image operations is anything with these methods: the
face stages call models only through them, the pipeline calls stages only through
`StreamStage`, and tests pass their own small objects that fit. Nothing here imports a
runtime, so every package may import this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ghost_engine.types import Face, Frame

if TYPE_CHECKING:
    from ghost_engine.face.mask import LandmarkLayout, MaskParams


class StreamStage(Protocol):
    """A pipeline step over items in order (frames, or the analysis stage's records).

    `process` takes the next items (in index order) and returns those it has finished,
    in order; a stage that needs look-ahead (temporal smoothing) may hold a bounded
    number back. `flush` returns everything still held at the end of the stream.
    `timings` gives seconds per sub-step so far (empty when it keeps none); `close`
    releases what the stage holds (models, sessions, buffers).
    """

    name: str

    def process(self, frames: list[Any]) -> list[Any]: ...

    def flush(self) -> list[Any]: ...

    def timings(self) -> dict[str, float]: ...

    def close(self) -> None: ...


@runtime_checkable
class StatefulStage(StreamStage, Protocol):
    """A stage whose output depends on frames before the current one (tracks, matching,
    smoothing, frozen mask parameters). `state()` is that dependence as plain data
    (dicts, lists, numbers, strings, numpy arrays), taken between two `process` calls;
    `restore(state)` makes a fresh stage continue exactly where that one was."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class Detector(Protocol):
    """Host RGB images -> the faces in each (box, score, five points)."""

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


@runtime_checkable
class BlobDetector(Protocol):
    """A detector that can also take its network input ready-made (SCRFD's letterbox,
    built on the device by the CUDA backend): `detect_blob(batch, scales)`.
    `accepts_device_blobs` says whether the batch may stay on the device."""

    input_side: int
    accepts_device_blobs: bool

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...

    def detect_blob(self, batch: Any, scales: Sequence[float]) -> list[list[Face]]: ...


@runtime_checkable
class DeviceFrameDetector(Protocol):
    """A detector that reads device frames itself (replayed detections in benchmarks);
    `reads_device_frames` is True."""

    reads_device_frames: bool

    def __call__(self, frames: Sequence[Frame]) -> list[list[Face]]: ...


class Recognizer(Protocol):
    """Aligned 224 crops and their five points -> identity embeddings; and how alike
    two sets of embeddings are (rows of `a` against rows of `b`)."""

    def embed(self, crops: np.ndarray, kps: np.ndarray) -> np.ndarray: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


class Generator(Protocol):
    """224 target crops and identity rows -> swapped 224 crops (uint8, same place as the
    crops); `generate`/`to_pixels` split that at the network output for an enhancer."""

    def __call__(self, crops: Any, z_id: Any, /) -> Any: ...

    def generate(self, crops: Any, z_id: Any, /) -> list[Any]: ...

    def to_pixels(self, batches: list[Any]) -> Any: ...


class Enhancer(Protocol):
    """A batch of generated faces in [-1, 1] -> renovated faces, same shape."""

    def __call__(self, faces: Any, /) -> Any: ...


class LandmarkModel(Protocol):
    """224 RGB crops (N, 224, 224, 3) -> dense landmarks (N, P, 2) in crop pixels;
    `layout` names the point layout the mask rules read ("106" or "68")."""

    layout: str

    def __call__(self, crops: np.ndarray) -> np.ndarray: ...


class Crops(Protocol):
    """Aligned crops where the frames are, and their frame -> crop matrices on the host."""

    images: Any
    matrices: np.ndarray


class ImageOps(Protocol):
    """A backend's pixel work for the face stages. The stages decide what happens
    (which faces, which source, which mask parameters); this object does it to the
    pixels where they live (host numpy frames, or device frames)."""

    name: str

    def detect(self, detector: Detector, frames: Sequence[Frame]) -> list[list[Face]]: ...

    def thumbnail(self, frame: Frame) -> np.ndarray: ...

    def crops(self, jobs: Sequence[tuple[Frame, np.ndarray]], size: int = ...) -> Crops: ...

    def to_host(self, images: Any) -> np.ndarray: ...

    def swaps(
        self,
        generator: Generator,
        enhancer: Enhancer | None,
        crops: Any,
        z: Any,
        timed: Callable[[str], AbstractContextManager[None]],
    ) -> Any: ...

    def mask(self, landmarks: np.ndarray, params: MaskParams, layout: LandmarkLayout) -> Any: ...

    def host_mask(self, mask: Any) -> np.ndarray: ...

    def color_match(self, swap: Any, target: Any, mask: Any) -> Any: ...

    def paste(self, frame: Frame, swap: Any, mask: Any, matrix: np.ndarray) -> None: ...

    def draw(self, frame: Frame, painter: Callable[[np.ndarray], None]) -> None: ...


class PassStage:
    """The parts of `StreamStage` a stage that holds nothing back, keeps no timings and
    owns nothing shares: subclass it and write `process` (and `name`)."""

    name = "stage"

    def flush(self) -> list[Any]:
        return []

    def timings(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        """Nothing to release."""
