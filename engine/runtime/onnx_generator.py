"""The generator through ONNX Runtime: about twice PyTorch's speed on CPUs
(`bench/results/cpu_runtimes.json`), so it is the CPU default (`runtime="auto"`).

The ONNX file it reads is exported once per weights by `ghost_engine.export.onnx_cache`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxGenerator:
    """`(xt (N,3,256,256) in [-1,1], z_id (N,512)) -> Y` like `AEINet`, through ONNX Runtime."""

    def __init__(self, path: Path, device: str = "cpu") -> None:
        from ghost_engine.runtime.devices import onnxruntime_providers
        from ghost_engine.runtime.onnx_model import OnnxModel

        self.model = OnnxModel(path, providers=onnxruntime_providers(device))
        self.path = path

    def __call__(self, xt: np.ndarray, z_id: np.ndarray) -> np.ndarray:
        out = self.model(target=np.ascontiguousarray(xt, np.float32), z_id=z_id)
        return out["swap"]
