"""The PyTorch ONNX runner against ONNX Runtime on the same graphs and inputs.

Graphs come from PyTorch modules built like the networks the engine runs from ONNX
(SCRFD: ResNet blocks, max pooling, an FPN with nearest upsampling, sigmoid heads
reshaped per anchor; 2d106det: conv/BN/PReLU, global pooling, a fully connected head),
plus one with the shape arithmetic and odd operators exporters emit, exported with the
TorchScript exporter at opsets 11 and 17 and dynamic batch and spatial axes.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from ghost_engine.errors import UnsupportedGraphError
from ghost_engine.runtime.onnx_torch import OnnxTorchSession


class _ScrfdLike(nn.Module):
    """Backbone with BN and max pooling, a 3-level FPN, per-stride heads as SCRFD has."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            )

        self.stem = nn.Sequential(block(3, 8, 2), nn.MaxPool2d(3, 2, 1))
        self.c3 = block(8, 16, 2)  # stride 8
        self.c4 = block(16, 16, 2)  # stride 16
        self.c5 = block(16, 16, 2)  # stride 32
        self.lat = nn.ModuleList(nn.Conv2d(16, 8, 1) for _ in range(3))
        self.heads = nn.ModuleList(nn.Conv2d(8, 2 * (1 + 4 + 10), 3, 1, 1) for _ in range(3))
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p5 = self.lat[2](c5)
        p4 = self.lat[1](c4) + F.interpolate(p5, scale_factor=2.0, mode="nearest")
        p3 = self.lat[0](c3) + F.interpolate(p4, size=c3.shape[2:], mode="nearest")
        scores, boxes, points = [], [], []
        for p, head, stride in zip((p3, p4, p5), self.heads, (8, 16, 32), strict=True):
            y = head(p).permute(0, 2, 3, 1)
            n = x.shape[0]
            scores.append(torch.sigmoid(y[..., :2]).reshape(n, -1, 1))
            boxes.append((y[..., 2:10] * stride).reshape(n, -1, 4))
            points.append(y[..., 10:].reshape(n, -1, 10))
        return (*scores, *boxes, *points)


class _LandmarkLike(nn.Module):
    """2d106det's pieces: conv/BN/PReLU (slopes as (C, 1, 1)), global pooling, Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1),
            nn.BatchNorm2d(8),
            nn.PReLU(8),
            nn.Conv2d(8, 8, 3, 1, 1, groups=8),
            nn.BatchNorm2d(8),
            nn.PReLU(8),
            nn.Conv2d(8, 16, 1),
            nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
        )
        self.fc = nn.Linear(16, 212)
        with torch.no_grad():
            for m in self.body:
                if isinstance(m, nn.PReLU):
                    m.weight.uniform_(-0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 127.5) * 0.0078125  # the file normalises inside, as 2d106det does
        y = self.body(x)
        return torch.tanh(self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1)))


class _Assorted(nn.Module):
    """Operators and shape arithmetic other exporters' graphs are made of."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, c, h, w = x.shape
        a, b = torch.chunk(x, 2, dim=1)
        y = torch.cat([F.leaky_relu(a, 0.1), F.hardtanh(b, -0.5, 0.5)], dim=1)
        y = F.pad(y, (1, 2, 0, 1), mode="reflect")
        y = F.interpolate(y, size=(h * 2 - 1, w + 3), mode="bilinear", align_corners=False)
        z = F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True)
        flat = y.reshape(n, c, -1)
        attn = torch.softmax(flat @ flat.transpose(1, 2) / 16.0, dim=-1)
        pooled = z.mean(dim=(2, 3), keepdim=True) + z.amax(dim=3).unsqueeze(-1)[..., :1, :]
        stepped = x[:, :, 1::2, ::3]
        rev = torch.flip(x, dims=[3])
        return attn, pooled, stepped, rev * torch.clamp(x, min=0.1)


def _export(module: nn.Module, x: torch.Tensor, outputs: int, opset: int, dynamic: dict) -> bytes:
    buffer = io.BytesIO()
    names = [f"out{i}" for i in range(outputs)]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (x,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=names,
            dynamic_axes={"input": dynamic, **{n: {0: "batch"} for n in names}},
        )
    return buffer.getvalue()


def _compare(model: bytes, feeds: dict[str, np.ndarray], rtol: float = 1e-4) -> None:
    ours = OnnxTorchSession(onnx.load_from_string(model)).run(None, feeds)
    ref = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        scale = max(float(np.abs(b).max()), 1.0)
        assert float(np.abs(a - b).max()) <= rtol * scale, (a.shape, np.abs(a - b).max())


@pytest.mark.parametrize("opset", [11, 17])
def test_scrfd_shaped_graph_matches_onnxruntime(opset):
    torch.manual_seed(0)
    net = _ScrfdLike()
    x = torch.rand(1, 3, 128, 96) * 2 - 1
    model = _export(net, x, 9, opset, {0: "batch", 2: "h", 3: "w"})
    rng = np.random.default_rng(1)
    # another size and batch than traced: the graph's shape arithmetic must follow
    feeds = {"input": rng.uniform(-1, 1, (2, 3, 160, 224)).astype(np.float32)}
    _compare(model, feeds)


def test_landmark_shaped_graph_matches_onnxruntime():
    torch.manual_seed(1)
    model = _export(_LandmarkLike(), torch.rand(1, 3, 64, 64) * 255, 1, 13, {0: "batch"})
    feeds = {"input": np.random.default_rng(2).uniform(0, 255, (3, 3, 64, 64)).astype(np.float32)}
    _compare(model, feeds)


@pytest.mark.parametrize("opset", [11, 17])
def test_assorted_operators_match_onnxruntime(opset):
    x = torch.rand(1, 4, 12, 10)
    model = _export(_Assorted(), x, 4, opset, {0: "batch", 2: "h", 3: "w"})
    feeds = {"input": np.random.default_rng(3).uniform(-1, 1, (2, 4, 14, 18)).astype(np.float32)}
    _compare(model, feeds)


def test_asymmetric_padding_auto_pad_and_uneven_resize_scales_match_onnxruntime():
    rng = np.random.default_rng(4)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    scales = numpy_helper.from_array(np.array([1, 1, 1.75, 2.5], np.float32), "scales")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1"], pads=[0, 1, 2, 0], strides=[2, 1]),
        helper.make_node("Conv", ["x", "w"], ["c2"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 2], pads=[1, 0, 0, 1]),
        *(
            helper.make_node(
                "Resize",
                ["x", "", "scales"],
                [out],
                mode="nearest",
                coordinate_transformation_mode=transform,
                nearest_mode=rounding,
            )
            for out, transform, rounding in (
                ("r1", "half_pixel", "round_prefer_ceil"),
                ("r2", "asymmetric", "floor"),
            )
        ),
        helper.make_node("Resize", ["x", "", "scales"], ["r3"], mode="linear"),
    ]
    outs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, ["n", "c", "h", "w"])
        for n in ("c1", "c2", "m", "r1", "r2", "r3")
    ]
    graph = helper.make_graph(
        nodes,
        "odd",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 9, 11])],
        outs,
        [w, scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    feeds = {"x": rng.standard_normal((1, 3, 9, 11)).astype(np.float32)}
    _compare(model.SerializeToString(), feeds)


def test_half_precision_stays_close_and_returns_float32():
    torch.manual_seed(0)
    model = onnx.load_from_string(
        _export(_ScrfdLike(), torch.rand(1, 3, 64, 64), 9, 17, {0: "batch"})
    )
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    full = OnnxTorchSession(model).run(None, {"input": x})
    half = OnnxTorchSession(model, dtype=torch.float16).run(None, {"input": x})
    for a, b in zip(full, half, strict=True):
        assert b.dtype == np.float32
        assert float(np.abs(a - b).max()) <= 2e-2 * max(float(np.abs(a).max()), 1.0)


def test_torch_inputs_stay_torch_and_interface_matches_onnxruntime():
    torch.manual_seed(2)
    data = _export(_LandmarkLike(), torch.rand(1, 3, 32, 32), 1, 17, {0: "batch"})
    ours = OnnxTorchSession(onnx.load_from_string(data))
    ref = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in ours.get_inputs()] == [
        (i.name, i.shape) for i in ref.get_inputs()
    ]
    assert [o.name for o in ours.get_outputs()] == [o.name for o in ref.get_outputs()]
    x = torch.rand(2, 3, 32, 32) * 255
    (out,) = ours.run_torch(None, {"input": x})
    assert isinstance(out, torch.Tensor) and out.shape == (2, 212)
    np.testing.assert_allclose(out.numpy(), ref.run(None, {"input": x.numpy()})[0], atol=1e-5)


def test_unknown_operators_are_named_when_the_graph_is_opened():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("NonMaxSuppression", ["r", "r"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedGraphError, match="NonMaxSuppression.*ONNX Runtime"):
        OnnxTorchSession(model)


def test_operator_parameters_stay_on_the_host_and_cpu_sessions_never_graph():
    """Resize scales and clip bounds are read on the host (no device sync, capturable);
    an initializer that is also data goes to the device like the weights."""
    from ghost_engine.runtime.onnx_torch import _host_parameters

    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
        numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Resize", ["c", "", "scales"], ["r"], mode="nearest"),
        helper.make_node("Clip", ["r", "lo", "hi"], ["k"]),
        helper.make_node("Mul", ["k", "hi"], ["y"]),  # "hi" is data here too
    ]
    graph = helper.make_graph(
        nodes,
        "params",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])],
        inits,
    )
    assert _host_parameters(graph) == {"scales", "lo"}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = OnnxTorchSession(model, cuda_graphs=True)  # CPU: graphs do not apply
    x = np.random.default_rng(6).uniform(-4, 8, (1, 2, 3, 3)).astype(np.float32)
    _compare(model.SerializeToString(), {"x": x})
    session.run(None, {"x": x})
    assert session.graph_shapes == [] and session.graph_failure is None


@pytest.mark.parametrize("opset", [7, 9])
def test_old_upsample_forms_match_onnxruntime(opset):
    """Models converted from older frameworks carry Upsample with scales as an attribute
    (opset 7) or an input (opset 9)."""
    scales = [1.0, 1.0, 2.0, 3.0]
    inits = []
    if opset == 7:
        node = helper.make_node("Upsample", ["x"], ["y"], mode="nearest", scales=scales)
    else:
        inits = [numpy_helper.from_array(np.array(scales, np.float32), "s")]
        node = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    graph = helper.make_graph(
        [node],
        "up",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 12])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 3 if opset == 7 else 4
    feeds = {"x": np.random.default_rng(7).standard_normal((1, 2, 3, 4)).astype(np.float32)}
    _compare(model.SerializeToString(), feeds)


def test_spec_corners_match_onnxruntime():
    """Negative Flatten axis, Slice backwards from out of range, Clip without bounds, a
    node reading one value twice, Constant nodes as data and as resize scales."""
    int_min = np.iinfo(np.int64).min
    ints = {
        "starts": np.array([-10, 2], np.int64),
        "ends": np.array([int_min, 0], np.int64),
        "axes": np.array([1, 2], np.int64),
        "steps": np.array([-1, -2], np.int64),
    }
    inits = [numpy_helper.from_array(v, k) for k, v in ints.items()]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=-1),
        helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["sliced"]),
        helper.make_node("Clip", ["x"], ["clipped"]),
        helper.make_node("Mul", ["x", "x"], ["squared"]),
        helper.make_node("Constant", [], ["half"], value_float=0.5),
        helper.make_node("Mul", ["squared", "half"], ["halved"]),
        helper.make_node(
            "Constant",
            [],
            ["scales"],
            value=numpy_helper.from_array(np.array([1, 1, 2, 1], np.float32)),
        ),
        helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest"),
    ]
    names = {"flat": 2, "sliced": 4, "clipped": 4, "halved": 4, "up": 4}
    graph = helper.make_graph(
        nodes,
        "corners",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 3, 4])],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, [f"d{i}" for i in range(r)])
            for n, r in names.items()
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    feeds = {"x": np.random.default_rng(8).standard_normal((2, 5, 3, 4)).astype(np.float32)}
    _compare(model.SerializeToString(), feeds)
