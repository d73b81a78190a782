"""A small ONNX Runtime wrapper the pipeline and benchmarks run exported models with, and
the one place sessions get their memory settings (`open_session`)."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ghost_engine.errors import InputFileNotFoundError, UserInputError

CPU_PROVIDERS = ("CPUExecutionProvider",)


def session_options(providers: Sequence[str], threads: int = 0) -> ort.SessionOptions:
    """Options for a session on `providers`, with `threads` intra-op threads (0: one per
    core).

    On the CPU the memory pattern is off. With it, ONNX Runtime plans one block for all of
    a run's activations and takes it from its arena beside the blocks the first (unplanned)
    run left there, so the arena holds the activations twice: the 2-block generator at
    batch 8 grew it by 1.9 GB instead of 1.0 GB. The arena itself stays: without it every
    activation is a fresh allocation, page-faulted on every run.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if all(p in CPU_PROVIDERS for p in providers):
        opts.enable_mem_pattern = False
    return opts


def open_session(
    model: str | Path, providers: Sequence[str] | None = None, threads: int = 0
) -> ort.InferenceSession:
    """An inference session with `session_options`, and the heap its loading freed given
    back to the system.

    Loading frees memory in many pieces (the parsed file, weights replaced by the CPU
    optimisations' blocked layouts), which glibc would keep in the process: for the
    2-block generator 240 MB with its weights inside the file, 30 MB with them apart
    (`ghost_engine.export.onnx_cache`).
    """
    chosen = list(providers or CPU_PROVIDERS)
    map_large_blocks()
    session = ort.InferenceSession(str(model), session_options(chosen, threads), providers=chosen)
    release_free_heap()
    return session


# glibc's mallopt parameter for the size from which a block gets its own mapping
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 1 << 20


def map_large_blocks() -> None:
    """Have glibc give every block of `LARGE_BLOCK_BYTES` or more its own mapping, which
    goes back to the system when the block is freed; elsewhere a no-op.

    glibc's default threshold starts at 128 kB and rises to the size of each mapped
    block freed (up to 32 MB), so after the first frames, frames (2.8 MB at 720p) and
    activations come from the heap, whose freed space stays in the process, scattered
    over the threads' arenas. A fixed threshold keeps them apart: a default CPU run
    peaked 88 MB lower (1,869 MB instead of 1,957 MB, 60 frames of nggyup). Setting it
    again is harmless.
    """
    if not sys.platform.startswith("linux"):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # absent outside glibc (musl)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)


def release_free_heap() -> None:
    """Give the heap's free pages back to the system (glibc's `malloc_trim`); elsewhere a
    no-op."""
    if not sys.platform.startswith("linux"):
        return
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # absent outside glibc (musl)
    if trim is not None:
        trim(0)


class OnnxModel:
    """One inference session: `model(**inputs) -> {output name: array}`.

    `providers` defaults to ONNX Runtime's CPU provider; pass e.g.
    `["CUDAExecutionProvider", "CPUExecutionProvider"]` for a GPU. `run_binding` runs a
    prepared `io_binding()` so device-resident inputs and outputs need no host copy.
    Sessions are thread-safe for `run`; an IO binding belongs to one thread.

    The first call gives the process's free heap back once more (`release_free_heap`): by
    then the caller has finished loading, and what loading freed (a recogniser used only
    to embed the source photos, temporary copies of weights) glibc would otherwise keep
    for the rest of the process (this and the trim after loading together lowered a
    default CPU run's peak by 41 MB: 20 frames of nggyup, `bench/memory_vs_length.py
    --ablations`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileNotFoundError(f"ONNX model not found: {self.path}")
        self.session = open_session(self.path, providers, threads)
        self._ran = False
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata properties (see `ghost_engine.export.metadata`)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise UserInputError(
                f"{self.path.name} takes inputs {self.input_names}; "
                f"missing {missing}, unexpected {extra}"
            )
        if not self._ran:
            self._ran = True
            release_free_heap()
        feeds = {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in self.input_names}
        results = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, results, strict=True))

    def io_binding(self) -> ort.IOBinding:
        """A fresh IO binding (bind device buffers with `bind_input`/`bind_output`)."""
        return self.session.io_binding()

    def run_binding(self, binding: ort.IOBinding) -> None:
        """Run with a prepared binding; outputs land where the binding put them."""
        self.session.run_with_iobinding(binding)
