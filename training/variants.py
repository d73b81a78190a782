"""The networks a training run uses, built from a `ModelConfig`.

With the default config the generator is the engine's `AEINet` and the discriminator its
`MultiscaleDiscriminator`, so checkpoints interchange with the official files. For
experiments (other widths and resolutions) `ScaledAEINet` generalises the layout:
with (base 32, max 1024, 256 px) it has exactly the official keys and shapes, anything
else is NOT the official layout. The "tiny" identity and landmark networks are small
frozen random stand-ins so CPU tests run in seconds; they are never for real training.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ghost_engine import networks
from ghost_engine.errors import UserInputError
from ghost_engine.networks.aei_net import (
    BACKBONES,
    AADResBlock,
    AEINet,
    Deconv4x4,
    EncoderGenerator,
    conv4x4,
)
from ghost_engine.networks.checkpoint import read_state_dict
from ghost_engine.networks.discriminator import MultiscaleDiscriminator
from ghost_engine.networks.fill import fill_module
from ghost_engine.training.config import ModelConfig

log = logging.getLogger(__name__)

EYE_POINTS = (96, 97)  # WFLW pupil landmarks (left, right) used by the eye loss


class _ScaledEncoder(nn.Module):
    """U-Net/LinkNet attribute encoder with `channels[i]` after the i-th downsampling."""

    def __init__(self, channels: list[int], backbone: str) -> None:
        super().__init__()
        self.depth = len(channels)
        c_prev = 3
        for i, c in enumerate(channels, start=1):
            setattr(self, f"conv{i}", conv4x4(c_prev, c))
            c_prev = c
        k = 2 if backbone == "unet" else 1
        self.attr_channels = [channels[-1]]
        for j in range(1, self.depth):
            c_in = channels[-1] if j == 1 else k * channels[self.depth - j]
            c_out = channels[self.depth - 1 - j]
            setattr(self, f"deconv{j}", Deconv4x4(c_in, c_out, backbone))
            self.attr_channels.append(k * c_out)
        self.attr_channels.append(self.attr_channels[-1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = []
        for i in range(1, self.depth + 1):
            x = getattr(self, f"conv{i}")(x)
            feats.append(x)
        attrs = [feats[-1]]
        for j in range(1, self.depth):
            attrs.append(getattr(self, f"deconv{j}")(attrs[-1], feats[self.depth - 1 - j]))
        attrs.append(F.interpolate(attrs[-1], scale_factor=2, mode="bilinear", align_corners=True))
        return tuple(attrs)


class _ScaledGenerator(nn.Module):
    def __init__(
        self, attr_channels: list[int], block_io: list[tuple[int, int]], c_id: int, blocks: int
    ) -> None:
        super().__init__()
        self.levels = len(block_io)
        self.up1 = nn.ConvTranspose2d(c_id, block_io[0][0], kernel_size=2, stride=1, padding=0)
        for k, ((c_in, c_out), c_attr) in enumerate(zip(block_io, attr_channels, strict=True), 1):
            setattr(self, f"AADBlk{k}", AADResBlock(c_in, c_out, c_attr, c_id, blocks))

    def forward(self, z_attr: tuple[torch.Tensor, ...], z_id: torch.Tensor) -> torch.Tensor:
        m = self.up1(z_id.reshape(z_id.shape[0], -1, 1, 1))
        for k in range(1, self.levels):
            m = getattr(self, f"AADBlk{k}")(m, z_attr[k - 1], z_id)
            m = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=True)
        return torch.tanh(getattr(self, f"AADBlk{self.levels}")(m, z_attr[-1], z_id))


class ScaledAEINet(EncoderGenerator):
    """AEI-Net with configurable widths and resolution; the same maths as `AEINet` over
    its `encoder` and `generator`.

    Level k (1..L, L = log2(image_size)) of the generator runs at 2^k pixels and outputs
    min(max_channels, base_channels * 2^(L-k)) channels (3 at the last level); the
    encoder mirrors it. (32, 1024, 256) reproduces the official layout key for key.
    """

    def __init__(
        self,
        backbone: str = "unet",
        num_blocks: int = 2,
        c_id: int = 512,
        base_channels: int = 32,
        max_channels: int = 1024,
        image_size: int = 256,
    ) -> None:
        super().__init__()
        levels = int(round(math.log2(image_size)))
        if 2**levels != image_size or levels < 4:
            raise UserInputError(f"image_size must be a power of two >= 16, got {image_size}")
        if backbone not in BACKBONES:
            raise UserInputError(f"backbone must be 'unet' or 'linknet', got {backbone!r}")
        self.backbone, self.num_blocks, self.image_size = backbone, num_blocks, image_size
        enc = [min(base_channels * 2**i, max_channels) for i in range(levels - 1)]
        self.encoder = _ScaledEncoder(enc, backbone)
        outs = [min(max_channels, base_channels * 2 ** (levels - k)) for k in range(1, levels)]
        outs.append(3)
        block_io = list(zip([max_channels, *outs[:-1]], outs, strict=True))
        self.generator = _ScaledGenerator(self.encoder.attr_channels, block_io, c_id, num_blocks)


class TinyIdentity(nn.Module):
    """NOT ArcFace: a small random conv net (112x112 in [-1, 1] -> `c_id`) for tests."""

    def __init__(self, c_id: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=4),
            nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(128, c_id),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyLandmarks(nn.Module):
    """NOT FAN: a small random net with FAN's interface ([0, 1] image -> [99 heatmaps/4])."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 99, 1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.body(x)]


@dataclass
class Networks:
    """Trainable G and D, frozen identity encoder and (for the eye loss) landmark net."""

    generator: AEINet | ScaledAEINet
    discriminator: nn.Module
    identity: nn.Module
    landmarks: nn.Module | None


def build_generator(cfg: ModelConfig) -> AEINet | ScaledAEINet:
    """The engine's AEINet for the official layout, else a ScaledAEINet."""
    if cfg.official_generator:
        return AEINet(cfg.backbone, cfg.num_blocks, cfg.c_id)
    return ScaledAEINet(
        cfg.backbone, cfg.num_blocks, cfg.c_id, cfg.base_channels, cfg.max_channels, cfg.image_size
    )


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    return MultiscaleDiscriminator(3, cfg.d_ndf, cfg.d_layers, cfg.d_scales)


def _frozen(name: str, weights: str, cfg: ModelConfig, tiny: nn.Module) -> nn.Module:
    """A frozen, eval-mode helper network: from `weights`, or fill-rule random if allowed."""
    net = tiny if name == "tiny" else networks.build(name)
    if weights:
        net.load_state_dict(read_state_dict(weights), strict=True)
    elif cfg.allow_random_frozen:
        fill_module(net)
        log.warning("%s has random (fill-rule) weights: losses are not meaningful", name)
    else:
        raise UserInputError(
            f"{name} needs pretrained weights for training: pass the file (model."
            f"{'identity' if name == cfg.identity else 'landmark'}_weights, e.g. from "
            "'ghost-engine models path'), or set model.allow_random_frozen=true for a dry run"
        )
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def build_networks(cfg: ModelConfig, *, eye_loss: bool) -> Networks:
    """All networks of a run; G and D in train mode with fresh initial weights."""
    return Networks(
        generator=build_generator(cfg).train(),
        discriminator=build_discriminator(cfg).train(),
        identity=_frozen(cfg.identity, cfg.identity_weights, cfg, TinyIdentity(cfg.c_id)),
        landmarks=(
            _frozen(cfg.landmarks, cfg.landmark_weights, cfg, TinyLandmarks()) if eye_loss else None
        ),
    )
