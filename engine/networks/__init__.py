"""The GHOST networks, weight-compatible with the official checkpoints.

`build(name)` returns a fresh module for a registered name, in the mode the official
inference uses; `load(name, path)` builds it and loads a checkpoint safely
(see `ghost_engine.networks.checkpoint`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class NetworkSpec:
    """How to build one registered network; `factory` is 'module:function'."""

    name: str
    factory: str
    kwargs: tuple[tuple[str, object], ...] = ()
    description: str = ""


_ATTRIBUTE_ENCODERS = {"unet": "U-Net", "linknet": "LinkNet"}


def _aei_net(backbone: str, blocks: int, layers: str) -> NetworkSpec:
    """The AEI-Net generator `G_<backbone>_<blocks>blocks` (the official file names)."""
    return NetworkSpec(
        f"G_{backbone}_{blocks}blocks",
        "ghost_engine.networks.aei_net:AEINet",
        (("backbone", backbone), ("num_blocks", blocks), ("c_id", 512)),
        f"AEI-Net generator, {_ATTRIBUTE_ENCODERS[backbone]} attribute encoder, {layers}",
    )


_SPECS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        _aei_net("unet", 1, "1 AAD layer per ResBlock"),
        _aei_net("unet", 2, "2 AAD layers (the main model)"),
        _aei_net("unet", 3, "3 AAD layers per ResBlock"),
        _aei_net("linknet", 2, "2 AAD layers"),
        NetworkSpec(
            "D_unet",
            "ghost_engine.networks.discriminator:MultiscaleDiscriminator",
            (("input_nc", 3), ("ndf", 64), ("n_layers", 5), ("num_D", 3)),
            "multiscale discriminator (training only)",
        ),
        NetworkSpec(
            "arcface_iresnet100",
            "ghost_engine.networks.iresnet:iresnet100",
            (),
            "ArcFace identity encoder, iresnet100",
        ),
        NetworkSpec("arcface_iresnet50", "ghost_engine.networks.iresnet:iresnet50"),
        NetworkSpec("arcface_iresnet34", "ghost_engine.networks.iresnet:iresnet34"),
        NetworkSpec("arcface_iresnet18", "ghost_engine.networks.iresnet:iresnet18"),
        NetworkSpec(
            "sr_lipspade",
            "ghost_engine.networks.lipspade:LIPSPADEGenerator",
            (),
            "face-renovation super-resolution generator (HiFaceGAN LIP-SPADE)",
        ),
        NetworkSpec(
            "fan_wflw_4hg",
            "ghost_engine.networks.fan:FAN",
            (("num_modules", 4), ("end_relu", True), ("num_landmarks", 98)),
            "FAN landmark network, 4 hourglasses, 98 WFLW points (eye loss)",
        ),
    )
}


def names() -> list[str]:
    """Every registered network name."""
    return sorted(_SPECS)


def spec(name: str) -> NetworkSpec:
    """The spec for `name`, or a clear error listing the known names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; known networks: {', '.join(names())}") from None


def build(name: str) -> torch.nn.Module:
    """A fresh module for `name`, in eval mode (the official inference mode).

    The super-resolution network's official inference uses batch statistics; that is a
    mode of the module itself (see `LIPSPADEGenerator.bn_mode`), not train().
    """
    s = spec(name)
    module_name, func = s.factory.split(":")
    factory = getattr(importlib.import_module(module_name), func)
    net = factory(**dict(s.kwargs))
    return net.eval()


def load(name: str, path: str | Path, *, convert: bool = True) -> torch.nn.Module:
    """`build(name)` with the weights of `path` loaded strictly and safely."""
    from ghost_engine.networks.checkpoint import load_into

    net = build(name)
    load_into(net, path, network_name=name, convert=convert)
    return net.eval()
