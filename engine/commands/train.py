"""`ghost-engine train`: prepare face data and train the GHOST face-swap networks.

  ghost-engine train prepare SRC OUT            # VGGFace2-style tree -> aligned crops
  ghost-engine train swap --stage 1 --data OUT --out runs/s1 --set model.identity_weights=...
  ghost-engine train swap --stage 2 --init-g runs/s1/G_latest.pth --init-d runs/s1/D_latest.pth
  torchrun --nproc_per_node 8 -m ghost_engine train swap ...   # data parallel, any nodes

Settings come from the stage preset, then `--config FILE` (TOML/JSON), then the flags
below, then `--set section.key=value`; the result is saved with every checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ghost_engine.commands.train_options import (
    print_config,
    resolve_config,
    run_training,
    train_options,
)
from ghost_engine.errors import UserInputError
from ghost_engine.training.config import PRESETS


@click.group("train")
def train() -> None:
    """Prepare face data and train the GHOST networks (two-stage swap training)."""


def _counted(
    flag: str, low: int, high: int | None, default: int, text: str | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A whole-number option in [low, high] (no top for None) that shows its default."""
    return click.option(
        flag, type=click.IntRange(low, high), default=default, show_default=True, help=text
    )


@train.command("prepare")
@click.argument("src", type=click.Path(path_type=Path, file_okay=False))
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@_counted("--workers", 1, 256, 4)
@_counted("--min-side", 0, None, 250, "Drop photos whose shorter side is below this many pixels.")
@click.option(
    "--aligned",
    is_flag=True,
    help="Inputs are already GHOST 224 crops: skip detection and the size rule.",
)
@_counted("--upsample", 0, 3, 0, "dlib HOG upsampling (finds smaller faces, slower).")
@_counted("--max-side", 64, None, 1024, "Detect on a copy downscaled to this longest side.")
def prepare(
    src: Path, out: Path, workers: int, min_side: int, aligned: bool, upsample: int, max_side: int
) -> None:
    """Detect, align and store the faces of SRC/<identity>/* into OUT (resumable)."""
    from ghost_engine.training.prepare import PrepareConfig, prepare_dataset

    config = PrepareConfig(
        min_side=min_side, workers=workers, aligned=aligned, upsample=upsample, max_side=max_side
    )

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            click.echo(f"\rprepared {done}/{total}", nl=done == total, err=True)

    report = prepare_dataset(src, out, config, progress=progress)
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())) or "none"
    click.echo(
        f"kept {report.kept} faces (new this run: {report.processed_now} photos "
        f"processed); dropped: {dropped}; index: {out / 'index.jsonl'}"
    )


# the swap command's own flags -> (section, setting)
SWAP_SETTINGS: dict[str, tuple[str | None, str]] = {
    "arcface": ("model", "identity_weights"),
    "fan": ("model", "landmark_weights"),
}


@train.command("swap")
@click.option(
    "--stage",
    type=click.Choice([name.removeprefix("stage") for name in PRESETS]),
    default="1",
    show_default=True,
    help="Paper stage: 1 (no eye loss) or 2 (id 70, eye 1200; set --init-g/-d).",
)
@click.option("--arcface", type=click.Path(path_type=Path), help="ArcFace iresnet100 weights.")
@click.option("--fan", type=click.Path(path_type=Path), help="FAN WFLW_4HG weights (stage 2).")
@train_options(
    tiny="Tiny NOT-official networks with random frozen helpers (CPU dry runs).",
    preset="the stage preset",
    data="Prepared dataset folder.",
    batch="Global batch (paper: 16).",
    example="--set optim.discr_force=true --set weights.id=70",
)
def swap(stage: str, **options: Any) -> None:
    """Train the AEI-Net face-swap generator and its discriminator (GHOST losses)."""
    from ghost_engine.training.config import preset
    from ghost_engine.training.swap_recipe import SwapRecipe

    tiny = options["tiny"]
    cfg = resolve_config(preset(f"stage{stage}", tiny=tiny), options, SWAP_SETTINGS)
    if options["print_config"]:
        print_config(cfg)
        return
    if cfg.stage == "stage2" and not (cfg.init_g and cfg.init_d) and not tiny:
        raise UserInputError(
            "stage 2 starts from stage 1's weights: pass --init-g and --init-d "
            "(e.g. runs/stage1/G_latest.pth and D_latest.pth)",
            option="--init-g",
        )
    run_training(SwapRecipe(cfg))


def _register_sr() -> None:
    """`train sr` lives in its own module (the renovation network's recipe)."""
    from ghost_engine.commands.train_sr import sr

    train.add_command(sr)


_register_sr()
