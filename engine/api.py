"""The Python API, mirroring `ghost-engine run`.

    import ghost_engine
    ghost_engine.swap_video("in.mp4", ["face.jpg"], "out.mp4")
    ghost_engine.swap_image("photo.jpg", [["a.jpg", "b.jpg"]], "out.png")

`sources` lists people; each is one photo or a list of photos of the same person.
`stages` replaces the face-swap stage with your own `StreamStage`s (e.g. for tests).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ghost_engine.backend import open_backend
from ghost_engine.errors import RunInterrupted, UnsupportedMediaError, UserInputError, one_line
from ghost_engine.face.geometry import align_face, transform_points
from ghost_engine.face.photos import CHOICE_NOTE, PHOTO_LOG
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.interfaces import ImageOps, PassStage, Recognizer, StreamStage
from ghost_engine.pipeline.face_models import build_models, loaded_models
from ghost_engine.pipeline.progress import ProgressConfig
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.runner import PipelineConfig
from ghost_engine.pipeline.swap import (
    build_swap_stage,
    check_people,
    close_stages,
    make_config,
)
from ghost_engine.provenance.manifest import ProvenanceConfig
from ghost_engine.types import Face, Frame
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.fingerprint import photos_fingerprint
from ghost_engine.video.images import read_image
from ghost_engine.video.media import MediaKind, check_readable, detect_kind
from ghost_engine.video.mux import TimeRange
from ghost_engine.video.output import final_path
from ghost_engine.video.paths import Role
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS, check_image_pixels

if TYPE_CHECKING:
    from ghost_engine.backend.cuda.pipeline import DeviceBackendConfig

PathLike = str | Path
People = PathLike | Sequence[PathLike | Sequence[PathLike]]


def swap_video(
    target: PathLike,
    sources: People,
    output: PathLike,
    *,
    target_faces: Sequence[PathLike] = (),
    config: SwapConfig | None = None,
    encode: EncodeSettings | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    resume: bool = False,
    segment_s: float = 10.0,
    progress: str = "auto",
    stages: Sequence[StreamStage] | None = None,
    backend: DeviceBackendConfig | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_damage: str = "warn",
    faces_log: PathLike | None = None,
    provenance: ProvenanceConfig | None = None,
) -> RunReport:
    """Swap faces in a video; returns what was done. `config` is a `SwapConfig`.

    The backend follows `config.device` (`ghost_engine.backend.open_backend`: on a GPU
    frames stay on the GPU); `backend` (a `DeviceBackendConfig`) chooses the
    device-frame backend explicitly, e.g. its "emulated" flavour runs that backend's
    code on a CPU. `faces_log`: write one JSON line per output frame there (who got
    which face; see `ghost_engine.pipeline.faces_log`).

    An existing `output` is replaced only with `overwrite=True`; an output that is the
    target or one of the photos is refused whatever the flag. Frames above `max_pixels`
    are refused from the header; `on_damage` ("warn" or "fail") says what a damaged
    target gives (see `pipeline.video_job`). `provenance` says how the output's C2PA
    manifest is signed (default: on, with this installation's identity; see
    `ghost_engine.provenance`); the report's `provenance` says what it got.
    """
    from ghost_engine.pipeline.video_job import VideoJob, check_video_job, run_video

    people, refs = _people(sources), [Path(p) for p in target_faces]
    config = config or make_config()
    check_matching(config.all_faces, refs)
    encode = encode or EncodeSettings()
    job = VideoJob(
        target=Path(target),
        output=final_path(Path(output)),
        encode=encode,
        time_range=TimeRange(start_s or 0.0, end_s),
        resume=resume,
        segment_s=segment_s,
        pipeline=PipelineConfig(batch_size=config.batch_size),
        progress=ProgressConfig(mode=progress),
        fingerprint=_stage_fingerprint(config, people, refs, stages),
        inputs=_input_roles(people, refs),
        overwrite=overwrite,
        max_pixels=max_pixels,
        on_damage=on_damage,
        faces_log=None if faces_log is None else Path(faces_log),
        provenance=provenance or ProvenanceConfig(),
    )
    check_video_job(job)
    report = _report("video", target, output, people)
    report.settings = {"encode": dataclasses.asdict(encode), "swap": _config_dict(config)}
    if stages is not None:
        return run_video(job, list(stages), report)
    _check_photos(people, refs, max_pixels)
    chosen = open_backend(config.device, cuda=backend)
    _, pix_fmt, _ = job.encode.resolve()
    built: list[SwapStage] = []

    def make_stage(ops: ImageOps) -> SwapStage:
        built.append(build_swap_stage(config, people, refs, backend=chosen, ops=ops))
        return built[-1]

    run_ctx = chosen.video_run(
        make_stage, job.pipeline, pix_fmt, generator_engine=config.generator_engine
    )
    with _photo_choices(report, people, refs), run_ctx as run:
        # the model files by identity, known once loaded: a resume must find them unchanged
        loaded = built[-1] if built else None
        if isinstance(loaded, SwapStage):
            models = {"models": loaded.model_files}
            job = dataclasses.replace(job, fingerprint={**job.fingerprint, **models})
            report.settings["models"] = loaded_models(loaded)
        run_video(job, run.stages, report, read=run.read, stop=run.stop)
    if chosen.frames_on_device:
        report.settings["cuda_backend"] = run.summary()
    return report


def swap_image(
    target: PathLike,
    sources: People,
    output: PathLike,
    *,
    target_faces: Sequence[PathLike] = (),
    config: SwapConfig | None = None,
    stages: Sequence[StreamStage] | None = None,
    faces_log: PathLike | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    provenance: ProvenanceConfig | None = None,
) -> RunReport:
    """Swap faces in one image (written as labelled, C2PA-signed PNG or JPEG);
    `faces_log`, `overwrite`, `max_pixels` and `provenance` as for `swap_video`."""
    from ghost_engine.pipeline.image_job import ImageJob, check_image_job, run_image

    people, refs = _people(sources), [Path(p) for p in target_faces]
    check_matching(bool(config is not None and config.all_faces), refs)
    job = ImageJob(
        target=Path(target),
        output=final_path(Path(output)),
        inputs=_input_roles(people, refs),
        overwrite=overwrite,
        max_pixels=max_pixels,
        faces_log=None if faces_log is None else Path(faces_log),
        provenance=provenance or ProvenanceConfig(),
    )
    check_image_job(job)
    report = _report("image", target, output, people)
    report.settings = {"swap": _config_dict(config)}
    if stages is None:
        _check_photos(people, refs, max_pixels)
    with _photo_choices(report, people, refs), _stages(config, people, refs, stages) as built:
        for stage in built:
            if isinstance(stage, SwapStage):  # which models the face swap loaded
                report.settings["models"] = loaded_models(stage)
        return run_image(job, built, report)


def check_inputs(
    target: PathLike,
    output: PathLike,
    *,
    encode: EncodeSettings | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    segment_s: float = 10.0,
    resume: bool = False,
    sources: People = (),
    target_faces: Sequence[PathLike] = (),
    side_outputs: Mapping[str, PathLike] | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_damage: str = "warn",
    provenance: ProvenanceConfig | None = None,
) -> MediaKind:
    """Every check on target, photos and outputs that needs no models; the target's kind.

    The CLI calls it first, so a bad file is reported before any model is loaded.
    `side_outputs` maps a flag to a file the caller writes besides the output (the CLI's
    `--json`): it is validated, and it may be neither an input nor the output. The
    photos' checks come last, after those of the target and the output.
    """
    people, refs = _people(sources), [Path(p) for p in target_faces]
    roles = _input_roles(people, refs)
    side = tuple((flag, Path(path)) for flag, path in (side_outputs or {}).items())
    output = final_path(Path(output))
    kind = detect_kind(Path(target))
    if kind is MediaKind.IMAGE:
        from ghost_engine.pipeline.image_job import ImageJob, check_image_job

        job = ImageJob(
            Path(target),
            output,
            roles,
            side,
            overwrite,
            max_pixels,
            provenance=provenance or ProvenanceConfig(),
        )
        check_image_job(job)
    else:
        from ghost_engine.pipeline.video_job import VideoJob, check_video_job

        check_video_job(
            VideoJob(
                target=Path(target),
                output=output,
                encode=encode or EncodeSettings(),
                time_range=TimeRange(start_s or 0.0, end_s),
                segment_s=segment_s,
                resume=resume,
                inputs=roles,
                side_outputs=side,
                overwrite=overwrite,
                max_pixels=max_pixels,
                on_damage=on_damage,
                provenance=provenance or ProvenanceConfig(),
            )
        )
    if people or refs:
        _check_photos(people, refs, max_pixels)
    return kind


def check_matching(all_faces: bool, target_faces: Sequence[PathLike]) -> None:
    """`all_faces` swaps every face with the first source, so reference photos, which
    pick the faces to swap, contradict it."""
    if all_faces and target_faces:
        raise UserInputError(
            "--all-faces swaps every face, so -t/--target-face (which picks faces) cannot "
            "go with it; give one or the other",
            option="--all-faces",
        )


def swap(target: PathLike, sources: People, output: PathLike, **options: Any) -> RunReport:
    """`swap_video` or `swap_image`, chosen by the target's content (not its name).

    Options that only apply to videos are ignored for an image target.
    """
    if detect_kind(Path(target)) is MediaKind.IMAGE:
        names = (
            *("target_faces", "config", "stages", "overwrite", "max_pixels", "faces_log"),
            "provenance",
        )
        keep = {k: v for k, v in options.items() if k in names}
        return swap_image(target, sources, output, **keep)
    return swap_video(target, sources, output, **options)


class _stages:
    """Context manager: the given stages, or the swap stage built (and closed) here."""

    def __init__(
        self,
        config: SwapConfig | None,
        people: list[list[Path]],
        refs: list[Path],
        stages: Sequence[StreamStage] | None,
    ) -> None:
        self._args = (config, people, refs)
        self._given = stages
        self._built: list[StreamStage] = []

    def __enter__(self) -> list[StreamStage]:
        if self._given is not None:
            return list(self._given)
        config, people, refs = self._args  # the photos were checked by the caller
        self._built = [build_swap_stage(config or make_config(), people, refs)]
        return self._built

    def __exit__(self, *exc: object) -> None:
        close_stages(self._built)


def _check_photos(people: list[list[Path]], refs: list[Path], max_pixels: int) -> None:
    """Every photo readable and within the pixel limit, and the people/reference counts
    consistent, before any model loads."""
    for role, path in _input_roles(people, refs):
        check_readable(path, role)
        check_image_pixels(path, max_pixels, role)
    check_people(people, refs)


def _input_roles(people: list[list[Path]], refs: list[Path]) -> tuple[Role, ...]:
    """The photos a run reads, each with the words that name it in messages."""
    photos = [("source photo", p) for person in people for p in person]
    return (*photos, *(("target face photo", p) for p in refs))


@contextmanager
def _photo_choices(report: RunReport, people: list[list[Path]], refs: list[Path]) -> Iterator[None]:
    """While the stage is built, the face a photo with several faces gave (which
    `face.photos` also logs) goes into `report.settings["source_photos"]`."""
    photos = {str(p) for _, p in _input_roles(people, refs)}

    class Notes(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            note = getattr(record, CHOICE_NOTE, None)
            if isinstance(note, dict) and note.get("photo") in photos:
                report.settings.setdefault("source_photos", []).append(note)

    handler = Notes(level=logging.WARNING)
    PHOTO_LOG.addHandler(handler)
    try:
        yield
    finally:
        PHOTO_LOG.removeHandler(handler)


def _people(sources: People) -> list[list[Path]]:
    if isinstance(sources, (str, Path)):
        return [[Path(sources)]]
    people = []
    for person in sources:
        if isinstance(person, (str, Path)):
            people.append([Path(person)])
        else:
            people.append([Path(p) for p in person])
    return people


def _config_dict(config: Any | None) -> dict:
    if config is None or not dataclasses.is_dataclass(config):
        return {}
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()}


# SwapConfig fields that change no pixel: a resume may differ in them
_NOT_PIXELS = frozenset({"download", "models_dir"})


def _stage_fingerprint(
    config: SwapConfig,
    people: list[list[Path]],
    refs: list[Path],
    stages: Sequence[StreamStage] | None,
) -> dict:
    """What the stages' output depends on: settings, photos by content, custom stages."""
    settings = {k: v for k, v in _config_dict(config).items() if k not in _NOT_PIXELS}
    return {
        "swap": settings,
        "photos": photos_fingerprint(people, refs),
        "custom_stages": [s.name for s in stages] if stages else [],
    }


def _report(kind: str, target: PathLike, output: PathLike, people) -> RunReport:
    return RunReport(
        kind=kind,
        target=str(target),
        output=str(output),
        sources=[[str(p) for p in person] for person in people],
    )


# -- for interactive front ends (`ghost-engine ui`): people, previews, watched runs -----


@dataclasses.dataclass(frozen=True)
class TargetPerson:
    """One person found in a target by `find_people`.

    `thumbnail` is an RGB crop around the person's largest sampled face, wide and large
    enough for the detector to find the face again, so it can be written to a file and
    given as that person's `target_faces` reference. `frame_index`/`time_s` say where
    that face was; `frames_seen` in how many sampled frames the person appeared.
    """

    index: int
    frame_index: int
    time_s: float
    box: tuple[float, float, float, float]
    thumbnail: np.ndarray
    frames_seen: int


def find_people(
    target: PathLike,
    *,
    config: SwapConfig | None = None,
    sample_frames: int = 12,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[TargetPerson]:
    """The distinct people in a video or image target, largest-seen first.

    Up to `sample_frames` frames spread over a video are searched with the config's
    detector and recogniser; faces whose identity similarity exceeds
    `config.similarity_threshold` (the rule the swap itself matches references by) are
    one person, and two faces of one frame are never the same person. A UI shows one
    thumbnail each and turns the user's choice into `target_faces` references.
    """
    if sample_frames < 1:
        raise UserInputError(
            f"sample_frames must be 1 or more, got {sample_frames}", value=sample_frames
        )
    config = dataclasses.replace(
        config or make_config(), all_faces=False, generator="passthrough", enhance=False
    )
    frames = _sampled_frames(Path(target), sample_frames, max_pixels)
    models = build_models(config, open_backend(config.device).sessions)
    recognizer = models.recognizer
    assert recognizer is not None  # all_faces is off, so matching has a recogniser
    people: list[_Seen] = []
    for frame in frames:
        faces = models.detector([frame.image])[0]
        if not faces:
            continue
        crops = [align_face(frame.image, f.kps) for f in faces]
        pairs = zip(faces, crops, strict=True)
        kps = np.stack([transform_points(f.kps, c.matrix) for f, c in pairs])
        embeddings = recognizer.embed(np.stack([c.image for c in crops]), kps)
        taken: set[int] = set()
        for face, embedding in zip(faces, embeddings, strict=True):
            person = _closest(people, embedding, recognizer, config.similarity_threshold, taken)
            if person is None:
                people.append(_Seen(embedding, frame, face))
                person = people[-1]
            else:
                person.add(embedding, frame, face)
            taken.add(id(person))
    people.sort(key=lambda p: -p.area)
    return [p.result(i) for i, p in enumerate(people)]


@dataclasses.dataclass(frozen=True)
class Preview:
    """One frame before and after the swap with the settings given (`preview_frame`);
    `faces_swapped` counts the faces that got a source."""

    before: np.ndarray
    after: np.ndarray
    faces_swapped: int
    frame_index: int
    time_s: float


def preview_frame(
    target: PathLike,
    sources: People,
    *,
    target_faces: Sequence[PathLike] = (),
    config: SwapConfig | None = None,
    time_s: float = 0.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Preview:
    """The frame of a video at `time_s` (or the image) swapped with `config`, nothing
    written: what a run would make of it, to check settings before a long run. The
    smoother sees this one frame only, so points are not smoothed over neighbours."""
    people, refs = _people(sources), [Path(p) for p in target_faces]
    config = config or make_config()
    check_matching(config.all_faces, refs)
    frame = _frame_at(Path(target), time_s, max_pixels)
    before = np.array(frame.image, copy=True)
    _check_photos(people, refs, max_pixels)
    stage = build_swap_stage(config, people, refs)
    try:
        out = [*stage.process([frame]), *stage.flush()]
    finally:
        stage.close()
    done = out[0]
    return Preview(
        before=before,
        after=np.asarray(done.image),
        faces_swapped=int(done.meta.get("faces_swapped", 0)),
        frame_index=done.index,
        time_s=float(done.pts_seconds or 0.0),
    )


@dataclasses.dataclass
class RunControl:
    """Watches and stops a `swap_controlled` run from another thread (a UI's).

    `on_progress(done, total)` is called as frames leave the face stages (`total` is the
    header's frame count, 0 when unknown); `cancel()` ends the run at the next batch
    with `RunInterrupted`, and no output is written.
    """

    on_progress: Callable[[int, int], None] | None = None
    stopped: threading.Event = dataclasses.field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.stopped.set()

    def check(self) -> None:
        """Raise `RunInterrupted` once `cancel()` was called."""
        if self.stopped.is_set():
            raise RunInterrupted("the run was cancelled; no output was written")


def swap_controlled(
    target: PathLike,
    sources: People,
    output: PathLike,
    *,
    control: RunControl,
    target_faces: Sequence[PathLike] = (),
    config: SwapConfig | None = None,
    encode: EncodeSettings | None = None,
    overwrite: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    faces_log: PathLike | None = None,
) -> RunReport:
    """`swap` (video or image, by content) with progress and cancel through `control`.

    Every check of `check_inputs` runs first; the swap stage runs on the host's frames
    (its networks on `config.device`), followed by a stage that reports progress and
    watches for cancel.
    """
    people, refs = _people(sources), [Path(p) for p in target_faces]
    config = config or make_config()
    check_matching(config.all_faces, refs)
    side = {"--faces-log": faces_log} if faces_log is not None else None
    kind = check_inputs(
        target,
        output,
        encode=encode,
        sources=sources,
        target_faces=refs,
        side_outputs=side,
        overwrite=overwrite,
        max_pixels=max_pixels,
    )
    control.check()
    if kind is MediaKind.IMAGE:
        report = swap_image(
            target,
            people,
            output,
            target_faces=refs,
            config=config,
            faces_log=faces_log,
            overwrite=overwrite,
            max_pixels=max_pixels,
        )
        if control.on_progress is not None:
            control.on_progress(1, 1)
        return report
    from ghost_engine.video.reader import probe_video

    total = probe_video(Path(target), max_pixels).frame_count
    stage = build_swap_stage(config, people, refs)
    try:
        report = swap_video(
            target,
            people,
            output,
            target_faces=refs,
            config=config,
            encode=encode,
            progress="quiet",
            stages=[stage, _Watch(control, total)],
            overwrite=overwrite,
            max_pixels=max_pixels,
            faces_log=faces_log,
        )
        report.settings["models"] = loaded_models(stage)
    finally:
        stage.close()
    return report


class _Watch(PassStage):
    """Counts the frames that leave the face stages and stops the run on cancel."""

    name = "watch"

    def __init__(self, control: RunControl, total: int) -> None:
        self.control, self.total, self.done = control, total, 0

    def process(self, frames: list[Frame]) -> list[Frame]:
        self.control.check()
        self.done += len(frames)
        if self.control.on_progress is not None:
            self.control.on_progress(self.done, self.total)
        return frames


class _Seen:
    """A person while `find_people` samples: embeddings summed, the largest face kept."""

    def __init__(self, embedding: np.ndarray, frame: Frame, face: Face) -> None:
        self.total = np.zeros_like(np.asarray(embedding, np.float64))
        self.count, self.area = 0, -1.0
        self.frame, self.face = frame, face
        self.add(embedding, frame, face)

    def add(self, embedding: np.ndarray, frame: Frame, face: Face) -> None:
        self.total = self.total + np.asarray(embedding, np.float64)
        self.count += 1
        x1, y1, x2, y2 = (float(v) for v in face.box)
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        if area > self.area:
            self.area, self.frame, self.face = area, frame, face

    @property
    def mean(self) -> np.ndarray:
        return self.total / self.count

    def result(self, index: int) -> TargetPerson:
        x1, y1, x2, y2 = (float(v) for v in self.face.box)
        return TargetPerson(
            index=index,
            frame_index=self.frame.index,
            time_s=float(self.frame.pts_seconds or 0.0),
            box=(x1, y1, x2, y2),
            thumbnail=face_thumbnail(self.frame.image, self.face.box),
            frames_seen=self.count,
        )


def _closest(
    people: list[_Seen],
    embedding: np.ndarray,
    recognizer: Recognizer,
    threshold: float,
    taken: set[int],
) -> _Seen | None:
    """The person most like `embedding` above `threshold`, not already given a face of
    this frame."""
    free = [p for p in people if id(p) not in taken]
    if not free:
        return None
    sims = recognizer.similarity(np.asarray(embedding)[None], np.stack([p.mean for p in free]))[0]
    best = int(np.argmax(sims))
    return free[best] if float(sims[best]) > threshold else None


# the thumbnail: this many face widths around the face, at least this many pixels wide
_THUMB_CONTEXT = 2.0
_THUMB_MIN_SIDE = 256


def face_thumbnail(image: np.ndarray, box: Sequence[float] | np.ndarray) -> np.ndarray:
    """A square RGB crop centred on `box` with room around the face (clipped to the
    image), scaled up to at least 256 pixels: a detector finds the face in it again."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = image.shape[:2]
    side = _THUMB_CONTEXT * max(x2 - x1, y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    scale = _THUMB_MIN_SIDE / max(1, min(crop.shape[:2]))
    if scale > 1:
        size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    return crop


def _sampled_frames(target: Path, count: int, max_pixels: int) -> list[Frame]:
    """The image, or up to `count` frames spread evenly over the video."""
    if detect_kind(target) is MediaKind.IMAGE:
        check_image_pixels(target, max_pixels, "target")
        return [read_image(target, "target")]
    from ghost_engine.video.reader import probe_video, read_frames

    info = probe_video(target, max_pixels)
    step = max(1, info.frame_count // count) if info.frame_count else 1
    frames: list[Frame] = []
    reader = read_frames(target)
    try:
        for frame in reader:
            if frame.index % step == 0:
                frames.append(frame)
                if len(frames) >= count:
                    break
    finally:
        reader.close()
    if not frames:
        raise UnsupportedMediaError(f"{one_line(str(target))} has no video frames", path=target)
    return frames


def _frame_at(target: Path, time_s: float, max_pixels: int) -> Frame:
    """The image, or the first video frame at or after `time_s`."""
    if not math.isfinite(time_s) or time_s < 0:
        raise UserInputError(
            f"the preview time must be a finite number of seconds, 0 or more; got {time_s}",
            value=time_s,
        )
    if detect_kind(target) is MediaKind.IMAGE:
        check_image_pixels(target, max_pixels, "target")
        return read_image(target, "target")
    from ghost_engine.video.reader import probe_video, read_frames

    info = probe_video(target, max_pixels)
    reader = read_frames(target, start_s=time_s or None)
    try:
        frame = next(reader, None)
    finally:
        reader.close()
    if frame is None:
        end = f" ({info.duration_s:.3f} s)" if info.duration_s is not None else ""
        raise UserInputError(
            f"no frame at {time_s} s: {one_line(str(target))} ends before it{end}",
            value=time_s,
        )
    # read_frames numbers from its start; the preview names the frame of the whole video
    seconds = (frame.pts_seconds or 0.0) - info.start_s
    return dataclasses.replace(frame, index=max(0, round(seconds * float(info.rate))))
