"""Run an engine on host arrays for parity checks (copies through PyTorch CUDA tensors)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ghost_engine.errors import ExportError
from ghost_engine.runtime.devices import CUDA, torch_cuda_available
from ghost_engine.runtime.tensorrt import TrtEngine


def engine_runner(path: Path) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """`inputs -> outputs` through `TrtEngine.run` on a CUDA stream; needs torch with CUDA.

    Why torch: it is already a dependency and gives device arrays with
    `__cuda_array_interface__` and streams; the engine itself never sees torch.
    """
    import torch

    if not torch_cuda_available():
        raise ExportError(
            "checking a TensorRT engine needs PyTorch with CUDA; rerun with --no-check "
            "or install a CUDA build of torch"
        )
    engine = TrtEngine(path)
    stream = torch.cuda.Stream()

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dev = {
            n: torch.from_numpy(np.ascontiguousarray(inputs[n], engine.dtype(n))).cuda()
            for n in engine.input_names
        }
        shapes = engine.output_shapes({n: tuple(t.shape) for n, t in dev.items()})
        outs = {
            n: torch.empty(
                shapes[n], dtype=torch.from_numpy(np.empty(0, engine.dtype(n))).dtype, device=CUDA
            )
            for n in engine.output_names
        }
        torch.cuda.current_stream().synchronize()
        engine.run(dev, outs, stream.cuda_stream)
        stream.synchronize()
        return {n: t.float().cpu().numpy() for n, t in outs.items()}

    return run
