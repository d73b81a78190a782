"""Structure checks run after the hash check and before a file is used.

- `.pth`: loaded through `ghost_engine.networks.load` (safe `weights_only` unpickling,
  strict key/shape match against the registered network), which also writes the
  `.safetensors` copy that later runs load.
- `.onnx`: refused when any tensor keeps its data outside the file (the published models
  never do, and such a file reads whatever path it names when a run opens it); then
  input/output count, names, ranks and fixed sizes against the manifest's signature, read
  from the graph without running it.
- both: refused when every weight tensor is one repeated value (a zero-filled fake).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghost_engine.errors import CheckpointError
from ghost_engine.store.constant_weights import constant_weights
from ghost_engine.store.manifest import ModelEntry, OnnxSignature, TensorSpec


def check_structure(entry: ModelEntry, path: Path) -> Path | None:
    """Check `path` as `entry`'s file; returns the `.safetensors` written beside it, if any."""
    if entry.kind == "onnx":
        check_onnx(path, entry.signature or OnnxSignature((), ()), label=entry.name)
        return None
    return _check_pth(entry, path)


def _check_pth(entry: ModelEntry, path: Path) -> Path | None:
    import pickle

    from ghost_engine import networks

    converted = path.with_suffix(".safetensors")
    if entry.network is None:  # the manifest parser requires it for .pth entries
        raise CheckpointError(f"{entry.name}: the manifest names no network for {path}")
    try:
        module = networks.load(entry.network, path, convert=True)
    except CheckpointError:
        raise
    except (RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(
            f"{entry.name}: {path} does not load into network {entry.network!r}: {exc}",
            path=path,
        ) from exc
    weights = (
        (name, tensor.detach().float().numpy())
        for name, tensor in module.state_dict().items()
        if tensor.is_floating_point()
    )
    _refuse_constant(entry.name, path, constant_weights(weights))
    return converted if converted.is_file() else None


def _refuse_constant(label: str, path: Path, found: str | None) -> None:
    if found is not None:
        raise CheckpointError(
            f"{label}: {path} is not a trained network: {found}. Download the published "
            f"file with: ghost-engine models download {label}",
            path=path,
        )


def check_onnx(path: Path, signature: OnnxSignature, *, label: str) -> None:
    """Raise CheckpointError unless the ONNX file at `path` keeps all its data inside,
    fits `signature` and holds weights that are not all one value."""
    from ghost_engine.store.onnx_tensors import float_arrays

    model = _load_onnx(path, label)
    _refuse_external_data(model, path, label)
    _refuse_signature_problems(model, signature, path, label)
    _refuse_constant(label, path, constant_weights(float_arrays(model)))


def check_onnx_signature(path: Path, signature: OnnxSignature, *, label: str) -> None:
    """Raise CheckpointError unless the ONNX graph at `path` fits `signature`.

    An empty signature only checks that the file parses as an ONNX model.
    """
    _refuse_signature_problems(_load_onnx(path, label), signature, path, label)


def _load_onnx(path: Path, label: str) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf DecodeError and others; all mean "bad"
        raise CheckpointError(
            f"{label}: {path} is not a readable ONNX model: {exc}", path=path
        ) from exc


def _refuse_signature_problems(
    model: Any, signature: OnnxSignature, path: Path, label: str
) -> None:
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in weights]
    problems = _compare("input", inputs, signature.inputs)
    problems += _compare("output", list(graph.output), signature.outputs)
    if problems:
        raise CheckpointError(
            f"{label}: {path} is not the expected model: " + "; ".join(problems) + ". "
            f"Download the published file with: ghost-engine models download {label}",
            path=path,
        )


def _refuse_external_data(model: Any, path: Path, label: str) -> None:
    from ghost_engine.store.onnx_tensors import external_reference, stored_tensors

    for tensor in stored_tensors(model):
        location = external_reference(tensor)
        if location is not None:
            raise CheckpointError(
                f"{label}: {path} is an ONNX file with external data (tensor "
                f"{tensor.name!r} points to {location!r}); the published model keeps its "
                f"weights inside the file, so this one is refused",
                path=path,
            )


def _compare(kind: str, actual: list, expected: tuple[TensorSpec, ...]) -> list[str]:
    if not expected:
        return []
    if len(actual) != len(expected):
        names = [v.name for v in actual]
        return [f"it has {len(actual)} {kind}s {names}, expected {len(expected)}"]
    problems = []
    for i, (value, spec) in enumerate(zip(actual, expected, strict=True)):
        where = f"{kind} {i} ({value.name!r})"
        if spec.name is not None and value.name != spec.name:
            problems.append(f"{where} should be named {spec.name!r}")
        dims = _dims(value)
        if spec.ranks and len(dims) not in spec.ranks:
            problems.append(f"{where} has rank {len(dims)}, expected {list(spec.ranks)}")
            continue
        for axis, size in spec.dims:
            if not -len(dims) <= axis < len(dims):
                problems.append(f"{where} has no axis {axis}")
            elif dims[axis] is not None and dims[axis] != size:
                problems.append(f"{where} axis {axis} is {dims[axis]}, expected {size}")
    return problems


def _dims(value) -> list[int | None]:
    """Fixed sizes of a graph value's shape; None for symbolic or unknown axes."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
