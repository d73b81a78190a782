"""CUDA twin of `ghost_engine.kernels.colour.yuv_to_rgb`: the same functions compiled for
the device (`chroma_taps` per axis, `yuv_pixel` per pixel), one thread per pixel, so the
NVDEC path's colours equal the CPU path's bit for bit."""

from __future__ import annotations

from typing import Any

from ghost_engine.kernels import colour as ref
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_2d

cuda = cuda_module()

# the Python source of the CPU path's functions, compiled for the device
_taps = cuda.jit(device=True)(ref.chroma_taps.py_func)
_pixel = cuda.jit(device=True)(ref.yuv_pixel.py_func)


@cuda.jit
def _yuv_kernel(y, cu, cv, out, ch, cw, step, off_u, off_v, sub, a, b, c):
    # U sample (k, j) is cu[k, j * step + off_u]: step 1 for planes, 2 for NV12's
    # interleaved chroma rows (passed whole: no strided views, which the simulator
    # cannot hand to a kernel)
    x, row = cuda.grid(2)
    height, width = y.shape
    if x >= width or row >= height:
        return
    k0, k1, wk0, wk1 = _taps(row, ch, sub[0], 1, 1)
    j0, j1, wj0, wj1 = _taps(x, cw, sub[1], a, b)
    j0 = j0 * step
    j1 = j1 * step
    # int() first: the simulator computes with numpy scalars, which wrap at uint8.
    u16 = wk0 * (wj0 * int(cu[k0, j0 + off_u]) + wj1 * int(cu[k0, j1 + off_u])) + wk1 * (
        wj0 * int(cu[k1, j0 + off_u]) + wj1 * int(cu[k1, j1 + off_u])
    )
    v16 = wk0 * (wj0 * int(cv[k0, j0 + off_v]) + wj1 * int(cv[k0, j1 + off_v])) + wk1 * (
        wj0 * int(cv[k1, j0 + off_v]) + wj1 * int(cv[k1, j1 + off_v])
    )
    r, g, bl = _pixel(int(y[row, x]), u16, v16, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7])
    out[row, x, 0] = r
    out[row, x, 1] = g
    out[row, x, 2] = bl


def _launch(y, cu, cv, chroma_shape, step, offsets, fmt, out, stream):
    height, width = int(y.shape[0]), int(y.shape[1])
    sub = ref.subsampling((height, width), chroma_shape)
    if out is None:
        out = device_arrays().empty((height, width, 3), "uint8")
    a, b = ref.siting_weights(fmt.siting)
    grid, block = grid_2d(height, width)
    ch, cw = chroma_shape
    _yuv_kernel[grid, block, stream](
        y, cu, cv, out, ch, cw, step, *offsets, sub, a, b, fmt.fixed_point()
    )
    return out


def yuv_to_rgb(y: Any, u: Any, v: Any, fmt: ref.YuvFormat, out: Any = None, stream: Any = 0) -> Any:
    """RGB uint8 (H, W, 3) device array from device Y, U, V planes, as
    `ghost_engine.kernels.colour.yuv_to_rgb` computes it. `stream`: a Numba stream to
    launch on (the decoder's own; default: the default stream)."""
    ref.check_planes(y, u, v)
    return _launch(y, u, v, tuple(u.shape), 1, (0, 0), fmt, out, stream)


def nv12_to_rgb(
    nv12: Any, fmt: ref.YuvFormat | None = None, out: Any = None, stream: Any = 0
) -> Any:
    """RGB uint8 (H, W, 3) device array from a device NV12 frame (H * 3 // 2, W) uint8
    (`fmt`: BT.601 limited range, left-sited chroma unless given)."""
    fmt = ref.YuvFormat() if fmt is None else fmt
    luma, u, _ = ref.nv12_planes(nv12)  # checks the shape
    chroma = nv12[luma.shape[0] :]
    return _launch(luma, chroma, chroma, tuple(u.shape), 2, (0, 1), fmt, out, stream)
