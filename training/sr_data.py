"""Clean faces from a folder and their degraded copies, made on the fly.

The folder holds face images (FFHQ-style: aligned, square), searched recursively and
sorted, so every process sees the same list. Each is resized to the training size, then
degraded with a recipe drawn from a generator seeded by (seed, epoch, index): a sample
does not depend on the worker that loads it nor on where a run resumed. Batches come
from the face-swap training's `EpochOrder` (same on every process, resumable).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ghost_engine.errors import InputFileNotFoundError, UserInputError
from ghost_engine.training.dataset import EpochDataset, read_rgb
from ghost_engine.training.degradations import degrade
from ghost_engine.training.sr_config import SRDataConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_faces(root: str | Path) -> list[Path]:
    """Every image file under `root`, sorted; a clear error when there are none."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileNotFoundError(f"face folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"no face images ({', '.join(IMAGE_SUFFIXES)}) under {root}; point --data at "
            "a folder of aligned faces"
        )
    return files


def resize_face(img: np.ndarray, size: int) -> np.ndarray:
    """Square resize to `size` (area averaging down, bilinear up)."""
    if img.shape[:2] == (size, size):
        return img
    interp = cv2.INTER_AREA if size < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def to_unit_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> (3, H, W) float32 in [0, 1] (the network's range)."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0


class DegradedFaces(EpochDataset):
    """Items are (epoch, index) pairs; each gives `hq`, `lq` (3, S, S) in [0, 1], `index`."""

    def __init__(self, config: SRDataConfig, image_size: int, seed: int) -> None:
        self.config, self.image_size, self.seed = config, image_size, seed
        self.files = list_faces(config.root)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = item
        rng = np.random.default_rng([self.seed, epoch, index])
        clean = resize_face(read_rgb(self.files[index]), self.image_size)
        if self.config.flip and rng.random() < 0.5:
            clean = np.ascontiguousarray(clean[:, ::-1])
        degraded, _ = degrade(clean, self.config.degradations, rng)
        return {
            "hq": to_unit_tensor(clean),
            "lq": to_unit_tensor(degraded),
            "index": torch.tensor(index, dtype=torch.int64),
        }
