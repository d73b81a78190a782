"""The Python API, mirroring `ghost-engine run`.

    import ghost_engine
    ghost_engine.swap_video("in.mp4", ["face.jpg"], "out.mp4")
    ghost_engine.swap_image("photo.jpg", [["a.jpg", "b.jpg"]], "out.png")

`sources` lists people; each is one photo or a list of photos of the same person.
`stages` replaces the face-swap stage with your own `StreamStage`s (e.g. for tests).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghost_engine.backend import open_backend
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
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.fingerprint import photos_fingerprint
from ghost_engine.video.media import MediaKind, check_readable, detect_kind
from ghost_engine.video.mux import TimeRange

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
    faces_log: PathLike | None = None,
) -> RunReport:
    """Swap faces in a video; returns what was done. `config` is a `SwapConfig`.

    The backend follows `config.device` (`ghost_engine.backend.open_backend`: on a GPU
    frames stay on the GPU); `backend` (a `DeviceBackendConfig`) chooses the
    device-frame backend explicitly, e.g. its "emulated" flavour runs that backend's
    code on a CPU. `faces_log`: write one JSON line per output frame there (who got
    which face; see `ghost_engine.pipeline.faces_log`).
    """
    from ghost_engine.pipeline.video_job import VideoJob, check_video_job, run_video

    people, refs = _people(sources), [Path(p) for p in target_faces]
    config = config or make_config()
    encode = encode or EncodeSettings()
    if stages is None:
        _check_photos(people, refs)
    job = VideoJob(
        target=Path(target),
        output=Path(output),
        encode=encode,
        time_range=TimeRange(start_s or 0.0, end_s),
        resume=resume,
        segment_s=segment_s,
        pipeline=PipelineConfig(batch_size=config.batch_size),
        progress=ProgressConfig(mode=progress),
        fingerprint=_stage_fingerprint(config, people, refs, stages),
        faces_log=None if faces_log is None else Path(faces_log),
    )
    check_video_job(job)
    report = _report("video", target, output, people)
    report.settings = {"encode": dataclasses.asdict(encode), "swap": _config_dict(config)}
    if stages is not None:
        return run_video(job, list(stages), report)
    chosen = open_backend(config.device, cuda=backend)
    _, pix_fmt, _ = job.encode.resolve()
    built: list[SwapStage] = []

    def make_stage(ops: ImageOps) -> SwapStage:
        built.append(build_swap_stage(config, people, refs, backend=chosen, ops=ops))
        return built[-1]

    run_ctx = chosen.video_run(
        make_stage, job.pipeline, pix_fmt, generator_engine=config.generator_engine
    )
    with run_ctx as run:
        # the model files by identity, known once loaded: a resume must find them unchanged
        models = {"models": built[-1].model_files} if built else {}
        job = dataclasses.replace(job, fingerprint={**job.fingerprint, **models})
        if built:
            report.settings["models"] = loaded_models(built[-1])
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
) -> RunReport:
    """Swap faces in one image (written as labelled PNG or JPEG); `faces_log` as for
    `swap_video`."""
    from ghost_engine.pipeline.image_job import check_image_job, run_image

    people, refs = _people(sources), [Path(p) for p in target_faces]
    check_image_job(Path(target), Path(output))
    report = _report("image", target, output, people)
    report.settings = {"swap": _config_dict(config)}
    with _stages(config, people, refs, stages) as built:
        for stage in built:
            if isinstance(stage, SwapStage):  # which models the face swap loaded
                report.settings["models"] = loaded_models(stage)
        log = None if faces_log is None else Path(faces_log)
        return run_image(Path(target), Path(output), built, report, log)


def check_inputs(
    target: PathLike,
    output: PathLike,
    *,
    encode: EncodeSettings | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    segment_s: float = 10.0,
) -> MediaKind:
    """Every check on target and output that needs no models; the target's kind.

    The CLI calls it first, so a bad file is reported before any model is loaded.
    """
    kind = detect_kind(Path(target))
    if kind is MediaKind.IMAGE:
        from ghost_engine.pipeline.image_job import check_image_job

        check_image_job(Path(target), Path(output))
        return kind
    from ghost_engine.pipeline.video_job import VideoJob, check_video_job

    check_video_job(
        VideoJob(
            target=Path(target),
            output=Path(output),
            encode=encode or EncodeSettings(),
            time_range=TimeRange(start_s or 0.0, end_s),
            segment_s=segment_s,
        )
    )
    return kind


def swap(target: PathLike, sources: People, output: PathLike, **options: Any) -> RunReport:
    """`swap_video` or `swap_image`, chosen by the target's content (not its name).

    Options that only apply to videos are ignored for an image target.
    """
    if detect_kind(Path(target)) is MediaKind.IMAGE:
        image_options = ("target_faces", "config", "stages", "faces_log")
        keep = {k: v for k, v in options.items() if k in image_options}
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
        config, people, refs = self._args
        _check_photos(people, refs)
        self._built = [build_swap_stage(config or make_config(), people, refs)]
        return self._built

    def __exit__(self, *exc: object) -> None:
        close_stages(self._built)


def _check_photos(people: list[list[Path]], refs: list[Path]) -> None:
    """Every photo readable and the people/reference counts consistent, before any
    model loads."""
    for path in [*(p for person in people for p in person), *refs]:
        check_readable(path, "source photo" if path not in refs else "target face photo")
    check_people(people, refs)


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
