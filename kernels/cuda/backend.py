"""Where device arrays come from: CuPy on a GPU, plain numpy under Numba's simulator.

The launch code of every CUDA kernel is written once against `DeviceArrays`; the
simulator (`NUMBA_ENABLE_CUDASIM=1`, set before numba is first imported) runs the same
kernels on numpy arrays so CPU machines test their logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
from numpy.typing import DTypeLike


@dataclass(frozen=True)
class DeviceArrays:
    """Allocation and transfer for one array library (cupy, or numpy under the simulator)."""

    name: str
    xp: ModuleType

    def empty(self, shape: tuple[int, ...], dtype: DTypeLike) -> object:
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape: tuple[int, ...], dtype: DTypeLike) -> object:
        return self.xp.zeros(shape, dtype=dtype)

    def to_device(self, array: np.ndarray) -> object:
        return self.xp.ascontiguousarray(self.xp.asarray(array))

    def to_host(self, array: object) -> np.ndarray:
        if self.name == "cupy":
            return self.xp.asnumpy(array)
        return np.asarray(array)


def cuda_module() -> ModuleType:
    """`numba.cuda`, with a clear error when Numba's CUDA support is missing."""
    from ghost_engine.runtime.gpu_packages import require_numba_cuda

    return require_numba_cuda()


def simulated() -> bool:
    """True when Numba runs CUDA kernels in its CPU simulator."""
    from numba.core import config

    # numba.core.config defines its options through globals(), out of a checker's sight
    return bool(config.ENABLE_CUDASIM)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def device_arrays() -> DeviceArrays:
    """numpy under the simulator, otherwise CuPy (which must then be installed)."""
    cuda_module()
    if simulated():
        return DeviceArrays("simulator", np)
    from ghost_engine.runtime.gpu_packages import require_cupy

    return DeviceArrays("cupy", require_cupy())


def grid_2d(height: int, width: int, block: tuple[int, int] = (16, 16)) -> tuple[tuple, tuple]:
    """(grid, block) covering width x height with 2-D blocks (x along width)."""
    bx, by = block
    return ((width + bx - 1) // bx, (height + by - 1) // by), (bx, by)


def grid_3d(
    depth: int, height: int, width: int, block: tuple[int, int] = (16, 16)
) -> tuple[tuple, tuple]:
    """(grid, block) covering depth x height x width; z indexes the batch."""
    bx, by = block
    return ((width + bx - 1) // bx, (height + by - 1) // by, depth), (bx, by, 1)
