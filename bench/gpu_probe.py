"""The GPU check's first section and its environment: what the machine can do, cheaply.

- `check_probe`: whether PyNvVideoCodec imports and why not (and what the engine's loader
  made of it), the fp16/bf16 matrix-product ceiling, the device-copy ceiling, pinned and
  pageable transfer rates through the backend's own `DeviceContext` (frame-sized and
  256 MiB), and microseconds per Numba kernel launch (CuPy and Numba arrays);
- `environment`: driver version, which NVIDIA driver libraries the loader opens
  (libcuda, libnvcuvid, libnvidia-encode), package versions, GPU name; read without
  initialising CUDA, so the parent process never holds a context.

On a CPU (`--device cpu --simulate --tiny`) the same code runs small: the products in
fp32, host copies for device copies, the emulated context, Numba's simulator.
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from gpu_common import Recorder, past

from ghost_engine.runtime import devices
from ghost_engine.runtime import gpu_packages as gp

PACKAGES = (
    "ghost-engine",
    "torch",
    "triton",
    "numpy",
    "cupy-cuda13x",
    "cupy-cuda12x",
    "numba",
    "numba-cuda",
    "cuda-bindings",
    "av",
    "PyNvVideoCodec",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorrt",
    "opencv-python-headless",
    "nvidia-cudnn-cu13",
)


# ---------------------------------------------------------------- environment


def package_versions() -> dict[str, str]:
    """Installed versions, read from metadata (importing PyNvVideoCodec needs a driver)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def driver_libraries() -> dict[str, str]:
    """Per NVIDIA driver library: the file the dynamic loader opened, or why not."""
    out = {}
    for name, what in gp.DRIVER_LIBRARIES.items():
        error = gp.driver_library_error(name)
        out[name] = f"missing ({what}): {error}" if error else _loaded_path(name)
    return out


def _loaded_path(soname: str) -> str:
    stem = soname.split(".so")[0] + ".so"
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return "loads"
    paths = {line.split()[-1] for line in maps if f"/{stem}" in line}
    return sorted(paths)[0] if paths else "loads"


def cuda_driver_version() -> str | None:
    """The CUDA version the driver supports ("13.0"), asked without initialising CUDA."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int()
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return f"{version.value // 1000}.{version.value % 1000 // 10}"


def nvidia_smi() -> dict[str, str] | str:
    query = "name,driver_version,memory.total,clocks.max.sm,clocks.max.mem"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi did not run: {exc}"
    if out.returncode != 0:
        return f"nvidia-smi failed: {(out.stderr or out.stdout).strip()[:300]}"
    first = out.stdout.strip().splitlines()[0]
    return dict(zip(query.split(","), (v.strip() for v in first.split(",")), strict=False))


def environment(device: str, simulate: bool, commit: str) -> dict:
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "device": device,
        "simulate": simulate,
        "commit": commit,
        "nvidia_smi": nvidia_smi(),
        "cuda_driver_version": cuda_driver_version(),
        "driver_libraries": driver_libraries(),
        "packages": package_versions(),
    }


# ---------------------------------------------------------------- the probe section


def nvcodec_status() -> dict:
    """PyNvVideoCodec's own import, and what the engine's loader could load."""
    out: dict[str, Any] = {}
    try:
        import PyNvVideoCodec  # noqa: F401 - the package's own import, as a user's

        out["package_import"] = "ok"
    except Exception as exc:  # noqa: BLE001 - recorded: this is what the probe is for
        first = (str(exc).strip().splitlines() or [""])[0]
        out["package_import"] = f"failed: {type(exc).__name__}: {first}"
        out["missing_library"] = gp.missing_library(exc)
    try:
        module = gp.require_nvcodec()
    except ImportError as exc:  # OptionalDependencyError
        out["engine_loads"] = False
        out["engine_reason"] = str(exc)
        return out
    out["engine_loads"] = gp.nvcodec_load_note(module) or "the whole package"
    out["has_decoder_api"] = all(
        hasattr(module, n) for n in ("CreateDemuxer", "CreateDecoder", "GetDecoderCaps")
    )
    return out


def _timer(gpu: bool) -> Callable[[Callable[[], object], int], float]:
    """(fn, reps) -> mean seconds per call after 2 warm-ups, by CUDA events on a GPU."""
    import torch

    def run(fn: Callable[[], object], reps: int) -> float:
        for _ in range(2):
            fn()
        if gpu:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(reps):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000 / reps
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t0) / reps

    return run


def gemm_ceiling(gpu: bool, tiny: bool) -> dict:
    """Matrix-product TFLOP/s on random data: fp16 and bf16 8192^3 on a GPU (fp32 256^3
    on a CPU)."""
    import torch

    timed = _timer(gpu)
    n = 256 if tiny or not gpu else 8192
    kinds = (torch.float16, torch.bfloat16) if gpu else (torch.float32,)
    out = {"n": n}
    for dtype in kinds:
        a = torch.randn(n, n, device="cuda" if gpu else "cpu").to(dtype)
        b = torch.randn(n, n, device=a.device).to(dtype)
        seconds = timed(lambda a=a, b=b: a @ b, 10 if gpu else 2)
        out[str(dtype).replace("torch.", "")] = round(2 * n**3 / seconds / 1e12, 2)
        del a, b
    return out


def copy_ceiling(gpu: bool, tiny: bool) -> dict:
    """Device-to-device copy GB/s (bytes read plus written), 1 GiB (16 MiB on a CPU)."""
    import torch

    timed = _timer(gpu)
    size = (16 if tiny or not gpu else 1024) * 2**20
    src = torch.empty(size, dtype=torch.uint8, device="cuda" if gpu else "cpu").random_()
    dst = torch.empty_like(src)
    seconds = timed(lambda: dst.copy_(src), 10 if gpu else 2)
    return {"bytes": size, "gb_per_s": round(2 * size / seconds / 1e9, 1)}


def transfer_rates(gpu: bool, tiny: bool, deadline: float) -> dict:
    """Host<->device GB/s through the backend's `DeviceContext`: pinned uploads on their
    own stream (as the PyAV fallback's `UploadSource`), pinned downloads (as
    `DownloadStage`), and a pageable upload for contrast; per frame size and 256 MiB."""
    from ghost_engine.backend.cuda.context import device_context

    ctx = device_context("cuda" if gpu else "emulated")
    stream = ctx.new_stream()
    sizes = {"720p_rgb": (720, 1280, 3), "1080p_rgb": (1080, 1920, 3)}
    sizes["256MiB"] = (256 * 2**20,)
    if tiny:
        sizes = {"tiny_rgb": (24, 32, 3), "1MiB": (2**20,)}
    reps = 20 if gpu else 2
    out: dict[str, Any] = {"context": ctx.flavour}
    for name, shape in sizes.items():
        if past(deadline):
            out[name] = "not run: section time box reached"
            continue
        pinned = ctx.pinned_empty(shape)
        pinned[...] = 7
        pageable = np.full(shape, 7, np.uint8)
        device = ctx.empty(shape)
        nbytes = pinned.nbytes
        row = {}
        for label, fn in (
            ("upload_pinned", lambda p=pinned, d=device: ctx.upload(p, out=d, stream=stream)),
            ("upload_pageable", lambda p=pageable, d=device: ctx.upload(p, out=d)),
            ("download_pinned", lambda p=pinned, d=device: ctx.download(d, out=p).wait()),
        ):
            fn()
            ctx.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            ctx.synchronize()
            seconds = (time.perf_counter() - t0) / reps
            row[label] = {
                "gb_per_s": round(nbytes / seconds / 1e9, 2),
                "ms": round(seconds * 1e3, 3),
            }
        if not np.array_equal(ctx.to_host(device), pageable):
            raise RuntimeError(f"{name}: the uploaded array differs from the host one")
        out[name] = row
    return out


def numba_launch_us(gpu: bool, tiny: bool) -> dict:
    """Microseconds per launch of a trivial Numba kernel, queued back to back, on a CuPy
    array (what our kernels get: each launch reads `__cuda_array_interface__`) and on a
    Numba device array; the result is checked."""
    from gpu_launch import touch  # beside this script
    from numba import cuda
    from numba.core import config

    from ghost_engine.kernels.cuda.backend import device_arrays

    dev = device_arrays()
    n = 32 if tiny else 256
    launches = 1000 if gpu else 3
    out: dict[str, Any] = {"arrays": dev.name, "launches": launches}
    # the backend turns the interface's per-hand-over synchronisation off (context.py)
    out["interface_sync"] = bool(config.CUDA_ARRAY_INTERFACE_SYNC)  # type: ignore[attr-defined]
    for label, array in (
        (dev.name, dev.to_device(np.zeros(n, np.float32))),
        ("numba", cuda.to_device(np.zeros(n, np.float32))),
    ):
        touch[1, n](array)  # compiles (once per argument type)
        cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(launches):
            touch[1, n](array)
        cuda.synchronize()
        out[f"{label}_us"] = round((time.perf_counter() - t0) / launches * 1e6, 2)
        host = dev.to_host(array) if label == dev.name else array.copy_to_host()
        if not np.all(host == launches + 1):
            raise RuntimeError(f"the {label} launches did not all run: {host[:4]}")
    return out


def check_probe(cfg: Any, deadline: float, rec: Recorder) -> dict:
    """The probe section (module doc); each part is saved as it completes."""
    gpu = devices.is_gpu(cfg.device)
    res = rec.data
    res["nvcodec"] = nvcodec_status()
    rec.save()
    for key, part in (
        ("gemm_tflops", lambda: gemm_ceiling(gpu, cfg.tiny)),
        ("device_copy", lambda: copy_ceiling(gpu, cfg.tiny)),
        ("transfers", lambda: transfer_rates(gpu, cfg.tiny, deadline)),
        ("numba_launch", lambda: numba_launch_us(gpu, cfg.tiny)),
    ):
        if past(deadline):
            res[key] = "not run: section time box reached"
            continue
        res[key] = part()
        rec.save()
    if gpu:
        import torch

        res["gpu_name"] = torch.cuda.get_device_name(0)
        res["multiprocessors"] = torch.cuda.get_device_properties(0).multi_processor_count
    return res
