"""The face-swap stage set up for live use: causal smoothing, switchable source face,
live mask blur, and timestamps of the detect and swap steps of every call.

It wraps one `SwapStage` (so tracking, smoothing and mask state carry across a source
switch): the stage is built with every `-s` person (identity embeddings computed once),
and the live overrides it reads (`SwapOverrides`: source row, blur factor) are owned
here and set between calls; the analysis detector and the synthesis generator are
wrapped to note when they start and return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ghost_engine.choices import CAUSAL_SMOOTHING
from ghost_engine.errors import UserInputError
from ghost_engine.face.stage import SwapStage
from ghost_engine.types import Frame
from ghost_engine.webcam.controls import ControlState


class Stamped:
    """Calls `fn` and notes the clock when the first call starts (`started`) and the last
    call returns (`last`); `reset()` clears both (None: not called since)."""

    def __init__(self, fn: Callable, clock: Callable[[], float]) -> None:
        self.fn = fn
        self.clock = clock
        self.started: float | None = None
        self.last: float | None = None

    def reset(self) -> None:
        self.started = self.last = None

    def __call__(self, *args, **kwargs):
        if self.started is None:
            self.started = self.clock()
        out = self.fn(*args, **kwargs)
        self.last = self.clock()
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fn, name)


@dataclass(frozen=True)
class StepStamps:
    """`detected`: the analysis (detection, identity embeddings, tracking, alignment)
    ended, i.e. the generator started, or the detector returned when no face was
    swapped; `swapped`: the generator returned. None: that step did not run."""

    detected: float | None
    swapped: float | None


class LiveSwapStage:
    """A `SwapStage` driven one (micro-)batch at a time with the live control state.

    The stage sees its own consecutive frame numbers (so per-track state stays
    continuous when the camera outruns the loop and frames are dropped); the frames
    come back with their capture index restored. Not thread-safe: the loop's thread only.
    """

    def __init__(self, stage: SwapStage, num_sources: int, clock: Callable[[], float]) -> None:
        if stage.config.smoothing not in CAUSAL_SMOOTHING:
            raise UserInputError(
                f"live swapping needs causal smoothing (ema or none), not "
                f"{stage.config.smoothing!r}: the window smoother waits for later frames"
            )
        self.stage = stage
        self.num_sources = num_sources
        ids = stage.source_ids
        if ids is not None and len(ids) != num_sources:
            raise ValueError(f"stage has {len(ids)} sources, expected {num_sources}")
        self.overrides = stage.overrides
        self.detector = Stamped(stage.analysis.models.detector, clock)
        self.generator = Stamped(stage.synthesis.models.generator, clock)
        stage.analysis.models.detector = self.detector
        stage.synthesis.models.generator = self.generator
        self.active_source = 0
        self._seq = 0
        self.apply(ControlState())

    def apply(self, state: ControlState) -> None:
        """Use `state`'s source face and blur factor from the next call on."""
        if not 0 <= state.source < self.num_sources:
            raise UserInputError(f"source {state.source} does not exist")
        self.active_source = state.source
        if self.stage.source_ids is not None:
            self.overrides.source = state.source
        self.overrides.blur_scale = float(state.blur)

    def skip(self) -> None:
        """A frame went by without the stage (swap off): leave a gap in its numbering so
        tracks, smoothing and mask parameters start afresh."""
        self._seq += 1

    def process(self, frames: list[Frame]) -> tuple[list[Frame], StepStamps]:
        """Swap `frames` (consecutive captures, oldest first); returns them in order."""
        self.detector.reset()
        self.generator.reset()
        capture_index = {}
        for frame in frames:
            capture_index[self._seq] = frame.index
            frame.index = self._seq
            self._seq += 1
        out = self.stage.process(frames)
        if len(out) != len(frames):
            raise RuntimeError("the live stage must return every frame at once (no look-ahead)")
        for frame in out:
            frame.meta["source_face"] = self.active_source
            frame.index = capture_index[frame.index]
        detected = self.generator.started
        if detected is None:
            detected = self.detector.last
        return out, StepStamps(detected, self.generator.last)

    def close(self) -> None:
        self.stage.close()


def build_live_stage(
    config: Any,
    sources: Sequence[Sequence[Path]],
    *,
    store: Any | None = None,
    detect_max_side: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LiveSwapStage:
    """The live stage for a `SwapConfig` and one list of photos per source person.

    `detect_max_side` makes the dlib detector search a copy downscaled to that longest
    side (its landmarks still use the full frame); SCRFD always runs at 640.
    """
    from ghost_engine.pipeline.swap import build_swap_stage

    if config.smoothing not in CAUSAL_SMOOTHING:
        raise UserInputError(
            f"live swapping needs --smoothing ema or none, not {config.smoothing!r} "
            "(the window smoother looks ahead at later frames)"
        )
    if detect_max_side is not None:
        config = replace(config, detect_max_side=detect_max_side)
    stage = build_swap_stage(config, sources, (), store=store)
    return LiveSwapStage(stage, len(sources), clock)
