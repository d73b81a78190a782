"""FAN with CoordConv hourglasses and a boundary channel (AdaptiveWingLoss), 98 WFLW points.

GHOST's eye loss compares the heatmaps of this network (`WFLW_4HG.pth`) on the swap and
the target. The official code builds `FAN(4, "False", "False", 98)`: those strings are
truthy, so the final ReLU on the heatmaps is on; our `end_relu=True` reproduces that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _coord_channels(
    batch: int, x_dim: int, y_dim: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinate planes in [-1, 1]: `xx` varies along rows (dim 2), `yy` along columns.

    The orientation is the official one (its permute swaps the axes), which matters for
    the learned weights even though both maps are square.
    """
    rows = torch.arange(x_dim, dtype=like.dtype, device=like.device) / (x_dim - 1) * 2 - 1
    cols = torch.arange(y_dim, dtype=like.dtype, device=like.device) / (y_dim - 1) * 2 - 1
    xx = rows.view(1, 1, x_dim, 1).expand(batch, 1, x_dim, y_dim)
    yy = cols.view(1, 1, 1, y_dim).expand(batch, 1, x_dim, y_dim)
    return xx, yy


class _AddCoords(nn.Module):
    """Appends xx, yy, r (and, given a heatmap, the boundary-masked xx, yy) channels."""

    def __init__(self, x_dim: int, y_dim: int, with_r: bool, with_boundary: bool) -> None:
        super().__init__()
        self.x_dim, self.y_dim = x_dim, y_dim
        self.with_r, self.with_boundary = with_r, with_boundary

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        xx, yy = _coord_channels(x.shape[0], self.x_dim, self.y_dim, x)
        parts = [x, xx, yy]
        if self.with_r:
            rr = torch.sqrt(xx**2 + yy**2)
            parts.append(rr / rr.max())
        if self.with_boundary and heatmap is not None:
            boundary = torch.clamp(heatmap[:, -1:], 0.0, 1.0)
            zero = torch.zeros_like(xx)
            parts.append(torch.where(boundary > 0.05, xx, zero))
            parts.append(torch.where(boundary > 0.05, yy, zero))
        return torch.cat(parts, dim=1)


class CoordConv(nn.Module):
    """Coordinate channels then a conv; the first hourglass has no boundary input."""

    def __init__(
        self,
        x_dim: int,
        y_dim: int,
        with_r: bool,
        with_boundary: bool,
        in_channels: int,
        out_channels: int,
        first_one: bool = False,
        *,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.addcoords = _AddCoords(x_dim, y_dim, with_r, with_boundary)
        in_channels += 2 + int(with_r) + (2 if with_boundary and not first_one else 0)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(self.addcoords(x, heatmap))


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation bottleneck whose three conv outputs (1/2, 1/4, 1/4) are concatenated."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = _conv3x3(c_in, c_out // 2)
        self.bn2 = nn.BatchNorm2d(c_out // 2)
        self.conv2 = _conv3x3(c_out // 2, c_out // 4)
        self.bn3 = nn.BatchNorm2d(c_out // 4)
        self.conv3 = _conv3x3(c_out // 4, c_out // 4)
        self.downsample: nn.Module | None = None
        if c_in != c_out:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(c_in),
                nn.ReLU(True),
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), 1) + residual


class HourGlass(nn.Module):
    """Recursive hourglass of depth `depth` at 64x64 behind a CoordConv."""

    def __init__(self, depth: int, first_one: bool) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(
            64, 64, True, True, 256, 256, first_one, kernel_size=1, stride=1, padding=0
        )
        self._generate(depth)

    def _generate(self, level: int) -> None:
        self.add_module(f"b1_{level}", ConvBlock(256, 256))
        self.add_module(f"b2_{level}", ConvBlock(256, 256))
        if level > 1:
            self._generate(level - 1)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(256, 256))
        self.add_module(f"b3_{level}", ConvBlock(256, 256))

    def _forward(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = self.get_submodule(f"b1_{level}")(x)
        low = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        if level > 1:
            low = self._forward(level - 1, low)
        else:
            low = self.get_submodule(f"b2_plus_{level}")(low)
        low = self.get_submodule(f"b3_{level}")(low)
        return up1 + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None) -> torch.Tensor:
        return self._forward(self.depth, self.coordconv(x, heatmap))


class FAN(nn.Module):
    """Stacked hourglasses; `forward(x)` returns the heatmaps of every stack, last is best.

    Input: (N, 3, 256, 256) RGB in [0, 1]. Output heatmaps: (N, num_landmarks + 1, 64, 64),
    the extra channel being the face boundary.
    """

    def __init__(
        self, num_modules: int = 4, end_relu: bool = True, num_landmarks: int = 98
    ) -> None:
        super().__init__()
        self.num_modules = num_modules
        self.end_relu = end_relu
        self.conv1 = CoordConv(256, 256, True, False, 3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        for i in range(num_modules):
            self.add_module(f"m{i}", HourGlass(4, first_one=i == 0))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(256))
            self.add_module(f"l{i}", nn.Conv2d(256, num_landmarks + 1, kernel_size=1))
            if i < num_modules - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(num_landmarks + 1, 256, kernel_size=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        previous = self.conv4(self.conv3(x))
        outputs: list[torch.Tensor] = []
        heat: torch.Tensor | None = None
        for i in range(self.num_modules):
            hg = self.get_submodule(f"m{i}")(previous, heat)
            ll = self.get_submodule(f"top_m_{i}")(hg)
            ll = F.relu(self.get_submodule(f"bn_end{i}")(self.get_submodule(f"conv_last{i}")(ll)))
            heat = self.get_submodule(f"l{i}")(ll)
            if self.end_relu:
                heat = F.relu(heat)
            outputs.append(heat)
            if i < self.num_modules - 1:
                previous = (
                    previous + self.get_submodule(f"bl{i}")(ll) + self.get_submodule(f"al{i}")(heat)
                )
        return outputs
