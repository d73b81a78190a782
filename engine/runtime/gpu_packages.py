"""Lazy imports of the optional GPU packages (`pip install 'ghost-engine[cuda]'`).

Nothing here imports a GPU package at module import time. Each helper returns the module
or raises `OptionalDependencyError` saying what to install; `import PyNvVideoCodec`
raises RuntimeError (not ImportError) on a machine without the NVIDIA driver, which is
reported the same way, with the driver named.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ghost_engine.errors import OptionalDependencyError


def _import(name: str, package: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise OptionalDependencyError.for_extra(package, "cuda", purpose) from exc


def require_cupy() -> ModuleType:
    """The `cupy` module (device arrays for the CUDA backend)."""
    return _import("cupy", "cupy-cuda13x", "The CUDA backend")


def require_numba_cuda() -> ModuleType:
    """`numba.cuda` (the on-device image kernels); numba-cuda provides it on new numba."""
    return _import("numba.cuda", "numba-cuda", "The CUDA image kernels")


def require_nvcodec() -> ModuleType:
    """The `PyNvVideoCodec` module (NVDEC decoding into device memory)."""
    try:
        return importlib.import_module("PyNvVideoCodec")
    except ImportError as exc:
        raise OptionalDependencyError.for_extra(
            "PyNvVideoCodec", "cuda", "Hardware video decoding (NVDEC)"
        ) from exc
    except RuntimeError as exc:
        raise OptionalDependencyError(
            f"Hardware video decoding (NVDEC) needs the NVIDIA driver, and PyNvVideoCodec "
            f"could not load it ({exc}). Install the driver, or decode on the CPU "
            f"(--device cpu)."
        ) from exc
