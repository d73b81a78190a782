"""One renovation training iteration: the generator step, then the discriminator step.

As the original recipe: fake = G(degraded); D sees (degraded, image) pairs, fake and
real in one batch; G minimises hinge GAN + feature matching + perceptual losses with D
frozen; then D steps on the detached fake. Images are [0, 1] RGB (the network's range).
Optimisers, precision and the update are every adversarial step's (`adversarial_step`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ghost_engine.training import sr_losses as L
from ghost_engine.training.adversarial_step import AdversarialStep, frozen, scaled_update
from ghost_engine.training.distributed import global_means
from ghost_engine.training.sr_config import SRTrainConfig
from ghost_engine.training.sr_networks import SRNetworks

LOSS_NAMES = ("gan", "feat", "vgg", "loss_g", "d_fake", "d_real", "loss_d", "l1")


@dataclass
class SRStepOutput:
    """Loss values averaged over processes, and the fake batch for sample grids."""

    losses: dict[str, float]
    fake: torch.Tensor


def _pairs(lq: torch.Tensor, image: torch.Tensor, hq: torch.Tensor) -> torch.Tensor:
    """D's input: (degraded, image) pairs, then (degraded, clean) pairs, on channels."""
    return torch.cat([torch.cat([lq, image], 1), torch.cat([lq, hq], 1)])


class SRStep(AdversarialStep):
    """Callable step bound to a run's networks, optimisers and config; the bare D runs
    in the generator step, the (maybe wrapped) `d` in the discriminator step."""

    nets: SRNetworks
    cfg: SRTrainConfig

    def _generator_step(self, lq: torch.Tensor, hq: torch.Tensor):
        opt, w = self.optim, self.cfg.weights
        opt.g.zero_grad(set_to_none=True)
        with self.autocast():
            fake = self.g(lq)
            with frozen(self.nets.discriminator):
                pairs = _pairs(lq, fake, hq)
                d_fake, d_real = L.split_pairs(self.nets.discriminator(pairs), len(lq))
            terms = {
                "gan": L.generator_gan_loss(d_fake),
                "feat": L.feature_matching_loss(d_fake, d_real),
            }
            if self.nets.perceptual is not None:
                terms["vgg"] = L.perceptual_loss(self.nets.perceptual, fake.float(), hq)
        loss = w.gan * terms["gan"] + w.feat * terms["feat"]
        if "vgg" in terms:
            loss = loss + w.vgg * terms["vgg"]
        scaled_update(loss, opt.g, opt.scaler_g, opt.sched_g)
        return fake.detach(), terms, loss

    def _discriminator_step(self, lq, hq, fake):
        opt = self.optim
        opt.d.zero_grad(set_to_none=True)
        with self.autocast():
            d_fake, d_real = L.split_pairs(self.d(_pairs(lq, fake, hq)), len(lq))
            loss_fake, loss_real = L.discriminator_losses(d_fake, d_real)
        loss = loss_fake + loss_real
        scaled_update(loss, opt.d, opt.scaler_d, opt.sched_d)
        return loss_fake, loss_real, loss

    def __call__(self, batch: dict[str, torch.Tensor]) -> SRStepOutput:
        lq, hq = batch["lq"], batch["hq"]
        fake, terms, loss_g = self._generator_step(lq, hq)
        d_fake, d_real, loss_d = self._discriminator_step(lq, hq, fake)
        zero = torch.zeros((), device=hq.device)
        values = [terms["gan"], terms["feat"], terms.get("vgg", zero), loss_g]
        values += [d_fake, d_real, loss_d, (fake.float() - hq).abs().mean()]
        return SRStepOutput(global_means(LOSS_NAMES, values, self.ctx), fake)
