"""The face-renovation paper's degradations, applied on the fly to clean training faces.

Each training face gets a random subset of blur, downsampling, noise and JPEG
compression, in a random order and at random strengths, so the renovation network
learns to undo their mixtures (what real low-quality and generated faces show). Each
operation is a pure function of the image and its strength; `degrade` draws the recipe
from a numpy Generator, so a sample is reproducible from its seed, and returns what it
applied (for tests and sample grids).

Images are RGB uint8 (H, W, 3) between operations, as a real pipeline of resizes and
re-encodes would store them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ghost_engine.errors import UserInputError

OPERATIONS = ("blur", "downsample", "noise", "jpeg")


@dataclass(frozen=True)
class DegradationConfig:
    """Ranges the strengths are drawn from, and how likely each operation is.

    blur_sigma: Gaussian blur sigma in pixels (uniform); downsample: the factor an image
    is shrunk by before being scaled back (log-uniform, so 2x is as common as 4x to 8x);
    noise_sigma: Gaussian noise in 0..255 levels (uniform); jpeg_quality: inclusive
    integer range. Each operation in `operations` is applied with `probability`.
    """

    blur_sigma: tuple[float, float] = (0.5, 3.0)
    downsample: tuple[float, float] = (1.5, 8.0)
    noise_sigma: tuple[float, float] = (1.0, 15.0)
    jpeg_quality: tuple[int, int] = (25, 90)
    probability: float = 0.7
    operations: tuple[str, ...] = OPERATIONS

    def __post_init__(self) -> None:
        unknown = [op for op in self.operations if op not in OPERATIONS]
        if unknown or not self.operations:
            raise UserInputError(
                f"degradation operations must be some of {', '.join(OPERATIONS)}; "
                f"got {', '.join(self.operations) or 'none'}"
            )
        for name in ("blur_sigma", "downsample", "noise_sigma", "jpeg_quality"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise UserInputError(f"degradations.{name} must be a range 0 <= lo <= hi")
        if self.downsample[0] < 1.0:
            raise UserInputError("degradations.downsample factors must be at least 1")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise UserInputError("degradations.jpeg_quality must lie in 1..100")
        if not 0.0 <= self.probability <= 1.0:
            raise UserInputError("degradations.probability must be in [0, 1]")


@dataclass(frozen=True)
class Applied:
    """One operation `degrade` applied, with its strength."""

    name: str
    strength: float


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a kernel wide enough (+-3 sigma) not to truncate it."""
    if sigma <= 0:
        return img.copy()
    size = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(img, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101)


def downsample(img: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by `factor` (area averaging, as a camera or a resize would), scale back
    with bilinear interpolation: the detail above the small image's Nyquist is gone."""
    h, w = img.shape[:2]
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    low = cv2.resize(img, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of `sigma` levels to every channel, rounded and clipped."""
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode as a baseline JPEG at `quality` (libjpeg's scale) and decode again."""
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {img.shape} image as JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError(f"OpenCV could not decode its own JPEG of a {img.shape} image")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def _strength(name: str, cfg: DegradationConfig, rng: np.random.Generator) -> float:
    if name == "blur":
        return float(rng.uniform(*cfg.blur_sigma))
    if name == "downsample":
        lo, hi = cfg.downsample
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if name == "noise":
        return float(rng.uniform(*cfg.noise_sigma))
    return float(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))


def apply(img: np.ndarray, op: Applied, rng: np.random.Generator) -> np.ndarray:
    """One operation at its strength (`rng` only draws noise)."""
    if op.name == "blur":
        return gaussian_blur(img, op.strength)
    if op.name == "downsample":
        return downsample(img, op.strength)
    if op.name == "noise":
        return add_noise(img, op.strength, rng)
    return jpeg(img, int(op.strength))


def draw_recipe(cfg: DegradationConfig, rng: np.random.Generator) -> list[Applied]:
    """Which operations, in which order, how strong: each kept with `probability`."""
    order = [cfg.operations[i] for i in rng.permutation(len(cfg.operations))]
    recipe = []
    for name in order:
        keep = rng.random() < cfg.probability
        strength = _strength(name, cfg, rng)  # drawn either way: stable streams
        if keep:
            recipe.append(Applied(name, strength))
    return recipe


def degrade(
    img: np.ndarray, cfg: DegradationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, list[Applied]]:
    """A degraded copy of RGB uint8 `img` and the operations applied, in order."""
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise UserInputError(f"degrade needs an RGB uint8 (H, W, 3) image, got {img.shape}")
    recipe = draw_recipe(cfg, rng)
    out = img
    for op in recipe:
        out = apply(out, op, rng)
    return (out if recipe else img.copy()), recipe
