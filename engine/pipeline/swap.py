"""Build the face-swap stage from its config, with the checks that need no models."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ghost_engine.errors import GhostEngineError, UserInputError
from ghost_engine.types import StreamStage

_STAGE_MODULE = "ghost_engine.face.stage"


def swap_module() -> Any:
    """`ghost_engine.face.stage`, or a clear error in a build without the face stages."""
    try:
        return importlib.import_module(_STAGE_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _STAGE_MODULE:
            raise
        raise GhostEngineError(
            "this build of ghost-engine has no face stages (ghost_engine.face.stage); "
            "install a complete release"
        ) from exc


def make_config(**fields: Any) -> Any:
    """A `SwapConfig` from keyword fields (the CLI's flags map onto them one to one);
    a bad combination is the user's to fix, so it is a UserInputError (exit code 2)."""
    try:
        return swap_module().SwapConfig(**fields)
    except UserInputError:
        raise
    except ValueError as exc:
        raise UserInputError(str(exc)) from exc


def check_device(device: str) -> None:
    """Refuse `cuda` on a machine without a usable CUDA device, before loading anything."""
    if device == "cpu":
        return
    if device != "cuda":
        raise UserInputError(f"--device must be cpu or cuda, got '{device}'")
    import torch  # only here: importing torch takes a second or two

    if not torch.cuda.is_available():
        raise UserInputError(
            "--device cuda was requested but no CUDA device is available to PyTorch "
            "(torch.cuda.is_available() is False); use --device cpu"
        )


def check_people(sources: Sequence[Sequence[Path]], target_faces: Sequence[Path]) -> None:
    """One source person per reference face; several people need references."""
    if not sources or any(len(person) == 0 for person in sources):
        raise UserInputError("give at least one source photo (-s/--source IMG)")
    if target_faces and len(target_faces) != len(sources):
        raise UserInputError(
            f"{len(sources)} source person(s) but {len(target_faces)} target face(s): give "
            "one -t/--target-face per -s/--source (the i-th target face gets the i-th source)"
        )
    if len(sources) > 1 and not target_faces:
        raise UserInputError(
            f"{len(sources)} source people given: add one -t/--target-face photo per "
            "-s/--source so each face in the target gets the right source"
        )


def build_swap_stages(
    config: Any, sources: Sequence[Sequence[Path]], target_faces: Sequence[Path]
) -> list[StreamStage]:
    """The stages between decode and encode for this config."""
    check_people(sources, target_faces)
    check_device(config.device)
    module = swap_module()
    return [module.build_swap_stage(config, sources, target_faces)]


def close_stages(stages: Sequence[StreamStage]) -> None:
    """Release what the stages hold (models, sessions)."""
    for stage in stages:
        close = getattr(stage, "close", None)
        if callable(close):
            close()
