"""Run a TensorRT engine on device buffers on a given CUDA stream.

Buffers are anything with `__cuda_array_interface__` (CuPy and Numba arrays, PyTorch
CUDA tensors), so the CUDA backend hands its own arrays in without copies; the wrapper
only binds addresses (`set_tensor_address`) and enqueues (`execute_async_v3`).
`import_tensorrt` is where TensorRT is imported, for running here and for building in
`ghost_engine.export` (which may use the runtime; the runtime never uses export).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from ghost_engine.errors import (
    ExportError,
    InputFileNotFoundError,
    OptionalDependencyError,
    UserInputError,
)


def import_tensorrt(purpose: str = "Building or running TensorRT engines") -> ModuleType:
    """`import tensorrt`, or an OptionalDependencyError that says how to install it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError:
        raise OptionalDependencyError.for_extra("tensorrt", "tensorrt", purpose) from None


@dataclass(frozen=True)
class DeviceBuffer:
    """Address, shape and dtype of a C-contiguous device array."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype


def device_buffer(array: object, what: str = "buffer") -> DeviceBuffer:
    """Read `__cuda_array_interface__`; refuse host arrays and non-contiguous views."""
    iface = getattr(array, "__cuda_array_interface__", None)
    if iface is None:
        raise UserInputError(
            f"{what} is a {type(array).__name__}, not a device array; pass a CuPy array or "
            "a CUDA tensor"
        )
    shape = tuple(int(d) for d in iface["shape"])
    dtype = np.dtype(iface["typestr"])
    strides = iface.get("strides")
    if strides is not None:
        expected: list[int] = []
        step = dtype.itemsize
        for d in reversed(shape):
            expected.insert(0, step)
            step *= d
        if tuple(strides) != tuple(expected):
            raise UserInputError(f"{what} must be C-contiguous (strides {strides})")
    return DeviceBuffer(int(iface["data"][0]), shape, dtype)


def stream_handle(stream: object) -> int:
    """The raw `cudaStream_t` of an int, a CuPy stream (`.ptr`) or a torch stream."""
    if isinstance(stream, int):
        return stream
    for attr in ("ptr", "cuda_stream", "handle"):
        value = getattr(stream, attr, None)
        if isinstance(value, int):
            return value
    raise UserInputError(f"cannot get a CUDA stream handle from a {type(stream).__name__}")


class TrtEngine:
    """A deserialised engine with one execution context.

    Not thread-safe: one context runs one batch at a time; make one `TrtEngine` per
    worker thread. Call `output_shapes` to size the output buffers for a batch, then
    `run(inputs, outputs, stream)`; the call only enqueues work on `stream`.
    """

    def __init__(self, path: str | Path, *, trt: ModuleType | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileNotFoundError(f"TensorRT engine not found: {self.path}")
        self._trt = trt or import_tensorrt("Running TensorRT engines")
        self._logger = self._trt.Logger(self._trt.Logger.WARNING)
        self._runtime = self._trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ExportError(
                f"{self.path.name} does not load with TensorRT {self._trt.__version__} on this "
                "GPU; rebuild it with `ghost-engine export --format tensorrt`"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = self._trt.TensorIOMode.INPUT
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) != mode]

    def dtype(self, name: str) -> np.dtype:
        """The numpy dtype the engine expects for tensor `name`."""
        return np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))

    def output_shapes(self, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple]:
        """Set the input shapes and return the output shapes they give."""
        for name in self.input_names:
            if name not in input_shapes:
                raise UserInputError(f"missing input {name!r}; the engine takes {self.input_names}")
            if not self.context.set_input_shape(name, tuple(input_shapes[name])):
                raise UserInputError(
                    f"input {name!r} shape {tuple(input_shapes[name])} is outside the engine's "
                    f"profile {self.engine.get_tensor_profile_shape(name, 0)}"
                )
        return {n: tuple(self.context.get_tensor_shape(n)) for n in self.output_names}

    def run(
        self, inputs: Mapping[str, object], outputs: Mapping[str, object], stream: object
    ) -> None:
        """Enqueue one inference of device arrays `inputs` into `outputs` on `stream`."""
        ins = {n: device_buffer(inputs[n], n) for n in self.input_names if n in inputs}
        expected = self.output_shapes({n: b.shape for n, b in ins.items()})
        for name in self.output_names:
            if name not in outputs:
                raise UserInputError(f"missing output buffer {name!r}")
        outs = {n: device_buffer(outputs[n], n) for n in self.output_names}
        for name, buf in {**ins, **outs}.items():
            if buf.dtype != self.dtype(name):
                raise UserInputError(f"{name} is {buf.dtype}, the engine takes {self.dtype(name)}")
            if name in expected and buf.shape != expected[name]:
                raise UserInputError(f"output {name} is {buf.shape}, needs {expected[name]}")
            self.context.set_tensor_address(name, buf.ptr)
        if not self.context.execute_async_v3(stream_handle(stream)):
            raise ExportError(f"TensorRT failed to enqueue {self.path.name}")
