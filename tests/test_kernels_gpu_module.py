"""Lazy GPU imports: clear errors naming the extra, and the driver-less PyNvVideoCodec case."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import torch

from ghost_engine.errors import GhostEngineError, OptionalDependencyError
from ghost_engine.runtime import devices
from ghost_engine.runtime import gpu_packages as gpu


def _hide(monkeypatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError


def test_require_cupy_names_the_extra(monkeypatch):
    _hide(monkeypatch, "cupy")
    with pytest.raises(OptionalDependencyError, match=r"cupy-cuda13x.*ghost-engine\[cuda\]"):
        gpu.require_cupy()


def test_require_nvcodec_missing_package(monkeypatch):
    _hide(monkeypatch, "PyNvVideoCodec")
    with pytest.raises(OptionalDependencyError, match="PyNvVideoCodec") as info:
        gpu.require_nvcodec()
    assert isinstance(info.value, ImportError) and info.value.exit_code == 6


def test_require_nvcodec_without_driver_is_reported_not_raised_raw(monkeypatch):
    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name == "PyNvVideoCodec":
            raise RuntimeError("Failed to load libnvcuvid.so.1")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(gpu.importlib, "import_module", fake_import)
    with pytest.raises(GhostEngineError, match="NVIDIA driver.*libnvcuvid"):
        gpu.require_nvcodec()


def test_require_numba_cuda_returns_the_module():
    module = gpu.require_numba_cuda()
    assert isinstance(module, types.ModuleType) and hasattr(module, "jit")


def test_cuda_available_is_false_without_a_device(monkeypatch):
    # what a machine without a GPU shows, on any machine: PyTorch sees no device and
    # CuPy is not installed
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _hide(monkeypatch, "cupy")
    assert devices.cuda_available() is False
