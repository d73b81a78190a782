"""Build the face-swap stage from its config, with the checks that need no models.

The stage's parts come from `ghost_engine.face` (analysis, synthesis, overlay), the
models from `face_models` and the device from the backend: this module puts them
together, so the face package itself never loads a file or picks a device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ghost_engine.backend import Backend, open_backend
from ghost_engine.errors import UserInputError
from ghost_engine.face.analysis import AnalysisStage
from ghost_engine.face.overlay import OverlayStage
from ghost_engine.face.photos import person_embeddings, photo_face, read_photo
from ghost_engine.face.records import SwapOverrides
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import SynthesisStage
from ghost_engine.interfaces import ImageOps, StreamStage
from ghost_engine.pipeline.face_models import FaceModels, build_models

if TYPE_CHECKING:
    from ghost_engine.store import ModelStore


def make_config(**fields: Any) -> SwapConfig:
    """A `SwapConfig` from keyword fields (the CLI's flags map onto them one to one);
    a bad combination is the user's to fix, so it is a UserInputError (exit code 2)."""
    try:
        return SwapConfig(**fields)
    except UserInputError:
        raise
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc


def check_people(sources: Sequence[Sequence[Path]], target_faces: Sequence[Path]) -> None:
    """One source person per reference face; several people need references."""
    if not sources or any(len(person) == 0 for person in sources):
        raise UserInputError("give at least one source photo (-s/--source IMG)", option="--source")
    if target_faces and len(target_faces) != len(sources):
        raise UserInputError(
            f"{len(sources)} source person(s) but {len(target_faces)} target face(s): give "
            "one -t/--target-face per -s/--source (the i-th target face gets the i-th source)",
            option="--target-face",
        )
    if len(sources) > 1 and not target_faces:
        raise UserInputError(
            f"{len(sources)} source people given: add one -t/--target-face photo per "
            "-s/--source so each face in the target gets the right source",
            option="--target-face",
        )


def assemble_stage(
    config: SwapConfig,
    models: FaceModels,
    source_ids: np.ndarray | None,
    references: np.ndarray | None,
    ops: ImageOps,
    *,
    overrides: SwapOverrides | None = None,
) -> SwapStage:
    """The swap stage's parts on loaded models: analysis, synthesis and, with
    `config.debug_overlay`, the overlay."""
    analysis = AnalysisStage(config, models.analysis(), references, ops)
    synthesis = SynthesisStage(config, models.synthesis(), source_ids, ops, overrides)
    overlay = OverlayStage(ops) if config.debug_overlay else None
    return SwapStage(analysis, synthesis, overlay)


def build_swap_stage(
    config: SwapConfig,
    sources: Sequence[Sequence[Path]],
    target_faces: Sequence[Path] = (),
    *,
    backend: Backend | None = None,
    ops: ImageOps | None = None,
    store: ModelStore | None = None,
    overrides: SwapOverrides | None = None,
) -> SwapStage:
    """The stage for `config`: one inner list of photos per source person (their
    identities averaged); the i-th reference photo in `target_faces` gets the i-th source.
    Networks open on `backend` (default: the one for `config.device`); `ops` does the
    pixel work (default: the backend's image ops).

    Raises NoFaceError (naming the photo), ModelMissingError, InputFileNotFoundError or
    UnsupportedMediaError.
    """
    if not sources or any(len(person) == 0 for person in sources):
        raise UserInputError("give at least one photo for every source person", option="--source")
    for photo in [*(p for person in sources for p in person), *target_faces]:
        read_photo(Path(photo))  # unreadable files fail before any model loads
    backend = backend if backend is not None else open_backend(config.device)
    models = build_models(config, backend.sessions, store)
    source_ids = None
    if models.id_encoder is not None:
        encoder = models.id_encoder
        source_ids = np.stack(
            [person_embeddings(encoder, models.detector, list(p)) for p in sources]
        ).astype(np.float32)
    else:
        for person in sources:
            for photo in person:
                photo_face(models.detector, Path(photo))
    references = None
    if target_faces and models.recognizer is not None:
        recognizer = models.recognizer
        references = np.stack(
            [person_embeddings(recognizer, models.detector, [Path(t)]) for t in target_faces]
        )
    elif target_faces:
        for photo in target_faces:
            photo_face(models.detector, Path(photo))
    ops = ops if ops is not None else backend.image_ops()
    return assemble_stage(config, models, source_ids, references, ops, overrides=overrides)


def close_stages(stages: Sequence[StreamStage]) -> None:
    """Release what the stages hold (models, sessions)."""
    for stage in stages:
        stage.close()
