"""The CUDA kernels under Numba's simulator, against the CPU kernels and OpenCV.

`NUMBA_ENABLE_CUDASIM` is read when numba is first imported, and other tests import numba
normally, so the CUDA side runs in a fresh interpreter (this file, run as a script): it
reads the inputs, runs every CUDA twin and saves the outputs; the comparisons happen here.
Inputs are small (32x24 frames, 16x16 crops): the simulator runs one Python thread per
CUDA thread. Tolerance: one uint8 level (letterbox: 1/128 after normalisation); NV12,
crops, hull fill and erosion are expected bit-exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

H, W, CROP = 24, 32, 16
MATRICES = np.array(
    [[[0.9, 0.2, -3.0], [-0.2, 0.9, 2.0]], [[0.6, 0.0, 1.5], [0.0, 0.6, -0.5]]], np.float64
)
BLEND_MATRIX = np.array([[1.1, 0.15, -6.0], [-0.15, 1.1, -3.0]])
MORPH_SIZES = (5, 4, -3)
SIGMAS = (2.0, 1.5)


def _inputs(media: Path) -> dict[str, np.ndarray]:
    from ghost_engine.kernels import blur, color, hull_fill

    rng = np.random.default_rng(11)
    photo = cv2.cvtColor(cv2.imread(str(media / "faces" / "mark.jpg")), cv2.COLOR_BGR2RGB)
    small = cv2.resize(photo, (W, H), interpolation=cv2.INTER_AREA)
    other = cv2.resize(photo[::-1], (W, H), interpolation=cv2.INTER_AREA)
    points = rng.integers(-3, 30, (12, 2)).astype(np.int32)
    mask = hull_fill.fill_hull(rng.integers(3, 13, (8, 2)), CROP, CROP)
    return {
        "frames": np.stack([small, other]),
        "nv12": color.rgb_to_nv12(small),
        "points": points,
        "swap": rng.integers(0, 256, (CROP, CROP, 3), dtype=np.uint8),
        "blend_mask": blur.gaussian_blur(mask, 1.5, 1.5),
        "mask": hull_fill.fill_hull(points, H, W),
    }


def _run_cuda_twins(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs in the simulator process only."""
    from ghost_engine.kernels.cuda import blend, color, letterbox, mask_kernels, warp
    from ghost_engine.kernels.cuda.backend import device_arrays, simulated

    if not simulated():
        raise RuntimeError("the CUDA simulator is not active in the worker process")
    dev = device_arrays()
    out: dict[str, np.ndarray] = {}
    out["nv12_left"] = dev.to_host(color.nv12_to_rgb(dev.to_device(inputs["nv12"])))
    out["nv12_center"] = dev.to_host(
        color.nv12_to_rgb(dev.to_device(inputs["nv12"]), chroma_siting="center")
    )
    out["i420"] = dev.to_host(color.rgb_to_i420(dev.to_device(inputs["frames"][0])))
    blob, _ = letterbox.letterbox(dev.to_device(inputs["frames"]), 40)
    out["letterbox"] = dev.to_host(blob)
    crops = warp.warp_affine_batch(
        dev.to_device(inputs["frames"]), MATRICES, CROP, frame_index=np.array([1, 0])
    )
    out["crops"] = dev.to_host(crops)
    out["fill"] = dev.to_host(mask_kernels.fill_hull(inputs["points"], H, W))
    for size in MORPH_SIZES:
        out[f"morph_{size}"] = dev.to_host(
            mask_kernels.erode_dilate(dev.to_device(inputs["mask"]), size)
        )
    border = mask_kernels.zero_border(dev.to_device(inputs["mask"].copy()), 3)
    out["zero_border"] = dev.to_host(border)
    out["blur"] = dev.to_host(mask_kernels.gaussian_blur(dev.to_device(inputs["mask"]), *SIGMAS))
    frame = dev.to_device(inputs["frames"][0].copy())
    blend.blend_inverse_warp(
        frame, dev.to_device(inputs["swap"]), dev.to_device(inputs["blend_mask"]), BLEND_MATRIX
    )
    out["blend"] = dev.to_host(frame)
    return out


@pytest.fixture(scope="module")
def sim(media, tmp_path_factory) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("cudasim")
    inputs = _inputs(media)
    np.savez(folder / "inputs.npz", **inputs)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, __file__, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(folder / "outputs.npz") as data:
        outputs = {k: data[k] for k in data.files}
    return inputs, outputs


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


pytestmark = pytest.mark.slow


def test_nv12_twin_is_bit_exact(sim):
    from ghost_engine.kernels import color

    inputs, out = sim
    assert _max_diff(out["nv12_left"], color.nv12_to_rgb(inputs["nv12"])) == 0
    centre = color.nv12_to_rgb(inputs["nv12"], chroma_siting="center")
    assert _max_diff(out["nv12_center"], centre) == 0
    # and both are close to the picture they were made from (OpenCV's BT.601 encode)
    assert np.abs(out["nv12_left"].astype(int) - inputs["frames"][0]).mean() < 6


def test_letterbox_twin_within_one_level(sim):
    from ghost_engine.kernels import letterbox

    inputs, out = sim
    ref, _ = letterbox.letterbox(inputs["frames"], 40)
    assert out["letterbox"].shape == (2, 3, 40, 40)
    assert np.abs(out["letterbox"] - ref).max() * 128 <= 1.0 + 1e-4


def test_warp_twin_matches_opencv(sim):
    inputs, out = sim
    for crop, mat, f in zip(out["crops"], MATRICES, (1, 0), strict=True):
        expected = cv2.warpAffine(inputs["frames"][f], mat, (CROP, CROP), borderValue=0)
        assert _max_diff(crop, expected) <= 1


def test_fill_twin_is_bit_exact_with_opencv(sim):
    from ghost_engine.kernels import hull_fill

    inputs, out = sim
    expected = hull_fill.fill_hull(inputs["points"], H, W)
    assert expected.any() and not expected.all()
    assert _max_diff(out["fill"], expected) == 0


@pytest.mark.parametrize("size", MORPH_SIZES)
def test_morphology_twin_matches_opencv(sim, size):
    inputs, out = sim
    kernel = np.ones((abs(size), abs(size)), np.uint8)
    op = cv2.erode if size > 0 else cv2.dilate
    assert _max_diff(out[f"morph_{size}"], op(inputs["mask"], kernel)) == 0


def test_zero_border_twin(sim):
    from ghost_engine.kernels import morphology

    inputs, out = sim
    assert _max_diff(out["zero_border"], morphology.zero_border(inputs["mask"], 3)) == 0


def test_blur_twin_within_one_level_of_opencv(sim):
    inputs, out = sim
    expected = cv2.GaussianBlur(inputs["mask"], (0, 0), sigmaX=SIGMAS[0], sigmaY=SIGMAS[1])
    assert _max_diff(out["blur"], expected) <= 1


def test_blend_twin_within_one_level(sim):
    from ghost_engine.kernels import blend

    inputs, out = sim
    expected = blend.blend_inverse_warp(
        inputs["frames"][0].copy(), inputs["swap"], inputs["blend_mask"], BLEND_MATRIX
    )
    assert (expected != inputs["frames"][0]).any()
    assert _max_diff(out["blend"], expected) <= 1


def test_i420_twin_is_bit_exact_and_near_opencv(sim):
    from ghost_engine.kernels import color

    inputs, out = sim
    frame = inputs["frames"][0]
    assert _max_diff(out["i420"], color.rgb_to_i420(frame)) == 0
    # the same BT.601 limited-range encode as OpenCV's, up to rounding: luma directly;
    # chroma on a picture whose 2x2 blocks are flat (OpenCV subsamples without averaging)
    assert _max_diff(out["i420"][:H], cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)[:H]) <= 1
    blocks = frame.reshape(H // 2, 2, W // 2, 2, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    flat = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)
    assert _max_diff(color.rgb_to_i420(flat), cv2.cvtColor(flat, cv2.COLOR_RGB2YUV_I420)) <= 1


if __name__ == "__main__":
    # Worker: NUMBA_ENABLE_CUDASIM=1 is set by the parent before numba is imported here.
    work = Path(sys.argv[1])
    with np.load(work / "inputs.npz") as data:
        loaded = {k: data[k] for k in data.files}
    np.savez(work / "outputs.npz", **_run_cuda_twins(loaded))
