"""The face swap as one stream stage: analysis, then synthesis, then the optional overlay.

`SwapStage` runs its parts one after the other in the caller's thread (image jobs, the
webcam, a plain video run); `split()` hands them out as separate stages so a pipeline
can run each in its own thread (detection of the next frames overlapping the generator
on these). Both ways give the same frames. The parts are built by
`ghost_engine.pipeline.swap.build_swap_stage`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ghost_engine.face.analysis import AnalysisStage
from ghost_engine.face.overlay import OverlayStage
from ghost_engine.face.records import AnalysedFrame, SwapOverrides
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import SynthesisStage
from ghost_engine.face.timing import add_timings
from ghost_engine.interfaces import ImageOps, StreamStage
from ghost_engine.types import SEGMENT_KEY, Frame


def _segment(item: AnalysedFrame) -> object:
    return item.frame.meta.get(SEGMENT_KEY)


class SwapStage:
    """Implements `StreamStage` on frames; not thread-safe (one stream each)."""

    name = "face-swap"

    def __init__(
        self,
        analysis: AnalysisStage,
        synthesis: SynthesisStage,
        overlay: OverlayStage | None = None,
        model_files: dict[str, str] | None = None,
    ) -> None:
        self.analysis = analysis
        self.synthesis = synthesis
        self.overlay = overlay
        # model name -> identity of the file it loaded (see pipeline.face_models)
        self.model_files = dict(model_files or {})

    @property
    def config(self) -> SwapConfig:
        return self.synthesis.config

    @property
    def overrides(self) -> SwapOverrides:
        """The live overrides the synthesis reads (source row, blur factor)."""
        return self.synthesis.overrides

    @property
    def source_ids(self) -> np.ndarray | None:
        return self.synthesis.source_ids

    def process(self, frames: list[Frame]) -> list[Frame]:
        if not frames:
            return []
        return self._finish(self._synthesise(self.analysis.process(frames)))

    def flush(self) -> list[Frame]:
        return self._finish(self._synthesise(self.analysis.flush()))

    def _synthesise(self, items: list[AnalysedFrame]) -> list[Frame]:
        """Synthesis one output segment at a time, as when the parts run split (so a
        resumed run batches the generator as an uninterrupted one)."""
        out: list[Frame] = []
        start = 0
        for i in range(1, len(items) + 1):
            if i == len(items) or _segment(items[i]) != _segment(items[start]):
                out += self.synthesis.process(items[start:i])
                start = i
        return out

    def state(self) -> dict[str, Any]:
        """Both parts' state (see `AnalysisStage.state`), taken between two calls."""
        return {"analysis": self.analysis.state(), "synthesis": self.synthesis.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.analysis.restore(state["analysis"])
        self.synthesis.restore(state["synthesis"])

    def _finish(self, frames: list[Frame]) -> list[Frame]:
        return frames if self.overlay is None else self.overlay.process(frames)

    def use_ops(self, ops: ImageOps) -> None:
        """Do the pixel work of every part with `ops` from now on (a backend hands its
        own image operations to a stage built elsewhere)."""
        self.analysis.ops = ops
        self.synthesis.ops = ops
        if self.overlay is not None:
            self.overlay.ops = ops

    def split(self) -> list[StreamStage]:
        """The parts as separate stages, in order, for one thread each."""
        parts: list[StreamStage] = [self.analysis, self.synthesis]
        return parts if self.overlay is None else [*parts, self.overlay]

    def timings(self) -> dict[str, float]:
        """Seconds per sub-step so far, over every part."""
        total: dict[str, float] = {}
        for part in self.split():
            add_timings(total, part.timings())
        return total

    def close(self) -> None:
        for part in self.split():
            part.close()
