"""Fast tests of the export path: what can be checked without big networks or TensorRT.

Reference numbers come from ONNX Runtime runs of fp32 graphs and from numpy.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.cli import cli, main
from ghost_engine.errors import (
    ExportError,
    ModelMissingError,
    OptionalDependencyError,
    UserInputError,
)
from ghost_engine.export.metadata import export_metadata, read_metadata, set_metadata
from ghost_engine.export.onnx_checks import check_onnx, training_nodes
from ghost_engine.export.onnx_export import simplify, torch_to_onnx
from ghost_engine.export.onnx_fp16 import convert_to_fp16, keep_fp32_rule
from ghost_engine.export.parity import compare, relative_error, require_parity, torch_runner
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.sources import resolve_source
from ghost_engine.export.specs import BATCH, ExportSpec, IOSpec, export_spec
from ghost_engine.export.tensorrt_build import TrtBuildConfig, graph_profile, profile_shapes
from ghost_engine.export.tensorrt_env import GpuIdentity, engine_filename, timing_cache_path
from ghost_engine.runtime.onnx_model import OnnxModel
from ghost_engine.runtime.tensorrt import device_buffer, import_tensorrt, stream_handle

H200 = GpuIdentity("NVIDIA H200", (9, 0))


# ---- batch profiles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "error"),
    [
        ("1:8:32", BatchProfile(1, 8, 32), None),
        (" 4 ", BatchProfile(4, 4, 4), None),
        ("2:2:16", BatchProfile(2, 2, 16), None),
        ("8:4:16", None, UserInputError),
        ("0:1:2", None, UserInputError),
        ("1:8", None, UserInputError),
        ("a:b:c", None, UserInputError),
    ],
)
def test_batch_profile_parse(text, expected, error):
    if error is not None:
        with pytest.raises(error):
            BatchProfile.parse(text)
    else:
        assert BatchProfile.parse(text) == expected


def test_check_batches_exercise_two_sizes_when_dynamic():
    assert BatchProfile(1, 5, 8).check_batches() == (1, 5)
    assert BatchProfile(1, 1, 8).check_batches() == (1, 8)
    assert BatchProfile(4, 4, 4).check_batches() == (4,)


# ---- TensorRT naming, shapes, errors (no TensorRT needed) -----------------------------


def test_engine_name_carries_gpu_tensorrt_precision_and_profile():
    name = engine_filename("G_unet_2blocks", "fp16", BatchProfile(1, 8, 32), H200, "10.13.3.9")
    assert name == "G_unet_2blocks.fp16.b1-8-32.nvidia-h200.sm90.trt10.13.3.9.engine"
    other_gpu = GpuIdentity("NVIDIA A100-SXM4-80GB", (8, 0))
    assert (
        engine_filename("G_unet_2blocks", "fp16", BatchProfile(1, 8, 32), other_gpu, "10.13.3.9")
        != name
    )
    assert "trt11.4.0" in engine_filename("x", "fp32", BatchProfile(), H200, "11.4.0")


def test_timing_cache_sits_beside_engines_per_gpu_and_version(tmp_path):
    path = timing_cache_path(tmp_path, H200, "10.13.3.9")
    assert path.parent == tmp_path
    assert path.name == "timing.nvidia-h200.sm90.trt10.13.3.9.cache"
    assert timing_cache_path(tmp_path, H200, "11.4.0") != path


def test_missing_tensorrt_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(OptionalDependencyError, match=r"pip install 'ghost-engine\[tensorrt\]'"):
        import_tensorrt()


def test_runtime_modules_import_nothing_from_export():
    """The runtime runs what export wrote; export may use the runtime, never the reverse."""
    import pkgutil
    import subprocess

    import ghost_engine.runtime

    names = [m.name for m in pkgutil.iter_modules(ghost_engine.runtime.__path__)]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module('ghost_engine.runtime.' + name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('ghost_engine.export')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_cli_tensorrt_without_tensorrt_fails_fast_with_install_hint(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    argv = ["export", "--model", "arcface_iresnet100", "--random-weights"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--format", "tensorrt", "-o", str(tmp_path)])
    assert exit_info.value.code == OptionalDependencyError.exit_code
    assert "ghost-engine[tensorrt]" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_rejects_bad_batch_range(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["export", "--model", "arcface_iresnet100", "--batch", "8:1:4", "-o", str(tmp_path)],
    )
    assert isinstance(result.exception, UserInputError)
    assert "MIN <= OPT <= MAX" in str(result.exception)


def test_profile_shapes_dynamic_batch_fixed_spatial():
    spec_shape = (BATCH, 3, 256, 256)
    lo, opt, hi = profile_shapes((-1, 3, 256, 256), spec_shape, BatchProfile(1, 8, 32), {})
    assert (lo, opt, hi) == ((1, 3, 256, 256), (8, 3, 256, 256), (32, 3, 256, 256))
    # SCRFD-style graph: fixed batch, dynamic spatial pinned to the spec's 640x640.
    shapes = profile_shapes((1, 3, -1, -1), (BATCH, 3, 640, 640), BatchProfile(1, 8, 32), {})
    assert shapes == ((1, 3, 640, 640),) * 3
    sr = profile_shapes(
        (-1, 3, -1, -1), (BATCH, 3, "h", "w"), BatchProfile(2, 4, 8), {"h": 256, "w": 256}
    )
    assert sr[2] == (8, 3, 256, 256)
    with pytest.raises(ExportError, match="no size"):
        profile_shapes((-1, 3, -1, -1), (BATCH, 3, "h", "w"), BatchProfile(), {})
    assert graph_profile(1, BatchProfile(1, 8, 32)) == BatchProfile(1, 1, 1)
    assert graph_profile(-1, BatchProfile(1, 8, 32)) == BatchProfile(1, 8, 32)


def test_bf16_engine_needs_weak_typing():
    with pytest.raises(UserInputError, match="weak typing"):
        TrtBuildConfig(precision="bf16", typing="strong")
    assert TrtBuildConfig(precision="bf16", typing="weak").precision == "bf16"


class _FakeDeviceArray:
    def __init__(self, shape, typestr, strides=None, ptr=0xDEAD0000):
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "strides": strides,
            "data": (ptr, False),
            "version": 3,
        }


def test_device_buffer_reads_cuda_array_interface():
    buf = device_buffer(_FakeDeviceArray((5, 3, 256, 256), "<f4"))
    assert (buf.ptr, buf.shape, buf.dtype) == (0xDEAD0000, (5, 3, 256, 256), np.float32)
    contiguous = (3 * 4 * 4, 4 * 4, 4)
    assert device_buffer(_FakeDeviceArray((2, 3, 4), "<f4", contiguous)).shape == (2, 3, 4)
    with pytest.raises(UserInputError, match="C-contiguous"):
        device_buffer(_FakeDeviceArray((2, 3, 4), "<f4", (4, 8, 24)))
    with pytest.raises(UserInputError, match="not a device array"):
        device_buffer(np.zeros(3, np.float32))


def test_stream_handle_forms():
    class CupyLike:
        ptr = 1234

    class TorchLike:
        cuda_stream = 99

    assert stream_handle(7) == 7
    assert stream_handle(CupyLike()) == 1234
    assert stream_handle(TorchLike()) == 99
    with pytest.raises(UserInputError):
        stream_handle("stream")


# ---- sources ---------------------------------------------------------------------------


def test_sources(tmp_path):
    spec = export_spec("arcface_iresnet100")
    with pytest.raises(ModelMissingError, match="ghost-engine models"):
        resolve_source(spec, None, random_weights=False, models_dir=tmp_path)
    with pytest.raises(UserInputError, match="not both"):
        resolve_source(spec, tmp_path / "x.pth", random_weights=True)
    with pytest.raises(UserInputError, match="no fill rule"):
        resolve_source(export_spec("scrfd_10g_bnkps"), None, random_weights=True)
    ckpt = tmp_path / "w.pth"
    ckpt.write_bytes(b"abc")
    src = resolve_source(spec, ckpt, random_weights=False)
    assert src.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(UserInputError, match="exportable models"):
        export_spec("D_unet")


# ---- ONNX graph checks -----------------------------------------------------------------


def _graph(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def test_training_nodes_are_found_and_refused():
    dropout = _graph(
        [helper.make_node("Dropout", ["x"], ["y"], name="drop")], [_vi("x", [2])], [_vi("y", [2])]
    )
    assert training_nodes(dropout) == ["drop (Dropout)"]
    with pytest.raises(ExportError, match="training-only"):
        check_onnx(dropout)
    c = 2
    params = [numpy_helper.from_array(np.ones(c, np.float32), n) for n in "sbmv"]
    bn_inputs = ["x", "s", "b", "m", "v"]
    train_bn = _graph(
        [
            helper.make_node(
                "BatchNormalization", bn_inputs, ["y", "rm", "rv"], name="bn", training_mode=1
            )
        ],
        [_vi("x", [1, c, 2, 2])],
        [_vi("y", [1, c, 2, 2]), _vi("rm", [c]), _vi("rv", [c])],
        params,
    )
    assert training_nodes(train_bn) == ["bn (BatchNormalization)"]
    eval_bn = _graph(
        [helper.make_node("BatchNormalization", bn_inputs, ["y"], name="bn")],
        [_vi("x", [1, c, 2, 2])],
        [_vi("y", [1, c, 2, 2])],
        params,
    )
    check_onnx(eval_bn)  # passes


def test_checker_runs_full_type_checks():
    bad = _graph(  # Add of float and int64: only a full check (type inference) sees it
        [helper.make_node("Add", ["x", "k"], ["y"], name="add")],
        [_vi("x", [2])],
        [_vi("y", [2])],
        [numpy_helper.from_array(np.ones(2, np.int64), "k")],
    )
    with pytest.raises(ExportError, match="checker"):
        check_onnx(bad)


# ---- fp16 pass -------------------------------------------------------------------------


def _fp16_probe_model() -> onnx.ModelProto:
    """Conv -> InstanceNorm -> Resize(x2) -> Mul(6) -> Sigmoid*12 -> Exp -> AveragePool,
    with the exp part inside an `fp32_region` scope: exp(12) overflows fp16."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) / 5).astype(np.float32), "w"),
        numpy_helper.from_array(np.ones(4, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(4, np.float32), "beta"),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array(12.0, np.float32), "twelve"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("InstanceNormalization", ["c", "gamma", "beta"], ["n"], name="/norm"),
        helper.make_node("Resize", ["n", "", "scales"], ["r"], name="/up/Resize", mode="linear"),
        helper.make_node("Sigmoid", ["r"], ["s"], name="/pool/fp32_region/Sigmoid"),
        helper.make_node("Mul", ["s", "twelve"], ["g"], name="/pool/fp32_region/Mul"),
        helper.make_node("Exp", ["g"], ["e"], name="/pool/fp32_region/Exp"),
        helper.make_node(
            "AveragePool",
            ["e"],
            ["p"],
            name="/pool/fp32_region/Pool",
            kernel_shape=[2, 2],
            strides=[2, 2],
        ),
        helper.make_node("Div", ["p", "twelve"], ["y"], name="/out/Div"),
    ]
    return _graph(nodes, [_vi("x", ["batch", 3, 8, 8])], [_vi("y", ["batch", 4, 8, 8])], inits)


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}


def test_fp16_pass_keeps_io_fp32_and_marked_nodes_fp32(tmp_path):
    model = _fp16_probe_model()
    keep = keep_fp32_rule(("InstanceNormalization",), ("fp32_region",))
    half = convert_to_fp16(model, keep)
    check_onnx(half)
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    inits = {t.name: t.data_type for t in half.graph.initializer}
    assert inits["w"] == TensorProto.FLOAT16
    assert inits["scales"] == TensorProto.FLOAT  # Resize scales must stay float32
    assert inits["gamma"] == TensorProto.FLOAT  # read only by the fp32 InstanceNorm
    types = _types(half)
    assert types["c"] == TensorProto.FLOAT16 and types["e"] == TensorProto.FLOAT
    x = np.random.default_rng(1).uniform(-1, 1, (3, 3, 8, 8)).astype(np.float32)
    onnx.save(model, tmp_path / "f32.onnx")
    onnx.save(half, tmp_path / "f16.onnx")
    ref = OnnxModel(tmp_path / "f32.onnx")(x=x)["y"]
    got = OnnxModel(tmp_path / "f16.onnx")(x=x)["y"]
    assert np.isfinite(got).all()
    assert relative_error(got, ref) < 1e-2
    # Without the scope the exp runs in fp16, where exp(12) = 162755 cannot be stored.
    # (ONNX Runtime's CPU provider computes fp16 Exp in fp32, so the type is what to test.)
    all_half = convert_to_fp16(model, keep_fp32_rule(("InstanceNormalization",), ()))
    assert _types(all_half)["e"] == TensorProto.FLOAT16
    assert np.exp(12.0) > np.finfo(np.float16).max


# ---- the torch -> ONNX pipeline on a small network ---------------------------------------


class _Tiny(torch.nn.Module):
    """AEI-like ops: conv, BN, instance norm, a z-dependent modulation, bilinear resize."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.norm = torch.nn.InstanceNorm2d(8)
        self.fc = torch.nn.Linear(16, 8)
        self.drop = torch.nn.Dropout(0.5)
        self.out = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.norm(torch.relu(self.bn(self.conv(x))))
        h = h * self.fc(self.drop(z)).reshape(h.shape[0], -1, 1, 1)
        h = torch.nn.functional.interpolate(h, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.tanh(self.out(h))


_TINY_SPEC = ExportSpec(
    "tiny",
    inputs=(IOSpec("x", (BATCH, 3, 16, 16)), IOSpec("z", (BATCH, 16))),
    outputs=(IOSpec("y", (BATCH, 3, 32, 32)),),
    network="tiny",
    fp32_ops=("InstanceNormalization",),
)


def test_torch_export_pipeline_dynamic_batch_parity_and_metadata(tmp_path):
    torch.manual_seed(0)
    net = _Tiny().eval()
    with torch.no_grad():  # non-trivial running statistics
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.8, 1.5)
    model = simplify(torch_to_onnx(net, _TINY_SPEC), tmp_path)
    check_onnx(model)
    ops = {n.op_type for n in model.graph.node}
    assert "Dropout" not in ops and "BatchNormalization" not in ops  # folded into the conv
    set_metadata(
        model,
        export_metadata(
            model="tiny", source="fill-rule", source_sha256="fill-rule", precision="fp32", opset=17
        ),
    )
    onnx.save(model, tmp_path / "tiny.onnx")
    meta = read_metadata(tmp_path / "tiny.onnx")
    assert meta["model"] == "tiny" and meta["engine_version"] and meta["opset"] == "17"
    ort_model = OnnxModel(tmp_path / "tiny.onnx")
    assert ort_model.metadata["ghost_engine.model"] == "tiny"
    run = torch_runner(net, _TINY_SPEC)
    results = compare(lambda i: ort_model(**i), run, _TINY_SPEC, batches=(1, 5), tolerance=1e-4)
    assert [r.batch for r in results] == [1, 5]
    for r in results:
        assert r.rel_error < 1e-5, r
    half = convert_to_fp16(model, keep_fp32_rule(_TINY_SPEC.fp32_ops, ()))
    check_onnx(half)
    onnx.save(half, tmp_path / "tiny16.onnx")
    half_model = OnnxModel(tmp_path / "tiny16.onnx")
    for r in compare(lambda i: half_model(**i), run, _TINY_SPEC, batches=(1, 5), tolerance=1e-2):
        assert 1e-6 < r.rel_error < 1e-2, r  # really fp16 (not fp32), and close


def test_parity_flags_a_wrong_output():
    spec = _TINY_SPEC
    net = _Tiny().eval()
    run = torch_runner(net, spec)

    def off_by_1e3(inputs):
        return {k: v * (1 + 1e-3) for k, v in run(inputs).items()}

    results = compare(off_by_1e3, run, spec, batches=(2,), tolerance=1e-4)
    assert results[0].rel_error == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(ExportError, match="batch 2 y: 0.001"):
        require_parity(results, "tiny")


def test_onnx_model_names_missing_inputs(tmp_path):
    model = _fp16_probe_model()
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UserInputError, match="missing"):
        OnnxModel(tmp_path / "m.onnx")(z=np.zeros(1, np.float32))
