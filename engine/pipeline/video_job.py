"""One video run: probe, (resume,) decode -> stages -> segment encoder, mux, rename.

Nothing appears at the output path until the whole file is written. Finished segments
stay in a work folder beside the output until the final rename, so an interrupted run
can continue with `resume=True`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ghost_engine.errors import OutputError, UnsupportedMediaError, UserInputError
from ghost_engine.interfaces import StreamStage
from ghost_engine.pipeline.faces_log import SegmentedFacesLog
from ghost_engine.pipeline.progress import Progress, ProgressConfig
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.resume import BoundaryStates, SegmentTagged, checkpointed
from ghost_engine.pipeline.runner import PipelineConfig, PipelineStats, run_pipeline
from ghost_engine.types import Frame
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.journal import JOURNAL_NAME, Journal
from ghost_engine.video.mux import CONTAINERS, TimeRange, mux_output, muxer_for
from ghost_engine.video.output import (
    check_output_path,
    commit,
    discard,
    temp_path_for,
    work_dir_for,
)
from ghost_engine.video.reader import (
    VideoInfo,
    probe_video,
    read_frames,
    validate_range,
)
from ghost_engine.video.segments import SegmentPlan, SegmentWriter

_log = logging.getLogger(__name__)

# --codec -> output muxers that store it (tried; FFmpeg lists some it then refuses)
_OUTPUTS_FOR = {
    "h264": ("mp4", "mov", "matroska", "avi", "nut"),
    "hevc": ("mp4", "mov", "matroska", "nut"),
    "vp9": ("mp4", "matroska", "webm", "nut"),
    "av1": ("mp4", "matroska", "webm", "nut"),
    "prores": ("mov", "matroska"),
    "ffv1": ("matroska", "avi", "nut"),
}
# Segment files: MP4/MOV keep the input's timestamps and decode order exactly (Matroska
# rounds to milliseconds and drops the first packets' dts); MOV only for ProRes.
_SEGMENT_FORMAT = {"prores": ("mov", ".mov")}


@dataclass(frozen=True)
class VideoJob:
    """Everything about a video run except the stages themselves."""

    target: Path
    output: Path
    encode: EncodeSettings = EncodeSettings()
    time_range: TimeRange = TimeRange()
    resume: bool = False
    segment_s: float = 10.0
    pipeline: PipelineConfig = PipelineConfig()
    progress: ProgressConfig = ProgressConfig()
    fingerprint: dict = field(default_factory=dict)  # stage settings; resume must match
    faces_log: Path | None = None  # --faces-log: one JSON line per output frame


def check_video_job(job: VideoJob) -> VideoInfo:
    """Every check that needs no decoding beyond the first frame; the input's info."""
    validate_range(job.time_range.start_s or None, job.time_range.end_s)
    if job.segment_s <= 0:
        raise UserInputError(f"segment length must be > 0 seconds, got {job.segment_s}")
    check_output_path(job.output)
    fmt = muxer_for(job.output)
    job.encode.resolve()
    if fmt not in _OUTPUTS_FOR[job.encode.codec]:
        raise OutputError(
            f"--codec {job.encode.codec} cannot be stored in a {job.output.suffix} file; "
            f"use one of: {', '.join(_suffixes(_OUTPUTS_FOR[job.encode.codec]))}"
        )
    if job.output.resolve() == Path(job.target).resolve():
        raise OutputError(f"output {job.output} would overwrite the input; choose another name")
    info = probe_video(job.target)
    if info.duration_s is not None and job.time_range.start_s >= info.duration_s:
        raise UserInputError(
            f"--start {job.time_range.start_s} s is past the end of {job.target} "
            f"({info.duration_s:.3f} s)"
        )
    return info


def run_video(
    job: VideoJob,
    stages: Sequence[StreamStage],
    report: RunReport,
    read: Callable[..., Iterable] = read_frames,
    stop: threading.Event | None = None,
) -> RunReport:
    """Run `stages` over the target video and write the labelled output atomically.

    `read(path, start_s=, end_s=, first_index=)` gives the frames (the CUDA backend
    passes its device reader; its last stage hands host frames to the encoder); `stop`
    is set when a step fails (see `run_pipeline`).
    """
    info = check_video_job(job)
    work = work_dir_for(job.output)
    stages, states = checkpointed(stages)
    journal = _open_journal(job, work, _fingerprint(job, info))
    states.folder = work
    states.restore(journal, work)
    report.resumed_segments = len(journal.segments)
    report.resumed_frames = journal.frames
    plan = SegmentPlan(job.time_range.start_s, job.segment_s, info.time_base)
    writer = _segment_writer(job, info, work, journal, plan, states)
    begin, first_index = job.time_range.start_s, 0
    if writer.first_pending > 0:
        # Stateful stages continue from the states saved at this boundary, so decoding
        # starts there, with the frame numbers of an uninterrupted run.
        begin, first_index = plan.start_s(writer.first_pending), journal.frames
    source = read(
        job.target, start_s=begin or None, end_s=job.time_range.end_s, first_index=first_index
    )
    frames = SegmentTagged(source, plan)
    progress = Progress(_expected_frames(info, job, journal), job.progress)
    faces_log = SegmentedFacesLog(work) if job.faces_log is not None else None
    on_frame = progress if faces_log is None else _both(progress, faces_log)
    try:
        stats = run_pipeline(frames, stages, writer, job.pipeline, on_frame=on_frame, stop=stop)
        writer.close()
        if faces_log is not None:
            faces_log.close()
    except BaseException:
        writer.abort()
        _keep_or_discard(work, journal)
        raise
    finally:
        progress.close()
    if not journal.segments:
        discard(work)
        raise UnsupportedMediaError(
            f"{job.target} has no video frames in the requested range; nothing to write"
        )
    mux = _finish(job, writer)
    if faces_log is not None and job.faces_log is not None:
        faces_log.join([s.index for s in journal.segments], job.faces_log)
    _fill_report(report, stats, journal, stages, mux)
    discard(work)
    return report


def _suffixes(formats: tuple[str, ...]) -> list[str]:
    return [suffix for suffix, fmt in CONTAINERS.items() if fmt in formats]


def _open_journal(job: VideoJob, work: Path, fingerprint: dict) -> Journal:
    if job.resume and (work / JOURNAL_NAME).is_file():
        journal = Journal.load(work, fingerprint)
        _log.info("resuming after %d finished segment(s)", len(journal.segments))
        return journal
    discard(work)
    try:
        work.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot create the work folder {work}: {exc.strerror}") from exc
    journal = Journal(fingerprint=fingerprint)
    journal.save(work)
    return journal


def _both(
    first: Callable[[Frame], None], second: Callable[[Frame], None]
) -> Callable[[Frame], None]:
    def call(frame: Frame) -> None:
        first(frame)
        second(frame)

    return call


def _segment_writer(
    job: VideoJob,
    info: VideoInfo,
    work: Path,
    journal: Journal,
    plan: SegmentPlan,
    states: BoundaryStates,
) -> SegmentWriter:
    fmt, suffix = _SEGMENT_FORMAT.get(job.encode.codec, ("mp4", ".mp4"))
    return SegmentWriter(
        work,
        journal,
        plan,
        settings=job.encode,
        format_name=fmt,
        suffix=suffix,
        width=info.width,
        height=info.height,
        rate=info.rate,
        pts_offset=round(job.time_range.start_s / info.time_base),
        save_state=states.save,
    )


def _finish(job: VideoJob, writer: SegmentWriter):
    temp = temp_path_for(job.output)
    try:
        result = mux_output(writer.segment_files(), job.target, temp, job.time_range)
        commit(temp, job.output)
    except BaseException:
        discard(temp)
        raise
    return result


def _keep_or_discard(work: Path, journal: Journal) -> None:
    if journal.segments:
        _log.warning(
            "stopped after %d finished segment(s); they are kept in %s, run again with "
            "--resume to continue",
            len(journal.segments),
            work,
        )
    else:
        discard(work)


def _expected_frames(info: VideoInfo, job: VideoJob, journal: Journal) -> int:
    if info.duration_s is None:
        return 0
    end = info.duration_s if job.time_range.end_s is None else job.time_range.end_s
    end = min(end, info.duration_s + info.start_s)
    total = round((end - job.time_range.start_s) * float(info.rate))
    return max(0, total - journal.frames)


def _fingerprint(job: VideoJob, info: VideoInfo) -> dict:
    stat = Path(job.target).stat()
    return {
        "target": str(Path(job.target).resolve()),
        "target_size": stat.st_size,
        "target_mtime_ns": stat.st_mtime_ns,
        "encode": dataclasses.asdict(job.encode),
        "range": [job.time_range.start_s, job.time_range.end_s],
        "segment_s": job.segment_s,
        "stages": job.fingerprint,
    }


def _fill_report(report: RunReport, stats: PipelineStats, journal: Journal, stages, mux) -> None:
    report.frames = journal.frames
    report.frames_with_faces = journal.frames_with_faces
    report.frames_without_faces = journal.frames - journal.frames_with_faces
    report.wall_s = stats.wall_s
    report.stage_seconds = {k: round(v.seconds, 4) for k, v in stats.steps.items()}
    report.add_swap_seconds(stages)
    report.audio = list(mux.audio)
    report.dropped_streams = list(mux.dropped)
