"""A trivial Numba CUDA kernel for timing launches (`gpu_probe.numba_launch_us`).

Its own module, imported after `NUMBA_ENABLE_CUDASIM` is read, with `cuda` a module
global as Numba's simulator needs (it swaps the module's `cuda` while a kernel runs).
"""

from __future__ import annotations

from numba import cuda


@cuda.jit
def touch(a):
    """Adds one to every element (one thread each)."""
    i = cuda.grid(1)
    if i < a.shape[0]:
        a[i] += 1
