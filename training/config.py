"""Swap training's configuration: frozen dataclasses and the paper's two stages.

Every flag of the official `train.py` has a counterpart here (see `OFFICIAL_FLAGS`), but
booleans are real booleans and nothing is a hard-coded path. The run settings every
training shares, and how a config is read from files and overrides, are `run_config`'s.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ghost_engine.errors import UserInputError
from ghost_engine.training.run_config import (
    DataSource,
    ModelSettings,
    RunConfig,
    merge,
    tiny_model_settings,
)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms (official `--weight_*`)."""

    adv: float = 1.0
    attr: float = 10.0
    id: float = 15.0
    rec: float = 10.0
    eyes: float = 0.0


@dataclass(frozen=True)
class ModelConfig(ModelSettings):
    """Network shapes. The defaults are the official layout (checkpoints interchange).

    `base_channels`, `max_channels` and `image_size` scale the generator; anything but
    (32, 1024, 256) is NOT the official layout and gives checkpoints only this project
    reads. `identity`/`landmarks` name a registered network or "tiny" (a small frozen
    random stand-in for experiments and tests, never for real training).
    """

    d_layers: int = 5
    d_scales: int = 3
    backbone: str = "unet"
    num_blocks: int = 2
    c_id: int = 512
    base_channels: int = 32
    max_channels: int = 1024
    identity: str = "arcface_iresnet100"
    identity_weights: str = ""
    landmarks: str = "fan_wflw_4hg"
    landmark_weights: str = ""
    allow_random_frozen: bool = False

    @property
    def official_generator(self) -> bool:
        return (self.base_channels, self.max_channels, self.image_size, self.c_id) == (
            32,
            1024,
            256,
            512,
        )


@dataclass(frozen=True)
class DataConfig(DataSource):
    """The prepared dataset (`root`) and the official pair sampling."""

    workers: int = 8
    same_prob: float = 0.2
    same_identity: bool = True
    jitter: tuple[float, float, float, float] = (0.2, 0.2, 0.2, 0.01)


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D, the optional StepLR, the "train D only while weak" rule."""

    lr_g: float = 4e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-4
    scheduler: bool = False
    scheduler_step: int = 5000
    scheduler_gamma: float = 0.2
    discr_force: bool = False
    discr_force_threshold: float = 4.0
    adv_accumulated_init: float = 20.0
    loss_scale_init: float = 65536.0  # fp16 only: GradScaler's first scale (halves on overflow)


@dataclass(frozen=True)
class TrainConfig(RunConfig):
    """One swap-training run: the paper's batch of 16 for 12 epochs by default."""

    batch_size: int = 16
    epochs: int = 12
    out_dir: str = "runs/ghost"
    save_every: int = 5000
    stage: str = "stage1"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    weights: LossWeights = field(default_factory=LossWeights)
    diff_eq_same: bool = False
    adv_diff_only: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.data.same_prob <= 1.0:
            raise UserInputError(
                f"data.same_prob must be in [0, 1], got {self.data.same_prob}",
                option="data.same_prob",
                value=self.data.same_prob,
            )

    @property
    def eye_loss(self) -> bool:
        return self.weights.eyes > 0


# Official train.py flag -> our setting (documentation and the CLI's --help table).
OFFICIAL_FLAGS: dict[str, str] = {
    "dataset_path": "data.root (train swap --data)",
    "G_path / D_path / pretrained": "init_g / init_d (empty: start from scratch)",
    "vgg / same_identity": "data.same_identity",
    "weight_adv/attr/id/rec/eyes": "weights.adv/attr/id/rec/eyes",
    "backbone / num_blocks": "model.backbone / model.num_blocks",
    "same_person": "data.same_prob",
    "diff_eq_same": "diff_eq_same",
    "discr_force": "optim.discr_force (+ optim.discr_force_threshold)",
    "scheduler / scheduler_step / scheduler_gamma": "optim.scheduler / _step / _gamma",
    "eye_detector_loss": "weights.eyes > 0",
    "use_wandb / wandb_project / wandb_entity": "tensorboard (+ metrics.jsonl always)",
    "run_name": "out_dir",
    "batch_size / lr_G / lr_D / max_epoch": "batch_size / optim.lr_g / optim.lr_d / epochs",
    "show_step / save_epoch": "image_every / save_epoch (+ save_every steps)",
    "optim_level (apex O0-O3)": "precision fp32 / fp16 / bf16 (torch.amp)",
}


def stage1() -> TrainConfig:
    """Paper stage 1: adv 1, attr 10, id 15, rec 10, no eye loss; 12 epochs, batch 16."""
    return TrainConfig(stage="stage1", weights=LossWeights(1.0, 10.0, 15.0, 10.0, 0.0))


def stage2() -> TrainConfig:
    """Paper stage 2, from stage 1's weights (set init_g/init_d): id 70, eye 1200."""
    return TrainConfig(stage="stage2", weights=LossWeights(1.0, 10.0, 70.0, 10.0, 1200.0))


def tiny_model() -> ModelConfig:
    """A NOT-official, ~1000x cheaper layout for CPU experiments and tests (64x64 faces)."""
    return tiny_model_settings(
        ModelConfig,
        base_channels=8,
        max_channels=32,
        c_id=64,
        identity="tiny",
        landmarks="tiny",
        allow_random_frozen=True,
    )


PRESETS = {"stage1": stage1, "stage2": stage2}


def preset(name: str, *, tiny: bool = False) -> TrainConfig:
    """A named preset, optionally on the tiny (non-official) networks."""
    if name not in PRESETS:
        raise UserInputError(
            f"unknown stage {name!r}; choose one of {sorted(PRESETS)}",
            option="stage",
            value=name,
            allowed=sorted(PRESETS),
        )
    cfg = PRESETS[name]()
    return dataclasses.replace(cfg, model=tiny_model()) if tiny else cfg


def from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A config from a nested dict (e.g. one saved in a checkpoint) over `base`."""
    return merge(base or TrainConfig(), values)
