"""Which runtime runs an ONNX-only model (detector, landmarks, glintr100) on a device.

ONNX Runtime's CUDA provider when its GPU build is installed; otherwise, on a CUDA
device, the PyTorch ONNX runner (`ghost_engine.runtime.onnx_torch`, replayed from a
CUDA graph per input shape), so detection does not fall back to the CPU; on the CPU,
ONNX Runtime. ONNX Runtime sessions get their memory settings from
`ghost_engine.runtime.onnx_model.open_session`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

ORT_CUDA = "onnxruntime-cuda"
TORCH_CUDA = "torch-cuda"
ORT_CPU = "onnxruntime-cpu"


def session_kind(device: str, ort_providers: Sequence[str], torch_cuda: bool) -> str:
    """The runtime for `device`, given ONNX Runtime's providers and whether PyTorch
    sees a GPU."""
    if not device.startswith("cuda"):
        return ORT_CPU
    if "CUDAExecutionProvider" in ort_providers:
        return ORT_CUDA
    return TORCH_CUDA if torch_cuda else ORT_CPU


def open_onnx(path: Path, device: str) -> Any:
    """An onnxruntime-like session for the model file at `path` on `device`."""
    import onnxruntime
    import torch

    kind = session_kind(device, onnxruntime.get_available_providers(), torch.cuda.is_available())
    if kind == TORCH_CUDA:
        from ghost_engine.errors import UnsupportedGraphError
        from ghost_engine.runtime.onnx_torch import OnnxTorchSession

        try:
            return OnnxTorchSession(path, device, cuda_graphs=True)
        except UnsupportedGraphError as exc:
            _log.warning("%s runs on the CPU with ONNX Runtime: %s", path.name, exc)
            kind = ORT_CPU
    from ghost_engine.runtime.onnx_model import open_session

    providers = ["CUDAExecutionProvider"] if kind == ORT_CUDA else []
    return open_session(path, providers + ["CPUExecutionProvider"])
