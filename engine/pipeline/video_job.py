"""One video run: check, lock, (resume,) decode -> stages -> segment encoder, mux, rename.

Nothing appears at the output path until the whole file is written, and nothing the run
reads is ever written (`video.paths`). Every check that needs no decoding runs first
(`check_video_job`: paths, pixel limit, the encoder opened on a blank frame), then the
run holds the output's lock to its end, so a second run on the same output refuses at
once. Finished segments stay in the engine's work folder beside the output until the
final rename, so an interrupted run (an error, Ctrl-C, SIGTERM) can continue with
`resume=True`. A damaged target is reported (frames decoded, frames expected, where) and
either finished with what decoded (`on_damage="warn"`, the default) or refused ("fail").
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ghost_engine.errors import (
    DamagedMediaError,
    OutputError,
    RunInterrupted,
    UnsupportedMediaError,
    UserInputError,
    one_line,
)
from ghost_engine.interfaces import StreamStage
from ghost_engine.pipeline.faces_log import SegmentedFacesLog
from ghost_engine.pipeline.progress import Progress, ProgressConfig
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.resume import BoundaryStates, SegmentTagged, checkpointed
from ghost_engine.pipeline.runner import PipelineConfig, PipelineStats, run_pipeline
from ghost_engine.provenance.manifest import ProvenanceConfig
from ghost_engine.provenance.sign import check_provenance, seal_file
from ghost_engine.types import Frame
from ghost_engine.video.damage import FAIL, WARN, Damage, DecodeWatch, check_on_damage, find_damage
from ghost_engine.video.encode import EncodeSettings, plan_encode
from ghost_engine.video.journal import JOURNAL_NAME, Journal, read_journal
from ghost_engine.video.lock import OutputLock, check_output_free
from ghost_engine.video.mux import CONTAINERS, MuxResult, TimeRange, mux_output, muxer_for
from ghost_engine.video.output import (
    check_output_path,
    commit,
    discard,
    remove_stale_partials,
    temp_path_for,
)
from ghost_engine.video.paths import Role, RunPaths, check_run_paths
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS, check_max_pixels
from ghost_engine.video.reader import (
    VideoInfo,
    probe_video,
    read_frames,
    validate_range,
)
from ghost_engine.video.segments import SegmentPlan, SegmentWriter
from ghost_engine.video.workdir import check_work_dir, make_work_dir, remove_work_dir, work_dir_for

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
    """Everything about a video run except the stages themselves.

    `inputs` are the other files the run reads, by role (("source photo", path)...):
    like the target, no output may be one of them. `side_outputs` are other files the
    caller will write (("--json", path)), checked with the output. `overwrite` is the
    consent to replace an existing output. `max_pixels` caps the frame size (from the
    header, before decoding); `on_damage` is "warn" or "fail" (`choices.ON_DAMAGE`).
    """

    target: Path
    output: Path
    encode: EncodeSettings = EncodeSettings()
    time_range: TimeRange = TimeRange()
    resume: bool = False
    segment_s: float = 10.0
    pipeline: PipelineConfig = PipelineConfig()
    progress: ProgressConfig = ProgressConfig()
    fingerprint: dict = field(default_factory=dict)  # stage settings; resume must match
    inputs: tuple[Role, ...] = ()
    side_outputs: tuple[Role, ...] = ()
    overwrite: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    on_damage: str = WARN
    faces_log: Path | None = None  # --faces-log: one JSON line per output frame
    provenance: ProvenanceConfig = ProvenanceConfig()  # the C2PA manifest (see provenance/)


@dataclass(frozen=True)
class CheckedVideo:
    """What the checks found: the input's info and the size frames are encoded at (the
    input's, or padded to what the encoder takes)."""

    info: VideoInfo
    encode_size: tuple[int, int]

    @property
    def padded(self) -> bool:
        return self.encode_size != (self.info.width, self.info.height)


def check_video_job(job: VideoJob) -> CheckedVideo:
    """Every check that needs no decoding beyond the first frame, in the order a user
    fixes them: settings, the output's name and folder, the paths against each other,
    the lock, then the input's header and the encoder on a blank frame of its size."""
    validate_range(job.time_range.start_s or None, job.time_range.end_s)
    if not math.isfinite(job.segment_s) or job.segment_s <= 0:
        raise UserInputError(
            f"--segment-seconds must be a finite number above 0, got {job.segment_s}",
            option="--segment-seconds",
            value=job.segment_s,
        )
    check_max_pixels(job.max_pixels)
    check_on_damage(job.on_damage)
    check_output_path(job.output)
    fmt = muxer_for(job.output)
    job.encode.resolve()
    if fmt not in _OUTPUTS_FOR[job.encode.codec]:
        raise OutputError(
            f"--codec {job.encode.codec} cannot be stored in a {job.output.suffix} file; "
            f"use one of: {', '.join(_suffixes(_OUTPUTS_FOR[job.encode.codec]))}",
            option="--codec",
            value=job.encode.codec,
        )
    inputs = (("target", Path(job.target)), *job.inputs)
    side = job.side_outputs
    if job.faces_log is not None:
        side = (*side, ("--faces-log", Path(job.faces_log)))
    paths = RunPaths(Path(job.output), inputs, side)
    check_run_paths(paths, overwrite=job.overwrite)
    work = work_dir_for(job.output)
    check_work_dir(work)
    if job.resume and (work / JOURNAL_NAME).is_file():
        read_journal(work)  # a damaged journal is refused now, not after models load
    check_output_free(job.output)
    check_provenance(job.provenance, job.output)
    info = probe_video(job.target, job.max_pixels)
    if info.duration_s is not None and job.time_range.start_s >= info.duration_s:
        raise UserInputError(
            f"--start {job.time_range.start_s} s is past the end of "
            f"{one_line(str(job.target))} ({info.duration_s:.3f} s)",
            option="--start",
            value=job.time_range.start_s,
        )
    segment_format, _ = _SEGMENT_FORMAT.get(job.encode.codec, ("mp4", ".mp4"))
    size = plan_encode(
        job.encode, info.width, info.height, format_name=segment_format, rate=info.rate
    )
    return CheckedVideo(info, size)


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
    is set when a step fails (see `run_pipeline`). Ctrl-C or SIGTERM (as
    KeyboardInterrupt) ends it with `RunInterrupted`, saying what was kept for resuming.
    """
    checked = check_video_job(job)
    stages, states = checkpointed(stages)
    with OutputLock(job.output):
        for stale in remove_stale_partials(job.output):
            _log.info("removed %s, left by a run that was killed", stale)
        work = work_dir_for(job.output)
        journal = _open_journal(job, work, _fingerprint(job, checked.info))
        states.folder = work
        states.restore(journal, work)
        try:
            return _run_journalled(job, checked, stages, report, read, stop, work, journal, states)
        except RunInterrupted:
            raise
        except KeyboardInterrupt as exc:
            raise _interrupted(work, journal) from exc


def _run_journalled(
    job: VideoJob,
    checked: CheckedVideo,
    stages: Sequence[StreamStage],
    report: RunReport,
    read: Callable[..., Iterable],
    stop: threading.Event | None,
    work: Path,
    journal: Journal,
    states: BoundaryStates,
) -> RunReport:
    info = checked.info
    report.resumed_segments = len(journal.segments)
    report.resumed_frames = journal.frames
    plan = SegmentPlan(job.time_range.start_s, job.segment_s, info.time_base)
    writer = _segment_writer(job, checked, work, journal, plan, states)
    if checked.padded:
        width, height = checked.encode_size
        _log.warning(
            "%s is %dx%d; the %s encoder needs whole chroma samples, so the output is %dx%d "
            "(the last column and row repeated)",
            one_line(str(job.target)),
            info.width,
            info.height,
            job.encode.codec,
            width,
            height,
        )
    begin, first_index = job.time_range.start_s, 0
    if writer.first_pending > 0:
        # Stateful stages continue from the states saved at this boundary, so decoding
        # starts there, with the frame numbers of an uninterrupted run.
        begin, first_index = plan.start_s(writer.first_pending), journal.frames
    frames = read(
        job.target, start_s=begin or None, end_s=job.time_range.end_s, first_index=first_index
    )
    whole = first_index == 0 and not job.time_range.start_s and job.time_range.end_s is None
    expected = (info.frame_count or None) if whole else None
    watch = DecodeWatch(frames, path=job.target, policy=job.on_damage, expected=expected)
    progress = Progress(_expected_frames(info, job, journal), job.progress)
    faces_log = SegmentedFacesLog(work) if job.faces_log is not None else None
    on_frame = progress if faces_log is None else _both(progress, faces_log)
    try:
        stats = run_pipeline(
            SegmentTagged(watch, plan), stages, writer, job.pipeline, on_frame=on_frame, stop=stop
        )
        writer.close()
        if faces_log is not None:
            faces_log.close()
    except KeyboardInterrupt:
        writer.abort()
        raise
    except DamagedMediaError:
        writer.abort()
        remove_work_dir(work)
        raise
    except BaseException:
        writer.abort()
        _keep_or_discard(work, journal)
        raise
    finally:
        progress.close()
    damage = _damage(job, info, watch, begin)
    if damage is not None:
        _settle_damage(job, damage, work)
    if not journal.segments:
        remove_work_dir(work)
        raise UnsupportedMediaError(
            f"{one_line(str(job.target))} has no video frames in the requested range; "
            "nothing to write",
            path=job.target,
        )
    mux = join_and_sign(job, writer.segment_files(), work, report)
    if faces_log is not None and job.faces_log is not None:
        faces_log.join([s.index for s in journal.segments], job.faces_log)
    _fill_report(report, stats, journal, stages, mux)
    _note_settings(report, job, checked, damage)
    remove_work_dir(work)
    return report


def segment_format(codec: str) -> tuple[str, str]:
    """(muxer, file suffix) of the segment files for `codec` (a two-phase run's workers
    write the same files as a sequential run)."""
    return _SEGMENT_FORMAT.get(codec, ("mp4", ".mp4"))


def job_fingerprint(job: VideoJob, info: VideoInfo) -> dict:
    """What a resume must find unchanged: the target by path, size and time, the encode
    settings, the range, the segment length and the stages' own fingerprint."""
    return _fingerprint(job, info)


def _suffixes(formats: tuple[str, ...]) -> list[str]:
    return [suffix for suffix, fmt in CONTAINERS.items() if fmt in formats]


def _open_journal(job: VideoJob, work: Path, fingerprint: dict) -> Journal:
    if job.resume and (work / JOURNAL_NAME).is_file():
        journal = Journal.load(work, fingerprint)
        _log.info("resuming after %d finished segment(s)", len(journal.segments))
        return journal
    make_work_dir(work, job.output)
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
    checked: CheckedVideo,
    work: Path,
    journal: Journal,
    plan: SegmentPlan,
    states: BoundaryStates,
) -> SegmentWriter:
    fmt, suffix = _SEGMENT_FORMAT.get(job.encode.codec, ("mp4", ".mp4"))
    width, height = checked.encode_size
    return SegmentWriter(
        work,
        journal,
        plan,
        settings=job.encode,
        format_name=fmt,
        suffix=suffix,
        width=width,
        height=height,
        rate=checked.info.rate,
        pts_offset=round(job.time_range.start_s / checked.info.time_base),
        save_state=states.save,
    )


def join_and_sign(
    job: VideoJob, segment_files: Sequence[Path], work: Path, report: RunReport
) -> MuxResult:
    """Join the segments into the temporary file, sign it whole (its signed copy is
    made in the work folder), then rename it onto the output: the one way a video job's
    output appears, sequential or two-phase."""
    temp = temp_path_for(job.output)
    try:
        result = mux_output(list(segment_files), job.target, temp, job.time_range)
        scratch = work / f"signing{Path(job.output).suffix}"
        inputs = (("target", Path(job.target)), *job.inputs)
        report.provenance = seal_file(temp, scratch, job.output, job.provenance, inputs).as_dict()
        commit(temp, job.output, replace=job.overwrite)
    except BaseException:
        discard(temp)
        raise
    return result


def _damage(job: VideoJob, info: VideoInfo, watch: DecodeWatch, begin: float) -> Damage | None:
    """The damage the decoding showed, judged against the header: the frame count the
    watch was given (whole file only), and the video stream's end (or the range's)."""
    end_s = job.time_range.end_s
    stream_end = None
    if info.stream_duration_s is not None:
        stream_end = info.start_s + info.stream_duration_s
    expected_end = stream_end if end_s is None or stream_end is None else min(end_s, stream_end)
    return find_damage(
        watch, start_s=begin, expected_end_s=expected_end, frame_s=1.0 / float(info.rate)
    )


def _settle_damage(job: VideoJob, damage: Damage, work: Path) -> None:
    """Refuse ("fail": the work folder goes, since resuming would meet the same damage),
    or warn in one line and carry on with what decoded."""
    message = damage.message(job.target, job.on_damage)
    if job.on_damage == FAIL:
        remove_work_dir(work)
        raise DamagedMediaError(message, path=job.target)
    _log.warning("%s", message)


def _interrupted(work: Path, journal: Journal) -> RunInterrupted:
    """The one line for Ctrl-C or SIGTERM: what was kept for `--resume`, if anything."""
    if journal.segments and work.is_dir():
        return RunInterrupted(
            f"interrupted: {len(journal.segments)} finished segment(s) kept in "
            f"{one_line(str(work))}; run the same command with --resume to continue",
            path=work,
        )
    remove_work_dir(work)
    return RunInterrupted("interrupted; nothing was written")


def _keep_or_discard(work: Path, journal: Journal) -> None:
    if journal.segments:
        _log.warning(
            "stopped after %d finished segment(s); they are kept in %s, run again with "
            "--resume to continue",
            len(journal.segments),
            one_line(str(work)),
        )
    else:
        remove_work_dir(work)


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


def _fill_report(
    report: RunReport,
    stats: PipelineStats,
    journal: Journal,
    stages: Sequence[StreamStage],
    mux: MuxResult,
) -> None:
    report.frames = journal.frames
    report.frames_with_faces = journal.frames_with_faces
    report.frames_without_faces = journal.frames - journal.frames_with_faces
    report.wall_s = stats.wall_s
    report.stage_seconds = {k: round(v.seconds, 4) for k, v in stats.steps.items()}
    report.add_swap_seconds(stages)
    report.audio = list(mux.audio)
    report.dropped_streams = list(mux.dropped)


def _note_settings(
    report: RunReport, job: VideoJob, checked: CheckedVideo, damage: Damage | None
) -> None:
    """What the run did to fit the input, in the report's settings: the padding of an
    odd size (`encode.padded_to`) and the input's limits and damage (`input`)."""
    if checked.padded:
        report.settings.setdefault("encode", {})["padded_to"] = list(checked.encode_size)
    report.settings["input"] = {
        "width": checked.info.width,
        "height": checked.info.height,
        "max_pixels": job.max_pixels,
        "on_damage": job.on_damage,
        "damage": None if damage is None else damage.as_dict(),
    }
