"""GHOST's loss terms, each a small pure function with the official semantics.

- hinge: relu(1 - x) for "real" targets, relu(1 + x) for "fake"; the generator's
  adversarial term is the "real" hinge on D(Y) (not -D(Y)).
- masked means divide by (mask sum + eps) with the official eps (1e-4 adversarial and
  discriminator, 1e-6 reconstruction). Under data parallelism `count` is the mask sum over
  all processes and `world` the process count, so the average over processes equals the
  loss of one process holding the combined batch.
- attribute: 0.5 * sum over levels of the batch mean of per-sample mean squared differences.
- identity: mean of 1 - cos(z_source, z_Y).
- reconstruction: masked mean of 0.5 * per-sample MSE(Y, Xt) over same-identity pairs.
- eyes: MSE of the two pupil heatmaps (WFLW 96 and 97) of Y against Xt, summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import torch
import torch.nn.functional as F

ADV_EPS = 1e-4
REC_EPS = 1e-6

# A discriminator's output: per scale, the list of its layers' maps (the last is the score).
Scales = Sequence[Sequence[torch.Tensor]]
# The mask sum a masked mean divides by: this process's (None), or the global one.
Count = torch.Tensor | float | None


def sum_terms(terms: Iterable[torch.Tensor]) -> torch.Tensor:
    """Python's `sum` of loss terms (left to right from 0, as the official code adds
    them); every loss sums at least one scale, level or layer, so it is a tensor."""
    return cast(torch.Tensor, sum(terms))


def hinge(x: torch.Tensor, real: bool) -> torch.Tensor:
    """Elementwise hinge: relu(1 - x) when `x` should score real, relu(1 + x) when fake."""
    return torch.relu(1 - x) if real else torch.relu(1 + x)


def masked_mean(
    values: torch.Tensor, mask: torch.Tensor, eps: float, count: Count = None, world: int = 1
) -> torch.Tensor:
    """sum(values * mask) / (count + eps), times `world` (see the module note)."""
    total = mask.sum() if count is None else count
    return world * torch.sum(values * mask) / (total + eps)


def per_sample_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the first: (N, ...) -> (N,)."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


def _hinge_per_sample(d_out: Scales, real: bool) -> torch.Tensor:
    """Per sample, the sum over scales of the mean hinge of each scale's last map (the
    official `di[0]` of `[[map], ...]`)."""
    return sum_terms(per_sample_mean(hinge(scale[-1].float(), real)) for scale in d_out)


def adversarial_loss(
    d_fake: Scales, mask: torch.Tensor, count: Count = None, world: int = 1
) -> torch.Tensor:
    """Generator hinge loss over all scales: per sample sum of mean relu(1 - D(Y))."""
    return masked_mean(_hinge_per_sample(d_fake, real=True), mask, ADV_EPS, count, world)


def discriminator_loss(
    d_fake: Scales, d_real: Scales, mask: torch.Tensor, count: Count = None, world: int = 1
) -> torch.Tensor:
    """0.5 * (real hinge on D(Xs) + fake hinge on D(Y)), each summed over scales."""
    fake = _hinge_per_sample(d_fake, real=False)
    real = _hinge_per_sample(d_real, real=True)
    return 0.5 * (
        masked_mean(real, mask, ADV_EPS, count, world)
        + masked_mean(fake, mask, ADV_EPS, count, world)
    )


def attribute_loss(attr_t: Sequence[torch.Tensor], attr_y: Sequence[torch.Tensor]) -> torch.Tensor:
    """0.5 * sum over levels of mean over the batch of per-sample MSE."""
    if len(attr_t) != len(attr_y):
        raise ValueError(f"attribute levels differ: {len(attr_t)} vs {len(attr_y)}")
    total = sum_terms(
        per_sample_mean((a.float() - b.float()) ** 2).mean()
        for a, b in zip(attr_t, attr_y, strict=True)
    )
    return 0.5 * total


def identity_loss(z_source: torch.Tensor, z_y: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cosine similarity between source and swap embeddings."""
    return (1 - F.cosine_similarity(z_source.float(), z_y.float(), dim=1)).mean()


def reconstruction_loss(
    y: torch.Tensor, xt: torch.Tensor, same: torch.Tensor, count: Count = None, world: int = 1
) -> torch.Tensor:
    """0.5 * per-sample MSE(Y, Xt), averaged over same-identity pairs only."""
    per_sample = 0.5 * per_sample_mean((y.float() - xt.float()) ** 2)
    return masked_mean(per_sample, same.float(), REC_EPS, count, world)


def eye_loss(heat_t: torch.Tensor, heat_y: torch.Tensor) -> torch.Tensor:
    """MSE(left) + MSE(right) of pupil heatmaps (N, 2, h, w) of Xt and Y."""
    if heat_t.shape != heat_y.shape or heat_t.ndim != 4 or heat_t.shape[1] != 2:
        raise ValueError(f"expected two (N, 2, h, w) heatmaps, got {heat_t.shape}, {heat_y.shape}")
    t, y = heat_t.float(), heat_y.float()
    return F.mse_loss(y[:, 0], t[:, 0]) + F.mse_loss(y[:, 1], t[:, 1])
