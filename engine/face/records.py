"""What the analysis stage hands the synthesis stage, and the live overrides.

`AnalysedFrame` is the one typed per-frame record between the two face stages: the
frame, its faces (with track ids), which source each matched face gets and the
smoothed points to align it with. Everything synthesis needs is in it, so the two
stages share no other state and can run in different threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ghost_engine.types import Face, Frame


@dataclass
class AnalysedFrame:
    """One frame after detection, tracking, matching and smoothing.

    `sources` maps a face's index in `faces` to the source row it gets (faces without a
    match are absent); `similarities` holds each face's (track-averaged) similarity to
    every reference, or to the first face (None when every face is swapped); `smoothed`
    maps a track id to its smoothed five points (filled once the smoother's look-ahead
    has seen enough later frames).
    """

    frame: Frame
    faces: list[Face]
    sources: dict[int, int]
    similarities: np.ndarray | None = None
    smoothed: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.frame.index

    def points(self, face_index: int) -> np.ndarray:
        """The points a swapped face is aligned with: smoothed where ready, else raw."""
        face = self.faces[face_index]
        if face.track_id is None:
            return face.kps
        return self.smoothed.get(face.track_id, face.kps)


@dataclass
class SwapOverrides:
    """Live changes the synthesis stage reads on every batch (the webcam's keys and
    control server set them): `source`, a source row every swapped face takes instead of
    its matched one (None: the matched one); `blur_scale`, a factor on the mask's blur
    sigmas. Owned by the caller, not by the stage."""

    source: int | None = None
    blur_scale: float = 1.0
