"""`ghost-engine train sr`: train the face-renovation (super-resolution) network.

The command is the `sr` click command; `ghost-engine train` registers it beside `swap`.
Settings come from the original recipe, then `--config FILE`, then the flags, then
`--set KEY=VALUE` (see `ghost_engine.training.sr_config`). Launch with `torchrun
--nproc-per-node N -m ghost_engine train sr ...` for data parallelism.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

_FLAGS = {
    "data": ("data", "root"),
    "out": (None, "out_dir"),
    "init_g": (None, "init_g"),
    "init_d": (None, "init_d"),
    "vgg": ("model", "vgg_weights"),
    "batch_size": (None, "batch_size"),
    "epochs": (None, "epochs"),
    "max_steps": (None, "max_steps"),
    "precision": (None, "precision"),
    "workers": ("data", "workers"),
    "device": (None, "device"),
    "resume": (None, "resume"),
}


def flag_overrides(**flags: object) -> dict:
    """Explicit CLI flags as a nested override dict (None = not given)."""
    out: dict = {}
    for name, value in flags.items():
        if value is None:
            continue
        section, key = _FLAGS[name]
        node = out.setdefault(section, {}) if section else out
        node[key] = str(value) if isinstance(value, Path) else value
    return out


@click.command("sr")
@click.option(
    "--tiny",
    is_flag=True,
    help="Tiny NOT-official networks and a random narrow VGG (CPU dry runs, tests).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML or JSON file of settings over the recipe.",
)
@click.option("--data", type=click.Path(path_type=Path), help="Folder of clean face images.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (checkpoints, logs).")
@click.option("--init-g", type=click.Path(path_type=Path), help="Start G from these weights.")
@click.option("--init-d", type=click.Path(path_type=Path), help="Start D from these weights.")
@click.option(
    "--vgg",
    type=click.Path(path_type=Path, dir_okay=False),
    help="ImageNet VGG19 weights (torchvision layout) for the perceptual loss.",
)
@click.option("--batch-size", type=click.IntRange(1), help="Global batch.")
@click.option("--epochs", type=click.IntRange(1))
@click.option("--max-steps", type=click.IntRange(0), help="Stop after this many steps.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]))
@click.option("--workers", type=click.IntRange(0), help="Data loader workers per process.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option("--resume/--no-resume", default=None, help="Continue from OUT/training.pt.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any setting, e.g. --set weights.vgg=5 --set data.degradations.probability=0.5.",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
def sr(
    tiny: bool,
    config_file: Path | None,
    overrides: tuple[str, ...],
    print_config: bool,
    **flags: object,
) -> None:
    """Train GHOST's LIP-SPADE face renovation on degraded faces (hinge GAN, feature
    matching, VGG19 perceptual loss); weights in the official layout (N_net_G.pth)."""
    from ghost_engine.training import config as cfgmod
    from ghost_engine.training.sr_config import sr_preset

    cfg = sr_preset(tiny=tiny)
    if config_file is not None:
        cfg = cfgmod.merge(cfg, cfgmod.read_file(config_file))
    cfg = cfgmod.merge(cfg, flag_overrides(**flags))
    cfg = cfgmod.merge(cfg, cfgmod.parse_overrides(overrides))
    if print_config:
        click.echo(json.dumps(cfgmod.to_dict(cfg), indent=2))
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ghost_engine.training.distributed import shutdown
    from ghost_engine.training.sr_trainer import SRTrainer

    trainer = SRTrainer(cfg)
    try:
        summary = trainer.run()
    finally:
        shutdown(trainer.ctx)
    if trainer.ctx.main:
        shown = [k for k in ("loss_g", "loss_d", "l1") if k in summary.losses]
        last = ", ".join(f"{k} {summary.losses[k]:.4g}" for k in shown)
        click.echo(f"trained to step {summary.global_step} ({last}); weights in {summary.out_dir}")
