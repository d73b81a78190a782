"""One network timed under each inference runtime: PyTorch, ONNX Runtime, TensorRT.

Inputs are random tensors of the network's real shape (timing does not depend on the
values); work per item comes from `FLOP_PER_ITEM`, so achieved FLOP/s shows how far a
runtime is from the machine's limit.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ghost_engine.errors import OptionalDependencyError, UserInputError
from ghost_engine.measure.bench_config import RUNTIMES
from ghost_engine.measure.stats import Measurement
from ghost_engine.runtime import devices

# FLOP per item at the engine's input size, counted with torch.utils.flop_counter on a
# batch-1 forward (a multiply-add counts 2); the 2-block generator's 62 GFLOP is
# DESIGN.md's figure.
FLOP_PER_ITEM = {
    "G_unet_1blocks": 32.62e9,
    "G_unet_2blocks": 62.04e9,
    "G_unet_3blocks": 91.45e9,
    "arcface_iresnet100": 24.18e9,
    "sr_lipspade": 183.19e9,
}


def example_inputs(name: str, batch: int) -> tuple[torch.Tensor, ...]:
    """Random inputs of the shapes the engine feeds `name`, batch first."""
    gen = torch.Generator().manual_seed(0)
    if name.startswith("G_"):
        return (
            torch.rand(batch, 3, 256, 256, generator=gen) * 2 - 1,
            torch.randn(batch, 512, generator=gen),
        )
    if name.startswith("arcface_"):
        return (torch.rand(batch, 3, 112, 112, generator=gen) * 2 - 1,)
    if name == "sr_lipspade":
        return (torch.rand(batch, 3, 256, 256, generator=gen),)
    raise UserInputError(
        f"no benchmark inputs defined for network {name!r}; known: G_unet_*, arcface_*, sr_lipspade"
    )


def count_flops(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """FLOP of one forward of `module` on `inputs` (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        module(*inputs)
    return float(counter.get_total_flops())


class TorchRunner:
    """Eager PyTorch on `device`, as the export's parity reference runs the network (the
    generator returns only the swap); waits for the GPU so the clock sees the work."""

    def __init__(self, module: torch.nn.Module, device: str) -> None:
        self.module = module.to(device).eval()
        self.device = device

    def prepare(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(t.to(self.device) for t in inputs)

    def bind(self, inputs: tuple[torch.Tensor, ...]) -> Callable[[], torch.Tensor]:
        """One call on `inputs`, prepared once for every repeat."""
        prepared = self.prepare(inputs)
        return lambda: self(prepared)

    @torch.inference_mode()
    def __call__(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        out = self.module(*inputs)
        devices.synchronize(self.device)
        return out


class OnnxRunner:
    """The export's `OnnxModel` (CUDA provider first on `cuda`), fed numpy arrays."""

    def __init__(self, path: Path, device: str) -> None:
        from ghost_engine.runtime.onnx_model import OnnxModel

        self.model = OnnxModel(path, providers=devices.onnxruntime_providers(device))

    def prepare(self, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
        arrays = [np.ascontiguousarray(t.cpu().numpy()) for t in inputs]
        return dict(zip(self.model.input_names, arrays, strict=True))

    def bind(self, inputs: tuple[torch.Tensor, ...]) -> Callable[[], np.ndarray]:
        """One call on `inputs`, prepared once for every repeat."""
        prepared = self.prepare(inputs)
        return lambda: self(prepared)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return next(iter(self.model(**inputs).values()))


def export_onnx(name: str, module: torch.nn.Module, folder: Path) -> Path:
    """`module` (network `name`) exported as `ghost-engine export` does: the export
    form of the module, traced, simplified, saved as `folder/<name>.onnx`."""
    import onnx

    from ghost_engine.export.onnx_export import simplify, torch_to_onnx
    from ghost_engine.export.specs import export_spec
    from ghost_engine.export.torch_modules import export_module

    spec = export_spec(name)
    model = simplify(torch_to_onnx(export_module(spec, module.cpu()), spec), Path(folder))
    path = Path(folder) / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def make_runner(
    runtime: str, module: torch.nn.Module, device: str, workdir: Path, name: str
) -> TorchRunner | OnnxRunner:
    """A runner for `runtime`; ONNX models are exported into `workdir` first."""
    from ghost_engine.export.specs import export_spec
    from ghost_engine.export.torch_modules import reference_module

    if runtime == "torch":
        return TorchRunner(reference_module(export_spec(name), module), device)
    if runtime == "onnxruntime":
        path = export_onnx(name, module, workdir)
        module.to(device)
        return OnnxRunner(path, device)
    if runtime == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            raise OptionalDependencyError.for_extra("tensorrt", "tensorrt", "TensorRT timing")
        raise UserInputError(
            "the benchmark does not time TensorRT engines yet; use bench/gpu_check.py for GPU "
            "timings, or --runtime torch / onnxruntime",
            option="--runtime",
            value=runtime,
            allowed=("torch", "onnxruntime"),
        )
    raise UserInputError(
        f"unknown runtime {runtime!r}; choose torch, onnxruntime or tensorrt",
        option="--runtime",
        value=runtime,
        allowed=RUNTIMES,
    )


@dataclass(frozen=True)
class NetworkTiming:
    """One network, runtime and batch size: items/s and achieved FLOP/s."""

    network: str
    runtime: str
    device: str
    batch_size: int
    measurement: Measurement
    flop_per_item: float

    @property
    def items_per_s(self) -> float:
        return self.measurement.per_s

    @property
    def flop_per_s(self) -> float:
        return self.items_per_s * self.flop_per_item

    def to_dict(self) -> dict:
        return {
            "network": self.network,
            "runtime": self.runtime,
            "device": self.device,
            "batch_size": self.batch_size,
            "items_per_s": round(self.items_per_s, 4),
            "ms_per_item": round(1000.0 / self.items_per_s, 3),
            "flop_per_item": self.flop_per_item,
            "achieved_tflop_per_s": round(self.flop_per_s / 1e12, 9),
            "measurement": self.measurement.to_dict(),
        }


def time_network(
    name: str,
    module: torch.nn.Module,
    *,
    runtimes: tuple[str, ...],
    batch_sizes: tuple[int, ...],
    device: str,
    warmup: int,
    repeats: int,
    workdir: Path,
    on_result: Callable[[NetworkTiming], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[NetworkTiming]:
    """Time `module` under every runtime at every batch size (warm-up excluded).

    The runtimes take turns call by call, so on a shared machine a burst of load from
    elsewhere hits all of them alike instead of skewing the comparison.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup}, {repeats}")
    flop = FLOP_PER_ITEM.get(name) or count_flops(module, example_inputs(name, 1))
    runners = {r: make_runner(r, module, device, workdir, name) for r in runtimes}
    out = []
    for batch in batch_sizes:
        calls = {r: runner.bind(example_inputs(name, batch)) for r, runner in runners.items()}
        samples: dict[str, list[float]] = {r: [] for r in runners}
        for call in calls.values():
            for _ in range(warmup):
                call()
        for _ in range(repeats):
            for r, call in calls.items():
                start = clock()
                call()
                samples[r].append(clock() - start)
        for r in runners:
            m = Measurement(tuple(samples[r]), batch, warmup)
            result = NetworkTiming(name, r, device, batch, m, flop)
            out.append(result)
            if on_result is not None:
                on_result(result)
    return out
