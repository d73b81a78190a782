"""Settings of a face-renovation (super-resolution) training run, frozen and validated.

The defaults follow the renovation network's original recipe (HiFaceGAN on SPADE's
trainer): LIP-SPADE generator with GHOST's published widths, a 2-scale, 4-layer
conditional PatchGAN with spectral and instance norm, hinge GAN loss, discriminator
feature matching (weight 10) and VGG19 perceptual loss (weight 10), Adam with the
two-time-scale rule (G at lr/2, D at 2 lr, betas 0 and 0.9). The run settings, files,
overrides and the saved copy are every training's (`run_config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ghost_engine.errors import UserInputError
from ghost_engine.training.degradations import DegradationConfig
from ghost_engine.training.run_config import (
    DataSource,
    ModelSettings,
    RunConfig,
    tiny_model_settings,
)

# The perceptual loss's network, or none.
PERCEPTUAL = ("vgg19", "none")


@dataclass(frozen=True)
class SRModelConfig(ModelSettings):
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
    perceptual: str = "vgg19"
    vgg_weights: str = ""
    vgg_width: int = 1
    allow_random_vgg: bool = False

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
class SRDataConfig(DataSource):
    """A folder of clean faces (`root`, searched recursively), degraded on the fly."""

    flip: bool = True
    degradations: DegradationConfig = field(default_factory=DegradationConfig)


@dataclass(frozen=True)
class SRTrainConfig(RunConfig):
    """One renovation-training run (the run settings' defaults: batch 8, 10 epochs)."""

    out_dir: str = "runs/sr"
    model: SRModelConfig = field(default_factory=SRModelConfig)
    data: SRDataConfig = field(default_factory=SRDataConfig)
    optim: SROptimConfig = field(default_factory=SROptimConfig)
    weights: SRLossWeights = field(default_factory=SRLossWeights)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model.perceptual not in PERCEPTUAL:
            raise UserInputError(
                f"model.perceptual must be one of {', '.join(PERCEPTUAL)}, "
                f"got {self.model.perceptual!r}",
                option="model.perceptual",
                value=self.model.perceptual,
                allowed=PERCEPTUAL,
            )
        if self.model.image_size % 32:
            raise UserInputError(
                f"model.image_size must be a multiple of 32, got {self.model.image_size}",
                option="model.image_size",
                value=self.model.image_size,
            )


def tiny_model() -> SRModelConfig:
    """A NOT-official, cheap layout for CPU experiments and tests (64x64 faces, narrow
    generator and discriminator, a VGG19 8x narrower with random weights)."""
    return tiny_model_settings(
        SRModelConfig, ngf=4, spade_hidden=8, d_scales=2, vgg_width=8, allow_random_vgg=True
    )


def sr_preset(*, tiny: bool = False) -> SRTrainConfig:
    """The original recipe, optionally on the tiny (non-official) networks."""
    cfg = SRTrainConfig()
    return dataclasses.replace(cfg, model=tiny_model()) if tiny else cfg
