"""The fp16 variant of an ONNX graph whose inputs and outputs stay fp32.

Precision is carried by the graph itself (the way strongly typed TensorRT networks and
TensorRT 11 want it): weights and activations become float16, a Cast follows each fp32
input and precedes each fp32 output, and nodes the caller names stay in fp32 behind
their own Casts. Resize's `roi`/`scales` inputs stay fp32 as the ONNX spec requires.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ghost_engine.errors import ExportError

F32 = TensorProto.FLOAT
F16 = TensorProto.FLOAT16
_FP16_MAX = float(np.finfo(np.float16).max)
# Inputs the ONNX spec types as float32 whatever the data type (op -> input slots).
_FLOAT32_SLOTS = {"Resize": (1, 2), "Upsample": (1,)}


def keep_fp32_rule(ops: tuple[str, ...], scopes: tuple[str, ...]) -> Callable:
    """A predicate: the node's op type is in `ops` or its name contains one of `scopes`."""

    def keep(node: onnx.NodeProto) -> bool:
        return node.op_type in ops or any(s in node.name for s in scopes)

    return keep


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with float weights turned into typed graph inputs: shape inference on it
    gives the same types without copying hundreds of MB of weights through C++."""
    out = onnx.ModelProto()
    out.CopyFrom(model)  # cheap relative to inference, and keeps the original intact
    g = out.graph
    floats = [t for t in g.initializer if t.data_type == F32]
    keep = [t for t in g.initializer if t.data_type != F32]
    for t in floats:
        g.input.append(helper.make_tensor_value_info(t.name, F32, list(t.dims)))
    del g.initializer[:]
    g.initializer.extend(keep)
    return out


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(_skeleton(model), strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    for node in g.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    return types


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    out: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            out.setdefault(name, []).append((node, i))
    return out


def _needed(node: onnx.NodeProto, slot: int, keep: Callable) -> int:
    if keep(node) or slot in _FLOAT32_SLOTS.get(node.op_type, ()):
        return F32
    return F16


def _home_types(graph: onnx.GraphProto, types: dict, keep: Callable) -> dict[str, int]:
    """The precision each float tensor is produced in."""
    consumers = _consumers(graph)

    def fp32_only(name: str) -> bool:
        uses = consumers.get(name, [])
        return bool(uses) and all(_needed(n, i, keep) == F32 for n, i in uses)

    home: dict[str, int] = {v.name: F32 for v in graph.input if types.get(v.name) == F32}
    for t in graph.initializer:
        if t.data_type == F32:
            home[t.name] = F32 if fp32_only(t.name) else F16
    for node in graph.node:
        if node.op_type == "Constant":
            fp32 = fp32_only(node.output[0])
        else:
            fp32 = keep(node)
        for name in node.output:
            if types.get(name) == F32:
                home[name] = F32 if fp32 else F16
    return home


def _to_fp16_tensor(t: onnx.TensorProto) -> onnx.TensorProto:
    value = numpy_helper.to_array(t)
    if np.abs(value).max(initial=0.0) > _FP16_MAX:
        raise ExportError(
            f"weight {t.name!r} exceeds the fp16 range ({_FP16_MAX}); export fp32 instead"
        )
    return numpy_helper.from_array(value.astype(np.float16), t.name)


def _check_supported(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            raise ExportError(
                f"node {node.name!r} ({node.op_type}) has a subgraph; the fp16 pass handles "
                "flat graphs only: export fp32"
            )


def _rename_fp16_outputs(graph: onnx.GraphProto, home: dict[str, int]) -> list[str]:
    """Outputs produced in fp16 get a `_fp16` internal name; returns the renamed ones."""
    renamed = [v.name for v in graph.output if home.get(v.name) == F16]
    mapping = {name: f"{name}_fp16" for name in renamed}
    for node in graph.node:
        for seq in (node.input, node.output):
            for i, name in enumerate(seq):
                if name in mapping:
                    seq[i] = mapping[name]
    for old, new in mapping.items():
        home[new] = home.pop(old)
    return renamed


def _convert_constants(graph: onnx.GraphProto, home: dict[str, int], keep: Callable) -> None:
    for i, t in enumerate(graph.initializer):
        if home.get(t.name) == F16:
            graph.initializer[i].CopyFrom(_to_fp16_tensor(t))
    for node in graph.node:
        if node.op_type == "Constant" and home.get(node.output[0]) == F16:
            for a in node.attribute:
                if a.name == "value":
                    a.t.CopyFrom(_to_fp16_tensor(a.t))
        elif not keep(node):
            for a in node.attribute:
                if node.op_type == "Cast" and a.name == "to" and a.i == F32:
                    a.i = F16
                elif a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    if a.t.data_type == F32:  # e.g. ConstantOfShape
                        a.t.CopyFrom(_to_fp16_tensor(a.t))


def convert_to_fp16(
    model: onnx.ModelProto, keep_fp32: Callable[[onnx.NodeProto], bool]
) -> onnx.ModelProto:
    """A copy of `model` computing in fp16 except nodes where `keep_fp32(node)`; its
    float inputs and outputs stay fp32."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    _check_supported(graph)
    types = _elem_types(out)
    home = _home_types(graph, types, keep_fp32)
    renamed = _rename_fp16_outputs(graph, home)
    _convert_constants(graph, home, keep_fp32)

    casts: dict[tuple[str, int], str] = {}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for slot, name in enumerate(node.input):
            have = home.get(name)
            if have is None:
                continue
            want = _needed(node, slot, keep_fp32)
            if want == have:
                continue
            key = (name, want)
            if key not in casts:
                casts[key] = f"{name}_as_{'fp32' if want == F32 else 'fp16'}"
                nodes.append(
                    helper.make_node(
                        "Cast", [name], [casts[key]], name=f"{casts[key]}_cast", to=want
                    )
                )
            node.input[slot] = casts[key]
        nodes.append(node)
    for name in renamed:
        nodes.append(
            helper.make_node("Cast", [f"{name}_fp16"], [name], name=f"{name}_cast", to=F32)
        )
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # stale types; `check_onnx` infers them afresh
    return out
