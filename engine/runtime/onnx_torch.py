"""ONNX graphs run op by op with PyTorch, on whatever device PyTorch has.

The detector (SCRFD) and the 106-point landmark network are published only as ONNX
files. ONNX Runtime runs them on the GPU only in its `onnxruntime-gpu` build, which
cannot sit beside the CPU build the engine depends on; without it, `--device cuda`
would detect faces on the CPU and that alone would cap a GPU run at a few dozen frames
per second. `OnnxTorchSession` reads the same file and runs it with PyTorch kernels on
the GPU, behind the part of `onnxruntime.InferenceSession`'s interface the engine uses
(`get_inputs`, `get_outputs`, `run`), and also takes and returns torch tensors so device
callers skip the host copies.

Only the operators such networks are made of are implemented (convolutions, norms,
activations, pooling, resizing, shape arithmetic); a graph with anything else is refused
when it is opened, with the operators named.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ghost_engine.errors import UnsupportedGraphError
from ghost_engine.runtime.onnx_ops import (
    MULTI_OUTPUT,
    OPS,
    OpContext,
    output_count,
    supported_ops,
)

__all__ = ["OnnxTorchSession", "UnsupportedGraphError", "TensorInfo", "supported_ops"]


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output as onnxruntime's `NodeArg` shows it."""

    name: str
    shape: list[int | str | None]
    type: str


@dataclass(frozen=True)
class _Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


_TYPE_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "tensor(float)",
    onnx.TensorProto.FLOAT16: "tensor(float16)",
    onnx.TensorProto.INT64: "tensor(int64)",
}


# Inputs (by position) that are parameters of an operator, not data: read on the host.
_PARAMETER_INPUTS = {
    "Resize": slice(1, None),
    "Upsample": slice(1, None),
    "Clip": slice(1, None),
    "Pad": slice(1, None),
    "Range": slice(0, None),
    "ConstantOfShape": slice(0, None),
}


def _host_parameters(graph: onnx.GraphProto) -> set[str]:
    """Initializers that are only ever operator parameters (resize scales, clip bounds,
    pad values): kept on the CPU, so reading them needs no device sync (and the graph
    can be captured into a CUDA graph)."""
    as_parameter: set[str] = set()
    as_data: set[str] = set()
    for node in graph.node:
        params = _PARAMETER_INPUTS.get(node.op_type)
        for pos, name in enumerate(node.input):
            is_param = params is not None and pos in range(len(node.input))[params]
            (as_parameter if is_param else as_data).add(name)
    return as_parameter - as_data - {""}


def _refuse_unsupported(graph: onnx.GraphProto) -> None:
    """Refuse, when the graph is opened (so callers can fall back to ONNX Runtime), nodes
    of operators or domains the runner lacks, and nodes asking for outputs their operator
    does not give here (MaxPool's indices, BatchNormalization's training statistics)."""
    standard = ("", "ai.onnx")
    missing = sorted(
        ({n.op_type for n in graph.node if n.domain in standard} - supported_ops())
        | {f"{n.domain}.{n.op_type}" for n in graph.node if n.domain not in standard}
    )
    if missing:
        raise UnsupportedGraphError(
            f"the PyTorch ONNX runner cannot run graph {graph.name!r}: operators "
            f"{', '.join(missing)} are not implemented; run it with ONNX Runtime instead",
            value=tuple(missing),
            allowed=tuple(sorted(supported_ops())),
        )
    for n in graph.node:
        limit = output_count(n.op_type)
        extra = [name for name in n.output[limit:] if name] if limit is not None else []
        if extra:
            raise UnsupportedGraphError(
                f"the PyTorch ONNX runner gives {n.op_type} {limit} output(s), graph "
                f"{graph.name!r} reads {len(n.output)} ({', '.join(extra)}); run it with ONNX "
                "Runtime instead"
            )


def _attr(a: onnx.AttributeProto) -> Any:
    value = onnx.helper.get_attribute_value(a)
    if isinstance(value, onnx.TensorProto):
        return torch.from_numpy(numpy_helper.to_array(value).copy())
    if isinstance(value, bytes):
        return value.decode()
    return value


def _info(v: onnx.ValueInfoProto) -> TensorInfo:
    t = v.type.tensor_type
    shape: list[int | str | None] = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        else:
            shape.append(d.dim_param or None)
    return TensorInfo(v.name, shape, _TYPE_NAMES.get(t.elem_type, f"tensor({t.elem_type})"))


class OnnxTorchSession:
    """An ONNX file run with PyTorch on `device` (see module doc).

    dtype: the float type of weights and activations (float16 halves the work on a GPU;
    outputs are returned as float32 either way). A run keeps its state to itself, so
    threads may share a session.
    """

    accepts_torch = True

    def __init__(
        self,
        model: str | Path | onnx.ModelProto,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        cuda_graphs: bool = False,
    ) -> None:
        if not isinstance(model, onnx.ModelProto):
            model = onnx.load(str(model))
        graph = model.graph
        _refuse_unsupported(graph)
        self.device = torch.device(device)
        self.dtype = dtype
        self._ctx = OpContext(dtype, self._opset(model))
        host = _host_parameters(graph)
        self._weights = {
            i.name: self._tensor(numpy_helper.to_array(i), on_host=i.name in host)
            for i in graph.initializer
        }
        self._nodes = []
        for n in graph.node:
            node = _Node(
                n.op_type, tuple(n.input), tuple(n.output), {a.name: _attr(a) for a in n.attribute}
            )
            if node.op == "Constant":  # folded into the weights, placed like them
                (value,) = OPS["Constant"](OpContext(torch.float32, 1), [], node.attrs)
                host_side = node.outputs[0] in host
                self._weights[node.outputs[0]] = value if host_side else self._place(value)
                continue
            if node.op != "ConstantOfShape":  # (its fill value is read on the host)
                for key, value in node.attrs.items():
                    if isinstance(value, torch.Tensor) and value.is_floating_point():
                        node.attrs[key] = self._place(value)
            self._nodes.append(node)
        self._inputs = [_info(v) for v in graph.input if v.name not in self._weights]
        self._outputs = [_info(v) for v in graph.output]
        self._last_use = self._last_uses()
        self._graphed: Any = None
        self._graph_lock = threading.Lock()
        if cuda_graphs and self.device.type == "cuda":
            from ghost_engine.runtime.cuda_graphs import GraphedForward

            self._graphed = GraphedForward(self._execute)

    @staticmethod
    def _opset(model: onnx.ModelProto) -> int:
        for op in model.opset_import:
            if op.domain in ("", "ai.onnx"):
                return int(op.version)
        return 1

    def _place(self, t: torch.Tensor) -> torch.Tensor:
        """Float data to the session's device and type; integers (shape arithmetic) stay
        on the CPU, where reading them back costs no device synchronisation."""
        if t.is_floating_point():
            return t.to(self.device, self.dtype)
        return t

    def _tensor(self, a: np.ndarray, on_host: bool = False) -> torch.Tensor:
        t = torch.from_numpy(np.array(a, order="C"))  # (ascontiguousarray makes 0-d 1-d)
        return t if on_host else self._place(t)

    def _last_uses(self) -> dict[str, int]:
        keep = {o.name for o in self._outputs}
        last: dict[str, int] = {}
        for i, node in enumerate(self._nodes):
            for name in node.inputs:
                if name and name not in keep:
                    last[name] = i
        return last

    def get_inputs(self) -> list[TensorInfo]:
        return list(self._inputs)

    def get_outputs(self) -> list[TensorInfo]:
        return list(self._outputs)

    def run_torch(
        self, output_names: Sequence[str] | None, feeds: dict[str, Any]
    ) -> list[torch.Tensor]:
        """Like `run`, but inputs may be torch tensors on the device and the outputs stay
        torch tensors there (float outputs as float32)."""
        inputs = []
        for info in self._inputs:
            if info.name not in feeds:
                raise ValueError(f"missing input {info.name!r}")
            value = feeds[info.name]
            if not isinstance(value, torch.Tensor):
                value = torch.from_numpy(np.asarray(value, order="C"))  # 0-d stays 0-d
            inputs.append(value.to(self.device, self.dtype if value.is_floating_point() else None))
        with torch.inference_mode():
            if self._graphed is not None:
                with self._graph_lock:  # replays share the graphs' static buffers
                    outs = self._graphed(*inputs)
            else:
                outs = self._execute(*inputs)
        by_name = dict(zip((o.name for o in self._outputs), outs, strict=True))
        names = list(output_names) if output_names else list(by_name)
        return [by_name[n].float() if by_name[n].is_floating_point() else by_name[n] for n in names]

    def _execute(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        """Every node in order; all graph outputs. Nothing here copies between host and
        device for graphs whose parameters are constants, so it can be graph-captured."""
        env: dict[str, torch.Tensor] = dict(self._weights)
        env.update(zip((i.name for i in self._inputs), inputs, strict=True))
        for i, node in enumerate(self._nodes):
            args = [env[n] if n else None for n in node.inputs]
            if node.op in MULTI_OUTPUT:
                results = MULTI_OUTPUT[node.op](self._ctx, args, node.attrs, len(node.outputs))
            else:
                results = OPS[node.op](self._ctx, args, node.attrs)
            for name, value in zip(node.outputs, results, strict=False):
                if name:
                    env[name] = value
            for name in dict.fromkeys(node.inputs):  # a node may read one value twice
                if name and self._last_use.get(name) == i and name not in self._weights:
                    del env[name]
        return [env[o.name] for o in self._outputs]

    @property
    def graph_shapes(self) -> list[Any]:
        """Input shapes replayed from CUDA graphs so far (empty without graphs)."""
        return [] if self._graphed is None else self._graphed.captured_sizes

    @property
    def graph_failure(self) -> str | None:
        """Why CUDA graph capture failed (the session then runs eagerly), if it did."""
        return None if self._graphed is None else self._graphed.failed

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, Any]) -> list[np.ndarray]:
        """onnxruntime's `run`: numpy (or torch) inputs, numpy outputs."""
        return [t.cpu().numpy() for t in self.run_torch(output_names, feeds)]
