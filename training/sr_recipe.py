"""Face-renovation training as a recipe of the training loop: LIP-SPADE on degraded faces.

The networks come from `sr_networks` (the engine's `LIPSPADEGenerator`, SPADE's
conditional PatchGAN, VGG19 for the perceptual loss), the data from a folder of clean
faces degraded on the fly (`DegradedFaces`), the step is `SRStep`. Weights are written in
the official layout and naming: `latest_net_G.pth`, `<epoch>_net_G.pth` (GHOST's
`10_net_G.pth` is epoch 10), loadable with `ghost_engine.networks.load("sr_lipspade",
path)` when the layout is official.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from torch import nn

from ghost_engine.networks.lipspade import LIPSPADEGenerator
from ghost_engine.training.adversarial_step import AdamSettings
from ghost_engine.training.monitor import renovation_grid
from ghost_engine.training.sr_config import SRTrainConfig
from ghost_engine.training.sr_data import DegradedFaces
from ghost_engine.training.sr_networks import SRNetworks, build_sr_networks, use_global_batchnorm
from ghost_engine.training.sr_step import SRStep, SRStepOutput
from ghost_engine.training.train_loop import Batch, Position


class SRRecipe:
    """Renovation training (`SRTrainConfig`), for `TrainingLoop`."""

    command = "train sr"
    summary_terms = ("loss_g", "loss_d", "l1")
    # the generator's BatchNorm buffers are never broadcast, as the original recipe runs
    broadcast_buffers = False
    step_type = SRStep

    def __init__(self, config: SRTrainConfig) -> None:
        self.config = config

    def start_position(self) -> Position:
        return Position()

    def build_networks(self) -> SRNetworks:
        return build_sr_networks(self.config.model)

    def use_global_batchnorm(self, generator: nn.Module) -> None:
        # the loop hands back the generator `build_networks` made, before any wrapping
        use_global_batchnorm(cast(LIPSPADEGenerator, generator))

    def adam(self) -> AdamSettings:
        """The recipe's two-time-scale rates; no schedule."""
        return AdamSettings(
            lr=(self.config.optim.lr_g, self.config.optim.lr_d), betas=self.config.optim.betas
        )

    def dataset(self) -> DegradedFaces:
        cfg = self.config
        return DegradedFaces(cfg.data, cfg.model.image_size, cfg.seed)

    def take_step(self, step: SRStep, batch: Batch, position: Position) -> SRStepOutput:
        return step(batch)

    def logged(self, out: SRStepOutput) -> dict[str, float]:
        return dict(out.losses)

    def sample_grid(self, batch: Batch, out: SRStepOutput) -> np.ndarray:
        return renovation_grid(batch["lq"], out.fake, batch["hq"])

    def weight_files(self, tag: str) -> tuple[str, str]:
        return f"{tag}_net_G.pth", f"{tag}_net_D.pth"

    def epoch_tag(self, epoch: int) -> str:
        return str(epoch)
