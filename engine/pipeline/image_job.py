"""One still-image run: check, lock, read, pass through the stages once, write labelled,
atomically (nothing the run reads is ever written; an existing output needs consent)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.interfaces import StreamStage
from ghost_engine.pipeline.faces_log import write_frames_log
from ghost_engine.pipeline.report import RunReport
from ghost_engine.provenance.manifest import ProvenanceConfig
from ghost_engine.provenance.sign import check_provenance, seal_bytes
from ghost_engine.types import Frame
from ghost_engine.video.images import check_image_output, read_image, write_image
from ghost_engine.video.lock import OutputLock, check_output_free
from ghost_engine.video.output import check_output_path, remove_stale_partials
from ghost_engine.video.paths import Role, RunPaths, check_run_paths
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS, check_image_pixels, check_max_pixels


@dataclass(frozen=True)
class ImageJob:
    """An image run's files and limits (the fields mean what `VideoJob`'s do)."""

    target: Path
    output: Path
    inputs: tuple[Role, ...] = ()
    side_outputs: tuple[Role, ...] = ()
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    faces_log: Path | None = None  # --faces-log: its one line of who got which face
    provenance: ProvenanceConfig = ProvenanceConfig()  # the C2PA manifest (see provenance/)


def check_image_job(job: ImageJob) -> None:
    """Checks that need no decoding: output name and folder, the paths against each
    other, the lock, the target's declared size."""
    check_max_pixels(job.max_pixels)
    check_output_path(job.output)
    check_image_output(job.output)
    inputs = (("target", Path(job.target)), *job.inputs)
    side = job.side_outputs
    if job.faces_log is not None:
        side = (*side, ("--faces-log", Path(job.faces_log)))
    check_run_paths(RunPaths(Path(job.output), inputs, side), overwrite=job.overwrite)
    check_output_free(job.output)
    check_provenance(job.provenance, job.output)
    check_image_pixels(job.target, job.max_pixels, "target")


def run_image(job: ImageJob, stages: Sequence[StreamStage], report: RunReport) -> RunReport:
    """Swap faces in one image; the stages see it as a one-frame stream."""
    check_image_job(job)
    with OutputLock(job.output):
        remove_stale_partials(job.output)
        return _run_locked(job, stages, report)


def _run_locked(job: ImageJob, stages: Sequence[StreamStage], report: RunReport) -> RunReport:
    started = time.perf_counter()
    t0 = time.perf_counter()
    frames: list[Frame] = [read_image(job.target, "target")]
    report.stage_seconds["decode"] = round(time.perf_counter() - t0, 4)
    for i, stage in enumerate(stages):
        t0 = time.perf_counter()
        frames = list(stage.process(frames)) + list(stage.flush())
        report.stage_seconds[stage.name or f"stage{i}"] = round(time.perf_counter() - t0, 4)
    report.add_swap_seconds(stages)
    if len(frames) != 1:
        raise RuntimeError(f"the stages turned one image into {len(frames)} frames")
    t0 = time.perf_counter()
    write_image(job.output, frames[0].image, replace=job.overwrite, seal=_sealer(job, report))
    report.stage_seconds["encode"] = round(time.perf_counter() - t0, 4)
    if job.faces_log is not None:
        write_frames_log(frames, job.faces_log)
    report.frames = 1
    report.frames_with_faces = int(frames[0].meta.get("faces_swapped", 0) > 0)
    report.frames_without_faces = 1 - report.frames_with_faces
    report.wall_s = time.perf_counter() - started
    report.settings["input"] = {"max_pixels": job.max_pixels}
    return report


def _sealer(job: ImageJob, report: RunReport) -> Callable[[bytes], bytes]:
    """Embeds the manifest into the encoded image and notes the form in the report."""

    def seal(data: bytes) -> bytes:
        inputs = (("target", Path(job.target)), *job.inputs)
        signed, sealed = seal_bytes(data, job.output, job.provenance, inputs)
        report.provenance = sealed.as_dict()
        return signed

    return seal
