"""The networks of a renovation training run: LIP-SPADE generator, conditional multiscale
discriminator with intermediate features, and the perceptual network.

The generator is the engine's `LIPSPADEGenerator`, trained as the official code runs
it: BatchNorm on batch statistics (updating the running ones) and one stored spectral
norm power iteration per call (`bn_mode="official"`, `update_state=True`). Under
`torchrun` its parameter-free BatchNorms share statistics over all processes
(`GlobalParamFreeBatchNorm`), so P processes train what one process with the combined
batch would. The discriminator keeps SPADE's state-dict layout
(`discriminator_{i}.model{n}...`, spectral norm as `weight_orig/_u/_v`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ghost_engine.errors import CheckpointError, UserInputError
from ghost_engine.networks.checkpoint import read_state_dict
from ghost_engine.networks.lipspade import LIPSPADEConfig, LIPSPADEGenerator, ParamFreeBatchNorm
from ghost_engine.training.distributed import is_distributed
from ghost_engine.training.sr_config import SRModelConfig
from ghost_engine.training.sync_bn import global_batch_stats

log = logging.getLogger(__name__)

# torchvision's vgg19 `features`: channel counts, "M" for 2x2 max pooling
_VGG19: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
_VGG19 += (512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG_TAPS = (2, 7, 12, 21, 30)  # ends of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
VGG_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # the original recipe's
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class GlobalParamFreeBatchNorm(ParamFreeBatchNorm):
    """The generator's parameter-free BatchNorm with global-batch statistics in training
    (official mode, state updates on, a process group running); else unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.bn_mode == "official" and self.update_state and is_distributed()):
            return super().forward(x)
        centred, mean, var, n = global_batch_stats(x)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.mul_(0.9).add_(mean.detach(), alpha=0.1)
            self.running_var.mul_(0.9).add_(var.detach() * n / (n - 1), alpha=0.1)
        return (centred * torch.rsqrt(var + 1e-5).view(1, -1, 1, 1)).to(x.dtype)


def use_global_batchnorm(generator: LIPSPADEGenerator) -> LIPSPADEGenerator:
    """Swap every ParamFreeBatchNorm for the global one (same state), in place."""
    for parent in list(generator.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is ParamFreeBatchNorm:
                new = GlobalParamFreeBatchNorm(child.running_mean.numel())
                new.load_state_dict(child.state_dict())
                new.bn_mode, new.update_state = child.bn_mode, child.update_state
                setattr(parent, name, new.to(child.running_mean.device))
    generator.bn_mode = generator.bn_mode  # re-propagate the modes
    return generator


class _PatchGAN(nn.Module):
    """One scale: returns the output of every layer (features for feature matching)."""

    def __init__(self, input_nc: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        kw, pad = 4, math.ceil((4 - 1) / 2)
        nf = ndf
        blocks = [[nn.Conv2d(input_nc, nf, kw, stride=2, padding=pad), nn.LeakyReLU(0.2)]]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            conv = nn.utils.spectral_norm(
                nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=pad, bias=False)
            )
            blocks.append([nn.Sequential(conv, nn.InstanceNorm2d(nf)), nn.LeakyReLU(0.2)])
        blocks.append([nn.Conv2d(nf, 1, kw, stride=1, padding=pad)])
        for n, layers in enumerate(blocks):
            self.add_module(f"model{n}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for block in self.children():
            x = block(x)
            out.append(x)
        return out


class SRDiscriminator(nn.Module):
    """Conditional multiscale PatchGAN on (degraded input, image) pairs, 6 channels.

    `forward(pair)` returns, per scale (full resolution first), the list of every
    layer's output; the last is the real/fake map.
    """

    def __init__(self, ndf: int = 64, n_layers: int = 4, num_d: int = 2) -> None:
        super().__init__()
        for i in range(num_d):
            self.add_module(f"discriminator_{i}", _PatchGAN(6, ndf, n_layers))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        result = []
        for d in self.children():
            result.append(d(x))
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return result


class VGG19Features(nn.Module):
    """VGG19's convolutional part in torchvision's layout (`features.N`), so an ImageNet
    `vgg19` state dict loads; returns relu1_1..relu5_1 of ImageNet-normalised [0, 1] RGB.

    `width` > 1 divides every channel count: a cheaper network of the same shape that is
    NOT VGG19 (random weights only; for tests).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, width: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for item in _VGG19:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            c_out = max(1, int(item) // width)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out, start = [], 0
        for end in VGG_TAPS:
            x = self.features[start:end](x)
            out.append(x)
            start = end
        return out


def load_vgg19(path: str) -> VGG19Features:
    """VGG19 features with ImageNet weights from a torchvision-layout file (the
    classifier entries, if any, are ignored; every `features.*` entry must fit)."""
    state = {k: v for k, v in read_state_dict(path).items() if k.startswith("features.")}
    net = VGG19Features()
    expected = {k for k in net.state_dict() if k.startswith("features.")}
    if set(state) != expected:
        raise CheckpointError(
            f"{path} is not a VGG19 state dict in torchvision's layout (features.0.weight "
            f"... features.34.bias); missing {sorted(expected - set(state))[:3]}"
        )
    net.load_state_dict(state, strict=False)  # mean/std buffers are ours
    return net.eval()


@dataclass
class SRNetworks:
    """The modules of a run; `perceptual` is None when the VGG loss is off."""

    generator: LIPSPADEGenerator
    discriminator: SRDiscriminator
    perceptual: nn.Module | None


def perceptual_network(cfg: SRModelConfig) -> nn.Module | None:
    """The perceptual network `cfg` asks for, or a clear refusal."""
    if cfg.perceptual == "none":
        return None
    if cfg.vgg_weights:
        if cfg.vgg_width != 1:
            raise UserInputError("model.vgg_width must be 1 to load VGG19 weights")
        return load_vgg19(cfg.vgg_weights)
    if not cfg.allow_random_vgg:
        raise UserInputError(
            "the perceptual loss needs ImageNet VGG19 weights: set model.vgg_weights to a "
            "torchvision vgg19 state dict (.pth/.safetensors), or model.perceptual=none"
        )
    log.warning("perceptual loss on a RANDOM VGG19 (model.allow_random_vgg): tests only")
    return VGG19Features(cfg.vgg_width).eval()


def build_sr_networks(cfg: SRModelConfig) -> SRNetworks:
    """Generator in training mode (batch statistics, state updates), D, perceptual net."""
    if not cfg.official_generator:
        log.warning(
            "generator ngf=%d spade_hidden=%d is NOT the official layout", cfg.ngf, cfg.spade_hidden
        )
    generator = LIPSPADEGenerator(
        LIPSPADEConfig(ngf=cfg.ngf, spade_hidden=cfg.spade_hidden),
        bn_mode="official",
        update_state=True,
    )
    discriminator = SRDiscriminator(cfg.d_ndf, cfg.d_layers, cfg.d_scales)
    return SRNetworks(generator.train(), discriminator.train(), perceptual_network(cfg))
