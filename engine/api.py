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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghost_engine.backend import open_backend
from ghost_engine.errors import UserInputError
from ghost_engine.face.photos import CHOICE_NOTE, PHOTO_LOG
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.interfaces import ImageOps, StreamStage
from ghost_engine.pipeline.face_models import loaded_models
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
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.fingerprint import photos_fingerprint
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
