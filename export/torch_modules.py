"""PyTorch modules in the form the ONNX export traces.

The registry's networks compute what the official code computes; a few of their
run-time choices have no clean ONNX form, so they are rewritten here without changing
the maths: the generator returns only the swap (attribute maps are a training output),
the super-resolution net's spectral norm is folded into plain convolutions and its
'official' batch statistics become explicit reductions (ONNX BatchNormalization with
`training_mode=1` is a training op that TensorRT does not take).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ghost_engine.errors import UserInputError
from ghost_engine.export.specs import FP32_SCOPE, ExportSpec
from ghost_engine.networks import build, load
from ghost_engine.networks.fill import fill_module
from ghost_engine.networks.spectral import fold_spectral_norm

if TYPE_CHECKING:
    from ghost_engine.networks.lipspade import BNMode, LIPSPADEGenerator

_BN_EPS = 1e-5


class Fp32Region(nn.Module):
    """Runs `inner` unchanged; its ONNX nodes carry `FP32_SCOPE` in their names.

    Why: the fp16 variant keeps numerically fragile parts (normalisation statistics,
    exp-weighted pooling) in fp32, and this marker is how the export says which.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        setattr(self, FP32_SCOPE, inner)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return getattr(self, FP32_SCOPE)(*args)


class BatchStatisticsNorm(nn.Module):
    """Parameter-free BatchNorm over the batch's own statistics, as plain reductions.

    Same result as `F.batch_norm(x, None, None, training=True)` (biased variance), in
    ops every ONNX consumer runs at inference.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(dim=(0, 2, 3), keepdim=True)
        return centred / torch.sqrt(var + _BN_EPS)


class GeneratorSwap(nn.Module):
    """AEI-Net returning only the swap: `(target, z_id) -> swap`."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.net = generator

    def forward(self, target: torch.Tensor, z_id: torch.Tensor) -> torch.Tensor:
        return self.net(target, z_id)[0]


def load_network(name: str, checkpoint: Path | None) -> nn.Module:
    """The registry network `name` with `checkpoint`'s weights, or fill-rule weights."""
    if checkpoint is None:
        return fill_module(build(name)).eval()
    return load(name, checkpoint).eval()


def _sr_net(net: nn.Module) -> LIPSPADEGenerator:
    from ghost_engine.networks.lipspade import LIPSPADEGenerator

    if not isinstance(net, LIPSPADEGenerator):
        raise UserInputError(f"expected a LIP-SPADE generator, got {type(net).__name__}")
    return net


def _prepare_sr(net: nn.Module, bn_mode: BNMode) -> nn.Module:
    from ghost_engine.networks.lipspade import LocalImportancePool, ParamFreeBatchNorm

    sr = copy.deepcopy(_sr_net(net))
    sr.bn_mode = bn_mode
    sr.update_state = False
    fold_spectral_norm(sr)
    for parent in list(sr.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, ParamFreeBatchNorm) and bn_mode == "official":
                setattr(parent, child_name, Fp32Region(BatchStatisticsNorm()))
            elif isinstance(child, LocalImportancePool):
                setattr(parent, child_name, Fp32Region(child))
    return sr.eval()


def export_module(spec: ExportSpec, net: nn.Module, *, bn_mode: BNMode = "official") -> nn.Module:
    """`net` rewritten for tracing per `spec` (the original is left untouched)."""
    if spec.name.startswith("G_unet_"):
        return GeneratorSwap(net).eval()
    if spec.name == "sr_lipspade":
        return _prepare_sr(net, bn_mode)
    if spec.network is not None:
        return net.eval()
    raise UserInputError(f"{spec.name} comes as ONNX already; there is no PyTorch module")


def reference_module(
    spec: ExportSpec, net: nn.Module, *, bn_mode: BNMode = "official"
) -> nn.Module:
    """The unmodified network in the mode the export reproduces (parity reference).

    Sets the super-resolution net's `bn_mode` on `net` itself (no copy: it is large).
    """
    if spec.name.startswith("G_unet_"):
        return GeneratorSwap(net).eval()
    if spec.name == "sr_lipspade":
        sr = _sr_net(net)
        sr.bn_mode = bn_mode
        sr.update_state = False
    return net.eval()
