"""Colour jitter with the semantics of the official `ColorJitter(0.2, 0.2, 0.2, 0.01)`.

Brightness, contrast and saturation factors are drawn from [1 - x, 1 + x], the hue shift
from [-h, h] (fraction of a turn), and the four are applied in a random order, each as
PIL's ImageEnhance does on uint8 (blend with black, with the mean grey, with the greyscale
image; hue shifted in HSV). Written on numpy/OpenCV so training needs no torchvision, and
driven by an explicit generator so every sample is reproducible from its seed.
"""

from __future__ import annotations

import cv2
import numpy as np

# ITU-R 601-2 luma, as PIL's "L" conversion
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)  # truncates, as PIL's blend does


def grey(img: np.ndarray) -> np.ndarray:
    """PIL "L" of an RGB uint8 image, (H, W) float32 rounded to integers."""
    return np.rint(img.astype(np.float32) @ _LUMA)


def adjust_brightness(img: np.ndarray, factor: float) -> np.ndarray:
    return _to_u8(img.astype(np.float32) * factor)


def adjust_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    mean = np.floor(grey(img).mean() + 0.5)
    return _to_u8(mean + factor * (img.astype(np.float32) - mean))


def adjust_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    g = grey(img)[..., None]
    return _to_u8(g + factor * (img.astype(np.float32) - g))


def adjust_hue(img: np.ndarray, shift: float) -> np.ndarray:
    """Rotate hue by `shift` of a full turn (|shift| <= 0.5), on 256-step HSV like PIL."""
    if shift == 0:
        return img.copy()
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV_FULL)
    step = np.uint8(int(np.rint(shift * 255)) % 256)
    hsv[..., 0] = hsv[..., 0] + step  # uint8 wraps around, as the official code's does
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def color_jitter(
    img: np.ndarray, strengths: tuple[float, float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Jitter an RGB uint8 image with strengths (brightness, contrast, saturation, hue)."""
    b, c, s, h = strengths
    factors = (
        rng.uniform(max(0.0, 1 - b), 1 + b),
        rng.uniform(max(0.0, 1 - c), 1 + c),
        rng.uniform(max(0.0, 1 - s), 1 + s),
        rng.uniform(-h, h),
    )
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    out = img
    for i in rng.permutation(4):
        out = ops[i](out, float(factors[i]))
    return out
