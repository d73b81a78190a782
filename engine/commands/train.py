"""`ghost-engine train`: prepare face data and train the GHOST face-swap networks.

  ghost-engine train prepare SRC OUT            # VGGFace2-style tree -> aligned crops
  ghost-engine train swap --stage 1 --data OUT --out runs/s1 --set model.identity_weights=...
  ghost-engine train swap --stage 2 --init-g runs/s1/G_latest.pth --init-d runs/s1/D_latest.pth
  torchrun --nproc_per_node 8 -m ghost_engine train swap ...   # data parallel, any nodes

Settings come from the stage preset, then `--config FILE` (TOML/JSON), then the flags
below, then `--set section.key=value`; the result is saved with every checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ghost_engine.errors import UserInputError


@click.group("train")
def train() -> None:
    """Prepare face data and train the GHOST networks (two-stage swap training)."""


@train.command("prepare")
@click.argument("src", type=click.Path(path_type=Path, file_okay=False))
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--workers", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option(
    "--min-side",
    type=click.IntRange(0),
    default=250,
    show_default=True,
    help="Drop photos whose shorter side is below this many pixels.",
)
@click.option(
    "--aligned",
    is_flag=True,
    help="Inputs are already GHOST 224 crops: skip detection and the size rule.",
)
@click.option(
    "--upsample",
    type=click.IntRange(0, 3),
    default=0,
    show_default=True,
    help="dlib HOG upsampling (finds smaller faces, slower).",
)
@click.option(
    "--max-side",
    type=click.IntRange(64),
    default=1024,
    show_default=True,
    help="Detect on a copy downscaled to this longest side.",
)
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


def _flag_overrides(**flags: object) -> dict:
    """Explicit CLI flags as a nested override dict (None = not given)."""
    table = {
        "data": ("data", "root"),
        "out": (None, "out_dir"),
        "init_g": (None, "init_g"),
        "init_d": (None, "init_d"),
        "arcface": ("model", "identity_weights"),
        "fan": ("model", "landmark_weights"),
        "batch_size": (None, "batch_size"),
        "epochs": (None, "epochs"),
        "max_steps": (None, "max_steps"),
        "precision": (None, "precision"),
        "workers": ("data", "workers"),
        "device": (None, "device"),
        "resume": (None, "resume"),
    }
    out: dict = {}
    for name, value in flags.items():
        if value is None:
            continue
        section, key = table[name]
        node = out.setdefault(section, {}) if section else out
        node[key] = str(value) if isinstance(value, Path) else value
    return out


@train.command("swap")
@click.option(
    "--stage",
    type=click.Choice(["1", "2"]),
    default="1",
    show_default=True,
    help="Paper stage: 1 (no eye loss) or 2 (id 70, eye 1200; set --init-g/-d).",
)
@click.option(
    "--tiny",
    is_flag=True,
    help="Tiny NOT-official networks with random frozen helpers (CPU dry runs).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML or JSON file of settings over the stage preset.",
)
@click.option("--data", type=click.Path(path_type=Path), help="Prepared dataset folder.")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder (checkpoints, logs).")
@click.option("--init-g", type=click.Path(path_type=Path), help="Start G from these weights.")
@click.option("--init-d", type=click.Path(path_type=Path), help="Start D from these weights.")
@click.option("--arcface", type=click.Path(path_type=Path), help="ArcFace iresnet100 weights.")
@click.option("--fan", type=click.Path(path_type=Path), help="FAN WFLW_4HG weights (stage 2).")
@click.option("--batch-size", type=click.IntRange(1), help="Global batch (paper: 16).")
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
    help="Any setting, e.g. --set optim.discr_force=true --set weights.id=70.",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
def swap(
    stage: str,
    tiny: bool,
    config_file: Path | None,
    overrides: tuple[str, ...],
    print_config: bool,
    **flags: object,
) -> None:
    """Train the AEI-Net face-swap generator and its discriminator (GHOST losses)."""
    from ghost_engine.training import config as cfgmod

    cfg = cfgmod.preset(f"stage{stage}", tiny=tiny)
    if config_file is not None:
        cfg = cfgmod.merge(cfg, cfgmod.read_file(config_file))
    cfg = cfgmod.merge(cfg, _flag_overrides(**flags))
    cfg = cfgmod.merge(cfg, cfgmod.parse_overrides(overrides))
    if print_config:
        click.echo(json.dumps(cfgmod.to_dict(cfg), indent=2))
        return
    if cfg.stage == "stage2" and not (cfg.init_g and cfg.init_d) and not tiny:
        raise UserInputError(
            "stage 2 starts from stage 1's weights: pass --init-g and --init-d "
            "(e.g. runs/stage1/G_latest.pth and D_latest.pth)"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ghost_engine.training.distributed import shutdown
    from ghost_engine.training.trainer import Trainer

    trainer = Trainer(cfg)
    try:
        summary = trainer.run()
    finally:
        shutdown(trainer.ctx)
    if trainer.ctx.main:
        last = ", ".join(
            f"{k} {summary.losses[k]:.4g}"
            for k in ("loss_g", "loss_d", "rec")
            if k in summary.losses
        )
        click.echo(f"trained to step {summary.global_step} ({last}); weights in {summary.out_dir}")


def _register_sr() -> None:
    """`train sr` lives in its own module (the renovation network's recipe)."""
    from ghost_engine.commands.train_sr import sr

    train.add_command(sr)


_register_sr()
