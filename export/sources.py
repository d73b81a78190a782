"""Where the weights of an export come from, and the hash recorded for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import InputFileNotFoundError, UserInputError
from ghost_engine.export.metadata import FILL_RULE
from ghost_engine.export.specs import ExportSpec
from ghost_engine.networks.checkpoint import sha256_file


@dataclass(frozen=True)
class WeightSource:
    """A checkpoint/ONNX file with its SHA-256, or the fill rule (`path` None)."""

    path: Path | None
    sha256: str

    @property
    def label(self) -> str:
        return self.path.name if self.path is not None else FILL_RULE


def resolve_source(
    spec: ExportSpec,
    checkpoint: Path | None,
    *,
    random_weights: bool,
    models_dir: Path | None = None,
) -> WeightSource:
    """`checkpoint` if given; fill-rule weights if `random_weights`; else the installed
    model file from the model store (ModelMissingError names the download command)."""
    if checkpoint is not None and random_weights:
        raise UserInputError(
            "give either --checkpoint or --random-weights, not both",
            path=checkpoint,
            option="--checkpoint",
        )
    if random_weights:
        if spec.from_onnx:
            raise UserInputError(
                f"{spec.name} comes as a published ONNX file; it has no fill rule",
                option="--random-weights",
            )
        return WeightSource(None, FILL_RULE)
    if checkpoint is None:
        from ghost_engine.store import ModelStore

        checkpoint = ModelStore(models_dir).path(spec.manifest_name or spec.name)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise InputFileNotFoundError(
            f"checkpoint not found: {checkpoint}", path=checkpoint, option="--checkpoint"
        )
    return WeightSource(checkpoint, sha256_file(checkpoint))
