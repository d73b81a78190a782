"""BatchNorm with statistics over the global batch of all processes, on any device.

The generator trains with BatchNorm in training mode, so data-parallel runs must share
batch statistics to train the same network as one process with the combined batch.
`torch.nn.SyncBatchNorm` refuses CPU tensors (gloo); this one works on every backend,
keeps `BatchNorm2d`'s state-dict keys (checkpoints stay in the official layout) and
falls back to plain BatchNorm when no process group is running.
"""

from __future__ import annotations

import itertools

import torch
import torch.distributed as dist
from torch import nn

from ghost_engine.training.distributed import is_distributed


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


def global_batch_stats(
    x: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x - mean, mean, biased var, count) per channel over every process's batch, in
    float32 and in two passes (exact, not E[x^2] - E[x]^2); differentiable."""
    xf = x.float()
    count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float32, device=x.device)
    sums = all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), count]))
    n = sums[-1]
    mean = sums[:-1] / n
    centred = xf - mean.view(1, -1, 1, 1)
    var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / n
    return centred, mean, var, n


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are the global batch's (two-pass, exact)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        if self.momentum is None:
            raise ValueError("GlobalBatchNorm2d needs a float momentum (cumulative not supported)")
        centred, mean, var, n = global_batch_stats(x)
        tracked, running_mean, running_var = (
            self.num_batches_tracked,
            self.running_mean,
            self.running_var,
        )
        if tracked is not None and running_mean is not None and running_var is not None:
            with torch.no_grad():  # statistics are kept unless track_running_stats is off
                tracked.add_(1)
                m = self.momentum
                running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * (n / (n - 1)).clamp(min=0)
                running_var.mul_(1 - m).add_(unbiased, alpha=m)
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in `module` (in place) by GlobalBatchNorm2d, same weights."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            like = next(itertools.chain(child.buffers(), child.parameters()), None)
            setattr(module, name, new if like is None else new.to(like.device))
        else:
            convert_batchnorm(child)
    return module
