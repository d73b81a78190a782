"""Which runtime runs the ONNX-only models on each device."""

from __future__ import annotations

import logging

import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from ghost_engine.runtime import onnx_sessions
from ghost_engine.runtime.onnx_sessions import (
    ORT_CPU,
    ORT_CUDA,
    TORCH_CUDA,
    open_onnx,
    session_kind,
)

CPU_ONLY = ["CPUExecutionProvider"]
WITH_CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("device", "providers", "torch_cuda", "expected"),
    [
        ("cpu", WITH_CUDA, True, ORT_CPU),
        ("cuda", WITH_CUDA, True, ORT_CUDA),
        ("cuda:1", CPU_ONLY, True, TORCH_CUDA),
        ("cuda", CPU_ONLY, False, ORT_CPU),
    ],
)
def test_session_kind(device, providers, torch_cuda, expected):
    assert session_kind(device, providers, torch_cuda) == expected


def _model(path, op: str) -> None:
    node = helper.make_node(op, ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_cpu_device_opens_onnxruntime(tmp_path):
    _model(tmp_path / "m.onnx", "Relu")
    assert isinstance(open_onnx(tmp_path / "m.onnx", "cpu"), onnxruntime.InferenceSession)


def test_graph_the_torch_runner_cannot_run_falls_back_to_onnxruntime(tmp_path, monkeypatch, caplog):
    """`Det` is not in the runner's table: the model still runs, on the CPU, with a note."""
    _model(tmp_path / "det.onnx", "Det")
    monkeypatch.setattr(onnx_sessions, "session_kind", lambda *a: TORCH_CUDA)
    with caplog.at_level(logging.WARNING):
        session = open_onnx(tmp_path / "det.onnx", "cuda")
    assert isinstance(session, onnxruntime.InferenceSession)
    assert "det.onnx runs on the CPU" in caplog.text and "Det" in caplog.text
