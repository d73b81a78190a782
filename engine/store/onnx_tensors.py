"""Every tensor stored in an ONNX model, wherever the graph keeps it.

Weights live in the graph's initializers, in `Constant` nodes and in the sub-graphs of
`If`/`Loop`/`Scan` nodes; a check that only read the initializers would miss a weight (or
an external-data reference) hidden in the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto, numpy_helper

_FLOAT_TYPES = {
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.DOUBLE,
    TensorProto.BFLOAT16,
}


def stored_tensors(model: ModelProto) -> Iterator[TensorProto]:
    """Each tensor the file stores, depth first through sub-graphs."""
    yield from _graph_tensors(model.graph)


def external_reference(tensor: TensorProto) -> str | None:
    """Where `tensor` says its data lives outside the file, or None when it is inside."""
    if tensor.data_location != TensorProto.EXTERNAL and not tensor.external_data:
        return None
    entries = {e.key: e.value for e in tensor.external_data}
    return entries.get("location", "<no location>")


def float_arrays(model: ModelProto) -> Iterator[tuple[str, np.ndarray]]:
    """(name, values) of each floating-point tensor stored in the file (not external)."""
    for tensor in stored_tensors(model):
        if tensor.data_type in _FLOAT_TYPES and external_reference(tensor) is None:
            yield tensor.name, numpy_helper.to_array(tensor)


def _graph_tensors(graph: GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            yield from _attribute_tensors(attr)


def _attribute_tensors(attr: Any) -> Iterator[TensorProto]:
    if attr.type == AttributeProto.TENSOR:
        yield attr.t
    elif attr.type == AttributeProto.TENSORS:
        yield from attr.tensors
    elif attr.type == AttributeProto.SPARSE_TENSOR:
        yield attr.sparse_tensor.values
    elif attr.type == AttributeProto.GRAPH:
        yield from _graph_tensors(attr.g)
    elif attr.type == AttributeProto.GRAPHS:
        for graph in attr.graphs:
            yield from _graph_tensors(graph)
