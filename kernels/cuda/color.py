"""CUDA twins of `ghost_engine.kernels.color`: `rgb_to_i420` with the same integer maths
per pixel, `nv12_to_rgb` through the one YUV to RGB kernel (`kernels.cuda.colour`)."""

from __future__ import annotations

from ghost_engine.kernels import color as ref
from ghost_engine.kernels.colour import ChromaSiting, YuvFormat
from ghost_engine.kernels.cuda import colour
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_2d

cuda = cuda_module()


def nv12_to_rgb(nv12, *, chroma_siting: ChromaSiting = "left", out=None, stream=0):
    """RGB uint8 (H, W, 3) device array from a device NV12 frame (H * 3 // 2, W) uint8, read
    as BT.601 limited range (`ghost_engine.kernels.cuda.colour` for any other)."""
    return colour.nv12_to_rgb(nv12, YuvFormat(siting=chroma_siting), out=out, stream=stream)


@cuda.jit
def _i420_kernel(rgb, out, height, width, yc0, yc1, yc2, uc0, uc1, uc2, vc0, vc1, vc2):
    # one thread per 2x2 block: four luma samples and one U, one V
    bx, by = cuda.grid(2)
    cw = width // 2
    ch = height // 2
    if bx >= cw or by >= ch:
        return
    sr = 0
    sg = 0
    sb = 0
    for dy in range(2):
        for dx in range(2):
            y = 2 * by + dy
            x = 2 * bx + dx
            r = int(rgb[y, x, 0])
            g = int(rgb[y, x, 1])
            b = int(rgb[y, x, 2])
            out[y, x] = ((yc0 * r + yc1 * g + yc2 * b + 128) >> 8) + 16
            sr += r
            sg += g
            sb += b
    r = (sr + 2) >> 2
    g = (sg + 2) >> 2
    b = (sb + 2) >> 2
    k = by * cw + bx  # position in the flattened chroma plane
    u_row = height + k // width
    u_col = k % width
    out[u_row, u_col] = ((uc0 * r + uc1 * g + uc2 * b + 128) >> 8) + 128
    kv = k + ch * cw
    out[height + kv // width, kv % width] = ((vc0 * r + vc1 * g + vc2 * b + 128) >> 8) + 128


def rgb_to_i420(rgb, out=None):
    """I420 (H * 3 // 2, W) uint8 device array from a device RGB frame (H, W, 3)."""
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    if height % 2 or width % 2:
        raise ValueError(f"need even H and W for 4:2:0, got {tuple(rgb.shape)}")
    if out is None:
        out = device_arrays().empty((height * 3 // 2, width), "uint8")
    grid, block = grid_2d(height // 2, width // 2)
    _i420_kernel[grid, block](rgb, out, height, width, *ref.Y_COEFFS, *ref.U_COEFFS, *ref.V_COEFFS)
    return out
