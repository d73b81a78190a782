"""The analysis pass of a two-phase run: decode the whole range once, detect, track,
match and smooth, and write the plan (`plan.PlanWriter`) that synthesis workers read.

The pass runs the real swap stage with its synthesis part replaced by `PlanRecorder`,
so the frames are batched, analysed and grouped into synthesis calls exactly as in a
sequential run. Mask parameters are the one synthesis state later frames depend on:
GHOST freezes them at the first frame of a track's run, from the landmarks of the
generated face there. So the recorder runs the real synthesis on the calls where some
face's parameters are due (a track appears or comes back; every call with
`--mask-mode adaptive`) and only carries the frozen parameters forward elsewhere; the
state before each segment goes into the plan, and a worker can start at any segment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghost_engine.face.records import AnalysedFrame
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.synthesis import SynthesisStage
from ghost_engine.parallel.plan import PlanWriter
from ghost_engine.pipeline.resume import SegmentTagged
from ghost_engine.pipeline.runner import PipelineConfig, run_pipeline
from ghost_engine.pipeline.stage_state import segment_of
from ghost_engine.types import Frame
from ghost_engine.video.reader import read_frames
from ghost_engine.video.segments import SegmentPlan

_log = logging.getLogger(__name__)


class PlanRecorder:
    """Stands in for `SynthesisStage` inside a `SwapStage`: records every call's
    analysed frames into the plan and keeps the mask state as the real stage would."""

    name = "face-synthesis"

    def __init__(self, synthesis: SynthesisStage, writer: PlanWriter) -> None:
        self.synthesis = synthesis
        self.writer = writer
        self.calls = 0
        self.synthesised_calls = 0
        self._segment: int | None = None

    def process(self, items: list[AnalysedFrame]) -> list[Frame]:
        if not items:
            return []
        segment = segment_of(items[0])
        if segment != self._segment:
            self.writer.state(segment, self.synthesis.masks.state())
            self._segment = segment
        for item in items:
            self.writer.frame(item, segment, self.calls)
        self.calls += 1
        jobs = [(item.faces[i].track_id, item.frame.index) for item in items for i in item.sources]
        keys = [(-1 if track is None else track, index) for track, index in jobs]
        if any(self.synthesis.masks.targets_needed(keys)):
            self.synthesised_calls += 1
            return self.synthesis.process(items)
        for track, index in keys:
            self.synthesis.masks.params(track, index, None)
        for item in items:
            item.frame.meta["faces_swapped"] = len(item.sources)
        return [item.frame for item in items]

    def flush(self) -> list[Frame]:
        return []

    def timings(self) -> dict[str, float]:
        return self.synthesis.timings()

    def close(self) -> None:
        self.synthesis.close()


def write_plan(
    stage: SwapStage,
    *,
    target: Path,
    segments: SegmentPlan,
    start_s: float,
    end_s: float | None,
    folder: Path,
    fingerprint: dict,
    pipeline: PipelineConfig,
    on_frame: Callable[[Frame], None] | None = None,
) -> dict[str, Any]:
    """Analyse `target` over [start_s, end_s) with `stage`'s analysis and write the plan
    into `folder`; returns what the pass did (frames, calls, seconds)."""
    writer = PlanWriter(folder, fingerprint, stage.source_ids)
    recorder = PlanRecorder(stage.synthesis, writer)
    planning = SwapStage(stage.analysis, recorder)  # type: ignore[arg-type]
    frames = read_frames(target, start_s=start_s or None, end_s=end_s)
    try:
        stats = run_pipeline(
            SegmentTagged(frames, segments),
            [planning],
            lambda _frame: None,
            pipeline,
            on_frame=on_frame,
        )
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    if recorder.synthesised_calls == recorder.calls and recorder.calls > 1:
        _log.warning(
            "every synthesis call had mask parameters due (--mask-mode adaptive smooths "
            "them over every frame), so the analysis pass did all the synthesis itself"
        )
    return {
        "frames": writer.frames,
        "calls": recorder.calls,
        "synthesised_calls": recorder.synthesised_calls,
        "wall_s": round(stats.wall_s, 4),
        "timings": {k: round(v, 4) for k, v in stage.timings().items()},
    }
