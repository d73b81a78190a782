"""Settings of a face-renovation (super-resolution) training run, frozen and validated.

The defaults follow the renovation network's original recipe (HiFaceGAN on SPADE's
trainer): LIP-SPADE generator with GHOST's published widths, a 2-scale, 4-layer
conditional PatchGAN with spectral and instance norm, hinge GAN loss, discriminator
feature matching (weight 10) and VGG19 perceptual loss (weight 10), Adam with the
two-time-scale rule (G at lr/2, D at 2 lr, betas 0 and 0.9). Files, overrides and the
saved copy use the face-swap training's helpers (`training.config.merge` & co.).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ghost_engine.errors import UserInputError
from ghost_engine.training.config import check_run_settings
from ghost_engine.training.degradations import DegradationConfig

PERCEPTUAL = ("vgg19", "none")


@dataclass(frozen=True)
class SRModelConfig:
    """Network shapes. (ngf 48, spade_hidden 128) is the official generator layout
    (`10_net_G.pth`); anything else gives checkpoints only this project reads.

    `perceptual` "vgg19" needs ImageNet weights in `vgg_weights` (a torchvision-layout
    `vgg19` state dict: `features.N.weight`...); without them the run refuses unless
    `allow_random_vgg` is set (a random VGG is a weaker loss, for tests only).
    `vgg_width` divides the VGG's channel counts (1 = VGG19; others are NOT VGG19 and
    cannot load its weights: tests only).
    """

    ngf: int = 48
    spade_hidden: int = 128
    image_size: int = 256
    d_ndf: int = 64
    d_layers: int = 4
    d_scales: int = 2
    perceptual: str = "vgg19"
    vgg_weights: str = ""
    vgg_width: int = 1
    allow_random_vgg: bool = False
    sync_bn: bool = True

    @property
    def official_generator(self) -> bool:
        return (self.ngf, self.spade_hidden) == (48, 128)


@dataclass(frozen=True)
class SRLossWeights:
    """Generator loss weights (original recipe: lambda_feat 10, lambda_vgg 10)."""

    gan: float = 1.0
    feat: float = 10.0
    vgg: float = 10.0


@dataclass(frozen=True)
class SROptimConfig:
    """Adam for G and D (two-time-scale: G at half, D at twice the base lr 2e-4)."""

    lr_g: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.9)


@dataclass(frozen=True)
class SRDataConfig:
    """A folder of clean faces (searched recursively), degraded on the fly."""

    root: str = ""
    flip: bool = True
    workers: int = 4
    degradations: DegradationConfig = field(default_factory=DegradationConfig)


@dataclass(frozen=True)
class SRTrainConfig:
    """One run. `batch_size` is the global batch, split evenly over processes."""

    model: SRModelConfig = field(default_factory=SRModelConfig)
    data: SRDataConfig = field(default_factory=SRDataConfig)
    optim: SROptimConfig = field(default_factory=SROptimConfig)
    weights: SRLossWeights = field(default_factory=SRLossWeights)
    batch_size: int = 8
    epochs: int = 10
    max_steps: int = 0
    precision: str = "fp32"
    init_g: str = ""
    init_d: str = ""
    out_dir: str = "runs/sr"
    resume: bool = True
    log_every: int = 10
    image_every: int = 500
    save_every: int = 2000
    save_epoch: int = 1
    tensorboard: bool = True
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_run_settings(self.precision, self.batch_size, self.epochs, self.max_steps)
        if self.model.perceptual not in PERCEPTUAL:
            raise UserInputError(
                f"model.perceptual must be one of {', '.join(PERCEPTUAL)}, "
                f"got {self.model.perceptual!r}"
            )
        if self.model.image_size % 32:
            raise UserInputError(
                f"model.image_size must be a multiple of 32, got {self.model.image_size}"
            )


def tiny_model() -> SRModelConfig:
    """A NOT-official, cheap layout for CPU experiments and tests (64x64 faces, narrow
    generator and discriminator, a VGG19 8x narrower with random weights)."""
    return SRModelConfig(
        ngf=4,
        spade_hidden=8,
        image_size=64,
        d_ndf=8,
        d_layers=3,
        d_scales=2,
        vgg_width=8,
        allow_random_vgg=True,
    )


def sr_preset(*, tiny: bool = False) -> SRTrainConfig:
    """The original recipe, optionally on the tiny (non-official) networks."""
    cfg = SRTrainConfig()
    return dataclasses.replace(cfg, model=tiny_model()) if tiny else cfg
