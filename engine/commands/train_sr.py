"""`ghost-engine train sr`: train the face-renovation (super-resolution) network.

The command is the `sr` click command; `ghost-engine train` registers it beside `swap`.
Settings come from the original recipe, then `--config FILE`, then the flags, then
`--set KEY=VALUE` (see `ghost_engine.training.sr_config`); the options both train
commands take are `train_options`'. Launch with `torchrun --nproc-per-node N -m
ghost_engine train sr ...` for data parallelism.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ghost_engine.commands.train_options import (
    print_config,
    resolve_config,
    run_training,
    train_options,
)

# the renovation command's own flags -> (section, setting)
SR_SETTINGS: dict[str, tuple[str | None, str]] = {"vgg": ("model", "vgg_weights")}


@click.command("sr")
@click.option(
    "--vgg",
    type=click.Path(path_type=Path, dir_okay=False),
    help="ImageNet VGG19 weights (torchvision layout) for the perceptual loss.",
)
@train_options(
    tiny="Tiny NOT-official networks and a random narrow VGG (CPU dry runs, tests).",
    preset="the recipe",
    data="Folder of clean face images.",
    batch="Global batch.",
    example="--set weights.vgg=5 --set data.degradations.probability=0.5",
)
def sr(**options: Any) -> None:
    """Train GHOST's LIP-SPADE face renovation on degraded faces (hinge GAN, feature
    matching, VGG19 perceptual loss); weights in the official layout (N_net_G.pth)."""
    from ghost_engine.training.sr_config import sr_preset
    from ghost_engine.training.sr_recipe import SRRecipe

    cfg = resolve_config(sr_preset(tiny=options["tiny"]), options, SR_SETTINGS)
    if options["print_config"]:
        print_config(cfg)
        return
    run_training(SRRecipe(cfg))
