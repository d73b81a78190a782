"""One GHOST training iteration: the generator step, then the discriminator step.

Follows the official loop: `z_id` from the frozen ArcFace on Xs (224 -> 112) without
gradients; Y, Xt's attributes = G(Xt, z_id); losses on D(Y), ArcFace(Y), G's attributes
of Y, Y vs Xt, and (stage 2) the FAN pupil heatmaps of Y vs Xt; G steps; then D steps on
Y.detach() vs Xs, skipped while the running adversarial loss is >= 4 when
`discr_force` is on. The official mask of "different identity" pairs is all ones (every
pair is adversarial), which is the default; `adv_diff_only` restricts it to `same == 0`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ghost_engine.training import losses
from ghost_engine.training.adversarial_step import AdversarialStep, frozen, scaled_update
from ghost_engine.training.config import TrainConfig
from ghost_engine.training.distributed import all_reduce_sum, global_means
from ghost_engine.training.variants import EYE_POINTS, Networks

IDENTITY_SIZE = 112
ADV_MOMENTUM, ADV_NEW = 0.98, 0.02  # the official running mean of the adversarial loss
LOSS_NAMES = ("adv", "attr", "id", "rec", "eyes", "loss_g", "loss_d")


@dataclass
class StepOutput:
    """Global (all-process) loss values, whether D stepped, and Y for sample grids."""

    losses: dict[str, float]
    adv_accumulated: float
    d_stepped: bool
    y: torch.Tensor
    eyes_t: np.ndarray | None
    eyes_y: np.ndarray | None


def pupil_heatmaps(landmarks: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) heatmaps of WFLW points 96, 97 of the last stack, on x in [-1, 1]."""
    heat = landmarks(x * 0.5 + 0.5)[-1]
    return heat[:, list(EYE_POINTS)]


def heatmap_points(heat: torch.Tensor, image_size: int) -> np.ndarray:
    """Argmax of each heatmap (N, K, h, w) as pixel (x, y) in the image, (N, K, 2)."""
    n, k, h, w = heat.shape
    flat = heat.detach().float().reshape(n, k, -1).argmax(-1).cpu().numpy()
    scale = image_size / w
    return np.stack([(flat % w + 0.5) * scale, (flat // w + 0.5) * scale], axis=-1)


def _to_112(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(
        x, size=(IDENTITY_SIZE, IDENTITY_SIZE), mode="bilinear", align_corners=False
    )


class GanStep(AdversarialStep):
    """Callable training step bound to the networks, optimisers and config of a run;
    `step(batch, adv_accumulated)` returns the running adversarial loss after it."""

    nets: Networks
    cfg: TrainConfig

    def _masks(self, same: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(same, diff) masks as floats and their global sums (for masked means)."""
        same = same.float()
        diff = 1 - same if self.cfg.adv_diff_only else torch.ones_like(same)
        if self.cfg.diff_eq_same:
            same = diff
        counts = all_reduce_sum(torch.stack([same.sum(), diff.sum()]), self.ctx)
        return same, diff, counts

    def _generator_losses(self, batch: dict[str, torch.Tensor], z_src, same, diff, counts):
        nets, w = self.nets, self.ctx.world
        y, attr_t = self.g(batch["xt"], z_src)
        with frozen(nets.discriminator):
            d_fake = nets.discriminator(y)
        terms = {
            "adv": losses.adversarial_loss(d_fake, diff, counts[1], w),
            "attr": losses.attribute_loss(attr_t, nets.generator.get_attr(y)),
            "id": losses.identity_loss(z_src, nets.identity(_to_112(y))),
            "rec": losses.reconstruction_loss(y, batch["xt"], same, counts[0], w),
        }
        heat_t = heat_y = None
        if nets.landmarks is not None:
            with torch.no_grad():
                heat_t = pupil_heatmaps(nets.landmarks, batch["xt"])
            heat_y = pupil_heatmaps(nets.landmarks, y)
            terms["eyes"] = losses.eye_loss(heat_t, heat_y)
        return y, terms, heat_t, heat_y

    def _d_step(self, y: torch.Tensor, xs: torch.Tensor, diff, counts, adv_acc: float):
        opt = self.optim
        opt.d.zero_grad(set_to_none=True)
        n = y.shape[0]
        with self.autocast():
            # one forward over fake and real: InstanceNorm is per sample, so this equals two
            # calls, and a DDP-wrapped D sees exactly one forward per backward
            out = self.d(torch.cat([y.detach(), xs]))
        d_fake = [[m[-1][:n]] for m in out]
        d_real = [[m[-1][n:]] for m in out]
        loss_d = losses.discriminator_loss(d_fake, d_real, diff, counts[1], self.ctx.world)
        stepped = (not self.cfg.optim.discr_force) or adv_acc < self.cfg.optim.discr_force_threshold
        scaled_update(loss_d, opt.d, opt.scaler_d, opt.sched_d, step=stepped)
        return loss_d, stepped

    def __call__(self, batch: dict[str, torch.Tensor], adv_accumulated: float) -> StepOutput:
        opt, wts = self.optim, self.cfg.weights
        with torch.no_grad(), self.autocast():
            z_src = self.nets.identity(_to_112(batch["xs224"])).float()
        same, diff, counts = self._masks(batch["same"])
        opt.g.zero_grad(set_to_none=True)
        with self.autocast():
            y, terms, heat_t, heat_y = self._generator_losses(batch, z_src, same, diff, counts)
        loss_g = (
            wts.adv * terms["adv"]
            + wts.attr * terms["attr"]
            + wts.id * terms["id"]
            + wts.rec * terms["rec"]
        )
        if "eyes" in terms:
            loss_g = loss_g + wts.eyes * terms["eyes"]
        scaled_update(loss_g, opt.g, opt.scaler_g, opt.sched_g)
        adv_global = all_reduce_sum(terms["adv"], self.ctx).item() / self.ctx.world
        adv_accumulated = adv_accumulated * ADV_MOMENTUM + adv_global * ADV_NEW
        loss_d, stepped = self._d_step(y, batch["xs"], diff, counts, adv_accumulated)

        zero = torch.zeros((), device=loss_g.device)
        values = [terms.get(k, zero) for k in LOSS_NAMES[:5]] + [loss_g, loss_d]
        reported = global_means(LOSS_NAMES, values, self.ctx)
        size = batch["xt"].shape[-1]
        return StepOutput(
            losses=reported,
            adv_accumulated=adv_accumulated,
            d_stepped=stepped,
            y=y.detach(),
            eyes_t=None if heat_t is None else heatmap_points(heat_t, size),
            eyes_y=None if heat_y is None else heatmap_points(heat_y, size),
        )
