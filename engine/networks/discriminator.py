"""pix2pixHD multiscale PatchGAN discriminator, as GHOST trains with it (`D_unet_*.pth`)."""

from __future__ import annotations

import math

import torch
from torch import nn


def _nlayer_patchgan(input_nc: int, ndf: int, n_layers: int) -> nn.Sequential:
    """One scale: n_layers stride-2 convs, one stride-1 conv, a 1-channel output conv."""
    kw, padw = 4, math.ceil((4 - 1) / 2)
    layers: list[nn.Module] = [
        nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
        nn.LeakyReLU(0.2, True),
    ]
    nf = ndf
    for _ in range(1, n_layers):
        nf_prev, nf = nf, min(nf * 2, 512)
        layers += [
            nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=2, padding=padw),
            nn.InstanceNorm2d(nf),
            nn.LeakyReLU(0.2, True),
        ]
    nf_prev, nf = nf, min(nf * 2, 512)
    layers += [
        nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=1, padding=padw),
        nn.InstanceNorm2d(nf),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw),
    ]
    return nn.Sequential(*layers)


class MultiscaleDiscriminator(nn.Module):
    """`num_D` PatchGANs on the image and its 2x, 4x... average-pooled copies.

    `forward(x)` returns `[[map_full], [map_half], ...]` as the official code does (one
    list per scale), full resolution first; `layer{num_D-1}` sees the full image.
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 5, num_D: int = 3) -> None:
        super().__init__()
        self.num_D = num_D
        for i in range(num_D):
            setattr(self, f"layer{i}", _nlayer_patchgan(input_nc, ndf, n_layers))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=(1, 1), count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for i in range(self.num_D):
            result.append([getattr(self, f"layer{self.num_D - 1 - i}")(x)])
            if i != self.num_D - 1:
                x = self.downsample(x)
        return result
