"""Metadata stored inside exported files: what model, from which weights, by which engine."""

from __future__ import annotations

from pathlib import Path

import onnx

from ghost_engine import __version__

PREFIX = "ghost_engine."
FILL_RULE = "fill-rule"  # the source of random (fill-rule) weights


def export_metadata(
    *, model: str, source: str, source_sha256: str, precision: str, opset: int, **extra: str
) -> dict[str, str]:
    """The key/value pairs written into an exported file (keys prefixed `ghost_engine.`)."""
    values = {
        "model": model,
        "engine_version": __version__,
        "source": source,
        "source_sha256": source_sha256,
        "precision": precision,
        "opset": str(opset),
        **extra,
    }
    return {PREFIX + k: str(v) for k, v in values.items()}


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Replace the model's `ghost_engine.*` metadata with `values`, in place."""
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "ghost-engine"
    model.producer_version = __version__


def read_metadata(path: str | Path) -> dict[str, str]:
    """The `ghost_engine.*` metadata of an ONNX file, prefix stripped (weights not read)."""
    model = onnx.load(str(path), load_external_data=False)
    return {p.key[len(PREFIX) :]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
