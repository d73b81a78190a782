"""Checks every exported ONNX file passes: the full ONNX checker and no training ops."""

from __future__ import annotations

from pathlib import Path

import onnx

from ghost_engine.errors import ExportError

# Ops (or op states) that only make sense while training; an inference graph has none.
_TRAINING_OPS = {"Dropout", "Gradient", "Momentum", "Adagrad", "Adam"}
_TRAINING_DOMAINS = {"ai.onnx.training", "ai.onnx.preview.training"}


def training_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of nodes that belong to training: optimiser/gradient ops, Dropout, and
    BatchNormalization with `training_mode=1`."""
    found = []
    for node in model.graph.node:
        training_bn = node.op_type == "BatchNormalization" and any(
            a.name == "training_mode" and a.i == 1 for a in node.attribute
        )
        if node.op_type in _TRAINING_OPS or node.domain in _TRAINING_DOMAINS or training_bn:
            found.append(f"{node.name or '<unnamed>'} ({node.op_type})")
    return found


def check_onnx(model: onnx.ModelProto | str | Path, *, what: str = "model") -> None:
    """Run `onnx.checker` with full checking (types and shapes inferred strictly) and
    refuse training nodes; raises ExportError naming the first problem."""
    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"{what}: the ONNX checker rejects the graph: {exc}") from None
    found = training_nodes(model)
    if found:
        raise ExportError(f"{what}: the graph holds training-only nodes: {', '.join(found[:5])}")
