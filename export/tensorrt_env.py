"""GPU identity and the file names TensorRT engines and timing caches get.

An engine only runs on the GPU model and TensorRT version that built it, so both go
into its file name (with precision and batch profile): a changed machine looks for a
different file and rebuilds instead of failing to deserialise an old one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import ExportError
from ghost_engine.export.profile import BatchProfile
from ghost_engine.runtime.devices import gpu_model

# Where TensorRT is imported now; still importable from here for older callers.
from ghost_engine.runtime.tensorrt import import_tensorrt as import_tensorrt


@dataclass(frozen=True)
class GpuIdentity:
    """What an engine is tied to: the GPU model and its compute capability."""

    name: str
    capability: tuple[int, int]

    @property
    def slug(self) -> str:
        """File-name form, e.g. `nvidia-h200.sm90`."""
        model = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "gpu"
        return f"{model}.sm{self.capability[0]}{self.capability[1]}"


def cuda_device_identity(device: int = 0) -> GpuIdentity:
    """The identity of CUDA device `device`, read through PyTorch or CuPy."""
    try:
        name, capability = gpu_model(device)
        return GpuIdentity(name, capability)
    except (ImportError, RuntimeError) as exc:
        raise ExportError(
            "TensorRT engines are built on the GPU that will run them, and no CUDA device is "
            f"visible here ({type(exc).__name__}); build on the target machine"
        ) from None


def _version_slug(version: str) -> str:
    return "trt" + re.sub(r"[^0-9.]+", "", version)


def engine_filename(
    model: str, precision: str, profile: BatchProfile, gpu: GpuIdentity, trt_version: str
) -> str:
    """E.g. `G_unet_2blocks.fp16.b1-8-32.nvidia-h200.sm90.trt10.13.3.6.engine`."""
    batch = f"b{profile.min}-{profile.opt}-{profile.max}"
    return f"{model}.{precision}.{batch}.{gpu.slug}.{_version_slug(trt_version)}.engine"


def timing_cache_path(engine_dir: Path, gpu: GpuIdentity, trt_version: str) -> Path:
    """The timing cache beside the engines, one per GPU model and TensorRT version
    (shared by every model built there: tactic timings are per layer, not per model)."""
    return Path(engine_dir) / f"timing.{gpu.slug}.{_version_slug(trt_version)}.cache"
