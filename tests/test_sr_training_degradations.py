"""Each degradation does what its name says, measured on real faces and on white noise.

References: blockiness at 8x8 block edges and the JPEG "ghost" (re-encoding at the
original quality changes nothing) for JPEG; the Gaussian's transfer function
exp(-(2 pi sigma f)^2) for blur; the small image's Nyquist frequency for downsampling;
sample statistics for noise and for the random recipe.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from ghost_engine.errors import UserInputError
from ghost_engine.training.degradations import (
    OPERATIONS,
    DegradationConfig,
    add_noise,
    degrade,
    downsample,
    draw_recipe,
    gaussian_blur,
    jpeg,
)


@pytest.fixture(scope="module")
def face(media: Path) -> np.ndarray:
    bgr = cv2.imread(str(media / "aligned" / "target1.png"))
    assert bgr is not None
    return cv2.cvtColor(cv2.resize(bgr, (256, 256)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def noise_images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(4)]


def _blockiness(img: np.ndarray) -> float:
    """Mean luma step across 8x8 block edges over the mean step elsewhere (1: none)."""
    y = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    dx, dy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    edge_x, edge_y = np.arange(dx.shape[1]) % 8 == 7, np.arange(dy.shape[0]) % 8 == 7
    edges = dx[:, edge_x].mean() + dy[edge_y].mean()
    inside = dx[:, ~edge_x].mean() + dy[~edge_y].mean()
    return float(edges / inside)


def test_jpeg_blockiness_grows_as_quality_drops(face) -> None:
    clean = _blockiness(face)
    by_quality = [_blockiness(jpeg(face, q)) for q in (90, 60, 40, 20, 10, 5)]
    # measured: clean 1.10; q90 1.18, q60 1.40, q40 1.55, q20 1.96, q10 2.54, q5 4.11
    assert clean < 1.15
    assert all(a < b for a, b in itertools.pairwise(by_quality))
    assert by_quality[3] > 1.6 * clean and by_quality[-1] > 3.0 * clean


@pytest.mark.parametrize("quality", [30, 50, 75])
def test_jpeg_ghost_shows_the_quality_used(face, quality: int) -> None:
    """Re-encoding a JPEG at its own quality leaves it unchanged; any other quality
    nearby requantises it (Farid's JPEG ghosts)."""
    once = jpeg(face, quality)
    mse = {
        q: float(((jpeg(once, q).astype(np.float64) - once) ** 2).mean())
        for q in range(quality - 8, quality + 9)
    }
    assert mse[quality] < 1e-3  # measured 0.0
    assert min(v for q, v in mse.items() if q != quality) > 0.01  # measured >= 0.018


def _power_ratio(images: list[np.ndarray], fn) -> tuple[np.ndarray, np.ndarray]:
    """Output/input power per radial frequency (cycles/pixel) of `fn` on `images`."""
    size = images[0].shape[0]
    f = np.fft.fftfreq(size)
    index = np.minimum(np.rint(np.hypot(f[:, None], f[None, :]) * size).astype(int), size // 2)
    num, den = np.zeros(size // 2 + 1), np.zeros(size // 2 + 1)
    for img in images:
        out = fn(img).astype(np.float64)
        for c in range(3):
            a, b = img[:, :, c].astype(np.float64), out[:, :, c]
            pa = np.abs(np.fft.fft2(a - a.mean())) ** 2
            pb = np.abs(np.fft.fft2(b - b.mean())) ** 2
            num += np.bincount(index.ravel(), pb.ravel(), size // 2 + 1)
            den += np.bincount(index.ravel(), pa.ravel(), size // 2 + 1)
    return np.arange(size // 2 + 1) / size, num / np.maximum(den, 1e-12)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_blur_follows_the_gaussian_transfer_function(noise_images, sigma: float) -> None:
    freq, ratio = _power_ratio(noise_images, lambda x: gaussian_blur(x, sigma))
    use = (freq > 0) & (ratio > 1e-3)  # above the uint8 rounding floor
    w2 = (2 * np.pi * freq[use]) ** 2
    # least squares of -log(ratio) = sigma^2 * w^2 (power: |H|^2 = exp(-sigma^2 w^2))
    fitted = math.sqrt(float(np.sum(-np.log(ratio[use]) * w2) / np.sum(w2**2)))
    assert fitted == pytest.approx(sigma, rel=0.08)  # measured 0.99, 1.91, 2.85
    high = freq > 0.25  # at most twice the Gaussian's power there, or the rounding floor
    assert ratio[high].mean() < max(2 * math.exp(-((2 * np.pi * sigma * 0.25) ** 2)), 1e-3)


def test_more_blur_removes_more_high_frequency_energy(face) -> None:
    def hf_energy(img: np.ndarray) -> float:
        lap = cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64), -1)
        return float((lap**2).mean())

    energies = [hf_energy(face)] + [hf_energy(gaussian_blur(face, s)) for s in (0.5, 1, 2, 3)]
    assert all(a > b for a, b in itertools.pairwise(energies))
    assert energies[3] < 0.1 * energies[0]


@pytest.mark.parametrize("factor", [2.0, 3.0, 4.0, 6.0])
def test_downsampling_removes_what_the_small_image_cannot_hold(noise_images, factor) -> None:
    freq, ratio = _power_ratio(noise_images, lambda x: downsample(x, factor))
    nyquist = 0.5 / factor  # of the small image, in the big image's cycles/pixel
    above = ratio[freq > 1.25 * nyquist].mean()
    below = ratio[(freq > 0) & (freq < 0.5 * nyquist)].mean()
    assert above < 0.02  # measured 0.002-0.007
    assert below > 0.7  # measured 0.84-0.87


def test_noise_has_the_requested_sigma() -> None:
    grey = np.full((256, 256, 3), 128, np.uint8)
    for sigma in (2.0, 10.0):
        diff = add_noise(grey, sigma, np.random.default_rng(1)).astype(np.float64) - 128
        assert abs(diff.mean()) < 0.05 * sigma
        assert diff.std() == pytest.approx(math.sqrt(sigma**2 + 1 / 12), rel=0.02)


def test_recipe_strengths_stay_in_range_and_orders_vary() -> None:
    cfg = DegradationConfig(probability=1.0)
    rng = np.random.default_rng(2)
    recipes = [draw_recipe(cfg, rng) for _ in range(2000)]
    assert {tuple(op.name for op in r) for r in recipes} == set(itertools.permutations(OPERATIONS))
    factors = np.array([op.strength for r in recipes for op in r if op.name == "downsample"])
    lo, hi = cfg.downsample
    assert factors.min() >= lo and factors.max() <= hi
    assert factors.min() < lo * 1.02 and factors.max() > hi / 1.02  # the whole range is used
    # log-uniform: the median factor is the geometric mean of the range
    assert np.median(factors) == pytest.approx(math.sqrt(lo * hi), rel=0.05)
    quality = [op.strength for r in recipes for op in r if op.name == "jpeg"]
    assert min(quality) == cfg.jpeg_quality[0] and max(quality) == cfg.jpeg_quality[1]
    sigmas = [op.strength for r in recipes for op in r if op.name == "blur"]
    assert cfg.blur_sigma[0] <= min(sigmas) and max(sigmas) <= cfg.blur_sigma[1]


def test_probability_controls_how_many_operations_apply() -> None:
    cfg = DegradationConfig(probability=0.3)
    rng = np.random.default_rng(3)
    counts = [len(draw_recipe(cfg, rng)) for _ in range(2000)]
    assert np.mean(counts) / len(OPERATIONS) == pytest.approx(0.3, abs=0.03)


def test_degrade_is_reproducible_and_applies_its_recipe(face) -> None:
    cfg = DegradationConfig(probability=1.0)
    a, recipe = degrade(face, cfg, np.random.default_rng(4))
    b, again = degrade(face, cfg, np.random.default_rng(4))
    assert recipe == again and np.array_equal(a, b)
    assert a.shape == face.shape and a.dtype == np.uint8
    assert float(np.abs(a.astype(np.int16) - face).mean()) > 2.0
    untouched, none = degrade(face, DegradationConfig(probability=0.0), np.random.default_rng(5))
    assert none == [] and np.array_equal(untouched, face)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"operations": ("blur", "sharpen")}, "operations"),
        ({"downsample": (0.5, 2.0)}, "at least 1"),
        ({"jpeg_quality": (0, 90)}, "1..100"),
        ({"blur_sigma": (2.0, 1.0)}, "blur_sigma"),
        ({"probability": 1.5}, "probability"),
    ],
)
def test_bad_settings_are_user_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        DegradationConfig(**kwargs)
