"""The one YUV to RGB conversion: against the standard formulas, its CUDA twin, and the
two decode paths that use it.

References: `_reference` is written here from the standards (BT.601, BT.709, BT.2020 luma
weights; H.273's limited and full ranges; bilinear chroma upsampling on the sample grid
the siting defines), in float64, independently of `kernels.colour`'s fixed point.
Tolerances: one level against that reference (the fixed point rounds once, so it is off
by one only where the exact value lies within ~1e-4 of a half level; the tests also
require 99.9 % of samples exact); none between the CPU function and its CUDA twin, nor
between the CPU decode path and the emulated NVDEC path (the same integer maths).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_video_fixtures import pattern

from ghost_engine.backend.cuda.decode import NvdecUnavailable, nvdec_format
from ghost_engine.kernels import colour
from ghost_engine.video.reader import read_frames

# (Kr, Kb), from the standards rather than from the module under test
STANDARD_WEIGHTS = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
LAYOUTS = {"420": (2, 2), "422": (1, 2), "444": (1, 1)}  # (vertical, horizontal) factor


def _upsample(c: np.ndarray, height: int, width: int, siting: str) -> np.ndarray:
    """Bilinear chroma at every luma position: chroma sample (k, j) sits at luma
    (2k + 0.5, 2j) for left siting, (2k + 0.5, 2j + 0.5) for centred; edges clamp."""

    def axis(n_out: int, n_in: int, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if n_in == n_out:
            t = np.arange(n_out, dtype=np.float64)
        else:
            t = np.clip((np.arange(n_out) - offset) / 2.0, 0, n_in - 1)
        i0 = np.floor(t).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, t - i0

    r0, r1, fr = axis(height, c.shape[0], 0.5)
    c0, c1, fc = axis(width, c.shape[1], 0.5 if siting == "center" else 0.0)
    x = c.astype(np.float64)
    rows = x[r0] * (1 - fr)[:, None] + x[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def _reference(y, u, v, matrix: str, full: bool, siting: str, bits: int = 8) -> np.ndarray:
    kr, kb = STANDARD_WEIGHTS[matrix]
    kg = 1 - kr - kb
    h, w = y.shape
    y = y.astype(np.float64)
    cb, cr = (_upsample(p, h, w, siting) for p in (u, v))
    mid = 2 ** (bits - 1)
    if full:
        top = 2**bits - 1
        ey, pb, pr = y / top, (cb - mid) / top, (cr - mid) / top
    else:
        s = 2 ** (bits - 8)
        ey, pb, pr = (y - 16 * s) / (219 * s), (cb - mid) / (224 * s), (cr - mid) / (224 * s)
    r = ey + 2 * (1 - kr) * pr
    b = ey + 2 * (1 - kb) * pb
    g = (ey - kr * r - kb * b) / kg  # from Y' = Kr R + Kg G + Kb B
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def _planes(rng, h: int, w: int, layout: str, bits: int = 8):
    fy, fx = LAYOUTS[layout]
    dtype = np.uint8 if bits == 8 else np.uint16
    top = 2**bits
    ch, cw = -(-h // fy), -(-w // fx)
    return (
        rng.integers(0, top, (h, w)).astype(dtype),
        rng.integers(0, top, (ch, cw)).astype(dtype),
        rng.integers(0, top, (ch, cw)).astype(dtype),
    )


def _close(got: np.ndarray, expected: np.ndarray) -> None:
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1, f"max difference {diff.max()} levels"
    assert (diff == 0).mean() >= 0.999, f"only {(diff == 0).mean():.4%} exact"


@pytest.mark.parametrize("matrix", sorted(STANDARD_WEIGHTS))
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("siting", ["left", "center"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_cpu_conversion_follows_the_standard_formulas(matrix, full, siting, layout):
    rng = np.random.default_rng(zlib.crc32(repr((matrix, full, siting, layout)).encode()))
    for h, w in ((48, 64), (23, 37)):  # odd sizes: chroma rounds up
        y, u, v = _planes(rng, h, w, layout)
        fmt = colour.YuvFormat(matrix=matrix, full_range=full, siting=siting)
        got = colour.yuv_to_rgb(y, u, v, fmt)
        _close(got, _reference(y, u, v, matrix, full, siting))


@pytest.mark.parametrize("bits", [10, 12])
@pytest.mark.parametrize("full", [False, True])
def test_high_bit_depths_follow_the_standard_formulas(bits, full):
    rng = np.random.default_rng(bits)
    y, u, v = _planes(rng, 32, 48, "420", bits)
    fmt = colour.YuvFormat(matrix="bt709", full_range=full, siting="left", bits=bits)
    _close(colour.yuv_to_rgb(y, u, v, fmt), _reference(y, u, v, "bt709", full, "left", bits))


def test_smooth_pictures_are_exact_and_the_matrix_matters():
    # a smooth picture (no clipping) is exact against the formulas, and reading it with
    # the wrong matrix is far off: the matrix is not a detail
    yy, xx = np.mgrid[0:32, 0:48]
    y = (60 + 2 * xx + yy).astype(np.uint8)
    u = (100 + 2 * xx[::2, ::2]).astype(np.uint8)
    v = (150 - yy[::2, ::2]).astype(np.uint8)
    got = colour.yuv_to_rgb(y, u, v, colour.YuvFormat(matrix="bt709"))
    _close(got, _reference(y, u, v, "bt709", False, "left"))
    other = _reference(y, u, v, "bt601", False, "left")
    assert np.abs(got.astype(int) - other).max() >= 8


def test_limited_range_extremes():
    y = np.array([[16, 235], [16, 235]], np.uint8)
    neutral = np.full((1, 1), 128, np.uint8)
    got = colour.yuv_to_rgb(y, neutral, neutral, colour.YuvFormat())
    assert got[..., 0].tolist() == [[0, 255], [0, 255]]
    assert (got == got[..., :1]).all()  # grey: R = G = B


def test_nv12_views_equal_the_planar_conversion():
    rng = np.random.default_rng(3)
    y, u, v = _planes(rng, 24, 32, "420")
    nv12 = np.concatenate([y, np.stack([u, v], axis=-1).reshape(12, 32)])
    fmt = colour.YuvFormat(matrix="bt709", siting="center")
    np.testing.assert_array_equal(colour.nv12_to_rgb(nv12, fmt), colour.yuv_to_rgb(y, u, v, fmt))


def test_bad_planes_and_formats_are_refused():
    y = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="neither full nor half"):
        colour.yuv_to_rgb(
            y, np.zeros((3, 4), np.uint8), np.zeros((3, 4), np.uint8), colour.YuvFormat()
        )
    with pytest.raises(ValueError, match="matrix"):
        colour.YuvFormat(matrix="bt470m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="siting"):
        colour.YuvFormat(siting="topleft")  # type: ignore[arg-type]


# ---------------------------------------------------------------- the CUDA twin

SIM_CASES = [
    # (name, matrix, full, siting, layout, bits, h, w)
    ("601_left_420", "bt601", False, "left", "420", 8, 10, 14),
    ("709_center_420_odd", "bt709", True, "center", "420", 8, 9, 13),
    ("2020_left_422", "bt2020", False, "left", "422", 8, 6, 10),
    ("601_center_444", "bt601", True, "center", "444", 8, 5, 7),
    ("709_left_420_10bit", "bt709", False, "left", "420", 10, 8, 12),
]


def _sim_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    out = {}
    for name, *_, layout, bits, h, w in SIM_CASES:
        out[f"{name}_y"], out[f"{name}_u"], out[f"{name}_v"] = _planes(rng, h, w, layout, bits)
    y, u, v = _planes(rng, 8, 12, "420")
    out["nv12"] = np.concatenate([y, np.stack([u, v], axis=-1).reshape(4, 12)])
    return out


def _run_cuda_twin(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs in the simulator process only."""
    from ghost_engine.kernels.cuda import colour as cuda_colour
    from ghost_engine.kernels.cuda.backend import device_arrays, simulated

    if not simulated():
        raise RuntimeError("the CUDA simulator is not active in the worker process")
    dev = device_arrays()
    out = {}
    for name, matrix, full, siting, _, bits, _, _ in SIM_CASES:
        fmt = colour.YuvFormat(matrix=matrix, full_range=full, siting=siting, bits=bits)
        planes = [dev.to_device(inputs[f"{name}_{p}"]) for p in "yuv"]
        out[name] = dev.to_host(cuda_colour.yuv_to_rgb(*planes, fmt))
    fmt = colour.YuvFormat(matrix="bt709", siting="left")
    out["nv12"] = dev.to_host(cuda_colour.nv12_to_rgb(dev.to_device(inputs["nv12"]), fmt))
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    work = tmp_path_factory.mktemp("colour_sim")
    inputs = _sim_inputs()
    np.savez(work / "inputs.npz", **inputs)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    subprocess.run([sys.executable, __file__, str(work)], check=True, env=env, timeout=600)
    with np.load(work / "outputs.npz") as data:
        return inputs, {k: data[k] for k in data.files}


def test_cuda_twin_equals_the_cpu_conversion(sim):
    inputs, out = sim
    for name, matrix, full, siting, _, bits, _, _ in SIM_CASES:
        fmt = colour.YuvFormat(matrix=matrix, full_range=full, siting=siting, bits=bits)
        planes = [inputs[f"{name}_{p}"] for p in "yuv"]
        np.testing.assert_array_equal(out[name], colour.yuv_to_rgb(*planes, fmt), err_msg=name)
    fmt = colour.YuvFormat(matrix="bt709", siting="left")
    np.testing.assert_array_equal(out["nv12"], colour.nv12_to_rgb(inputs["nv12"], fmt))


# ---------------------------------------------------------------- the decode paths


def _file_planes(vf: av.VideoFrame) -> list[np.ndarray]:
    dtype = np.uint16 if "10" in vf.format.name else np.uint8
    size = np.dtype(dtype).itemsize
    return [
        np.frombuffer(p, dtype).reshape(p.height, p.line_size // size)[:, : p.width]
        for p in vf.planes
    ]


@pytest.mark.parametrize("name", ["nggyup.mp4", "dance.mp4"])
def test_cpu_path_equals_the_emulated_nvdec_path(media, name):
    """NVDEC gives the decoded samples as NV12; the NVDEC path converts them with the
    CUDA twin of the CPU conversion (equal to it above) and the format `nvdec_format`
    reads. Here the NV12 frames come from PyAV (an exact repacking of the samples)."""
    path = media / "videos" / name
    fmt = nvdec_format(path)
    cpu = [f.image for f in read_frames(path, end_s=0.2)][:5]
    with av.open(str(path)) as container:
        for vf, expected in zip(container.decode(video=0), cpu, strict=False):
            nv12 = vf.reformat(format="nv12").to_ndarray()
            y, u, v = _file_planes(vf)
            h = vf.height
            assert np.array_equal(nv12[:h], y) and np.array_equal(nv12[h:, 0::2], u)
            np.testing.assert_array_equal(colour.nv12_to_rgb(nv12, fmt), expected)
            # and both are the standard formulas on the stream's own samples
            _close(expected, _reference(y, u, v, fmt.matrix, fmt.full_range, fmt.siting))
    assert len(cpu) == 5


def _encode(path: Path, pix_fmt: str, *, codec="libx264", colorspace=None, color_range=None):
    """Four frames of `pattern`, losslessly where the codec can."""
    w, h = 64, 48
    with av.open(str(path), "w") as out:
        options = {"preset": "ultrafast", "crf": "0"} if codec.startswith("libx264") else {}
        stream = out.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.codec_context.time_base = Fraction(1, 25)
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        if color_range is not None:
            stream.codec_context.color_range = color_range
        for i in range(4):
            vf = av.VideoFrame.from_ndarray(pattern(i, w, h), format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


CLIPS = [
    # (file, pix_fmt, codec, colorspace, color_range, expected decoded format, siting)
    ("444.mp4", "yuv444p", "libx264", None, None, ("yuv444p", "bt601", False), "left"),
    ("422.mp4", "yuv422p", "libx264", None, None, ("yuv422p", "bt601", False), "left"),
    ("10bit.mp4", "yuv420p10le", "libx264", None, None, ("yuv420p10le", "bt601", False), "left"),
    ("709.mp4", "yuv420p", "libx264", 1, 1, ("yuv420p", "bt709", False), "left"),
    ("709full.mp4", "yuv420p", "libx264", 1, 2, ("yuvj420p", "bt709", True), "left"),
    ("jpeg.avi", "yuvj422p", "mjpeg", None, None, ("yuvj422p", "bt601", True), "center"),
]


@pytest.mark.parametrize(("file", "pix_fmt", "codec", "cs", "cr", "decoded", "siting"), CLIPS)
def test_other_formats_decode_by_the_stream_s_colours(
    tmp_path, file, pix_fmt, codec, cs, cr, decoded, siting
):
    path = _encode(tmp_path / file, pix_fmt, codec=codec, colorspace=cs, color_range=cr)
    frames = [f.image for f in read_frames(path)]
    assert len(frames) == 4
    bits = 10 if "10" in pix_fmt else 8
    with av.open(str(path)) as container:
        for vf, got, i in zip(container.decode(video=0), frames, range(4), strict=True):
            assert vf.format.name == decoded[0]
            planes = _file_planes(vf)
            _close(got, _reference(*planes, decoded[1], decoded[2], siting, bits))
            # and near the picture that went in (lossy only where chroma is subsampled
            # or the codec is; the encoder took the same matrix, or the tag is wrong)
            if decoded[1] == "bt601":
                assert np.abs(got.astype(int) - pattern(i, 64, 48)).mean() < 3


def test_rgb_streams_go_through_swscale(tmp_path):
    path = _encode(tmp_path / "rgb.mp4", "rgb24", codec="libx264rgb")
    got = [f.image for f in read_frames(path)]
    with av.open(str(path)) as container:
        expected = [vf.to_ndarray(format="rgb24") for vf in container.decode(video=0)]
    for g, e, i in zip(got, expected, range(4), strict=True):
        np.testing.assert_array_equal(g, e)
        np.testing.assert_array_equal(g, pattern(i, 64, 48))  # lossless RGB


def test_nvdec_takes_8_bit_420_only(tmp_path):
    path = _encode(tmp_path / "10bit.mp4", "yuv420p10le")
    with pytest.raises(NvdecUnavailable, match="not yuv420p10le"):
        nvdec_format(path)
    path = _encode(tmp_path / "full.mp4", "yuv420p", colorspace=1, color_range=2)
    assert nvdec_format(path) == colour.YuvFormat(matrix="bt709", full_range=True)


if __name__ == "__main__":
    # Worker: NUMBA_ENABLE_CUDASIM=1 is set by the parent before numba is imported here.
    work = Path(sys.argv[1])
    with np.load(work / "inputs.npz") as data:
        loaded = {k: data[k] for k in data.files}
    np.savez(work / "outputs.npz", **_run_cuda_twin(loaded))
