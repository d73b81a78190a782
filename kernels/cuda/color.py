"""CUDA twin of `ghost_engine.kernels.color.nv12_to_rgb`: the same integer maths per pixel."""

from __future__ import annotations

from ghost_engine.kernels import color as ref
from ghost_engine.kernels.cuda.backend import cuda_module, device_arrays, grid_2d

cuda = cuda_module()


@cuda.jit(device=True)
def _chroma(nv12, height, cw, ch, k, other, j, j1, hw, offset):
    # int() first: the simulator computes with numpy scalars, which wrap at uint8.
    a = (4 - hw) * int(nv12[height + k, 2 * j + offset]) + hw * int(
        nv12[height + k, 2 * j1 + offset]
    )
    b = (4 - hw) * int(nv12[height + other, 2 * j + offset]) + hw * int(
        nv12[height + other, 2 * j1 + offset]
    )
    return (3 * a + b + 8) >> 4


@cuda.jit(device=True)
def _lut(index, gain, bias):
    v = (index * gain + bias) >> 16
    return min(max(v, 0), 255)


@cuda.jit
def _nv12_kernel(nv12, out, height, width, hw, gain, bias, inc_rv, inc_gu, inc_gv, inc_bu):
    x, y = cuda.grid(2)
    if x >= width or y >= height:
        return
    cw = width // 2
    ch = height // 2
    j = x // 2
    j1 = min(j + 1, cw - 1)
    k = y // 2
    other = k - 1 if y % 2 == 0 else k + 1
    other = min(max(other, 0), ch - 1)
    u = _chroma(nv12, height, cw, ch, k, other, j, j1, hw, 0)
    v = _chroma(nv12, height, cw, ch, k, other, j, j1, hw, 1)
    luma = int(nv12[y, x])
    tr = ((v * inc_rv) >> 16) - (inc_rv >> 9)
    tgu = ((u * inc_gu) >> 16) - (inc_gu >> 9)
    tgv = ((v * inc_gv) >> 16) - (inc_gv >> 9)
    tb = ((u * inc_bu) >> 16) - (inc_bu >> 9)
    out[y, x, 0] = _lut(luma + tr, gain, bias)
    out[y, x, 1] = _lut(luma + tgu + tgv, gain, bias)
    out[y, x, 2] = _lut(luma + tb, gain, bias)


def nv12_to_rgb(nv12, *, chroma_siting: ref.ChromaSiting = "left", out=None, stream=0):
    """RGB uint8 (H, W, 3) device array from a device NV12 frame (H * 3 // 2, W) uint8.

    `stream`: a Numba stream to launch on (the decoder's own; default: the default one).
    """
    if len(nv12.shape) != 2 or nv12.shape[0] % 3 or nv12.shape[1] % 2:
        raise ValueError(f"NV12 frame must be (H * 3 // 2, W) with even H, W, got {nv12.shape}")
    height = nv12.shape[0] * 2 // 3
    width = nv12.shape[1]
    if out is None:
        out = device_arrays().empty((height, width, 3), "uint8")
    grid, block = grid_2d(height, width)
    _nv12_kernel[grid, block, stream](
        nv12,
        out,
        height,
        width,
        ref.chroma_weight(chroma_siting),
        ref.LUMA_GAIN,
        ref.LUMA_BIAS,
        ref.INC_RV,
        ref.INC_GU,
        ref.INC_GV,
        ref.INC_BU,
    )
    return out


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
