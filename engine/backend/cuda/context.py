"""Where the CUDA backend's arrays live and how they cross to PyTorch and to the host.

Three flavours share one interface so the backend's logic is written once:

- `cuda`: CuPy device arrays, the Numba CUDA kernels, PyTorch on `cuda:0`;
- `simulator`: numpy arrays and the same Numba kernels under `NUMBA_ENABLE_CUDASIM=1`
  (proves the kernels on a CPU; too slow for whole frames);
- `emulated`: numpy arrays with the CPU twins of every kernel (each twin is proven equal
  to its CUDA kernel under the simulator), so the backend's threads, buffers and stage
  logic run on a CPU at full size in tests.

All kernels and PyTorch work run on the device's legacy default stream, so their order
is the order of the calls; device-to-host copies go on a separate non-blocking stream
and are ordered after the compute by an event (`DeviceContext.download`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ghost_engine.errors import OptionalDependencyError, UserInputError

FLAVOURS = ("cuda", "simulator", "emulated")


@dataclass
class DeviceContext:
    """Array allocation, transfers and PyTorch interop for one flavour (see module doc)."""

    flavour: str
    xp: Any  # cupy, or numpy
    torch_device: Any  # torch.device
    _copy_stream: Any = field(default=None, repr=False)

    @property
    def on_gpu(self) -> bool:
        return self.flavour == "cuda"

    # -- allocation -----------------------------------------------------------------------

    def empty(self, shape: tuple[int, ...], dtype: Any = np.uint8) -> Any:
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any = np.uint8) -> Any:
        return self.xp.zeros(shape, dtype=dtype)

    def pinned_empty(self, shape: tuple[int, ...], dtype: Any = np.uint8) -> np.ndarray:
        """Page-locked host memory on a GPU (async copies need it), plain numpy otherwise."""
        if not self.on_gpu:
            return np.empty(shape, dtype=dtype)
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        memory = self.xp.cuda.alloc_pinned_memory(count)
        return np.frombuffer(memory, dtype=dtype, count=int(np.prod(shape))).reshape(shape)

    # -- transfers ------------------------------------------------------------------------

    def new_stream(self) -> Any:
        """A non-blocking CUDA stream (CuPy) for one thread's own ordered work, which then
        does not wait for the default stream's queue; None off the GPU."""
        return self.xp.cuda.Stream(non_blocking=True) if self.xp is not np else None

    def upload(self, host: np.ndarray, out: Any = None, stream: Any = None) -> Any:
        """Host array -> device array (into `out` when given). On the default stream, or
        on `stream` (from `new_stream`), waiting only for that copy."""
        host = np.ascontiguousarray(host)
        if out is None:
            return self.xp.array(host) if self.on_gpu else host.copy()
        if tuple(out.shape) != host.shape:
            raise ValueError(f"upload target {tuple(out.shape)} does not fit {host.shape}")
        if self.on_gpu and stream is not None:
            out.set(host, stream=stream)
            stream.synchronize()
        elif self.on_gpu:
            out.set(host)
        else:
            out[...] = host
        return out

    def download(self, device: Any, out: np.ndarray | None = None) -> DownloadTicket:
        """Start copying `device` into host `out` (pinned); `ticket.wait()` before reading.

        On a GPU the copy runs on a non-blocking stream after an event recorded on the
        default stream, so later compute overlaps it; emulated, it is done at once.
        """
        if out is None:
            out = self.pinned_empty(tuple(device.shape), device.dtype)
        if not self.on_gpu:
            out[...] = device
            return DownloadTicket(out, None, None)
        cupy = self.xp
        device = cupy.ascontiguousarray(device)  # any copy happens before the event
        ready = cupy.cuda.Event(disable_timing=True)
        ready.record(cupy.cuda.Stream.null)
        self._copy_stream.wait_event(ready)
        device.get(stream=self._copy_stream, out=out, blocking=False)
        done = cupy.cuda.Event(disable_timing=True)
        done.record(self._copy_stream)
        return DownloadTicket(out, done, device)  # the source lives until the copy landed

    def to_host(self, device: Any) -> np.ndarray:
        """A synchronous host copy (small things: points, masks for overlays)."""
        return self.download(device).wait()

    def synchronize(self) -> None:
        if self.on_gpu:
            self.xp.cuda.Device().synchronize()

    # -- PyTorch --------------------------------------------------------------------------

    def to_torch(self, array: Any) -> Any:
        """The same memory as a torch tensor (no copy)."""
        import torch

        if self.on_gpu:
            return torch.as_tensor(array, device=self.torch_device)
        return torch.from_numpy(np.asarray(array))

    def from_torch(self, tensor: Any) -> Any:
        """The same memory as a device array (no copy; the tensor must be contiguous)."""
        tensor = tensor.contiguous()
        if self.on_gpu:
            return self.xp.asarray(tensor)
        return tensor.numpy()


@dataclass
class DownloadTicket:
    """A device-to-host copy in flight; `wait()` returns the host array once it landed."""

    host: np.ndarray
    event: Any
    source: Any  # kept referenced: freed early, its memory could be rewritten mid-copy

    def wait(self) -> np.ndarray:
        if self.event is not None:
            self.event.synchronize()
            self.event = None
        self.source = None
        return self.host


def missing_packages() -> list[str]:
    """The `cuda` extra's packages the CUDA backend needs that are not installed."""
    import importlib.util

    missing = []
    for module, package in (("cupy", "cupy-cuda13x"), ("numba", "numba-cuda")):
        if importlib.util.find_spec(module) is None:
            missing.append(package)
    return missing


def _one_stream_no_interface_sync() -> None:
    """Arrays pass between CuPy, Numba and PyTorch through `__cuda_array_interface__`,
    whose consumers by default synchronise the producer's stream on every hand-over (a
    host wait per kernel launch). All our compute is on the one default stream, so the
    order is already right; the waits are turned off unless the user set them."""
    os.environ.setdefault("CUPY_CUDA_ARRAY_INTERFACE_SYNC", "0")
    os.environ.setdefault("NUMBA_CUDA_ARRAY_INTERFACE_SYNC", "0")


def device_context(flavour: str = "cuda") -> DeviceContext:
    """The context for `flavour`; on `cuda`, a clear error when a piece is missing."""
    import torch

    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    if flavour == "emulated":
        return DeviceContext("emulated", np, torch.device("cpu"))
    from ghost_engine.kernels.cuda.backend import simulated

    if flavour == "simulator":
        if not simulated():
            raise RuntimeError("set NUMBA_ENABLE_CUDASIM=1 before numba is imported")
        return DeviceContext("simulator", np, torch.device("cpu"))
    from ghost_engine.runtime.gpu_packages import require_cupy, require_numba_cuda

    _one_stream_no_interface_sync()
    cupy = require_cupy()
    require_numba_cuda()
    from numba.core import config as numba_config

    if os.environ["NUMBA_CUDA_ARRAY_INTERFACE_SYNC"] == "0":  # numba read it at import
        # numba.core.config defines its options through globals(), out of a checker's sight
        numba_config.CUDA_ARRAY_INTERFACE_SYNC = False  # type: ignore[attr-defined]
    if not torch.cuda.is_available():
        raise UserInputError(
            "the CUDA backend needs a GPU that PyTorch can use (torch.cuda.is_available() "
            "is False); use --device cpu, or install a CUDA build of PyTorch"
        )
    # Shapes are fixed within a stream (256 crops, bucketed batches, one frame size), so
    # cuDNN's one-off autotuning per shape buys the fastest convolution for the rest.
    torch.backends.cudnn.benchmark = True
    try:
        cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise OptionalDependencyError(
            f"CuPy cannot reach the GPU ({exc}); install the cupy package that matches "
            "the CUDA driver (pip install 'ghost-engine[cuda]')"
        ) from exc
    # one copy stream for every thread's downloads, made here (not lazily in two threads)
    return DeviceContext("cuda", cupy, torch.device("cuda", 0), cupy.cuda.Stream(non_blocking=True))
