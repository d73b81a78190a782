"""Which compute devices exist and how to address them: the one module that asks.

Every other package takes a device name ("cpu" or "cuda") and hands it here (or to the
backend, `ghost_engine.backend`, which uses this module); nothing else probes CUDA. The
probes import torch (or CuPy) lazily, so importing this module is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from ghost_engine.errors import UserInputError

CPU = "cpu"
CUDA = "cuda"
# What `--device` accepts for swapping and benchmarks.
DEVICES = (CPU, CUDA)
# What `train --device` accepts: "auto" is this process's GPU where there is one.
TRAIN_DEVICES = ("auto", CPU, CUDA)


def is_gpu(device: Any) -> bool:
    """True for "cuda", "cuda:1" or a CUDA `torch.device`; False for the CPU."""
    kind = getattr(device, "type", None) or str(device).split(":", 1)[0]
    return kind == CUDA


def cuda_available() -> bool:
    """True when a CUDA device can actually be used (driver present, one device or more).

    Checked through torch when it has CUDA, else through CuPy (whose device query raises
    its CUDARuntimeError when there is no driver, which means "no").
    """
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def torch_cuda_available() -> bool:
    """Whether PyTorch itself can run on a GPU (what its CUDA tensors need)."""
    import torch

    return bool(torch.cuda.is_available())


def check_device(device: str, option: str = "--device") -> None:
    """Refuse an unknown device, or "cuda" where PyTorch sees no GPU, before anything loads."""
    if device not in DEVICES:
        raise UserInputError(
            f"{option} must be one of {', '.join(DEVICES)}; got {device!r}",
            option=option,
            value=device,
            allowed=DEVICES,
        )
    if is_gpu(device) and not torch_cuda_available():
        raise UserInputError(
            f"{option} cuda was requested but no CUDA device is available to PyTorch "
            f"(torch.cuda.is_available() is False); use {option} cpu",
            option=option,
            value=device,
            allowed=DEVICES,
        )


def torch_device(device: Any) -> Any:
    """`torch.device` for a name or device."""
    import torch

    return device if isinstance(device, torch.device) else torch.device(device)


def synchronize(device: Any) -> None:
    """Wait for queued GPU work, so a step's wall time is its own (no-op on the CPU)."""
    if is_gpu(device):
        import torch

        torch.cuda.synchronize(torch_device(device))


def training_device(requested: str, local_rank: int = 0) -> Any:
    """'auto' -> this process's GPU if any, else the CPU; 'cpu'/'cuda' force one."""
    import torch

    if requested not in TRAIN_DEVICES:
        raise UserInputError(
            f"device must be one of {', '.join(TRAIN_DEVICES)}; got {requested!r}",
            option="--device",
            value=requested,
            allowed=TRAIN_DEVICES,
        )
    if requested == CUDA and not torch.cuda.is_available():
        raise UserInputError(
            "device 'cuda' asked for but no CUDA GPU is visible; use --device cpu",
            option="--device",
            value=requested,
            allowed=TRAIN_DEVICES,
        )
    if requested != CPU and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device(CUDA, local_rank)
    return torch.device(CPU)


def collective_backend(device: Any) -> str:
    """The torch.distributed backend for processes on `device`: NCCL on GPUs, else Gloo."""
    return "nccl" if is_gpu(device) else "gloo"


def device_ids(device: Any) -> list[int] | None:
    """`device_ids` for DistributedDataParallel: the GPU's index, None on the CPU."""
    return [torch_device(device).index] if is_gpu(device) else None


def gpu_rng_state() -> Any | None:
    """Every GPU's RNG state, or None where there is no GPU."""
    import torch

    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def set_gpu_rng_state(state: Any | None) -> None:
    """Restore what `gpu_rng_state` gave (ignored where there is no GPU now)."""
    import torch

    if state is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state)


def gpu_description(index: int = 0) -> dict | None:
    """Name, memory and CUDA version of GPU `index` as PyTorch sees it, or None."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(index)
    return {
        "name": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
    }


def onnxruntime_providers(device: Any) -> list[str]:
    """ONNX Runtime providers for `device`, best first (CUDA's is skipped by ONNX Runtime
    itself where its GPU build is absent)."""
    if is_gpu(device):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def gpu_model(index: int = 0) -> tuple[str, tuple[int, int]]:
    """Name and compute capability (major, minor) of GPU `index`: what a TensorRT engine is
    tied to. Read through PyTorch when it has CUDA, else through CuPy; where neither sees
    a GPU this raises ImportError or RuntimeError (CuPy's CUDARuntimeError is one)."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(index)
            return torch.cuda.get_device_name(index), (major, minor)
    except (ImportError, RuntimeError):
        pass  # fall through to CuPy
    cupy = importlib.import_module("cupy")
    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return name, (int(props["major"]), int(props["minor"]))
