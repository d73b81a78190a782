"""One still-image run: read, pass through the stages once, write labelled, atomically."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from ghost_engine.errors import OutputError
from ghost_engine.interfaces import StreamStage
from ghost_engine.pipeline.faces_log import write_frames_log
from ghost_engine.pipeline.report import RunReport
from ghost_engine.types import Frame
from ghost_engine.video.images import check_image_output, read_image, write_image
from ghost_engine.video.output import check_output_path


def check_image_job(target: Path, output: Path) -> None:
    """Checks that need no decoding: output name and folder."""
    check_output_path(output)
    check_image_output(output)
    if Path(output).resolve() == Path(target).resolve():
        raise OutputError(f"output {output} would overwrite the input; choose another name")


def run_image(
    target: Path,
    output: Path,
    stages: Sequence[StreamStage],
    report: RunReport,
    faces_log: Path | None = None,
) -> RunReport:
    """Swap faces in one image; the stages see it as a one-frame stream. `faces_log`:
    its one line of who got which face (see `faces_log.frame_record`)."""
    check_image_job(target, output)
    started = time.perf_counter()
    t0 = time.perf_counter()
    frames: list[Frame] = [read_image(target, "target")]
    report.stage_seconds["decode"] = round(time.perf_counter() - t0, 4)
    for i, stage in enumerate(stages):
        t0 = time.perf_counter()
        frames = list(stage.process(frames)) + list(stage.flush())
        report.stage_seconds[stage.name or f"stage{i}"] = round(time.perf_counter() - t0, 4)
    report.add_swap_seconds(stages)
    if len(frames) != 1:
        raise RuntimeError(f"the stages turned one image into {len(frames)} frames")
    t0 = time.perf_counter()
    write_image(output, frames[0].image)
    report.stage_seconds["encode"] = round(time.perf_counter() - t0, 4)
    if faces_log is not None:
        write_frames_log(frames, faces_log)
    report.frames = 1
    report.frames_with_faces = int(frames[0].meta.get("faces_swapped", 0) > 0)
    report.frames_without_faces = 1 - report.frames_with_faces
    report.wall_s = time.perf_counter() - started
    return report
