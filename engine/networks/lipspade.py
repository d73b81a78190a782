"""The face-renovation super-resolution generator (HiFaceGAN's LIP-SPADE), weight-compatible.

GHOST sharpens its 256x256 swaps with this network (`10_net_G.pth`). The layout follows
the official module so its state dict loads with `strict=True`:

- `lip_encoder`: conv + InstanceNorm + ReLU, then five times [local-importance pooling
  (2x down, soft-gated by a conv/InstanceNorm/sigmoid*12 "logit" branch), conv,
  InstanceNorm, ReLU (not after the last)] -> 16*ngf channels at 1/32 of the input.
- `head_0` at 1/32, 2x nearest up, `G_middle_0`, `G_middle_1` at 1/16, then four times
  [2x nearest up, `ups[i]`], each a SPADE ResNet block whose norms are modulated by the
  input image itself; `to_rgbs[3]` after a leaky ReLU, tanh. Output in [-1, 1].
- `fc` and `to_rgbs[0..2]` are stored in the checkpoint but unused at full resolution.

The SPADE norms' parameter-free BatchNorm and the spectral norm on the block convs depend
on how the module is run; `bn_mode` chooses (see `BN_MODES`), independent of `.train()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ghost_engine.errors import UserInputError
from ghost_engine.networks.spectral import SpectralConv2d, fold_spectral_norm

__all__ = [
    "BN_MODES",
    "BNMode",
    "LIPSPADEConfig",
    "LIPSPADEGenerator",
    "fold_spectral_norm",
]

BNMode = Literal["official", "per_face", "running"]

BN_MODES: dict[str, str] = {  # keys: ghost_engine.choices.SR_BN_MODES
    "official": (
        "BatchNorm on the statistics of the whole batch and one spectral-norm power "
        "iteration from the stored u: what GHOST's inference computes (it runs the network "
        "in training mode), so published weights give published results; a face's output "
        "depends on the other faces in its batch"
    ),
    "per_face": (
        "each image normalised by its own statistics, spectral norm as in 'official': "
        "equal to 'official' on a batch of one, so results do not depend on batching"
    ),
    "running": (
        "BatchNorm on the stored running statistics and spectral norm from the stored u "
        "and v without iteration: the official module in eval mode"
    ),
}

_BN_EPS = 1e-5
_BN_MOMENTUM = 0.1
_LEAK = 0.2
_SOFT_GATE_SCALE = 12.0
_NUM_DOWNSAMPLINGS = 5  # 1 + len(ups) upsamplings undo them
_MAX_CHANNEL_RATIO = 16


@dataclass(frozen=True)
class LIPSPADEConfig:
    """Constructor settings; the defaults are those of GHOST's `10_net_G.pth`.

    The official options `nef` and `z_dim` do not affect this generator, and its depth is
    fixed: five 2x downsamplings in the encoder (the 'normal' setting, crop 256 -> 8x8
    latent) mirrored by five 2x upsamplings, so inputs must be multiples of 32.
    """

    ngf: int = 48
    semantic_nc: int = 3
    spade_hidden: int = 128
    spade_kernel: int = 3


class ParamFreeBatchNorm(nn.Module):
    """BatchNorm without affine parameters whose statistics come from `bn_mode`.

    Keeps `running_mean`, `running_var` and `num_batches_tracked` like the official
    (Synchronized)BatchNorm2d(affine=False). The running statistics change only in
    'official' mode with `update_state` set, with the official momentum.
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn_mode: BNMode = "official"
        self.update_state = False
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bn_mode == "per_face":
            return _normalize(x, (2, 3))
        if self.bn_mode == "running":
            return F.batch_norm(x, self.running_mean, self.running_var, training=False, eps=_BN_EPS)
        if self.update_state:
            self.num_batches_tracked.add_(1)
            return F.batch_norm(
                x,
                self.running_mean,
                self.running_var,
                training=True,
                momentum=_BN_MOMENTUM,
                eps=_BN_EPS,
            )
        return _normalize(x, (0, 2, 3))


def _normalize(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """(x - mean) / sqrt(biased var + eps) over `dims`.

    Written out rather than F.batch_norm/instance_norm so that both statistics modes
    export to ONNX with a dynamic batch size (training-mode batch_norm does not).
    """
    var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + _BN_EPS)


class SPADE(nn.Module):
    """Parameter-free BatchNorm, then scale and shift predicted from the guide image."""

    def __init__(self, channels: int, cfg: LIPSPADEConfig) -> None:
        super().__init__()
        hidden = cfg.spade_hidden if channels > cfg.spade_hidden else channels
        pad = cfg.spade_kernel // 2
        self.param_free_norm = ParamFreeBatchNorm(channels)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(cfg.semantic_nc, hidden, cfg.spade_kernel, padding=pad), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(hidden, channels, cfg.spade_kernel, padding=pad, bias=False)
        self.mlp_beta = nn.Conv2d(hidden, channels, cfg.spade_kernel, padding=pad, bias=False)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        guide = F.interpolate(guide, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(guide)
        # The official modulation is `norm * gamma + beta` (no `1 + gamma`).
        return self.param_free_norm(x) * self.mlp_gamma(actv) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    """Pre-activation ResNet block: SPADE, leaky ReLU, spectral conv (twice) + shortcut."""

    def __init__(self, fin: int, fout: int, cfg: LIPSPADEConfig) -> None:
        super().__init__()
        fmid = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = SpectralConv2d(fin, fmid, 3, padding=1)
        self.conv_1 = SpectralConv2d(fmid, fout, 3, padding=1)
        if self.learned_shortcut:
            self.conv_s = SpectralConv2d(fin, fout, 1, bias=False)
        self.norm_0 = SPADE(fin, cfg)
        self.norm_1 = SPADE(fmid, cfg)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, cfg)

    def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, guide)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, guide), _LEAK))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, guide), _LEAK))
        return shortcut + dx


class _SoftGate(nn.Module):
    """sigmoid(x) * 12: the bounded logit of local-importance pooling."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * _SOFT_GATE_SCALE


class LocalImportancePool(nn.Module):
    """2x downsampling that weights each pixel by exp(logit) inside 3x3 windows.

    Why: plain average pooling blurs detail the generator must rebuild; the learned logit
    lets salient pixels dominate their window. The state-dict names (`logit.0`, `logit.1`)
    are the official ones.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.logit = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.InstanceNorm2d(channels, affine=True),
            _SoftGate(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.logit(x).exp()
        return F.avg_pool2d(x * weight, 3, 2, 1) / F.avg_pool2d(weight, 3, 2, 1)


def _lip_encoder_layers(cfg: LIPSPADEConfig) -> Iterator[nn.Module]:
    """The official encoder's layers in order (their indices are state-dict names)."""
    ngf = cfg.ngf
    yield nn.Conv2d(cfg.semantic_nc, ngf, 3, padding=1, bias=False)
    yield nn.InstanceNorm2d(ngf)
    yield nn.ReLU()
    ratio = 1
    for i in range(_NUM_DOWNSAMPLINGS):
        next_ratio = min(ratio * 2, _MAX_CHANNEL_RATIO)
        yield LocalImportancePool(ngf * ratio)
        yield nn.Conv2d(ngf * ratio, ngf * next_ratio, 3, padding=1)
        yield nn.InstanceNorm2d(ngf * next_ratio)
        if i < _NUM_DOWNSAMPLINGS - 1:
            yield nn.ReLU()
        ratio = next_ratio


class LIPEncoder(nn.Module):
    """Image -> 16*ngf-channel latent at 1/32 of the input size."""

    def __init__(self, cfg: LIPSPADEConfig) -> None:
        super().__init__()
        self.model = nn.Sequential(*_lip_encoder_layers(cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LIPSPADEGenerator(nn.Module):
    """GHOST's face-renovation generator: (N, 3, H, W) RGB in [0, 1] -> same size, tanh.

    GHOST turns the output into pixels with `clamp(y * 255, 0, 255)` then a uint8 cast
    (the tanh range is read as [0, 1]; negatives clip to black), not `(y + 1) / 2`.

    `bn_mode` ('official' by default, see `BN_MODES`) and `update_state` are properties
    that reach every norm and spectral conv inside; `.train()`/`.eval()` change nothing.
    Why three modes: GHOST runs this network in training mode on batches of 20
    consecutive crops of a track, so its BatchNorm uses batch statistics and each call
    moves the spectral-norm vectors. 'official' reproduces one such call for the batch it
    is given (the golden vectors); 'per_face' gives every face the statistics of a batch
    of one, so a face's result no longer depends on which faces share its batch (what a
    streaming engine with variable batches needs); 'running' is the module's eval mode,
    kept for checkpoints whose running statistics were actually trained.

    `update_state` (official mode only) stores the running statistics and u, v as the
    official call does, to replay a sequence of official calls; it is off by default so
    that the same input always gives the same output.
    """

    def __init__(
        self,
        cfg: LIPSPADEConfig | None = None,
        *,
        bn_mode: BNMode = "official",
        update_state: bool = False,
    ) -> None:
        super().__init__()
        cfg = cfg or LIPSPADEConfig()
        self.cfg = cfg
        nf = cfg.ngf
        top = _MAX_CHANNEL_RATIO * nf
        self.fc = nn.Conv2d(cfg.semantic_nc, top, 3, padding=1)  # stored, unused
        self.head_0 = SPADEResBlock(top, top, cfg)
        self.G_middle_0 = SPADEResBlock(top, top, cfg)
        self.G_middle_1 = SPADEResBlock(top, top, cfg)
        widths = [top, 8 * nf, 4 * nf, 2 * nf, nf]
        self.ups = nn.ModuleList(
            SPADEResBlock(widths[i], widths[i + 1], cfg) for i in range(len(widths) - 1)
        )
        self.to_rgbs = nn.ModuleList(nn.Conv2d(w, 3, 3, padding=1) for w in widths[1:])
        self.lip_encoder = LIPEncoder(cfg)
        self._bn_mode: BNMode = "official"
        self._update_state = False
        self.bn_mode = bn_mode
        self.update_state = update_state

    @property
    def bn_mode(self) -> BNMode:
        """How BatchNorm and spectral norm are computed; one of `BN_MODES`."""
        return self._bn_mode

    @bn_mode.setter
    def bn_mode(self, mode: BNMode) -> None:
        if mode not in BN_MODES:
            raise UserInputError(f"unknown bn_mode {mode!r}; choose one of {', '.join(BN_MODES)}")
        self._bn_mode = mode
        self._propagate()

    @property
    def update_state(self) -> bool:
        """Whether an 'official' forward stores running statistics and u, v."""
        return self._update_state

    @update_state.setter
    def update_state(self, value: bool) -> None:
        self._update_state = bool(value)
        self._propagate()

    def _propagate(self) -> None:
        official = self._bn_mode == "official"
        for m in self.modules():
            if isinstance(m, ParamFreeBatchNorm):
                m.bn_mode = self._bn_mode
                m.update_state = official and self._update_state
            elif isinstance(m, SpectralConv2d):
                m.power_iteration = self._bn_mode != "running"
                m.update_state = official and self._update_state

    def _check_input(self, x: torch.Tensor) -> None:
        step = 2**_NUM_DOWNSAMPLINGS
        if x.dim() != 4 or x.shape[1] != self.cfg.semantic_nc:
            raise UserInputError(
                f"super-resolution input must be (N, {self.cfg.semantic_nc}, H, W), got "
                f"{tuple(x.shape)}; pass a batch of RGB images in [0, 1]"
            )
        if x.shape[2] % step or x.shape[3] % step:
            raise UserInputError(
                f"super-resolution input size {tuple(x.shape[2:])} is not a multiple of "
                f"{step}; resize the face crop (256x256 is the trained size)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Renovate faces `x` (N, 3, H, W) in [0, 1]; returns (N, 3, H, W) in [-1, 1]."""
        self._check_input(x)
        h = self.lip_encoder(x)
        h = self.head_0(h, x)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.G_middle_0(h, x)
        h = self.G_middle_1(h, x)
        for block in self.ups:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = block(h, x)
        return torch.tanh(self.to_rgbs[-1](F.leaky_relu(h, _LEAK)))
