"""The renovation network's losses (HiFaceGAN / SPADE recipe), small pure functions.

- GAN (hinge): the generator minimises -mean(D(fake)); the discriminator
  mean(relu(1 - D(real))) + mean(relu(1 + D(fake))); each averaged over scales.
- feature matching: L1 between D's intermediate features of fake and real pairs (real
  detached), summed over layers (not the final map), averaged over scales.
- perceptual: weighted L1 between VGG19 relu1_1..relu5_1 of fake and real (real
  detached), weights 1/32, 1/16, 1/8, 1/4, 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ghost_engine.training.losses import Scales, hinge, sum_terms
from ghost_engine.training.sr_networks import VGG_LAYER_WEIGHTS


def split_pairs(d_out: Scales, n_fake: int) -> tuple[list[list[torch.Tensor]], list[list]]:
    """D's output on cat([fake pairs, real pairs]) -> (fake, real) per scale and layer."""
    fake = [[f[:n_fake] for f in scale] for scale in d_out]
    real = [[f[n_fake:] for f in scale] for scale in d_out]
    return fake, real


def generator_gan_loss(d_fake: Scales) -> torch.Tensor:
    """Hinge loss for G: -mean(D(fake)) of the final maps, averaged over scales."""
    return sum_terms(-scale[-1].float().mean() for scale in d_fake) / len(d_fake)


def discriminator_losses(d_fake: Scales, d_real: Scales) -> tuple[torch.Tensor, torch.Tensor]:
    """(fake term, real term) of the hinge loss for D, each averaged over scales."""
    fake = sum_terms(hinge(s[-1].float(), real=False).mean() for s in d_fake) / len(d_fake)
    real = sum_terms(hinge(s[-1].float(), real=True).mean() for s in d_real) / len(d_real)
    return fake, real


def feature_matching_loss(d_fake: Scales, d_real: Scales) -> torch.Tensor:
    """L1 of D's intermediate features, fake vs (detached) real, averaged over scales."""
    total = sum_terms(
        F.l1_loss(f.float(), r.detach().float())
        for fake, real in zip(d_fake, d_real, strict=True)
        for f, r in zip(fake[:-1], real[:-1], strict=True)
    )
    return total / len(d_fake)


def perceptual_loss(features: nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Weighted L1 of the perceptual network's features (images in [0, 1])."""
    with torch.no_grad():
        target = features(real)
    out = features(fake)
    return sum_terms(
        w * F.l1_loss(a.float(), b.float())
        for w, a, b in zip(VGG_LAYER_WEIGHTS, out, target, strict=True)
    )
