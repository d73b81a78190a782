"""One renovation training iteration: the generator step, then the discriminator step.

As the original recipe: fake = G(degraded); D sees (degraded, image) pairs, fake and
real in one batch; G minimises hinge GAN + feature matching + perceptual losses with D
frozen; then D steps on the detached fake. Images are [0, 1] RGB (the network's range).
The optimisers, schedulers and grad scalers are the face-swap training's `Optimisers`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from ghost_engine.training import sr_losses as L
from ghost_engine.training.distributed import DistContext, all_reduce_sum
from ghost_engine.training.sr_config import SRTrainConfig
from ghost_engine.training.sr_networks import SRNetworks
from ghost_engine.training.step import Optimisers

LOSS_NAMES = ("gan", "feat", "vgg", "loss_g", "d_fake", "d_real", "loss_d", "l1")


@dataclass
class SRStepOutput:
    """Loss values averaged over processes, and the fake batch for sample grids."""

    losses: dict[str, float]
    fake: torch.Tensor


def _frozen(module: nn.Module):
    @contextlib.contextmanager
    def scope():
        flags = [p.requires_grad for p in module.parameters()]
        module.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(module.parameters(), flags, strict=True):
                p.requires_grad_(flag)

    return scope()


class SRStep:
    """Callable step bound to a run's networks, optimisers and config.

    `generator`/`discriminator` may be DistributedDataParallel wrappers of the modules
    in `nets`: the wrappers run where gradients are reduced, the bare D in the G step.
    """

    def __init__(
        self,
        nets: SRNetworks,
        generator: nn.Module,
        discriminator: nn.Module,
        optim: Optimisers,
        config: SRTrainConfig,
        ctx: DistContext,
    ) -> None:
        self.nets, self.g, self.d = nets, generator, discriminator
        self.optim, self.cfg, self.ctx = optim, config, ctx
        self.autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.precision)

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.autocast_dtype)

    def _generator_step(self, lq: torch.Tensor, hq: torch.Tensor):
        opt, w = self.optim, self.cfg.weights
        opt.g.zero_grad(set_to_none=True)
        with self._autocast():
            fake = self.g(lq)
            with _frozen(self.nets.discriminator):
                pairs = torch.cat([torch.cat([lq, fake], 1), torch.cat([lq, hq], 1)])
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
        opt.scaler_g.scale(loss).backward()
        opt.scaler_g.step(opt.g)
        opt.scaler_g.update()
        if opt.sched_g is not None:
            opt.sched_g.step()
        return fake.detach(), terms, loss

    def _discriminator_step(self, lq, hq, fake):
        opt = self.optim
        opt.d.zero_grad(set_to_none=True)
        with self._autocast():
            pairs = torch.cat([torch.cat([lq, fake], 1), torch.cat([lq, hq], 1)])
            d_fake, d_real = L.split_pairs(self.d(pairs), len(lq))
            loss_fake, loss_real = L.discriminator_losses(d_fake, d_real)
        loss = loss_fake + loss_real
        opt.scaler_d.scale(loss).backward()
        opt.scaler_d.step(opt.d)
        opt.scaler_d.update()
        if opt.sched_d is not None:
            opt.sched_d.step()
        return loss_fake, loss_real, loss

    def __call__(self, batch: dict[str, torch.Tensor]) -> SRStepOutput:
        lq, hq = batch["lq"], batch["hq"]
        fake, terms, loss_g = self._generator_step(lq, hq)
        d_fake, d_real, loss_d = self._discriminator_step(lq, hq, fake)
        zero = torch.zeros((), device=hq.device)
        values = [terms["gan"], terms["feat"], terms.get("vgg", zero), loss_g]
        values += [d_fake, d_real, loss_d, (fake.float() - hq).abs().mean()]
        stacked = torch.stack([v.detach().float() for v in values])
        stacked = all_reduce_sum(stacked, self.ctx) / self.ctx.world
        return SRStepOutput(dict(zip(LOSS_NAMES, stacked.tolist(), strict=True)), fake)
