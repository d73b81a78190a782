"""The generator's ONNX cache keeps its weights in a `.weights` file beside the graph (the
model store refuses that for files from elsewhere): a cached graph is used only while it
and its weights are what the engine exported, and is exported afresh otherwise."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.export import onnx_cache
from ghost_engine.export.onnx_cache import cache_problem, cached_onnx, record_file, weights_file

NAME = "G_unet_1blocks"


def _small_export(name: str, checkpoint: Path | None, dest: Path) -> None:
    """What `export_apart` writes, for a 16x16 Gemm: the graph at `dest`, its weight
    (1 kB and more) in `weights_file(dest)`."""
    w = numpy_helper.from_array(np.eye(16, dtype=np.float32) * 2.0, "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(
        model,
        str(dest),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights_file(dest).name,
        size_threshold=1024,
    )


@pytest.fixture()
def exports(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The cache's child export replaced by `_small_export`; each export's destination."""
    made: list[Path] = []

    def export(name: str, checkpoint: Path | None, dest: Path) -> None:
        made.append(dest)
        _small_export(name, checkpoint, dest)

    monkeypatch.setattr(onnx_cache, "export_in_child", export)
    return made


def _runs(path: Path) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.ones((1, 16), np.float32)})[0]


def test_an_intact_cache_is_reused_and_loads_its_own_weights(tmp_path, exports) -> None:
    path = cached_onnx(NAME, None, tmp_path)
    assert path.parent == tmp_path and weights_file(path).is_file() and len(exports) == 1
    record = json.loads(record_file(path).read_text())
    assert record["weights"]["size"] == weights_file(path).stat().st_size == 16 * 16 * 4
    assert cache_problem(path) is None
    assert cached_onnx(NAME, None, tmp_path) == path and len(exports) == 1
    np.testing.assert_array_equal(_runs(path), np.full((1, 16), 2.0, np.float32))
    # nothing of the export is left behind: graph, weights and record only
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, weights_file(path).name, record_file(path).name]
    )


def _tamper_weights_keeping_size_and_zeroing(path: Path) -> None:
    weights = weights_file(path)
    weights.write_bytes(bytes(weights.stat().st_size))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: weights_file(p).unlink(), "is missing"),
        (_tamper_weights_keeping_size_and_zeroing, "changed since it was exported"),
        (lambda p: weights_file(p).write_bytes(b"short"), "changed since it was exported"),
        (lambda p: record_file(p).unlink(), "missing or unreadable"),
        (lambda p: record_file(p).write_text("{"), "missing or unreadable"),
    ],
    ids=["weights-missing", "weights-zeroed", "weights-truncated", "no-record", "bad-record"],
)
def test_a_damaged_cache_is_exported_afresh(tmp_path, exports, caplog, damage, reason) -> None:
    path = cached_onnx(NAME, None, tmp_path)
    damage(path)
    assert reason in (cache_problem(path) or "")
    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        assert cached_onnx(NAME, None, tmp_path) == path
    assert len(exports) == 2
    assert any(
        "not as exported" in r.getMessage() and reason in r.getMessage() for r in caplog.records
    )
    assert cache_problem(path) is None
    np.testing.assert_array_equal(_runs(path), np.full((1, 16), 2.0, np.float32))


def test_weights_rewritten_with_their_own_bytes_are_kept(tmp_path, exports) -> None:
    """A new modification time alone is not a change: the weights hash as recorded."""
    path = cached_onnx(NAME, None, tmp_path)
    weights = weights_file(path)
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache_problem(path) is None
    assert cached_onnx(NAME, None, tmp_path) == path and len(exports) == 1


def test_a_graph_pointing_outside_its_weights_file_is_exported_afresh(
    tmp_path, exports, caplog
) -> None:
    """A graph whose data reference names another file (here the system's hostname file)
    is not the engine's export, even with its record rewritten to match it."""
    path = cached_onnx(NAME, None, tmp_path)
    model = onnx.load(str(path), load_external_data=False)
    (entry,) = [e for e in model.graph.initializer[0].external_data if e.key == "location"]
    entry.value = "/etc/hostname"
    onnx.save(model, str(path))
    record = json.loads(record_file(path).read_text())
    record["graph"] = onnx_cache._stamp(path)
    record_file(path).write_text(json.dumps(record))
    assert cache_problem(path) == "tensor 'w' points to '/etc/hostname', not to " + repr(
        weights_file(path).name
    )
    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        cached_onnx(NAME, None, tmp_path)
    assert len(exports) == 2 and cache_problem(path) is None
    assert "/etc/hostname" not in path.read_bytes().decode("latin-1")


def test_a_changed_graph_is_exported_afresh(tmp_path, exports) -> None:
    path = cached_onnx(NAME, None, tmp_path)
    path.write_bytes(path.read_bytes() + b"\x00")
    assert cache_problem(path) == "the graph changed since it was exported"
    cached_onnx(NAME, None, tmp_path)
    assert len(exports) == 2 and cache_problem(path) is None
