"""PyTorch module -> simplified fp32 ONNX graph.

Uses the TorchScript exporter (`dynamo=False`): the dynamo exporter needs `onnxscript`,
which the engine does not depend on, and the TorchScript one gives flat per-op graphs
whose node names carry the module path (the fp16 pass reads the `Fp32Region` marker
from them). Opset 17: accepted by the TensorRT 8.6 to 11 ONNX parsers and by every ONNX
Runtime since 1.14, and nothing in these networks needs a newer op version.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from ghost_engine.errors import ExportError
from ghost_engine.export.specs import ExportSpec

OPSET = 17
_TRACE_BATCH = 1  # the batch axis is symbolic; 1 traces cheapest (parity runs at 1 and 5)
_TRACE_SPATIAL = 64  # symbolic spatial axes: the smallest size InstanceNorm accepts (2x2 at 1/32)


def trace_inputs(spec: ExportSpec) -> tuple[torch.Tensor, ...]:
    """Example inputs for tracing: batch 1, symbolic spatial axes at 64."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for io_spec in spec.inputs:
        shape = [
            _TRACE_BATCH
            if i == 0 and isinstance(d, str)
            else (_TRACE_SPATIAL if isinstance(d, str) else d)
            for i, d in enumerate(io_spec.shape)
        ]
        x = torch.rand(shape, generator=gen) * (io_spec.high - io_spec.low) + io_spec.low
        out.append(x)
    return tuple(out)


def torch_to_onnx(module: torch.nn.Module, spec: ExportSpec, opset: int = OPSET) -> onnx.ModelProto:
    """Trace `module` into an ONNX graph with the spec's names and dynamic axes."""
    buffer = io.BytesIO()
    dynamic = {s.name: s.dynamic_axes() for s in (*spec.inputs, *spec.outputs)}
    with torch.no_grad(), warnings.catch_warnings():
        # Shape checks inside forward() trace as constants; TorchScript warns about each.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # InstanceNorm always normalises by the input's own statistics; not a training op.
        warnings.filterwarnings("ignore", message="ONNX export mode is set to TrainingMode.EVAL")
        torch.onnx.export(
            module,
            trace_inputs(spec),
            # The TorchScript exporter writes to file-like objects; torch's annotation
            # only names paths.
            buffer,  # type: ignore[arg-type]
            dynamo=False,
            opset_version=opset,
            input_names=[s.name for s in spec.inputs],
            output_names=[s.name for s in spec.outputs],
            dynamic_axes=dynamic,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    return onnx.load_from_string(buffer.getvalue())


def _strip_unused_domains(model: onnx.ModelProto) -> None:
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def simplify(model: onnx.ModelProto, work_dir: Path | None = None) -> onnx.ModelProto:
    """Fold constants and fuse what ONNX itself can express (BN into ConvTranspose,
    shape arithmetic on constants), using ONNX Runtime's *basic* offline optimisation.

    Why basic only: it keeps standard ONNX ops, so the result stays portable to TensorRT
    and other runtimes; higher levels write ONNX Runtime's own fused ops.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        path = Path(tmp) / "optimised.onnx"
        opts.optimized_model_filepath = str(path)
        try:
            ort.InferenceSession(
                model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped errors here
            raise ExportError(f"ONNX Runtime could not optimise the graph: {exc}") from exc
        out = onnx.load(str(path))
    _strip_unused_domains(out)
    del out.graph.value_info[:]  # ORT's inferred types; `check_onnx` infers them afresh
    return out
