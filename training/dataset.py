"""(Xs, Xt, same) pairs from a prepared dataset, with GHOST's sampling and augmentation.

With probability `same_prob` (0.2) the target is another photo of the source's identity
(or the same photo: SimSwap style) and `same` is 1; otherwise it is any image of the
dataset and `same` is 0, as the official code does (a random pick of the same person
still counts as different). Each of Xs at 224 (for ArcFace), Xs and Xt at the generator
size gets its own colour jitter, as the official three transform calls do.

Every random choice of a sample comes from a generator seeded by (seed, epoch, index), so
a sample does not depend on the worker that loads it nor on where a run resumed; the
batch order comes from `EpochOrder`, the same on every process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ghost_engine.errors import InputFileNotFoundError, UserInputError
from ghost_engine.training.augment import color_jitter
from ghost_engine.training.config import DataConfig
from ghost_engine.training.prepare import INDEX_NAME


@dataclass(frozen=True)
class FaceRecord:
    """One prepared face: its identity and the two stored crops (relative to the root)."""

    identity: str
    crop224: str
    crop256: str


def read_index(root: str | Path) -> list[FaceRecord]:
    """The records of a prepared dataset, in the index's order."""
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise InputFileNotFoundError(
            f"no {INDEX_NAME} in {root}: prepare the data with 'ghost-engine train prepare'"
        )
    records = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                records.append(FaceRecord(item["identity"], item["crop224"], item["crop256"]))
            except (json.JSONDecodeError, KeyError) as exc:
                raise UserInputError(f"{path}:{line_no}: bad index line ({exc})") from None
    if not records:
        raise UserInputError(f"{path} lists no faces; prepare the data again")
    return records


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a clear error naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputFileNotFoundError(f"cannot read training image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_tensor(img: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> (3, size, size) float32 in [-1, 1] (resized if needed)."""
    if img.shape[0] != size or img.shape[1] != size:
        shrink = size < img.shape[0]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0
    return (x - 0.5) / 0.5


class EpochDataset(Dataset[dict[str, torch.Tensor]]):
    """A training set the loop reads: items are (epoch, index) pairs, `len` the number
    of indices each epoch visits."""

    def __len__(self) -> int:
        raise NotImplementedError


class PairDataset(EpochDataset):
    """Items are (epoch, index) pairs; each gives xs224, xs, xt, same for source `index`."""

    def __init__(self, root: str | Path, config: DataConfig, image_size: int, seed: int) -> None:
        self.root = Path(root)
        self.config = config
        self.image_size = image_size
        self.seed = seed
        self.records = read_index(self.root)
        by_identity: dict[str, list[int]] = {}
        for i, rec in enumerate(self.records):
            by_identity.setdefault(rec.identity, []).append(i)
        self.by_identity = by_identity

    def __len__(self) -> int:
        return len(self.records)

    def pick_target(self, index: int, rng: np.random.Generator) -> tuple[int, int]:
        """(target index, same flag) with the official sampling."""
        if rng.random() < self.config.same_prob:
            if self.config.same_identity:
                group = self.by_identity[self.records[index].identity]
                return int(group[rng.integers(len(group))]), 1
            return index, 1
        return int(rng.integers(len(self.records))), 0

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = item
        rng = np.random.default_rng([self.seed, epoch, index])
        target, same = self.pick_target(index, rng)
        src, tgt = self.records[index], self.records[target]
        jitter = self.config.jitter
        xs224 = color_jitter(read_rgb(self.root / src.crop224), jitter, rng)
        xs = color_jitter(read_rgb(self.root / src.crop256), jitter, rng)
        xt = color_jitter(read_rgb(self.root / tgt.crop256), jitter, rng)
        return {
            "xs224": to_tensor(xs224, 224),
            "xs": to_tensor(xs, self.image_size),
            "xt": to_tensor(xt, self.image_size),
            "same": torch.tensor(same, dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }


class EpochOrder:
    """Deterministic shuffled batches, split over processes, resumable at any step.

    Global batch `step` of `epoch` is a slice of one permutation seeded by (seed, epoch);
    process `rank` of `world` takes its contiguous share, so the union over processes is
    exactly the batch one process would draw with the combined batch size.
    """

    def __init__(self, n_items: int, global_batch: int, seed: int, rank: int, world: int):
        if global_batch % world:
            raise UserInputError(
                f"batch_size {global_batch} must be divisible by the {world} processes"
            )
        if n_items < global_batch:
            raise UserInputError(f"dataset has {n_items} faces, fewer than one batch")
        self.n_items, self.global_batch, self.seed = n_items, global_batch, seed
        self.rank, self.world = rank, world
        self.local_batch = global_batch // world

    @property
    def steps_per_epoch(self) -> int:
        return self.n_items // self.global_batch

    def batch(self, epoch: int, step: int) -> list[tuple[int, int]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n_items, generator=gen)
        start = step * self.global_batch + self.rank * self.local_batch
        return [(epoch, int(i)) for i in perm[start : start + self.local_batch]]

    def batches(self, epoch: int, first_step: int = 0):
        """This process's batches of `epoch` from `first_step` on (a DataLoader sampler)."""
        for step in range(first_step, self.steps_per_epoch):
            yield self.batch(epoch, step)
