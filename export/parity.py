"""Parity of an exported model against its PyTorch module on fresh random inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ghost_engine.errors import ExportError
from ghost_engine.export.specs import ExportSpec

# Relative error ||out - ref|| / ||ref|| an export must stay under, per precision.
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}

# Reference outputs by (batch, seed, sorted spatial sizes), shared between candidates.
ReferenceCache = dict[tuple[int, int, tuple[tuple[str, int], ...]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class ParityResult:
    """One comparison: which batch size, the measured relative error, the bound."""

    batch: int
    output: str
    rel_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.rel_error)) and self.rel_error < self.tolerance


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """`||out - ref|| / ||ref||` in float64 (the golden vectors' measure)."""
    out64, ref64 = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(out64 - ref64) / max(float(np.linalg.norm(ref64)), 1e-30))


def random_inputs(
    spec: ExportSpec, batch: int, seed: int, sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Fresh inputs in each input's range; symbolic spatial axes from `sizes`, else
    from the spec's `check_size`."""
    rng = np.random.default_rng(seed)
    sizes = {**dict(spec.check_size), **(sizes or {})}
    out = {}
    for s in spec.inputs:
        shape: list[int] = []
        for i, d in enumerate(s.shape):
            size = batch if i == 0 else sizes.get(d, d) if isinstance(d, str) else d
            if isinstance(size, str):
                raise ExportError(f"{spec.name}: no check size for axes of {s.name} {s.shape}")
            shape.append(size)
        out[s.name] = rng.uniform(s.low, s.high, size=shape).astype(np.float32)
    return out


def torch_runner(module: torch.nn.Module, spec: ExportSpec) -> Callable:
    """`inputs -> {output: array}` running `module` on the CPU without gradients."""

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with torch.no_grad():
            y = module(*(torch.from_numpy(inputs[s.name]) for s in spec.inputs))
        ys = y if isinstance(y, tuple) else (y,)
        return {s.name: t.numpy() for s, t in zip(spec.outputs, ys, strict=True)}

    return run


def compare(
    candidate: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    reference: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    spec: ExportSpec,
    *,
    batches: Sequence[int],
    tolerance: float,
    seed: int = 1234,
    sizes: dict[str, int] | None = None,
    cache: ReferenceCache | None = None,
) -> list[ParityResult]:
    """Run both on the same fresh inputs at each batch size; one result per output.

    `sizes` overrides the spec's sizes of symbolic spatial axes; `cache` (a dict the
    caller keeps) holds reference outputs so several candidates share one reference run.
    """
    results = []
    for k, batch in enumerate(batches):
        inputs = random_inputs(spec, batch, seed + k, sizes)
        key = (batch, seed + k, tuple(sorted((sizes or {}).items())))
        if cache is not None and key in cache:
            ref = cache[key]
        else:
            ref = reference(inputs)
            if cache is not None:
                cache[key] = ref
        got = candidate(inputs)
        for name, ref_value in ref.items():
            if got[name].shape != ref_value.shape:
                raise ExportError(
                    f"{spec.name}: output {name} has shape {got[name].shape}, "
                    f"the PyTorch module gives {ref_value.shape}"
                )
            err = relative_error(got[name], ref_value)
            results.append(ParityResult(batch, name, err, tolerance))
    return results


def require_parity(results: Sequence[ParityResult], what: str) -> None:
    """Raise ExportError listing the comparisons that exceeded their tolerance."""
    bad = [r for r in results if not r.ok]
    if bad:
        detail = ", ".join(
            f"batch {r.batch} {r.output}: {r.rel_error:.3g} (limit {r.tolerance:g})" for r in bad
        )
        raise ExportError(f"{what}: parity check failed, relative error {detail}")
