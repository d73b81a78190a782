"""The material every measurement shares: the video's first frames, the models the
face stage would load, the faces found, their crops and the source identity.

Models come from the face stage's own builder, so the benchmark times exactly what
`ghost-engine run` runs; where the generator's checkpoint is not installed it uses
fill-rule weights of the right architecture (timing does not depend on the values).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ghost_engine.backend import open_backend
from ghost_engine.errors import InputFileNotFoundError, UserInputError
from ghost_engine.face.geometry import align_face, transform_points
from ghost_engine.face.photos import person_embeddings
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.measure.bench_config import BenchConfig
from ghost_engine.pipeline.face_models import FaceModels, build_models
from ghost_engine.types import AlignedCrop, Face, Frame
from ghost_engine.video.encode import EncodeSettings, SegmentEncoder
from ghost_engine.video.reader import VideoInfo, probe_video, read_frames

if TYPE_CHECKING:  # the classes `build_models` gives (torch loads with the first network)
    from ghost_engine.face.enhance import FaceEnhancer
    from ghost_engine.face.generator import GeneratorRunner


def first_frames(path: Path, count: int) -> Iterator[Frame]:
    """The first `count` frames of a video; closing it releases the decoder at once."""
    frames = read_frames(path)
    try:
        for i, frame in enumerate(frames):
            if i >= count:
                return
            yield frame
    finally:
        frames.close()


@contextmanager
def encoding(info: VideoInfo, path: Path) -> Iterator[SegmentEncoder]:
    """An MP4 encoder for frames of the video `info` describes, with `run`'s default
    settings: closed (file finished) when the block ends, aborted when it raises."""
    encoder = SegmentEncoder(
        path,
        format_name="mp4",
        settings=EncodeSettings(),
        width=info.width,
        height=info.height,
        time_base=info.time_base,
        rate=info.rate,
    )
    try:
        yield encoder
    except BaseException:
        encoder.abort()
        raise
    encoder.close()


def generator_installed(config: BenchConfig) -> bool:
    """Whether the generator checkpoint for `config` is in the model store."""
    from ghost_engine.store import ModelStore

    return ModelStore(config.models_dir).is_installed(f"G_unet_{config.generator_blocks}blocks")


def swap_config(config: BenchConfig, *, random_weights: bool) -> SwapConfig:
    """The face stage's settings the benchmark runs with (run's defaults otherwise)."""
    return SwapConfig(
        generator="random" if random_weights else "ghost",
        generator_blocks=config.generator_blocks,
        batch_size=config.pipeline_batch,
        device=config.device,
        models_dir=config.models_dir,
        runtime=config.pipeline_runtime,
        enhance=config.enhance,
    )


@dataclass
class FaceJob:
    """One face the pipeline would swap: its frame, detection and aligned crop."""

    frame_index: int
    face: Face
    crop: AlignedCrop


@dataclass
class Workload:
    """Frames, models and faces prepared once; measurements never modify them."""

    info: VideoInfo
    frames: list[Frame]
    swap_config: SwapConfig
    models: FaceModels
    random_weights: bool
    detections: list[list[Face]]
    jobs: list[FaceJob]
    source_ids: np.ndarray | None

    @property
    def faces_per_frame(self) -> float:
        return len(self.jobs) / len(self.frames)

    @property
    def crops(self) -> np.ndarray:
        return np.stack([j.crop.image for j in self.jobs])

    @property
    def crop_points(self) -> np.ndarray:
        return np.stack([transform_points(j.face.kps, j.crop.matrix) for j in self.jobs])

    def z_ids(self, count: int) -> np.ndarray | None:
        """The source identity repeated for `count` faces (None for passthrough)."""
        if self.source_ids is None:
            return None
        return np.repeat(self.source_ids[:1], count, axis=0)

    @property
    def generator(self) -> GeneratorRunner:
        """The generator as `build_models` makes it (its network, if any, in `module`)."""
        return cast("GeneratorRunner", self.models.generator)

    @property
    def enhancer(self) -> FaceEnhancer | None:
        """The renovation network as `build_models` makes it (None when it is off)."""
        return cast("FaceEnhancer | None", self.models.enhancer)

    def implementations(self) -> dict[str, str]:
        """Which class does each model-backed stage, for the report."""
        m = self.models
        gen = self.generator.module
        return {
            "detect": type(m.detector).__name__,
            "identity": type(m.recognizer).__name__ if m.recognizer is not None else "none",
            "generator": f"{type(gen).__name__}({self.swap_config.generator_blocks} blocks)"
            if gen is not None
            else "passthrough",
            "landmarks": type(m.landmarks).__name__,
            "z_id": type(m.id_encoder).__name__ if m.id_encoder is not None else "none",
        }


def prepare(config: BenchConfig, *, random_weights: bool | None = None) -> Workload:
    """Decode, load the models, detect once and crop the face each frame would swap.

    Raises InputFileNotFoundError / UnsupportedMediaError for the video and
    UserInputError when no face is found in the frames the benchmark uses.
    """
    video = Path(config.video)
    if not video.is_file():
        raise InputFileNotFoundError(f"video not found: {video}; check the path")
    info = probe_video(video)
    frames = list(first_frames(video, config.frames))
    if random_weights is None:
        random_weights = not generator_installed(config)
    scfg = swap_config(config, random_weights=random_weights)
    models = build_models(scfg, open_backend(scfg.device).sessions)
    detections = models.detector([f.image for f in frames])
    jobs = [
        FaceJob(f.index, faces[0], align_face(f.image, faces[0].kps))
        for f, faces in zip(frames, detections, strict=True)
        if faces
    ]
    if not jobs:
        raise UserInputError(
            f"no face found in the first {len(frames)} frame(s) of {video}; the benchmark "
            "needs a video with a visible face (or more --frames)"
        )
    source_ids = _source_ids(config, models, jobs)
    return Workload(info, frames, scfg, models, random_weights, detections, jobs, source_ids)


def _source_ids(config: BenchConfig, models: FaceModels, jobs: list[FaceJob]) -> Any:
    """z_id of `--source`, else of the video's own first face (timing is the same)."""
    if models.id_encoder is None:
        return None
    if config.source is not None:
        person = person_embeddings(models.id_encoder, models.detector, [Path(config.source)])
        return person[None].astype(np.float32)
    first = jobs[0]
    kps = transform_points(first.face.kps, first.crop.matrix)[None]
    return models.id_encoder.embed(first.crop.image[None], kps).astype(np.float32)
