"""Spectral-normalised convolutions that load the official `weight_orig/_u/_v` entries.

The official networks wrap their convolutions in `torch.nn.utils.spectral_norm`, which
keeps the raw weight (`weight_orig`) and two power-iteration vectors (`weight_u`,
`weight_v`) and divides the weight by its estimated largest singular value on every call.
In training mode that call also runs a power iteration and overwrites u and v, so the
same input gives a different output on the next call. `SpectralConv2d` keeps the same
state-dict entries but lets the owner choose whether the iteration runs and whether its
result is stored, and `fold_spectral_norm` bakes W / sigma into plain convolutions for
export.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_NORMALIZE_EPS = 1e-12  # the official spectral_norm's eps


class SpectralConv2d(nn.Module):
    """A Conv2d whose weight is `weight_orig / sigma`, sigma from a power iteration.

    State-dict entries, in the official order: `bias` (when present), `weight_orig`,
    `weight_u`, `weight_v`. Behaviour is set by two attributes (the owning network sets
    them, so `.train()`/`.eval()` change nothing here):

    - `power_iteration`: run one power iteration from the stored u before computing
      sigma (what the official module does in training mode) or use the stored u and v
      as they are (its eval mode).
    - `update_state`: write the iterated u and v back into the buffers, as the official
      training-mode call does. Off by default so inference is repeatable.
    """

    weight_u: torch.Tensor
    weight_v: torch.Tensor

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.padding = padding
        self.power_iteration = True
        self.update_state = False
        # Registration order gives the official state-dict order: bias, weight_orig, u, v.
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight_orig = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        fan_in = in_channels * kernel_size * kernel_size
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(fan_in), dim=0))

    def singular_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (u, v) pair sigma is computed from, per `power_iteration`; no side effects."""
        u, v = self.weight_u, self.weight_v
        if self.power_iteration:
            with torch.no_grad():
                w = self.weight_orig.flatten(1)
                v = F.normalize(torch.mv(w.t(), u), dim=0, eps=_NORMALIZE_EPS)
                u = F.normalize(torch.mv(w, v), dim=0, eps=_NORMALIZE_EPS)
        return u, v

    def normalized_weight(self) -> torch.Tensor:
        """`weight_orig / sigma` with sigma = u . (W v); stores u, v if `update_state`."""
        u, v = self.singular_vectors()
        if self.power_iteration and self.update_state:
            with torch.no_grad():
                self.weight_u.copy_(u)
                self.weight_v.copy_(v)
        sigma = torch.dot(u, torch.mv(self.weight_orig.flatten(1), v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)

    def folded(self) -> nn.Conv2d:
        """A plain Conv2d with this layer's current effective weight (state untouched)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            padding=self.padding,
            bias=self.bias is not None,
        )
        with torch.no_grad():
            u, v = self.singular_vectors()
            w = self.weight_orig.flatten(1)
            conv.weight.copy_(self.weight_orig / torch.dot(u, torch.mv(w, v)))
            if self.bias is not None and conv.bias is not None:
                conv.bias.copy_(self.bias)
        return conv.to(self.weight_orig.device, self.weight_orig.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"padding={self.padding}, bias={self.bias is not None}, "
            f"power_iteration={self.power_iteration}, update_state={self.update_state}"
        )


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every `SpectralConv2d` inside `module` by a plain Conv2d, in place.

    Each folded weight is `weight_orig / sigma` with sigma computed exactly as the layer's
    next forward would (one power iteration from the stored u when `power_iteration` is
    set), so the folded module gives the same outputs in its current mode. The result has
    no spectral-norm state (plain `weight`/`bias` entries), which is what ONNX export and
    fused inference need. Returns `module` (deep-copy it first to keep the original); a
    bare `SpectralConv2d` cannot be replaced in place, so its folded Conv2d is returned.
    """
    if isinstance(module, SpectralConv2d):
        return module.folded()
    targets = [
        (parent, name, child)
        for parent in module.modules()
        for name, child in parent.named_children()
        if isinstance(child, SpectralConv2d)
    ]
    for parent, name, child in targets:
        setattr(parent, name, child.folded())
    return module
