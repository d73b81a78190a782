"""Swap training as a recipe of the training loop: GHOST's AEI-Net and its discriminator.

The networks come from `variants` (the engine's own AEINet and MultiscaleDiscriminator
for the official layout; a generator trained from scratch starts from the official
initialisation, `init_official`), the data from a prepared dataset (`PairDataset`), the
step is `GanStep`, which carries the official running mean of the adversarial loss from
step to step (saved with the position, so a resumed run continues it). Weights are
written as `G_latest.pth`/`D_latest.pth` and per epoch `G_epoch001.pth`...: bare state
dicts in the official key layout, loadable by `ghost_engine.networks.load` and by the
official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from ghost_engine.networks.aei_net import init_official
from ghost_engine.training.adversarial_step import AdamSettings
from ghost_engine.training.config import TrainConfig
from ghost_engine.training.dataset import PairDataset
from ghost_engine.training.monitor import image_grid
from ghost_engine.training.step import GanStep, StepOutput
from ghost_engine.training.sync_bn import convert_batchnorm
from ghost_engine.training.train_loop import Batch, Position
from ghost_engine.training.variants import Networks, build_networks


@dataclass
class SwapPosition(Position):
    """The position plus the running adversarial loss (it decides whether D steps)."""

    adv_accumulated: float = 20.0


class SwapRecipe:
    """Two-stage face-swap training (`TrainConfig`), for `TrainingLoop`."""

    command = "train swap"
    summary_terms = ("loss_g", "loss_d", "rec")
    step_type = GanStep

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    @property
    def broadcast_buffers(self) -> bool:
        # with global batch statistics every process already holds the same buffers
        return not self.config.model.sync_bn

    def start_position(self) -> SwapPosition:
        return SwapPosition(adv_accumulated=self.config.optim.adv_accumulated_init)

    def build_networks(self) -> Networks:
        """Fresh networks; a generator trained from scratch (no `init_g`) gets the
        official initialisation, one started from a file is left for the loop to load
        (so its run draws exactly the random numbers it drew before). D keeps PyTorch's
        default initialisation, as in the official code."""
        nets = build_networks(self.config.model, eye_loss=self.config.eye_loss)
        if not self.config.init_g:
            init_official(nets.generator)
        return nets

    def use_global_batchnorm(self, generator: nn.Module) -> None:
        convert_batchnorm(generator)

    def adam(self) -> AdamSettings:
        """The official rates, decay and eps; StepLR when `optim.scheduler`."""
        o = self.config.optim
        return AdamSettings(
            lr=(o.lr_g, o.lr_d),
            betas=o.betas,
            eps=o.eps,
            weight_decay=o.weight_decay,
            step_lr=(o.scheduler_step, o.scheduler_gamma) if o.scheduler else None,
            loss_scale_init=o.loss_scale_init,
        )

    def dataset(self) -> PairDataset:
        cfg = self.config
        return PairDataset(cfg.data.root, cfg.data, cfg.model.image_size, cfg.seed)

    def take_step(self, step: GanStep, batch: Batch, position: SwapPosition) -> StepOutput:
        out = step(batch, position.adv_accumulated)
        position.adv_accumulated = out.adv_accumulated
        return out

    def logged(self, out: StepOutput) -> dict[str, float]:
        values = dict(out.losses)
        values["adv_accumulated"] = out.adv_accumulated
        values["d_stepped"] = float(out.d_stepped)
        return values

    def sample_grid(self, batch: Batch, out: StepOutput) -> np.ndarray:
        return image_grid(batch["xs224"], batch["xt"], out.y, out.eyes_t, out.eyes_y)

    def weight_files(self, tag: str) -> tuple[str, str]:
        return f"G_{tag}.pth", f"D_{tag}.pth"

    def epoch_tag(self, epoch: int) -> str:
        return f"epoch{epoch:03d}"
