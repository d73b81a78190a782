"""What one worker does: synthesise and encode one whole output segment from the plan.

A worker decodes its segment again (seeking to the segment's start), pairs each frame
with its planned analysis, restores the mask state the plan holds for the segment's
start and calls synthesis with the sequential run's calls (`PlannedFrame.call`), so the
generator sees the same batches and the frames come out the same. The segment file is
the one the sequential run would write; its journal record goes back to the
coordinator, which alone writes the journal.

Models and the plan are loaded once per worker process and kept (`_Loaded`): a worker
process serves many segments of one run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ghost_engine.errors import UserInputError
from ghost_engine.face.records import AnalysedFrame
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import SynthesisStage
from ghost_engine.parallel.plan import Plan, PlannedFrame, read_plan
from ghost_engine.pipeline.faces_log import SegmentedFacesLog
from ghost_engine.types import SEGMENT_KEY
from ghost_engine.video.encode import EncodeSettings, SegmentEncoder
from ghost_engine.video.journal import SegmentRecord, segment_file_name
from ghost_engine.video.reader import read_frames
from ghost_engine.video.segments import SegmentPlan

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SegmentSpec:
    """Everything a worker needs besides the segment's number (picklable, so it travels
    to worker processes and Ray tasks). Paths must be ones the worker's machine sees."""

    config: SwapConfig
    target: Path
    work: Path
    plan_fingerprint: dict
    encode: EncodeSettings
    format_name: str
    suffix: str
    width: int
    height: int
    rate: Fraction
    segments: SegmentPlan
    pts_offset: int
    faces_log: bool = False
    threads: int | None = None


class _Loaded:
    """The models and the plan of the run this process last worked on."""

    key: tuple | None = None
    synthesis: SynthesisStage | None = None
    overlay: Any = None
    plan: Plan | None = None


def synthesise_segment(spec: SegmentSpec, segment: int, progress: Progress | None = None) -> dict:
    """Encode segment `segment` of the plan into the work folder; returns its journal
    record (as a dict) with the seconds it took."""
    started = time.perf_counter()
    synthesis, overlay, plan = _load(spec)
    planned = plan.frames.get(segment)
    if not planned:
        raise UserInputError(f"the analysis plan has no frames in segment {segment}")
    synthesis.masks.restore(plan.states[segment])
    path = Path(spec.work) / segment_file_name(segment, spec.suffix)
    faces_log = SegmentedFacesLog(Path(spec.work)) if spec.faces_log else None
    encoder = SegmentEncoder(
        path,
        format_name=spec.format_name,
        settings=spec.encode,
        width=spec.width,
        height=spec.height,
        time_base=spec.segments.time_base,
        rate=spec.rate,
        pts_offset=spec.pts_offset,
    )
    faces = 0
    try:
        for call in _calls(spec, segment, planned):
            out = synthesis.process(call)
            if overlay is not None:
                out = overlay.process(out)
            for frame in out:
                encoder.encode(frame)
                faces += int(frame.meta.get("faces_swapped", 0) > 0)
                if faces_log is not None:
                    faces_log(frame)
            if progress is not None:
                progress(len(out))
        encoder.close()
    except BaseException:
        encoder.abort()
        path.unlink(missing_ok=True)
        raise
    finally:
        if faces_log is not None:
            faces_log.close()
    record = SegmentRecord(
        index=segment,
        file=path.name,
        frames=encoder.frames,
        frames_with_faces=faces,
        first_pts=planned[0].pts,
        last_pts=planned[-1].pts,
        size=path.stat().st_size,
    )
    return {"record": asdict(record), "seconds": round(time.perf_counter() - started, 4)}


def _calls(
    spec: SegmentSpec, segment: int, planned: list[PlannedFrame]
) -> Iterator[list[AnalysedFrame]]:
    """The segment's analysed frames, grouped as the sequential run's synthesis calls."""
    frames = read_frames(
        spec.target, start_s=spec.segments.start_s(segment) or None, first_index=planned[0].index
    )
    wanted = iter(planned)
    expected: PlannedFrame | None = next(wanted)
    group: list = []
    try:
        for frame in frames:
            seg = spec.segments.index_of(frame.pts or 0)
            if seg < segment:
                continue
            assert expected is not None  # the loop stops after the last planned frame
            if frame.index != expected.index or frame.pts != expected.pts:
                raise UserInputError(
                    f"frame {frame.index} (pts {frame.pts}) of {spec.target} is not the one "
                    f"analysed (frame {expected.index}, pts {expected.pts}); the video changed",
                    path=spec.target,
                )
            frame.meta[SEGMENT_KEY] = segment
            item = expected.analysed(frame)
            if group and group[-1][0] != expected.call:
                yield [i for _, i in group]
                group = []
            group.append((expected.call, item))
            expected = next(wanted, None)
            if expected is None:
                break
    finally:
        frames.close()
    if expected is not None:
        raise UserInputError(
            f"{spec.target} ended before frame {expected.index} of segment {segment}",
            path=spec.target,
        )
    if group:
        yield [i for _, i in group]


def _load(spec: SegmentSpec) -> tuple[SynthesisStage, Any, Plan]:
    """Models (once per process and config) and the plan (once per plan file)."""
    plan_path = Path(spec.work) / "plan.jsonl"
    stamp = plan_path.stat().st_mtime_ns if plan_path.is_file() else None
    key = (repr(spec.config), str(plan_path), stamp)
    if _Loaded.key == key and _Loaded.synthesis is not None and _Loaded.plan is not None:
        return _Loaded.synthesis, _Loaded.overlay, _Loaded.plan
    if spec.threads:
        import torch

        torch.set_num_threads(spec.threads)
    from ghost_engine.backend import open_backend
    from ghost_engine.face.overlay import OverlayStage
    from ghost_engine.pipeline.face_models import build_synthesis_models

    plan = read_plan(plan_path, spec.plan_fingerprint)
    backend = open_backend(spec.config.device)
    models, files = build_synthesis_models(spec.config, backend.sessions)
    _check_files(files, plan.fingerprint.get("models", {}))
    ops = backend.image_ops()
    synthesis = SynthesisStage(spec.config, models, plan.source_ids, ops)
    overlay = OverlayStage(ops) if spec.config.debug_overlay else None
    _Loaded.key, _Loaded.synthesis, _Loaded.overlay, _Loaded.plan = key, synthesis, overlay, plan
    return synthesis, overlay, plan


def _check_files(files: dict[str, str], planned: dict[str, str]) -> None:
    """A worker must load the model files the analysis loaded (a node with other files
    would give other frames)."""
    for name, identity in files.items():
        if planned.get(name) != identity:
            raise UserInputError(
                f"this worker's model file {name} ({identity}) is not the one the analysis "
                f"used ({planned.get(name)}); give every worker the same --models-dir",
                option="--models-dir",
            )


def worker_threads(cores: int | None, workers: int) -> int:
    """Each of `workers` local CPU workers gets an equal share of the cores (at least 1),
    at most `OMP_NUM_THREADS` where that is set (the cap a user gives every process).

    PyTorch's CPU kernels split their sums by thread count, so a generator batch of
    several faces can differ in the last bits between thread counts: frames equal a
    sequential run's when both use the same threads per process."""
    share = max(1, (cores or len(os.sched_getaffinity(0)) or 1) // max(1, workers))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(cap)) if cap.isdigit() and int(cap) > 0 else share
