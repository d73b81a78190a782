"""Every operator of the PyTorch ONNX runner against ONNX Runtime, and every refusal.

The first table builds one small graph per case with `onnx.helper` (at the opsets whose
semantics differ: axes, split sizes, pads and clip bounds as attributes or as inputs,
Softmax's flattening before opset 13, Resize's opset-10 form), runs it with
`OnnxTorchSession` and with ONNX Runtime on the CPU (its graph optimisations off, so
each node runs its own kernel), and compares shape, dtype and values. Tolerances:

- EXACT: bit-for-bit (integers, booleans, data movement, comparisons, max/min, floor,
  nearest resizing, max pooling);
- ELEMENTWISE = 1e-6: per element, |ours - ref| <= 1e-6 * max(|ref|, 1) (float32
  functions both libraries evaluate to within a few ulp; measured at most 2.4e-7);
- SUMMED = 1e-6 of the tensor: |ours - ref| <= 1e-6 * max(max |ref|, 1) (sums of
  products accumulated in another order, where an element may cancel to near zero:
  convolutions, matrix products, norms, average pooling, reductions, softmax; measured
  at most 1.3e-7);
- INTERPOLATED = 5e-6 of the tensor, for linear resizing, whose source coordinates and
  weights the two compute by different float32 formulas (measured at most 7.4e-7).

Float outputs come back as float32 whatever float type the graph names (the runner's
contract: it computes in the session's float type), so a float reference is compared as
float32.

The second table makes the runner refuse, at session creation or on the first run, each
graph it cannot run exactly; the error names the operator. Two closing tests read the
registry and the runner's source: every registered operator must have been executed by
a passing case of the first table, and every `raise UnsupportedGraphError` in the runner
reached by the second.
"""

from __future__ import annotations

import ast
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.errors import UnsupportedGraphError
from ghost_engine.runtime import onnx_ops, onnx_torch
from ghost_engine.runtime.onnx_torch import OnnxTorchSession


@dataclass(frozen=True)
class Tol:
    """|ours - ref| <= rel * max(|ref|, 1), with |ref| per element or the tensor's largest
    (rel 0: bit-for-bit)."""

    rel: float
    per_tensor: bool = False


EXACT = Tol(0.0)
ELEMENTWISE = Tol(1e-6)
SUMMED = Tol(1e-6, per_tensor=True)
INTERPOLATED = Tol(5e-6, per_tensor=True)
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

_RNG = np.random.default_rng(20261217)


def f32(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return _RNG.uniform(lo, hi, shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def ints(*shape: int, lo: int = -9, hi: int = 10) -> np.ndarray:
    return _RNG.integers(lo, hi, shape).astype(np.int64)


def scalar(value: float | int | bool, dtype: type = np.float32) -> np.ndarray:
    return np.array(value, dtype)


N = helper.make_node


@dataclass(frozen=True)
class Case:
    """One graph, its feeds (graph inputs) and initializers, compared at `tol`."""

    name: str
    nodes: tuple[onnx.NodeProto, ...]
    feeds: dict[str, np.ndarray]
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: tuple[str, ...] = ("y",)
    opset: int = 13
    tol: Tol = EXACT

    def model(self) -> onnx.ModelProto:
        return _model(self.name, self.nodes, self.feeds, self.inits, self.outputs, self.opset)


def _model(
    name: str,
    nodes: Sequence[onnx.NodeProto],
    feeds: dict[str, np.ndarray],
    inits: dict[str, np.ndarray],
    outputs: Sequence[str],
    opset: int,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes),
        name,
        [
            helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in feeds.items()
        ],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets)
    # the oldest IR that opset allows (ONNX Runtime reads it), but initializers need no
    # graph input (IR 4)
    model.ir_version = max(helper.find_min_ir_version_for(opsets), 4)
    return model


def case(
    name: str,
    nodes: onnx.NodeProto | Sequence[onnx.NodeProto],
    feeds: dict[str, np.ndarray],
    *,
    inits: dict[str, np.ndarray] | None = None,
    outputs: Sequence[str] = ("y",),
    opset: int = 13,
    tol: Tol = EXACT,
) -> Case:
    node_list = (nodes,) if isinstance(nodes, onnx.NodeProto) else tuple(nodes)
    return Case(name, node_list, feeds, inits or {}, tuple(outputs), opset, tol)


def unary(op: str, x: np.ndarray, tol: Tol = ELEMENTWISE, opset: int = 13, **attrs) -> Case:
    suffix = "-" + "-".join(f"{k}={v}" for k, v in attrs.items()) if attrs else ""
    dtype = "" if x.dtype == np.float32 else f"-{x.dtype}"
    return case(
        f"{op}{dtype}{suffix}", N(op, ["x"], ["y"], **attrs), {"x": x}, opset=opset, tol=tol
    )


def binary(op: str, a: np.ndarray, b: np.ndarray, tol: Tol = EXACT, tag: str = "") -> Case:
    return case(f"{op}-{tag or a.dtype}", N(op, ["a", "b"], ["y"]), {"a": a, "b": b}, tol=tol)


def halves(*shape: int) -> np.ndarray:
    """Multiples of 0.5 in [-1.5, 1.5]: comparisons of two such tensors meet ties."""
    return (_RNG.integers(-3, 4, shape) / 2).astype(np.float32)


def _rounding_values() -> np.ndarray:
    """Fractions, integers and halves of both signs (floor, ceil and casts differ there)."""
    return np.array([-3.7, -2.5, -1.0, -0.5, -0.2, 0.0, 0.3, 0.5, 1.0, 1.5, 2.5, 3.9], np.float32)


def _resize(
    name: str,
    x: np.ndarray,
    *,
    scales: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
    opset: int = 13,
    tol: Tol = EXACT,
    **attrs,
) -> Case:
    # opset 10: (x, scales); 11: roi and scales always given (empty when sizes are);
    # from 13: roi and scales optional
    inits: dict[str, np.ndarray] = {}
    ins = ["x"]
    if opset == 11:
        inits["roi"] = np.array([], np.float32)
        ins.append("roi")
    elif opset > 11:
        ins.append("")
    if scales is not None:
        inits["scales"] = np.array(scales, np.float32)
        ins.append("scales")
    else:
        if opset == 11:
            inits["scales"] = np.array([], np.float32)
        ins += ["scales" if opset == 11 else "", "sizes"]
        inits["sizes"] = np.array(sizes, np.int64)
    return case(
        f"Resize{opset}-{name}",
        N("Resize", ins, ["y"], **attrs),
        {"x": x},
        inits=inits,
        opset=opset,
        tol=tol,
    )


def node(
    name: str,
    op: str,
    feeds: dict[str, np.ndarray],
    inits: dict[str, np.ndarray] | None = None,
    *,
    opset: int = 13,
    tol: Tol = EXACT,
    **attrs,
) -> Case:
    """One `op` node reading the feeds, then the initializers, in their order, into y."""
    inits = inits or {}
    nodes = N(op, [*feeds, *inits], ["y"], **attrs)
    return case(name, nodes, feeds, inits=inits, opset=opset, tol=tol)


def _cases() -> list[Case]:
    x4 = f32(2, 3, 4, 5)
    c: list[Case] = []

    # convolutions: x, then the weights w and the bias b as initializers
    def conv(
        tag: str,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None = None,
        op: str = "Conv",
        **attrs,
    ) -> Case:
        inits = {"w": w} if b is None else {"w": w, "b": b}
        return node(f"{op}-{tag}", op, {"x": x}, inits, tol=SUMMED, **attrs)

    c += [
        conv(
            "2d-strides-pads-dilations-group",
            f32(2, 4, 9, 11),
            f32(6, 2, 3, 3),
            f32(6),
            strides=[2, 1],
            pads=[1, 2, 1, 2],
            dilations=[1, 2],
            group=2,
        ),
        conv("kernel_shape-attribute", f32(1, 3, 7, 6), f32(2, 3, 3, 2), kernel_shape=[3, 2]),
        conv("1d-asymmetric-pads", f32(2, 3, 10), f32(4, 3, 3), pads=[1, 2]),
        conv("3d", f32(1, 2, 5, 6, 7), f32(3, 2, 3, 3, 3), f32(3), strides=[2, 2, 1], pads=[1] * 6),
        conv(
            "auto_pad-SAME_LOWER",
            f32(1, 3, 8, 9),
            f32(4, 3, 4, 3),
            auto_pad="SAME_LOWER",
            strides=[2, 2],
        ),
        conv("auto_pad-VALID", f32(1, 3, 8, 9), f32(4, 3, 3, 3), auto_pad="VALID", strides=[2, 2]),
        conv(
            "strides-pads-output_padding-group-dilations",
            f32(1, 4, 5, 6),
            f32(4, 3, 3, 3),
            f32(6),
            op="ConvTranspose",
            strides=[2, 2],
            pads=[1, 1, 1, 1],
            output_padding=[1, 0],
            group=2,
            dilations=[1, 2],
        ),
        conv("defaults", f32(2, 3, 4, 4), f32(3, 2, 2, 2), op="ConvTranspose"),
    ]

    # normalisation
    def bn_params(ch: int) -> dict[str, np.ndarray]:
        return {
            "scale": f32(ch, lo=0.5, hi=1.5),
            "bias": f32(ch),
            "mean": f32(ch, lo=-0.3, hi=0.3),
            "var": f32(ch, lo=0.2, hi=2.0),
        }

    def bn(name: str, opset: int, x: np.ndarray, ch: int, **attrs) -> Case:
        bn_op = "BatchNormalization"
        return node(name, bn_op, {"x": x}, bn_params(ch), opset=opset, tol=ELEMENTWISE, **attrs)

    def instance_norm(name: str, x: np.ndarray, ch: int, **attrs) -> Case:
        scale_bias = {"scale": f32(ch), "bias": f32(ch)}
        return node(name, "InstanceNormalization", {"x": x}, scale_bias, tol=SUMMED, **attrs)

    c += [
        bn("BatchNormalization9-4d", 9, x4, 3),
        # glintr100's BN on the 512 features
        bn("BatchNormalization15-2d-epsilon", 15, f32(4, 6), 6, epsilon=1e-3),
        bn("BatchNormalization14-3d-training_mode=0", 14, f32(2, 3, 7), 3, training_mode=0),
        instance_norm("InstanceNormalization-4d-epsilon", x4, 3, epsilon=1e-3),
        instance_norm("InstanceNormalization-3d", f32(2, 4, 9), 4),
    ]

    # elementwise functions
    c += [
        unary("Relu", x4, tol=EXACT),
        unary("Sigmoid", f32(3, 50, lo=-12, hi=12)),
        unary("Tanh", f32(3, 50, lo=-6, hi=6)),
        unary("Exp", f32(3, 50, lo=-10, hi=10)),
        unary("Log", f32(3, 50, lo=0.01, hi=50)),
        unary("Sqrt", f32(3, 50, lo=0.0, hi=50)),
        unary("Neg", x4, tol=EXACT),
        unary("Neg", ints(3, 4), tol=EXACT),
        unary("Abs", x4, tol=EXACT),
        unary("Abs", ints(3, 4), tol=EXACT),
        unary("Floor", _rounding_values(), tol=EXACT),
        unary("Ceil", _rounding_values(), tol=EXACT),
        unary(
            "Reciprocal",
            np.concatenate([f32(20, lo=0.05, hi=5), f32(20, lo=-5, hi=-0.05)]),
            tol=EXACT,
        ),
        unary("Erf", f32(3, 50, lo=-4, hi=4)),
        unary("Softplus", f32(3, 50, lo=-30, hi=30)),
        unary("HardSwish", f32(3, 50, lo=-5, hi=5), opset=14),
        unary("HardSigmoid", f32(3, 50, lo=-5, hi=5)),
        unary("HardSigmoid", f32(3, 50, lo=-5, hi=5), alpha=0.3, beta=0.4),
        unary("LeakyRelu", x4, tol=EXACT),
        unary("LeakyRelu", x4, tol=EXACT, alpha=0.2),
        unary("Elu", x4),
        unary("Elu", x4, alpha=0.7),
        node("PRelu-per-channel", "PRelu", {"x": x4}, {"slope": f32(3, 1, 1)}),
        node("PRelu-one-slope", "PRelu", {"x": x4}, {"slope": f32(1)}),
        node("PRelu-trailing-axes", "PRelu", {"x": x4}, {"slope": f32(4, 5)}),
    ]

    # Clip: bounds as attributes (opset 6), as inputs from opset 11, each optional
    clip_x = f32(3, 20, lo=-2, hi=2)
    c += [
        node("Clip6-min-max", "Clip", {"x": clip_x}, opset=6, min=-0.5, max=0.7),
        node("Clip6-min-only", "Clip", {"x": clip_x}, opset=6, min=-0.5),
        node(
            "Clip11-min-max",
            "Clip",
            {"x": clip_x},
            {"lo": scalar(-0.5), "hi": scalar(0.7)},
            opset=11,
        ),
        case(
            "Clip13-max-only",
            N("Clip", ["x", "", "hi"], ["y"]),
            {"x": clip_x},
            inits={"hi": scalar(0.3)},
        ),
        node("Clip13-min-only", "Clip", {"x": clip_x}, {"lo": scalar(0.1)}),
        node("Clip13-no-bounds", "Clip", {"x": clip_x}),
        node(
            "Clip13-bounds-as-graph-inputs",
            "Clip",
            {"x": clip_x, "lo": scalar(-1.0), "hi": scalar(1.25)},
        ),
        node(
            "Clip13-int64",
            "Clip",
            {"x": ints(3, 7)},
            {"lo": scalar(-3, np.int64), "hi": scalar(4, np.int64)},
        ),
    ]

    # arithmetic and comparisons, with broadcasting and int64 (shape arithmetic)
    fa, fb = f32(3, 1, 5), f32(4, 5)
    ia, ib = ints(3, 1, 5), ints(4, 5)
    qa, qb = halves(3, 1, 5), halves(4, 5)
    ib_nonzero = np.where(ib == 0, 7, ib)
    c += [
        binary("Add", fa, fb),
        binary("Add", ia, ib),
        binary("Add", fa, scalar(1.5), tag="0-d"),
        binary("Sub", fa, fb),
        binary("Sub", ia, ib),
        binary("Mul", fa, fb),
        binary("Mul", ia, ib),
        binary("Div", fa, np.where(np.abs(fb) < 0.1, 0.5, fb).astype(np.float32)),
        binary("Div", ia, ib_nonzero, tag="int64-negative-truncates"),
        binary("Pow", f32(3, 1, 5, lo=0.1, hi=3), f32(4, 5), ELEMENTWISE),
        binary(
            "Pow", f32(4, 5, lo=-3, hi=3), ints(4, 5, lo=0, hi=4), ELEMENTWISE, tag="int64-exponent"
        ),
        binary("Equal", qa, qb),
        binary("Equal", ia, ib),
        binary("Greater", qa, qb),
        binary("Greater", ia, ib),
        binary("Less", qa, qb),
        binary("Less", ia, ib),
        node("Max-three-broadcast", "Max", {"a": fa, "b": fb, "c": f32(5)}),
        node("Max-int64", "Max", {"a": ia, "b": ib}),
        node("Min-one-input", "Min", {"a": fa}),
        node("Min-two-broadcast", "Min", {"a": fa, "b": fb}),
        node("Sum-three-broadcast", "Sum", {"a": fa, "b": fb, "c": f32(1)}),
        node("Sum-one-input", "Sum", {"a": fa}),
        node(
            "Where-broadcast",
            "Where",
            {"cond": f32(2, 1, 4) > 0, "a": f32(3, 4), "b": f32(2, 3, 1)},
        ),
        node("Where-int64", "Where", {"cond": f32(3, 4) > 0, "a": ints(3, 4), "b": ints(1, 4)}),
    ]

    # matrix products: Gemm's b and c as initializers
    def gemm(
        name: str, a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None, **attrs
    ) -> Case:
        inits = {"b": b} if bias is None else {"b": b, "c": bias}
        return node(name, "Gemm", {"a": a}, inits, tol=SUMMED, **attrs)

    c += [
        node(
            "MatMul-batched-broadcast",
            "MatMul",
            {"a": f32(2, 1, 3, 4), "b": f32(5, 4, 6)},
            tol=SUMMED,
        ),
        node("MatMul-vector-matrix", "MatMul", {"a": f32(4), "b": f32(4, 3)}, tol=SUMMED),
        node("MatMul-matrix-vector", "MatMul", {"a": f32(3, 4), "b": f32(4)}, tol=SUMMED),
        gemm("Gemm-alpha-beta-bias-row", f32(3, 4), f32(4, 5), f32(5), alpha=0.5, beta=2.0),
        gemm("Gemm-transA-transB-full-bias", f32(4, 3), f32(5, 4), f32(3, 5), transA=1, transB=1),
        gemm("Gemm-no-bias", f32(3, 4), f32(6, 4), transB=1),
        gemm("Gemm-scalar-bias", f32(3, 4), f32(4, 2), f32(1)),
    ]

    # pooling: kernel_shape, then strides and pads where given
    Ints = list[int] | None

    def max_pool(
        tag: str, x: np.ndarray, kernel: Ints, strides: Ints = None, pads: Ints = None, **attrs
    ) -> Case:
        window = {"kernel_shape": kernel, "strides": strides, "pads": pads}
        return node(f"MaxPool-{tag}", "MaxPool", {"x": x}, **window, **attrs)

    def average_pool(
        tag: str, x: np.ndarray, kernel: Ints, strides: Ints = None, pads: Ints = None, **attrs
    ) -> Case:
        window = {"kernel_shape": kernel, "strides": strides, "pads": pads}
        return node(f"AveragePool-{tag}", "AveragePool", {"x": x}, tol=SUMMED, **window, **attrs)

    p1 = [1, 1, 1, 1]
    c += [
        max_pool("2d-pads-strides-ceil", f32(1, 2, 10, 11), [3, 3], [2, 2], p1, ceil_mode=1),
        max_pool(
            "2d-ceil-last-window-in-padding", f32(1, 2, 5, 5), [2, 2], [2, 2], p1, ceil_mode=1
        ),
        max_pool("2d-dilations", f32(1, 2, 9, 9), [2, 2], dilations=[2, 1]),
        max_pool("1d", f32(2, 3, 11), [3], [2], [1, 1]),
        max_pool("3d", f32(1, 2, 5, 6, 7), [2, 2, 2], [2, 1, 2]),
        max_pool("auto_pad-SAME_UPPER", f32(1, 2, 8, 9), [3, 3], [2, 2], auto_pad="SAME_UPPER"),
        max_pool("asymmetric-pads", f32(1, 2, 7, 6), [3, 2], pads=[1, 0, 0, 1]),
        average_pool("pads-excluded", f32(1, 2, 9, 10), [3, 3], [2, 2], p1),
        average_pool("pads-included", f32(1, 2, 9, 10), [3, 3], [2, 2], p1, count_include_pad=1),
        average_pool("ceil-excluded", f32(1, 2, 10, 11), [3, 3], [2, 2], p1, ceil_mode=1),
        average_pool(
            "ceil-included", f32(1, 2, 10, 11), [3, 3], [2, 2], p1, ceil_mode=1, count_include_pad=1
        ),
        average_pool("1d", f32(2, 3, 13), [4], [3]),
        average_pool("3d", f32(1, 2, 4, 5, 6), [2, 3, 2], pads=[0, 1, 1, 0, 1, 1]),
        average_pool(
            "asymmetric-pads-included",
            f32(1, 2, 7, 6),
            [3, 2],
            pads=[1, 0, 0, 1],
            count_include_pad=1,
        ),
        average_pool(
            "SAME_UPPER-included",
            f32(1, 2, 5, 6),
            [2, 2],
            [1, 1],
            auto_pad="SAME_UPPER",
            count_include_pad=1,
        ),
        node("GlobalAveragePool-4d", "GlobalAveragePool", {"x": x4}, tol=SUMMED),
        node("GlobalAveragePool-3d", "GlobalAveragePool", {"x": f32(2, 3, 17)}, tol=SUMMED),
        node("GlobalMaxPool-4d", "GlobalMaxPool", {"x": x4}),
        node("GlobalMaxPool-5d", "GlobalMaxPool", {"x": f32(1, 2, 3, 4, 5)}),
    ]

    # reductions: axes as an attribute (ReduceSum before 13, the others before 18) or input
    x3 = f32(3, 4, 5)
    i3 = ints(3, 4, 5)

    def reduce(
        op: str,
        opset: int,
        x: np.ndarray,
        axes: list[int] | None,
        tag: str,
        tol: Tol = EXACT,
        **attrs,
    ) -> Case:
        as_input = opset >= (13 if op == "ReduceSum" else 18)
        inits = {}
        if axes is not None and as_input:
            inits["axes"] = np.array(axes, np.int64)
        elif axes is not None:
            attrs["axes"] = axes
        return node(f"{op}{opset}-{tag}", op, {"x": x}, inits, opset=opset, tol=tol, **attrs)

    c += [
        reduce("ReduceMean", 13, x3, [1, -1], "axes-keepdims=0", SUMMED, keepdims=0),
        reduce("ReduceMean", 13, x3, None, "all-axes", SUMMED),
        reduce("ReduceMean", 18, x3, [2], "axes-input", SUMMED),
        reduce("ReduceMean", 18, x3, None, "no-axes-keepdims=0", SUMMED, keepdims=0),
        reduce("ReduceMean", 18, x3, [], "empty-axes-noop", SUMMED, noop_with_empty_axes=1),
        reduce("ReduceMax", 13, x3, [-2], "negative-axis"),
        reduce("ReduceMax", 13, i3, [0], "int64", keepdims=0),
        reduce("ReduceMax", 18, x3, [-1, 0], "axes-input", keepdims=0),
        reduce("ReduceMin", 11, x3, [1], "axes"),
        reduce("ReduceMin", 18, i3, [2], "int64-axes-input"),
        reduce("ReduceMin", 18, x3, None, "no-axes"),
        reduce("ReduceSum", 11, x3, [0, 2], "axes-attribute", SUMMED),
        reduce("ReduceSum", 13, x3, [-1], "axes-input-keepdims=0", SUMMED, keepdims=0),
        reduce("ReduceSum", 13, x3, None, "no-axes", SUMMED),
        reduce("ReduceSum", 13, x3, [], "empty-axes-noop", SUMMED, noop_with_empty_axes=1),
        reduce("ReduceSum", 13, i3, [1], "int64"),
    ]

    # softmax: before opset 13 over the flattened axes from `axis` (default 1) on
    sx = f32(2, 3, 4, lo=-4, hi=4)
    for op in ("Softmax", "LogSoftmax"):
        c += [
            node(f"{op}11-default-axis-flattens", op, {"x": sx}, opset=11, tol=SUMMED),
            node(f"{op}11-axis=-1", op, {"x": sx}, opset=11, tol=SUMMED, axis=-1),
            node(f"{op}13-default-axis", op, {"x": sx}, tol=SUMMED),
            node(f"{op}13-axis=1", op, {"x": sx}, tol=SUMMED, axis=1),
        ]

    # shapes and data movement
    c += [
        node("Reshape-zero-copies-minus-one-infers", "Reshape", {"x": x3}, {"shape": i64(0, -1)}),
        node("Reshape-int64-shape-from-graph-input", "Reshape", {"x": i3, "shape": i64(5, 2, -1)}),
        node(
            "Reshape14-allowzero",
            "Reshape",
            {"x": x3},
            {"shape": i64(4, 15)},
            opset=14,
            allowzero=1,
        ),
        node("Flatten-axis=0", "Flatten", {"x": x4}, axis=0),
        node("Flatten-default-axis", "Flatten", {"x": x4}),
        node("Flatten-axis=2", "Flatten", {"x": x4}, axis=2),
        node("Flatten-axis=-1", "Flatten", {"x": x4}, axis=-1),
        node("Transpose-default-reverses", "Transpose", {"x": x4}),
        node("Transpose-perm", "Transpose", {"x": x4}, perm=[0, 2, 3, 1]),
        node("Squeeze11-axes-attribute", "Squeeze", {"x": f32(3, 1, 4, 1)}, opset=11, axes=[-1, 1]),
        node("Squeeze11-all-ones", "Squeeze", {"x": f32(1, 3, 1, 4)}, opset=11),
        node("Squeeze13-axes-input", "Squeeze", {"x": f32(1, 3, 1, 4)}, {"axes": i64(2)}),
        node("Squeeze13-all-ones", "Squeeze", {"x": ints(1, 3, 1)}),
        node("Unsqueeze11-axes-attribute", "Unsqueeze", {"x": f32(3, 4)}, opset=11, axes=[0, -1]),
        node("Unsqueeze13-axes-input", "Unsqueeze", {"x": f32(3, 4)}, {"axes": i64(3, 1)}),
        node("Unsqueeze13-int64-scalar", "Unsqueeze", {"x": scalar(7, np.int64)}, {"axes": i64(0)}),
        node(
            "Concat-negative-axis",
            "Concat",
            {"a": f32(2, 3, 1), "b": f32(2, 3, 4), "c": f32(2, 3, 2)},
            axis=-1,
        ),
        node("Concat-int64-sizes", "Concat", {"a": i64(2, 3)}, {"b": i64(-1)}, axis=0),
    ]

    # Split: sizes as an attribute before 13, as an input from 13, num_outputs from 18
    def split(
        name: str, opset: int, x: np.ndarray, n: int, sizes: list[int] | None = None, **attrs
    ) -> Case:
        outs = [f"y{i}" for i in range(n)]
        ins, inits = ["x"], {}
        if sizes is not None and opset < 13:
            attrs["split"] = sizes
        elif sizes is not None:
            ins.append("split")
            inits["split"] = np.array(sizes, np.int64)
        return case(
            f"Split{opset}-{name}",
            N("Split", ins, outs, **attrs),
            {"x": x},
            inits=inits,
            outputs=outs,
            opset=opset,
        )

    c += [
        split("sizes-attribute", 11, f32(2, 4, 3), 2, [1, 3], axis=1),
        split("equal-negative-axis", 11, f32(2, 3, 6), 3, axis=-1),
        split("sizes-input", 13, f32(6, 2), 3, [2, 1, 3]),
        split("equal-default-axis", 13, ints(4, 3), 2),
        split("num_outputs-uneven", 18, f32(7, 2), 3, num_outputs=3),
        split("num_outputs-empty-last", 18, f32(2, 6), 4, axis=1, num_outputs=4),
        split("sizes-input", 18, f32(2, 5), 2, [4, 1], axis=1),
    ]

    # Slice: starts/ends/axes as attributes before 10, inputs (with steps) from 10
    def slice_(
        name: str,
        opset: int,
        x: np.ndarray,
        starts: list[int],
        ends: list[int],
        axes: list[int] | None = None,
        steps: list[int] | None = None,
    ) -> Case:
        if opset < 10:
            attrs: dict = {"starts": starts, "ends": ends}
            if axes is not None:
                attrs["axes"] = axes
            return case(
                f"Slice{opset}-{name}", N("Slice", ["x"], ["y"], **attrs), {"x": x}, opset=opset
            )
        inits = {"starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64)}
        ins = ["x", "starts", "ends"]
        if axes is not None:
            inits["axes"] = np.array(axes, np.int64)
            ins.append("axes")
        if steps is not None:
            inits["steps"] = np.array(steps, np.int64)
            ins += [""] * (4 - len(ins)) + ["steps"]
        return case(
            f"Slice{opset}-{name}", N("Slice", ins, ["y"]), {"x": x}, inits=inits, opset=opset
        )

    c += [
        slice_("attributes-negative-and-huge", 9, x3, [1, -3], [INT64_MAX, -1], axes=[0, 2]),
        slice_("attributes-default-axes", 9, x3, [0, 1], [2, 3]),
        slice_("inputs-no-steps", 10, x3, [-2], [100], axes=[1]),
        slice_("steps-negative-axes", 13, x3, [0, -1], [5, -100], axes=[-1, 1], steps=[2, -2]),
        slice_(
            "backwards-from-out-of-range",
            13,
            x3,
            [10, 2],
            [INT64_MIN, 0],
            axes=[2, 1],
            steps=[-1, -1],
        ),
        slice_("steps-without-axes", 13, x3, [2, 0], [0, 4], steps=[-1, 3]),
        slice_("int64-shape-tail", 13, i64(2, 3, 4, 5), [1], [INT64_MAX]),
    ]

    # indexing and shape queries
    c += [
        node(
            "Gather-axis0-2d-negative-indices",
            "Gather",
            {"x": x3},
            {"i": np.array([[0, -1], [2, 1]], np.int64)},
        ),
        node(
            "Gather-axis-1-scalar-index", "Gather", {"x": x3}, {"i": scalar(-2, np.int64)}, axis=-1
        ),
        node(
            "Gather-int32-indices-axis1",
            "Gather",
            {"x": x3},
            {"i": np.array([3, 0, 3], np.int32)},
            axis=1,
        ),
        case(
            "Gather-int64-data-from-Shape",
            [N("Shape", ["x"], ["s"]), N("Gather", ["s", "i"], ["y"])],
            {"x": x4},
            inits={"i": scalar(2, np.int64)},
        ),
        node("Shape", "Shape", {"x": x4}),
        node("Shape15-start", "Shape", {"x": x4}, opset=15, start=1),
        node("Shape15-negative-start-end", "Shape", {"x": x4}, opset=15, start=-3, end=-1),
    ]

    # casts: float to integers truncates toward zero; float targets give float32 back
    rounding = np.concatenate([_rounding_values(), f32(8, lo=-100, hi=100)])
    exact_halves = (np.arange(-16, 16) / 8).astype(np.float32)  # representable in float16

    def cast(name: str, x: np.ndarray, to: int, tol: Tol = EXACT) -> Case:
        return case(f"Cast-{name}", N("Cast", ["x"], ["y"], to=to), {"x": x}, tol=tol)

    c += [
        cast("float-to-int64", rounding, TensorProto.INT64),
        cast("float-to-int32", rounding, TensorProto.INT32),
        cast(
            "float-to-bool",
            np.where(np.arange(20) % 3 == 0, 0, f32(20)).astype(np.float32),
            TensorProto.BOOL,
        ),
        cast("int64-to-float", ints(3, 4, lo=-1000, hi=1000), TensorProto.FLOAT),
        cast("int64-to-int8", ints(10, lo=-128, hi=128), TensorProto.INT8),
        cast("int64-to-uint8", ints(10, lo=0, hi=256), TensorProto.UINT8),
        cast("bool-to-float", f32(10) > 0, TensorProto.FLOAT),
        cast("bool-to-int64", f32(10) > 0, TensorProto.INT64),
        cast("int32-to-double", ints(6).astype(np.int32), TensorProto.DOUBLE),
        cast("float-to-double", x4, TensorProto.DOUBLE),
        cast("float-to-float16-representable", exact_halves, TensorProto.FLOAT16),
    ]

    # constants and generated tensors
    def constant(**value) -> onnx.NodeProto:
        return N("Constant", [], ["k"], **value)

    c += [
        case(
            "Constant-value-float-tensor",
            [constant(value=numpy_helper.from_array(f32(4, 5))), N("Add", ["x", "k"], ["y"])],
            {"x": x4},
        ),
        case(
            "Constant-value-int64-tensor-as-shape",
            [constant(value=numpy_helper.from_array(i64(2, -1))), N("Reshape", ["x", "k"], ["y"])],
            {"x": x4},
        ),
        case(
            "Constant-value_float",
            [constant(value_float=0.25), N("Mul", ["x", "k"], ["y"])],
            {"x": x4},
        ),
        case(
            "Constant-value_floats",
            [constant(value_floats=[1.0, -2.0, 0.5, 3.0, 4.0]), N("Mul", ["x", "k"], ["y"])],
            {"x": x4},
        ),
        case(
            "Constant-value_int",
            [constant(value_int=3), N("Add", ["x", "k"], ["y"])],
            {"x": ints(2, 3)},
        ),
        case("Constant-value_ints", [N("Constant", [], ["y"], value_ints=[4, -2, 9])], {}),
        node("ConstantOfShape-default-zeros", "ConstantOfShape", {}, {"shape": i64(2, 3)}),
        case(
            "ConstantOfShape-int64-value-from-Shape",
            [
                N("Shape", ["x"], ["s"]),
                N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(i64(7))),
            ],
            {"x": x3},
        ),
        node(
            "ConstantOfShape-float-value",
            "ConstantOfShape",
            {"shape": i64(3, 1, 2)},
            value=numpy_helper.from_array(np.array([2.5], np.float32)),
        ),
        node("Expand-grows-and-broadcasts", "Expand", {"x": f32(3, 1)}, {"shape": i64(2, 3, 4)}),
        node("Expand-shape-of-ones-keeps-x", "Expand", {"x": f32(2, 3, 4)}, {"shape": i64(3, 1)}),
        node("Expand-int64", "Expand", {"x": ints(1, 3)}, {"shape": i64(4, 1)}),
        node("Tile", "Tile", {"x": f32(2, 3)}, {"r": i64(2, 3)}),
        node("Tile-int64", "Tile", {"x": ints(3)}, {"r": i64(2)}),
        node(
            "Range-int64",
            "Range",
            {},
            {"a": scalar(2, np.int64), "b": scalar(11, np.int64), "d": scalar(3, np.int64)},
        ),
        node(
            "Range-int64-negative-delta",
            "Range",
            {"a": scalar(10, np.int64), "b": scalar(-3, np.int64), "d": scalar(-4, np.int64)},
        ),
        node(
            "Range-float",
            "Range",
            {},
            {"a": scalar(0.5), "b": scalar(3.3), "d": scalar(0.4)},
            tol=ELEMENTWISE,
        ),
    ]

    # Pad: pads and value as attributes before 11, inputs from 11
    def pad(
        name: str,
        x: np.ndarray,
        pads: Sequence[int],
        value: np.ndarray | None = None,
        opset: int = 13,
        **attrs,
    ) -> Case:
        inits = {"pads": i64(*pads)} | ({} if value is None else {"v": value})
        return node(name, "Pad", {"x": x}, inits, opset=opset, **attrs)

    img = f32(1, 2, 5, 6)
    c += [
        node(
            "Pad2-constant-value-attributes",
            "Pad",
            {"x": img},
            opset=9,
            pads=[0, 0, 1, 2, 0, 0, 2, 1],
            value=1.5,
        ),
        node(
            "Pad2-reflect-attribute",
            "Pad",
            {"x": img},
            opset=9,
            mode="reflect",
            pads=[0, 0, 2, 1, 0, 0, 1, 3],
        ),
        pad("Pad11-constant-value-input", img, [0, 0, 1, 2, 0, 0, 2, 1], scalar(-0.5), opset=11),
        pad("Pad11-reflect", img, [0, 0, 2, 1, 0, 0, 1, 3], opset=11, mode="reflect"),
        pad("Pad13-reflect-three-axes", img, [0, 1, 2, 1, 0, 0, 1, 3], mode="reflect"),
        pad("Pad13-edge", img, [0, 0, 3, 0, 0, 0, 1, 4], mode="edge"),
        pad("Pad13-edge-2d", f32(3, 4), [0, 2, 0, 1], mode="edge"),
        pad("Pad13-negative-pads-crop", img, [0, 0, -1, 2, 0, 0, 1, -2]),
        pad("Pad13-channel-axis", img, [0, 1, 0, 0, 0, 2, 0, 0]),
        pad("Pad18-int64", ints(2, 3), [1, 0, 0, 2], scalar(-7, np.int64), opset=18),
    ]

    # Resize: opset 10 (scales input, asymmetric), 11 (roi, scales, sizes), 13 (roi optional)
    small = f32(1, 2, 4, 5)
    c += [
        _resize("nearest-scales", small, scales=[1, 1, 2, 1.5], opset=10),
        _resize("nearest-downscale", f32(1, 2, 9, 8), scales=[1, 1, 0.5, 0.75], opset=10),
        _resize("nearest-down-and-up", f32(1, 2, 9, 8), scales=[1, 1, 0.6, 1.5], opset=10),
        _resize("nearest-roi-scales", small, scales=[1, 1, 1.5, 2], opset=11, mode="nearest"),
        _resize("nearest-sizes", small, sizes=[1, 2, 7, 3], opset=11, mode="nearest"),
        _resize(
            "linear-sizes", small, sizes=[1, 2, 7, 9], opset=11, tol=INTERPOLATED, mode="linear"
        ),
    ]
    for coords in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
        for rounding in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
            c.append(
                _resize(
                    f"nearest-{coords}-{rounding}",
                    small,
                    scales=[1, 1, 1.75, 0.6],
                    mode="nearest",
                    coordinate_transformation_mode=coords,
                    nearest_mode=rounding,
                )
            )
    for coords in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        linear = {"mode": "linear", "coordinate_transformation_mode": coords}
        c += [
            _resize(f"linear-{coords}-up", small, scales=[1, 1, 2, 3], tol=INTERPOLATED, **linear),
            _resize(
                f"linear-{coords}-uneven",
                small,
                scales=[1, 1, 1.7, 0.6],
                tol=INTERPOLATED,
                **linear,
            ),
            _resize(
                f"linear-{coords}-to-one", small, sizes=[1, 2, 1, 3], tol=INTERPOLATED, **linear
            ),
        ]
    c += [
        _resize("linear-3d", f32(2, 3, 7), sizes=[2, 3, 11], tol=INTERPOLATED, mode="linear"),
        _resize(
            "linear-5d",
            f32(1, 2, 3, 4, 5),
            scales=[1, 1, 2, 1.5, 0.8],
            tol=INTERPOLATED,
            mode="linear",
        ),
        _resize("nearest-5d", f32(1, 2, 3, 4, 5), scales=[1, 1, 2, 1.5, 0.8], mode="nearest"),
        _resize("nearest-scales", small, scales=[1, 1, 2, 2], opset=18, mode="nearest"),
        node(
            "Upsample7-scales-attribute",
            "Upsample",
            {"x": small},
            opset=7,
            mode="nearest",
            scales=[1.0, 1.0, 2.0, 3.0],
        ),
        node(
            "Upsample9-scales-input",
            "Upsample",
            {"x": small},
            {"s": np.array([1, 1, 1.5, 2.5], np.float32)},
            opset=9,
            mode="nearest",
        ),
    ]

    # identities
    c += [
        node("Identity", "Identity", {"x": x4}),
        node("Identity-int64", "Identity", {"x": i3}),
        node("Dropout7", "Dropout", {"x": x4}, opset=7),
        case(
            "Dropout13-ratio-and-mask",
            N("Dropout", ["x", "ratio"], ["y", "mask"]),
            {"x": x4},
            inits={"ratio": scalar(0.3)},
            outputs=("y", "mask"),
        ),
    ]
    return c


CASES = _cases()


# --- which registered operators the cases run ------------------------------------------

_CALLS: list[str] = []  # operator types called since the current case began
_EXECUTED: set[str] = set()  # operator types of cases that matched ONNX Runtime
_ATTEMPTED: set[str] = set()  # names of the cases that ran


def _recording(op: str, fn: Callable) -> Callable:
    def op_fn(*args, **kwargs):
        _CALLS.append(op)
        return fn(*args, **kwargs)

    return op_fn


@pytest.fixture(scope="module", autouse=True)
def _record_registry_calls():
    """Wrap every registry entry for this module's tests, so coverage is what ran."""
    tables = (onnx_ops.OPS, onnx_ops.MULTI_OUTPUT)
    saved = [dict(t) for t in tables]
    for table in tables:
        for op, fn in list(table.items()):
            table[op] = _recording(op, fn)
    try:
        yield
    finally:
        for table, original in zip(tables, saved, strict=True):
            table.clear()
            table.update(original)


def _reference(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _assert_matches(name: str, ours: np.ndarray, ref: np.ndarray, tol: Tol) -> None:
    expected_dtype = np.dtype(np.float32) if ref.dtype.kind == "f" else ref.dtype
    assert ours.dtype == expected_dtype, (name, ours.dtype, ref.dtype)
    assert ours.shape == ref.shape, (name, ours.shape, ref.shape)
    want = ref.astype(expected_dtype)
    if tol == EXACT:
        np.testing.assert_array_equal(ours, want, err_msg=name)
        return
    err = np.abs(ours.astype(np.float64) - want.astype(np.float64))
    if tol.per_tensor:
        bound = tol.rel * max(float(np.abs(want).max(initial=0.0)), 1.0)
    else:
        bound = tol.rel * np.maximum(np.abs(want.astype(np.float64)), 1.0)
    worst = float((err - bound).max(initial=-1.0))
    assert worst <= 0, f"{name}: max error {float(err.max()):.3g} over tolerance {tol}"


@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_operator_matches_onnxruntime(c: Case) -> None:
    _ATTEMPTED.add(c.name)
    model = c.model()
    ref = _reference(model).run(None, c.feeds)
    _CALLS.clear()
    ours = OnnxTorchSession(model).run(None, c.feeds)
    assert len(ours) == len(ref) == len(c.outputs)
    for name, a, b in zip(c.outputs, ours, ref, strict=True):
        _assert_matches(f"{c.name}:{name}", a, b, c.tol)
    _EXECUTED.update(_CALLS)


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


# --- refusals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A graph the runner must refuse (on opening or first run), naming `op`."""

    name: str
    op: str
    nodes: tuple[onnx.NodeProto, ...]
    feeds: dict[str, np.ndarray]
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    opset: int = 13
    outputs: tuple[str, ...] = ("y",)


def refusal(
    name: str,
    node: onnx.NodeProto | Sequence[onnx.NodeProto],
    feeds: dict[str, np.ndarray],
    *,
    op: str | None = None,
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 13,
    outputs: Sequence[str] = ("y",),
) -> Refusal:
    nodes = (node,) if isinstance(node, onnx.NodeProto) else tuple(node)
    return Refusal(name, op or nodes[-1].op_type, nodes, feeds, inits or {}, opset, tuple(outputs))


def _resize_refusal(
    name: str, x: np.ndarray, scales: Sequence[float], opset: int = 13, op: str = "Resize", **attrs
) -> Refusal:
    ins = ["x", "scales"] if opset == 10 or op == "Upsample" else ["x", "", "scales"]
    return refusal(
        name,
        N(op, ins, ["y"], **attrs),
        {"x": x},
        inits={"scales": np.array(scales, np.float32)},
        opset=opset,
    )


def _refusals() -> list[Refusal]:
    img = f32(1, 2, 5, 6)
    up = [1.0, 1.0, 2.0, 2.0]
    return [
        refusal("unknown-operator", N("NonMaxSuppression", ["x", "x"], ["y"]), {"x": img}),
        refusal("foreign-domain", N("Relu", ["x"], ["y"], domain="com.microsoft"), {"x": img}),
        refusal(
            "ConvTranspose-1d",
            N("ConvTranspose", ["x", "w"], ["y"]),
            {"x": f32(1, 2, 6)},
            inits={"w": f32(2, 3, 3)},
        ),
        refusal(
            "ConvTranspose-auto_pad",
            N("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2]),
            {"x": img},
            inits={"w": f32(2, 3, 3, 3)},
        ),
        refusal(
            "ConvTranspose-asymmetric-pads",
            N("ConvTranspose", ["x", "w"], ["y"], pads=[1, 0, 0, 1]),
            {"x": img},
            inits={"w": f32(2, 3, 3, 3)},
        ),
        refusal(
            "ConvTranspose-output_shape",
            N("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[11, 13]),
            {"x": img},
            inits={"w": f32(2, 3, 3, 3)},
        ),
        refusal(
            "BatchNormalization7-spatial=0",
            N("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0),
            {"x": img},
            inits={k: f32(2, 5, 6, lo=0.5, hi=1) for k in "sbmv"},
            opset=7,
        ),
        refusal(
            "BatchNormalization14-training-statistics",
            N(
                "BatchNormalization",
                ["x", "s", "b", "m", "v"],
                ["y", "mean", "var"],
                training_mode=1,
            ),
            {"x": img},
            inits={k: f32(2, lo=0.5, hi=1) for k in "sbmv"},
            opset=14,
            outputs=("y", "mean", "var"),
        ),
        refusal(
            "AveragePool19-dilations",
            N("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2]),
            {"x": img},
            opset=19,
        ),
        refusal(
            "AveragePool-asymmetric-pads-excluded",
            N("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 0, 0, 1]),
            {"x": img},
        ),
        refusal(
            "MaxPool-indices-output",
            N("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2]),
            {"x": img},
            outputs=("y", "i"),
        ),
        refusal(
            "Split18-more-outputs-than-parts",
            N("Split", ["x"], list("abcde"), axis=3, num_outputs=5),
            {"x": img},
            opset=18,
            outputs=tuple("abcde"),
        ),
        refusal(
            "Dropout13-training_mode",
            N("Dropout", ["x", "ratio", "train"], ["y"]),
            {"x": img},
            inits={"ratio": scalar(0.5), "train": scalar(True, np.bool_)},
        ),
        refusal("Cast-to-int16", N("Cast", ["x"], ["y"], to=TensorProto.INT16), {"x": img}),
        refusal("Constant-value_string", [N("Constant", [], ["y"], value_string="face")], {}),
        refusal(
            "Pad18-axes-input",
            N("Pad", ["x", "pads", "", "axes"], ["y"]),
            {"x": img},
            inits={"pads": i64(1, 1), "axes": i64(3)},
            opset=18,
        ),
        refusal(
            "Pad19-wrap",
            N("Pad", ["x", "pads"], ["y"], mode="wrap"),
            {"x": img},
            inits={"pads": i64(0, 0, 1, 1, 0, 0, 1, 1)},
            opset=19,
        ),
        refusal(
            "Pad-reflect-on-four-axes",
            N("Pad", ["x", "pads"], ["y"], mode="reflect"),
            {"x": f32(2, 2, 5, 6)},
            inits={"pads": i64(1, 1, 1, 1, 1, 1, 1, 1)},
        ),
        _resize_refusal(
            "Resize18-antialias", img, [1, 1, 0.5, 0.5], opset=18, mode="linear", antialias=1
        ),
        _resize_refusal(
            "Resize18-keep_aspect_ratio_policy",
            img,
            up,
            opset=18,
            keep_aspect_ratio_policy="not_larger",
        ),
        _resize_refusal("Resize18-axes", img, [2.0, 2.0], opset=18, axes=[2, 3]),
        _resize_refusal("Resize-channel-axis", img, [1, 2, 2, 2]),
        _resize_refusal(
            "Resize-nearest-tf_half_pixel_for_nearest",
            img,
            up,
            coordinate_transformation_mode="tf_half_pixel_for_nearest",
        ),
        _resize_refusal(
            "Resize19-nearest-half_pixel_symmetric",
            img,
            up,
            opset=19,
            coordinate_transformation_mode="half_pixel_symmetric",
        ),
        _resize_refusal(
            "Resize-linear-tf_crop_and_resize",
            img,
            up,
            mode="linear",
            coordinate_transformation_mode="tf_crop_and_resize",
        ),
        _resize_refusal(
            "Resize-linear-asymmetric",
            img,
            up,
            mode="linear",
            coordinate_transformation_mode="asymmetric",
        ),
        _resize_refusal("Resize-cubic", img, up, mode="cubic"),
        _resize_refusal("Resize10-linear", img, up, opset=10, mode="linear"),
        _resize_refusal("Upsample9-linear", img, up, opset=9, op="Upsample", mode="linear"),
    ]


REFUSALS = _refusals()
_REFUSALS_RUN: set[str] = set()  # names of the refusal cases that ran
_REFUSED_AT: set[tuple[str, int]] = set()  # (file name, line) of each refusal raised


@pytest.mark.parametrize("r", REFUSALS, ids=[r.name for r in REFUSALS])
def test_unsupported_graph_is_refused_naming_the_operator(r: Refusal) -> None:
    _REFUSALS_RUN.add(r.name)
    model = _model(r.name, r.nodes, r.feeds, r.inits, r.outputs, r.opset)
    with pytest.raises(UnsupportedGraphError) as caught:
        OnnxTorchSession(model).run(None, r.feeds)
    assert r.op in str(caught.value), (r.op, str(caught.value))
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    _REFUSED_AT.add((Path(frame.filename).name, frame.lineno))


# --- coverage ---------------------------------------------------------------------------


def test_every_registered_operator_is_executed() -> None:
    """Coverage from the wrapped registry, so a case that stops reaching an operator (or
    an operator added without a case) fails here."""
    missing_cases = {c.name for c in CASES} - _ATTEMPTED
    if missing_cases:
        pytest.skip(f"needs the whole operator table ({len(missing_cases)} cases not run)")
    registered = onnx_ops.supported_ops()
    executed = _EXECUTED & registered
    n, m = len(executed), len(registered)
    print(f"runner coverage: {n}/{m}")
    assert n / m == 1, f"never executed: {sorted(registered - executed)}"


def _refusal_sites() -> set[tuple[str, int]]:
    """(file name, line) of every `raise UnsupportedGraphError(...)` in the runner."""
    sites = set()
    for module in (onnx_ops, onnx_torch):
        path = Path(str(module.__file__))
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id == "UnsupportedGraphError"
            ):
                sites.add((path.name, node.lineno))
    return sites


def test_every_refusal_is_reached() -> None:
    missing_cases = {r.name for r in REFUSALS} - _REFUSALS_RUN
    if missing_cases:
        pytest.skip(f"needs the whole refusal table ({len(missing_cases)} cases not run)")
    sites = _refusal_sites()
    print(f"refusal coverage: {len(_REFUSED_AT & sites)}/{len(sites)}")
    assert sites <= _REFUSED_AT, f"never raised: {sorted(sites - _REFUSED_AT)}"
