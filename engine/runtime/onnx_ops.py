"""ONNX operators as PyTorch calls: the table `OnnxTorchSession` runs graphs with.

Each entry takes (context, inputs, attributes) and returns the node's outputs, following
the ONNX operator specification for the opsets exporters emit (9 to 18). Shape arithmetic
(Shape, Gather on shapes, Concat of sizes) stays in CPU int64 tensors so reading it back
never waits for the device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import onnx
import torch
import torch.nn.functional as F

from ghost_engine.errors import UnsupportedGraphError


class OpContext:
    """What an operator needs besides its inputs: the float type and the opset."""

    def __init__(self, dtype: torch.dtype, opset: int) -> None:
        self.dtype = dtype
        self.opset = opset


ONNX_TO_TORCH = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.BOOL: torch.bool,
}


def _ints(t: torch.Tensor | None) -> list[int]:
    return [] if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _same_device(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape arithmetic lives on the CPU; bring it to the data's device when they meet
    (0-d CPU tensors need no move: PyTorch takes them as scalars, without a copy)."""
    if a.device != b.device and a.dim() and b.dim():
        if a.device.type == "cpu":
            a = a.to(b.device)
        else:
            b = b.to(a.device)
    return a, b


def _binary(fn: Callable) -> Callable:
    def op(ctx: OpContext, ins: list, attrs: dict) -> list:
        a, b = _same_device(ins[0], ins[1])
        return [fn(a, b)]

    return op


def _unary(fn: Callable) -> Callable:
    return lambda ctx, ins, attrs: [fn(ins[0])]


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point() or b.is_floating_point():
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def _variadic(fn: Callable) -> Callable:
    def op(ctx: OpContext, ins: list, attrs: dict) -> list:
        out = ins[0]
        for x in ins[1:]:
            out, x = _same_device(out, x)
            out = fn(out, x)
        return [out]

    return op


def _pads_2d(pads: list[int], spatial: int) -> tuple[list[int], bool]:
    """ONNX pads (begin..., end...) -> (symmetric padding or F.pad order, symmetric?)."""
    if not pads:
        return [0] * spatial, True
    begin, end = pads[:spatial], pads[spatial:]
    if begin == end:
        return begin, True
    order: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        order += [b, e]
    return order, False


def _auto_pad(attrs: dict, x: torch.Tensor, kernel: list[int], strides: list[int], dil) -> list:
    mode = attrs.get("auto_pad", "NOTSET")
    if mode in ("NOTSET", ""):
        return list(attrs.get("pads", []))
    if mode == "VALID":
        return [0] * (2 * len(kernel))
    begin, end = [], []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dil, strict=True):
        total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return begin + end


def _conv(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    spatial = w.dim() - 2
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    strides = list(attrs.get("strides", [1] * spatial))
    dil = list(attrs.get("dilations", [1] * spatial))
    pads, symmetric = _pads_2d(_auto_pad(attrs, x, kernel, strides, dil), spatial)
    if not symmetric:
        x, pads = F.pad(x, pads), [0] * spatial
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    return [conv(x, w, b, strides, pads, dil, attrs.get("group", 1))]


def _conv_transpose(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    spatial = w.dim() - 2
    if spatial != 2 or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise UnsupportedGraphError("ConvTranspose: only 2-d with explicit pads")
    pads, symmetric = _pads_2d(list(attrs.get("pads", [])), spatial)
    if not symmetric or "output_shape" in attrs:
        raise UnsupportedGraphError("ConvTranspose: only symmetric pads, no output_shape")
    return [
        F.conv_transpose2d(
            x,
            w,
            b,
            list(attrs.get("strides", [1, 1])),
            pads,
            list(attrs.get("output_padding", [0, 0])),
            attrs.get("group", 1),
            list(attrs.get("dilations", [1, 1])),
        )
    ]


def _batch_norm(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, scale, bias, mean, var = ins[:5]
    if attrs.get("spatial", 1) != 1:
        raise UnsupportedGraphError("BatchNormalization with spatial=0")
    return [F.batch_norm(x, mean, var, scale, bias, False, 0.0, attrs.get("epsilon", 1e-5))]


def _instance_norm(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, scale, bias = ins
    return [F.instance_norm(x, weight=scale, bias=bias, eps=attrs.get("epsilon", 1e-5))]


def _prelu(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, slope = _same_device(ins[0], ins[1])
    return [torch.where(x < 0, x * slope, x)]


def _clip(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    if ctx.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:  # (as Python numbers of the bound's type: float bounds would make int data float)
        lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else None
        hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else None
    if lo is None and hi is None:
        return [x]
    return [torch.clamp(x, lo, hi)]


def _gemm(ctx: OpContext, ins: list, attrs: dict) -> list:
    a, b = ins[0], ins[1]
    if attrs.get("transA", 0):
        a = a.t()
    if attrs.get("transB", 0):
        b = b.t()
    out = attrs.get("alpha", 1.0) * (a @ b)
    if len(ins) > 2 and ins[2] is not None:
        out = out + attrs.get("beta", 1.0) * ins[2]
    return [out]


def _pool(ctx: OpContext, ins: list, attrs: dict, kind: str) -> list:
    x = ins[0]
    kernel = list(attrs["kernel_shape"])
    spatial = len(kernel)
    strides = list(attrs.get("strides", [1] * spatial))
    dil = list(attrs.get("dilations", [1] * spatial))
    pads, symmetric = _pads_2d(_auto_pad(attrs, x, kernel, strides, dil), spatial)
    ceil = bool(attrs.get("ceil_mode", 0))
    if kind == "max":
        if not symmetric:
            x, pads = F.pad(x, pads, value=-math.inf), [0] * spatial
        max_pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
        return [max_pool(x, kernel, strides, pads, dil, ceil_mode=ceil)]
    if any(d != 1 for d in dil):
        raise UnsupportedGraphError("AveragePool with dilations")
    include = bool(attrs.get("count_include_pad", 0))
    if not symmetric:
        if not include:
            raise UnsupportedGraphError("AveragePool: asymmetric pads without count_include_pad")
        x, pads = F.pad(x, pads), [0] * spatial
    avg_pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    return [avg_pool(x, kernel, strides, pads, ceil_mode=ceil, count_include_pad=include)]


def _global_pool(reduce: str) -> Callable:
    def op(ctx: OpContext, ins: list, attrs: dict) -> list:
        x = ins[0]
        dims = tuple(range(2, x.dim()))
        if reduce == "mean":
            return [x.mean(dim=dims, keepdim=True)]
        return [x.amax(dim=dims, keepdim=True)]

    return op


def _axes(ctx: OpContext, ins: list, attrs: dict, since: int) -> list[int] | None:
    """Axes as an attribute before opset `since`, as the second input from then on."""
    if ctx.opset < since:
        return list(attrs["axes"]) if "axes" in attrs else None
    return _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else None


def _reduce(fn: str, since: int = 18) -> Callable:
    def op(ctx: OpContext, ins: list, attrs: dict) -> list:
        x = ins[0]
        axes = _axes(ctx, ins, attrs, since)
        keep = bool(attrs.get("keepdims", 1))
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return [x]
            axes = list(range(x.dim()))
        dims = tuple(a % x.dim() for a in axes)
        if fn == "mean":
            return [x.mean(dim=dims, keepdim=keep)]
        if fn == "sum":
            return [x.sum(dim=dims, keepdim=keep)]
        return [getattr(x, "amax" if fn == "max" else "amin")(dim=dims, keepdim=keep)]

    return op


def _softmax(ctx: OpContext, ins: list, attrs: dict, log: bool = False) -> list:
    x = ins[0]
    fn = torch.log_softmax if log else torch.softmax
    if ctx.opset >= 13:
        return [fn(x, dim=attrs.get("axis", -1))]
    axis = attrs.get("axis", 1) % x.dim()
    flat = x.reshape(math.prod(x.shape[:axis]), -1)
    return [fn(flat, dim=1).reshape(x.shape)]


def _reshape(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, shape = ins[0], _ints(ins[1])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [x.reshape(shape)]


def _flatten(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.dim() if axis < 0 else axis
    return [x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))]


def _transpose(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    perm = attrs.get("perm", list(reversed(range(x.dim()))))
    return [x.permute(*perm)]


def _squeeze(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    axes = _axes(ctx, ins, attrs, 13)
    if axes is None:
        return [x.squeeze()]
    return [x.squeeze(tuple(a % x.dim() for a in axes))]


def _unsqueeze(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    axes = _axes(ctx, ins, attrs, 13) or []
    rank = x.dim() + len(axes)
    for a in sorted(a % rank for a in axes):
        x = x.unsqueeze(a)
    return [x]


def _concat(ctx: OpContext, ins: list, attrs: dict) -> list:
    parts = [t for t in ins if t is not None]
    device = next((t.device for t in parts if t.device.type != "cpu"), parts[0].device)
    return [torch.cat([t.to(device) for t in parts], dim=attrs["axis"])]


def _split(ctx: OpContext, ins: list, attrs: dict, n_out: int) -> list:
    x, axis = ins[0], attrs.get("axis", 0)
    if ctx.opset < 13:
        sizes = list(attrs.get("split", []))
    else:
        sizes = _ints(ins[1]) if len(ins) > 1 and ins[1] is not None else []
    if not sizes:
        n = attrs.get("num_outputs", n_out)
        step = math.ceil(x.shape[axis] / n)
        sizes = [min(step, x.shape[axis] - i * step) for i in range(n)]
        if min(sizes) < 0:
            raise UnsupportedGraphError(f"Split of {x.shape[axis]} into {n} outputs")
    return list(torch.split(x, sizes, dim=axis))


def _slice(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    if ctx.opset < 10:
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index: list[Any] = [slice(None)] * x.dim()
    flips = []
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis %= x.dim()
        size = x.shape[axis]
        if step > 0:
            index[axis] = slice(*slice(start, end, step).indices(size))
            continue
        # negative steps: torch has none; take the range forwards, then flip. ONNX
        # clamps start to [0, size-1] and end to [-1, size-1] (after adding size to
        # negatives), which is not what Python's slice.indices does
        start = start + size if start < 0 else start
        end = end + size if end < 0 else end
        start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
        picked = list(range(start, end, step))
        index[axis] = slice(picked[-1], picked[0] + 1, -step) if picked else slice(0, 0)
        flips.append(axis)
    out = x[tuple(index)]
    return [out.flip(flips) if flips else out]


def _gather(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, idx = ins[0], ins[1]
    axis = attrs.get("axis", 0) % x.dim()
    idx = idx.to(x.device).long()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = torch.index_select(x, axis, idx.reshape(-1))
    return [out.reshape([*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :]])]


def _shape(ctx: OpContext, ins: list, attrs: dict) -> list:
    dims = list(ins[0].shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return [torch.tensor(dims[start:end], dtype=torch.int64)]


def _cast(ctx: OpContext, ins: list, attrs: dict) -> list:
    to = ONNX_TO_TORCH.get(attrs["to"])
    if to is None:
        raise UnsupportedGraphError(f"Cast to ONNX type {attrs['to']}")
    if to.is_floating_point and (ins[0].is_floating_point() or ins[0].device.type != "cpu"):
        to = ctx.dtype  # the session's float type for data (fp16 runs stay fp16)
    return [ins[0].to(to)]


def _constant_of_shape(ctx: OpContext, ins: list, attrs: dict) -> list:
    value = attrs.get("value")
    fill = torch.zeros(1) if value is None else value
    dtype = ctx.dtype if fill.is_floating_point() else fill.dtype
    return [torch.full(_ints(ins[0]), fill.reshape(-1)[0].item(), dtype=dtype)]


def _expand(ctx: OpContext, ins: list, attrs: dict) -> list:
    x, shape = ins[0], _ints(ins[1])
    rank = max(x.dim(), len(shape))
    dims = [1] * (rank - x.dim()) + list(x.shape)
    shape = [1] * (rank - len(shape)) + shape
    return [x.reshape(dims).expand([b if a == 1 else a for a, b in zip(dims, shape, strict=True)])]


def _tile(ctx: OpContext, ins: list, attrs: dict) -> list:
    return [ins[0].repeat(*_ints(ins[1]))]


def _where(ctx: OpContext, ins: list, attrs: dict) -> list:
    cond, a, b = ins
    a, b = _same_device(a, b)
    return [torch.where(cond.to(a.device), a, b)]


def _pad(ctx: OpContext, ins: list, attrs: dict) -> list:
    x = ins[0]
    mode = attrs.get("mode", "constant")
    if ctx.opset < 11:
        pads, value = list(attrs["pads"]), attrs.get("value", 0.0)
    else:
        pads = _ints(ins[1])
        value = float(ins[2]) if len(ins) > 2 and ins[2] is not None else 0.0
        if len(ins) > 3 and ins[3] is not None:
            raise UnsupportedGraphError("Pad with an axes input")
    n = x.dim()
    begin, end = pads[:n], pads[n:]
    lead = next((i for i in range(n) if begin[i] or end[i]), n)
    order: list[int] = []
    for b, e in zip(reversed(begin[lead:]), reversed(end[lead:]), strict=True):
        order += [b, e]
    if mode == "constant":
        return [F.pad(x, order, value=value)]
    torch_mode = {"reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None or n - lead > 3:
        raise UnsupportedGraphError(f"Pad mode {mode!r} on these axes")
    return [F.pad(x, order, mode=torch_mode)]


def _resize_target(
    ctx: OpContext, op: str, ins: list, x: torch.Tensor, attrs: dict
) -> tuple[list, list]:
    """(output sizes, per-axis scales) of a Resize/Upsample node. With scales given, the
    coordinate maps use them as given (not output/input), as ONNX specifies."""
    if op == "Upsample" and "scales" in attrs:  # opset 7: an attribute
        scales = list(attrs["scales"])
    elif op == "Upsample" or ctx.opset == 10:
        scales = ins[1].reshape(-1).tolist()
    else:
        sizes = ins[3] if len(ins) > 3 and ins[3] is not None else None
        if sizes is not None and sizes.numel():
            out = _ints(sizes)
            return out, [o / d for o, d in zip(out, x.shape, strict=True)]
        scales = ins[2].reshape(-1).tolist()
    out = [int(math.floor(d * s)) for d, s in zip(x.shape, scales, strict=True)]
    return out, scales


@functools.cache  # never evicted: captured CUDA graphs read these tensors by address
def _nearest_index(
    out: int, size: int, mode: str, rounding: str, scale: float, device: torch.device
) -> torch.Tensor:
    """Source index per output position along one axis, made once per device (so a
    graph capture finds it there and copies nothing). In float32, as ONNX Runtime does
    it: float64 picks a different pixel for some (size, output) pairs."""
    i = torch.arange(out, dtype=torch.float32)
    scale_t = torch.tensor(scale, dtype=torch.float32)
    if mode in ("half_pixel", "pytorch_half_pixel"):
        src = (i + 0.5) / scale_t - 0.5
        if mode == "pytorch_half_pixel" and out == 1:
            src = torch.zeros_like(i)
    elif mode == "align_corners":
        src = i * (size - 1) / (out - 1) if out > 1 else torch.zeros_like(i)
    else:  # asymmetric (_resize refuses the other modes before asking)
        src = i / scale_t
    if rounding == "floor":
        idx = torch.floor(src)
    elif rounding == "ceil":
        idx = torch.ceil(src)
    elif rounding == "round_prefer_ceil":
        idx = torch.floor(src + 0.5)
    else:  # round_prefer_floor, the default
        idx = torch.ceil(src - 0.5)
    return idx.clamp(0, size - 1).long().to(device)


_NEAREST_COORDINATES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


def _resize(ctx: OpContext, ins: list, attrs: dict, op: str = "Resize") -> list:
    x = ins[0]
    if attrs.get("antialias", 0) or attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise UnsupportedGraphError("Resize with antialias or keep_aspect_ratio_policy")
    if "axes" in attrs:
        raise UnsupportedGraphError("Resize with axes")
    out, scales = _resize_target(ctx, op, ins, x, attrs)
    if out[:2] != list(x.shape[:2]):
        raise UnsupportedGraphError("Resize of the batch or channel axes")
    mode = attrs.get("mode", "nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    coords = attrs.get("coordinate_transformation_mode", "half_pixel")
    legacy = op == "Upsample" or ctx.opset == 10  # asymmetric coordinates, no attributes
    if legacy:
        coords = "asymmetric"
    if mode == "nearest":
        if coords not in _NEAREST_COORDINATES:
            raise UnsupportedGraphError(f"{op} coordinate_transformation_mode {coords!r}")
        for axis in range(2, x.dim()):
            # ONNX Runtime's rule for the legacy forms: floor, but ceil when shrinking
            rounding = attrs.get("nearest_mode", "round_prefer_floor")
            if legacy:
                rounding = "ceil" if scales[axis] < 1 else "floor"
            size, n = x.shape[axis], out[axis]
            idx = _nearest_index(n, size, coords, rounding, float(scales[axis]), x.device)
            x = torch.index_select(x, axis, idx)
        return [x]
    if mode != "linear" or coords not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        raise UnsupportedGraphError(f"{op} mode {mode!r} with {coords!r} coordinates")
    if coords == "pytorch_half_pixel":
        # an axis resized to length 1 reads source position 0 (PyTorch's interpolate, with
        # no such rule, would read the middle): take that row, leaving a 1 -> 1 axis
        scales = list(scales)
        for axis in range(2, x.dim()):
            if out[axis] == 1:
                x, scales[axis] = x.narrow(axis, 0, 1), 1.0
    interp = {3: "linear", 4: "bilinear", 5: "trilinear"}[x.dim()]
    corners = coords == "align_corners"
    if corners or scales[2:] == [o / d for o, d in zip(out[2:], x.shape[2:], strict=True)]:
        return [F.interpolate(x, size=out[2:], mode=interp, align_corners=corners)]
    # scales that do not divide evenly: map coordinates with them, as ONNX does
    return [
        F.interpolate(
            x,
            scale_factor=scales[2:],
            mode=interp,
            align_corners=False,
            recompute_scale_factor=False,
        )
    ]


def _matmul(ctx: OpContext, ins: list, attrs: dict) -> list:
    a, b = _same_device(ins[0], ins[1])
    return [torch.matmul(a, b)]


def _identity(ctx: OpContext, ins: list, attrs: dict) -> list:
    return [ins[0]]


def _dropout(ctx: OpContext, ins: list, attrs: dict) -> list:
    if len(ins) > 2 and ins[2] is not None and bool(ins[2]):
        raise UnsupportedGraphError("Dropout in training mode (training_mode input true)")
    return [ins[0], torch.ones_like(ins[0], dtype=torch.bool)]


def _constant(ctx: OpContext, ins: list, attrs: dict) -> list:
    if "value" in attrs:
        return [attrs["value"]]  # float values were put on the device when the graph was read
    for key, dtype in (("value_float", ctx.dtype), ("value_int", torch.int64)):
        if key in attrs:
            return [torch.tensor(attrs[key], dtype=dtype)]
    for key, dtype in (("value_floats", ctx.dtype), ("value_ints", torch.int64)):
        if key in attrs:
            return [torch.tensor(list(attrs[key]), dtype=dtype)]
    raise UnsupportedGraphError(f"Constant with attributes {sorted(attrs)}")


def _range(ctx: OpContext, ins: list, attrs: dict) -> list:
    start, limit, delta = (t.item() for t in ins)
    return [torch.arange(start, limit, delta, dtype=ins[0].dtype)]


def _hard_sigmoid(ctx: OpContext, ins: list, attrs: dict) -> list:
    a, b = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
    return [torch.clamp(a * ins[0] + b, 0.0, 1.0)]


OPS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Exp": _unary(torch.exp),
    "Log": _unary(torch.log),
    "Sqrt": _unary(torch.sqrt),
    "Neg": _unary(torch.neg),
    "Abs": _unary(torch.abs),
    "Floor": _unary(torch.floor),
    "Ceil": _unary(torch.ceil),
    "Reciprocal": _unary(torch.reciprocal),
    "Erf": _unary(torch.erf),
    "Softplus": _unary(F.softplus),
    "HardSwish": _unary(F.hardswish),
    "HardSigmoid": _hard_sigmoid,
    "LeakyRelu": lambda ctx, ins, a: [F.leaky_relu(ins[0], a.get("alpha", 0.01))],
    "Elu": lambda ctx, ins, a: [F.elu(ins[0], a.get("alpha", 1.0))],
    "PRelu": _prelu,
    "Clip": _clip,
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(_div),
    "Pow": _binary(torch.pow),
    "Equal": _binary(torch.eq),
    "Greater": _binary(torch.gt),
    "Less": _binary(torch.lt),
    "Max": _variadic(torch.maximum),
    "Min": _variadic(torch.minimum),
    "Sum": _variadic(torch.add),
    "Where": _where,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "MaxPool": lambda ctx, ins, a: _pool(ctx, ins, a, "max"),
    "AveragePool": lambda ctx, ins, a: _pool(ctx, ins, a, "avg"),
    "GlobalAveragePool": _global_pool("mean"),
    "GlobalMaxPool": _global_pool("max"),
    "ReduceMean": _reduce("mean"),
    "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"),
    "ReduceSum": _reduce("sum", since=13),
    "Softmax": _softmax,
    "LogSoftmax": lambda ctx, ins, a: _softmax(ctx, ins, a, log=True),
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Slice": _slice,
    "Gather": _gather,
    "Shape": _shape,
    "Cast": _cast,
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Tile": _tile,
    "Range": _range,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": lambda ctx, ins, a: _resize(ctx, ins, a, op="Upsample"),
    "Identity": _identity,
    "Dropout": _dropout,
}
# Ops whose output count depends on the node (Split returns as many as the node names).
MULTI_OUTPUT: dict[str, Callable] = {"Split": _split}
# How many outputs the OPS entries give, where more than one.
_OUTPUT_COUNTS = {"Dropout": 2}


def supported_ops() -> set[str]:
    """The ONNX operator types this runner implements."""
    return set(OPS) | set(MULTI_OUTPUT)


def output_count(op: str) -> int | None:
    """How many outputs the runner computes for `op` (None: as many as the node names),
    so a node reading more (MaxPool's indices, BatchNormalization's training statistics)
    is refused when the graph is opened rather than failing on a missing value."""
    return None if op in MULTI_OUTPUT else _OUTPUT_COUNTS.get(op, 1)
