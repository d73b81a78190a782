"""One calling convention for the image kernels, on the GPU (Numba CUDA) or emulated.

The CUDA kernels and their CPU twins compute the same pixels (proven under Numba's
simulator in the tests) but differ in small ways of calling: the CPU twins return new
arrays where the CUDA ones can write into `out`. `KernelSet` hides that, so the
backend's stage code runs unchanged on CuPy arrays or, for tests, on numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class KernelSet:
    """The image steps the CUDA backend needs, all taking and returning device arrays
    (small data such as points and matrices stay host numpy arrays)."""

    name: str
    nv12_to_rgb: Callable[..., Any]  # (nv12 (H*3/2, W), out=None) -> (H, W, 3) uint8
    rgb_to_i420: Callable[..., Any]  # (rgb (H, W, 3), out=None) -> (H*3/2, W) uint8
    letterbox: Callable[..., Any]  # (frames (N, H, W, 3), size) -> (blob, geometry)
    warp_affine_batch: Callable[..., Any]  # (frames, matrices, size, frame_index) -> crops
    fill_hull: Callable[..., Any]  # (points, height, width) -> uint8 mask
    erode_dilate: Callable[..., Any]  # (mask, size) -> new mask
    zero_border: Callable[..., Any]  # (mask, width) -> the same mask, edges zeroed
    gaussian_blur: Callable[..., Any]  # (mask, sigma_x, sigma_y) -> new uint8 mask
    blend_inverse_warp: Callable[..., Any]  # (frame, swap, mask, matrix) -> frame, in place


def _with_out(convert: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    """A CPU colour conversion that, like its CUDA twin, writes into `out` when given."""

    def converted(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        result = convert(image)
        if out is None:
            return result
        out[...] = result
        return out

    return converted


def _cpu_zero_border(mask: np.ndarray, width: int) -> np.ndarray:
    from ghost_engine.kernels import morphology

    mask[...] = morphology.zero_border(mask, width)
    return mask


def cpu_kernels() -> KernelSet:
    """The CPU twins (numpy in, numpy out)."""
    from ghost_engine.kernels import blend, blur, color, hull_fill, letterbox, morphology, warp

    return KernelSet(
        name="cpu",
        nv12_to_rgb=_with_out(color.nv12_to_rgb),
        rgb_to_i420=_with_out(color.rgb_to_i420),
        letterbox=letterbox.letterbox,
        warp_affine_batch=warp.warp_affine_batch,
        fill_hull=hull_fill.fill_hull,
        erode_dilate=morphology.erode_dilate,
        zero_border=_cpu_zero_border,
        gaussian_blur=blur.gaussian_blur,
        blend_inverse_warp=blend.blend_inverse_warp,
    )


def cuda_kernels() -> KernelSet:
    """The Numba CUDA kernels (imports numba.cuda; on a GPU, or under the simulator)."""
    from ghost_engine.kernels.cuda import blend, color, letterbox, warp
    from ghost_engine.kernels.cuda.mask_kernels import (
        erode_dilate,
        fill_hull,
        gaussian_blur,
        zero_border,
    )

    def nv12(frame: Any, out: Any = None) -> Any:
        return color.nv12_to_rgb(frame, out=out)

    return KernelSet(
        name="cuda",
        nv12_to_rgb=nv12,
        rgb_to_i420=color.rgb_to_i420,
        letterbox=letterbox.letterbox,
        warp_affine_batch=warp.warp_affine_batch,
        fill_hull=fill_hull,
        erode_dilate=erode_dilate,
        zero_border=zero_border,
        gaussian_blur=gaussian_blur,
        blend_inverse_warp=blend.blend_inverse_warp,
    )


def kernels_for(flavour: str) -> KernelSet:
    """CPU twins when emulated, the CUDA kernels otherwise."""
    return cpu_kernels() if flavour == "emulated" else cuda_kernels()
