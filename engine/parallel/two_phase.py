"""`ghost-engine run ... --workers N`: analysis once, then N workers synthesise segments.

The coordinator checks the job as a sequential run does, holds the output's lock,
runs the analysis pass into the plan (or reads the plan an interrupted run left),
hands every segment not yet journalled to the scheduler (local processes, or Ray),
journals each segment as it comes back (in segment order, whatever order they finish
in), then joins the segments with the audio and renames the output into place, as
the sequential run does. A worker that dies costs only its segment, which is done
again; Ctrl-C or SIGTERM stops every worker and keeps the plan and the finished
segments for `--resume`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ghost_engine.errors import GhostEngineError, RunInterrupted, UserInputError, one_line
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.parallel.plan import PLAN_NAME, read_plan
from ghost_engine.parallel.planning import write_plan
from ghost_engine.parallel.scheduler import Outcome, SchedulerConfig, Task, run_tasks
from ghost_engine.parallel.segment_work import SegmentSpec, synthesise_segment
from ghost_engine.pipeline.faces_log import SegmentedFacesLog
from ghost_engine.pipeline.progress import Progress, ProgressConfig
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.runner import PipelineConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.pipeline.video_job import (
    VideoJob,
    check_video_job,
    job_fingerprint,
    join_and_sign,
    segment_format,
)
from ghost_engine.provenance.manifest import ProvenanceConfig
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.fingerprint import photos_fingerprint
from ghost_engine.video.journal import JOURNAL_NAME, Journal, SegmentRecord
from ghost_engine.video.lock import OutputLock
from ghost_engine.video.mux import TimeRange
from ghost_engine.video.output import (
    final_path,
    remove_stale_partials,
)
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS
from ghost_engine.video.segments import SegmentPlan
from ghost_engine.video.workdir import make_work_dir, remove_work_dir, work_dir_for

_log = logging.getLogger(__name__)


def run_two_phase(
    job: VideoJob,
    config: SwapConfig,
    people: Sequence[Sequence[Path]],
    target_faces: Sequence[Path],
    scheduler: SchedulerConfig,
    report: RunReport,
) -> RunReport:
    """Run `job` in two phases (see the module doc); fills and returns `report`."""
    checked = check_video_job(job)
    info = checked.info
    started = time.perf_counter()
    with OutputLock(job.output):
        for stale in remove_stale_partials(job.output):
            _log.info("removed %s, left by a run that was killed", stale)
        work = work_dir_for(job.output)
        stage = build_swap_stage(config, people, target_faces)
        try:
            fingerprint = {
                **job_fingerprint(job, info),
                "models": stage.model_files,
                "two_phase": True,
            }
            journal = _open_journal(job, work, fingerprint)
            report.resumed_segments = len(journal.segments)
            report.resumed_frames = journal.frames
            segments = SegmentPlan(job.time_range.start_s, job.segment_s, info.time_base)
            try:
                analysis = _plan(job, stage, segments, work, fingerprint)
            finally:
                stage.close()
            fmt, suffix = segment_format(job.encode.codec)
            spec = SegmentSpec(
                config=config,
                target=Path(job.target).resolve(),
                work=work.resolve(),
                plan_fingerprint=fingerprint,
                encode=job.encode,
                format_name=fmt,
                suffix=suffix,
                width=checked.encode_size[0],
                height=checked.encode_size[1],
                rate=info.rate,
                segments=segments,
                pts_offset=round(job.time_range.start_s / info.time_base),
                faces_log=job.faces_log is not None,
                threads=scheduler.cpus if not scheduler.gpus else None,
            )
            outcomes = _synthesise(job, spec, scheduler, work, journal)
        except KeyboardInterrupt as exc:
            raise _interrupted(work) from exc
        except BaseException:
            _keep_or_discard(work)
            raise
        join_and_sign(job, [work / s.file for s in journal.segments], work, report)
        if job.faces_log is not None:
            SegmentedFacesLog(work).join([s.index for s in journal.segments], job.faces_log)
    report.frames = journal.frames
    report.frames_with_faces = journal.frames_with_faces
    report.frames_without_faces = journal.frames - journal.frames_with_faces
    report.wall_s = time.perf_counter() - started
    report.settings["parallel"] = {
        "workers": scheduler.workers,
        "scheduler": "local" if scheduler.ray_address is None else f"ray ({scheduler.ray_address})",
        "cpus_per_worker": scheduler.cpus,
        "gpus_per_worker": scheduler.gpus,
        "analysis": analysis,
        "segments": [_outcome_dict(o) for o in outcomes],
        "redone": [o.key for o in outcomes if o.redone],
    }
    remove_work_dir(work)
    return report


def _open_journal(job: VideoJob, work: Path, fingerprint: dict) -> Journal:
    if job.resume and (work / JOURNAL_NAME).is_file():
        journal = Journal.load(work, fingerprint)
        _log.info("resuming with %d finished segment(s)", len(journal.segments))
        return journal
    make_work_dir(work, job.output)
    (work / PLAN_NAME).unlink(missing_ok=True)
    journal = Journal(fingerprint=fingerprint)
    journal.save(work)
    return journal


def _plan(
    job: VideoJob, stage: SwapStage, segments: SegmentPlan, work: Path, fingerprint: dict
) -> dict[str, Any]:
    """The analysis pass, or the plan an interrupted run of this job finished."""
    path = work / PLAN_NAME
    if job.resume and path.is_file():
        plan = read_plan(path, fingerprint)  # a tampered or foreign plan is refused here
        return {"reused": True, "frames": plan.frame_count()}
    progress = Progress(0, job.progress)
    try:
        done = write_plan(
            stage,
            target=job.target,
            segments=segments,
            start_s=job.time_range.start_s,
            end_s=job.time_range.end_s,
            folder=work,
            fingerprint=fingerprint,
            pipeline=job.pipeline,
            on_frame=progress,
        )
    finally:
        progress.close()
    return {"reused": False, **done}


def _synthesise(
    job: VideoJob, spec: SegmentSpec, scheduler: SchedulerConfig, work: Path, journal: Journal
) -> list[Outcome]:
    plan = read_plan(work / PLAN_NAME, spec.plan_fingerprint)
    if not plan.segments:
        remove_work_dir(work)
        raise UserInputError(
            f"{one_line(str(job.target))} has no video frames in the requested range; "
            "nothing to write",
            path=job.target,
        )
    done = {s.index for s in journal.segments}
    pending = [k for k in plan.segments if k not in done]
    tasks = [Task(f"segment {k}", synthesise_segment, (spec, k)) for k in pending]
    progress = Progress(sum(plan.frame_count(k) for k in pending), job.progress)

    counted: dict[str, int] = {}  # frames reported so far per segment

    def events(kind: str, key: str, detail: Any) -> None:
        if kind == "progress":
            _advance(progress, int(detail))
            counted[key] = counted.get(key, 0) + int(detail)
        elif kind == "end" and detail.ok:
            record = SegmentRecord(**detail.value["record"])
            _advance(progress, record.frames - counted.get(key, 0))  # Ray: at the end
            _journal(journal, work, record)

    try:
        outcomes = run_tasks(tasks, scheduler, events)
    finally:
        progress.close()
    failed = [o for o in outcomes if not o.ok]
    if failed:
        first = failed[0]
        raise GhostEngineError(
            f"{first.key} failed after {first.attempts} attempt(s): {first.error}; the "
            f"{len(journal.segments)} finished segment(s) are kept, run again with --resume",
            path=work,
        )
    return outcomes


def _advance(progress: Progress, frames: int) -> None:
    for _ in range(max(0, frames)):
        progress()


def _journal(journal: Journal, work: Path, record: SegmentRecord) -> None:
    """Add a finished segment, keeping the journal in segment order."""
    kept = [s for s in journal.segments if s.index != record.index]
    journal.segments = sorted([*kept, record], key=lambda s: s.index)
    journal.save(work)


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    data = dataclasses.asdict(outcome)
    data.pop("value")
    data["redone"] = outcome.redone
    return data


def _keep_or_discard(work: Path) -> None:
    """After an error: a work folder with finished segments stays for --resume, one
    without goes (as after a sequential run's error)."""
    if not work.is_dir():
        return
    if (work / JOURNAL_NAME).is_file() and list(work.glob("segment-*")):
        _log.warning(
            "stopped; the finished segments are kept in %s, run again with --resume",
            one_line(str(work)),
        )
        return
    remove_work_dir(work)


def _interrupted(work: Path) -> RunInterrupted:
    if work.is_dir():
        return RunInterrupted(
            f"interrupted: the analysis plan and finished segments are kept in "
            f"{one_line(str(work))}; run the same command with --resume to continue",
            path=work,
        )
    return RunInterrupted("interrupted; nothing was written")


# SwapConfig fields that change no pixel (a resume may differ in them)
_NOT_PIXELS = frozenset({"download", "models_dir"})


def swap_video_parallel(
    target: Path,
    people: Sequence[Sequence[Path]],
    output: Path,
    *,
    scheduler: SchedulerConfig,
    target_faces: Sequence[Path] = (),
    config: SwapConfig | None = None,
    encode: EncodeSettings | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    resume: bool = False,
    segment_s: float = 10.0,
    progress: str = "auto",
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_damage: str = "warn",
    faces_log: Path | None = None,
    provenance: ProvenanceConfig | None = None,
) -> RunReport:
    """`ghost_engine.swap_video` in two phases on `scheduler`'s workers; the same
    arguments, the same output frames, signed the same way."""
    config = config or SwapConfig()
    encode = encode or EncodeSettings()
    refs = [Path(p) for p in target_faces]
    people = [[Path(p) for p in person] for person in people]
    settings = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(config).items()
        if k not in _NOT_PIXELS
    }
    photos = [("source photo", p) for person in people for p in person]
    job = VideoJob(
        target=Path(target),
        output=final_path(Path(output)),
        encode=encode,
        time_range=TimeRange(start_s or 0.0, end_s),
        resume=resume,
        segment_s=segment_s,
        pipeline=PipelineConfig(batch_size=config.batch_size),
        progress=ProgressConfig(mode=progress),
        fingerprint={"swap": settings, "photos": photos_fingerprint(people, refs)},
        inputs=(*photos, *(("target face photo", p) for p in refs)),
        overwrite=overwrite,
        max_pixels=max_pixels,
        on_damage=on_damage,
        faces_log=None if faces_log is None else Path(faces_log),
        provenance=provenance or ProvenanceConfig(),
    )
    report = RunReport(
        kind="video",
        target=str(target),
        output=str(output),
        sources=[[str(p) for p in person] for person in people],
    )
    report.settings = {"encode": dataclasses.asdict(encode), "swap": settings}
    return run_two_phase(job, config, people, refs, scheduler, report)
