"""Options every `train` command takes, declared once, and what the commands do with them.

A run's settings come from the command's preset, then `--config FILE` (TOML/JSON), then
the flags, then `--set section.key=value`; `--print-config` shows the result instead of
training. Each flag maps onto one config setting (`SHARED_SETTINGS`, plus the command's
own table); the allowed choices are the config's own (`PRECISIONS`, `TRAIN_DEVICES`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ghost_engine.runtime.devices import TRAIN_DEVICES
from ghost_engine.training.run_config import (
    PRECISIONS,
    RunConfig,
    merge,
    parse_overrides,
    read_file,
    to_dict,
)

if TYPE_CHECKING:
    from ghost_engine.training.train_loop import Recipe

Config = TypeVar("Config", bound=RunConfig)

# flag name -> (section or None for the top level, setting), for the shared flags
SHARED_SETTINGS: dict[str, tuple[str | None, str]] = {
    "data": ("data", "root"),
    "out": (None, "out_dir"),
    "init_g": (None, "init_g"),
    "init_d": (None, "init_d"),
    "batch_size": (None, "batch_size"),
    "epochs": (None, "epochs"),
    "max_steps": (None, "max_steps"),
    "precision": (None, "precision"),
    "workers": ("data", "workers"),
    "device": (None, "device"),
    "resume": (None, "resume"),
}


def train_options(
    *, tiny: str, preset: str, data: str, batch: str, example: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a train command with the shared options; the texts name what is the
    command's own: what `--tiny` builds, its `preset`, its `data`, its `batch` and an
    `example` of `--set`."""
    options = (
        click.option("--tiny", is_flag=True, help=tiny),
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help=f"TOML or JSON file of settings over {preset}.",
        ),
        click.option("--data", type=click.Path(path_type=Path), help=data),
        click.option(
            "--out", type=click.Path(path_type=Path), help="Run folder (checkpoints, logs)."
        ),
        click.option(
            "--init-g", type=click.Path(path_type=Path), help="Start G from these weights."
        ),
        click.option(
            "--init-d", type=click.Path(path_type=Path), help="Start D from these weights."
        ),
        click.option("--batch-size", type=click.IntRange(1), help=batch),
        click.option("--epochs", type=click.IntRange(1)),
        click.option("--max-steps", type=click.IntRange(0), help="Stop after this many steps."),
        click.option("--precision", type=click.Choice(PRECISIONS)),
        click.option("--workers", type=click.IntRange(0), help="Data loader workers per process."),
        click.option("--device", type=click.Choice(TRAIN_DEVICES)),
        click.option("--resume/--no-resume", default=None, help="Continue from OUT/training.pt."),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"Any setting, e.g. {example}.",
        ),
        click.option("--print-config", is_flag=True, help="Print the resolved config and exit."),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def flag_overrides(
    values: dict[str, object], settings: dict[str, tuple[str | None, str]]
) -> dict[str, Any]:
    """The flags that were given (not None) as a nested override dict, paths as text."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        section, key = settings[name]
        node = out.setdefault(section, {}) if section else out
        node[key] = str(value) if isinstance(value, Path) else value
    return out


def resolve_config(
    preset: Config, options: dict[str, Any], own: dict[str, tuple[str | None, str]]
) -> Config:
    """`preset` with the config file, then the shared and `own` flags, then `--set` applied."""
    settings = {**SHARED_SETTINGS, **own}
    cfg = preset
    if options["config_file"] is not None:
        cfg = merge(cfg, read_file(options["config_file"]))
    cfg = merge(cfg, flag_overrides({name: options[name] for name in settings}, settings))
    return merge(cfg, parse_overrides(options["overrides"]))


def print_config(cfg: RunConfig) -> None:
    """The resolved config as indented JSON on stdout."""
    click.echo(json.dumps(to_dict(cfg), indent=2))


def run_training(recipe: Recipe) -> None:
    """Train `recipe` to the end (leaving the process group after, even on errors); the
    main process prints one line with the recipe's summary terms."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ghost_engine.training.distributed import shutdown
    from ghost_engine.training.train_loop import TrainingLoop

    loop = TrainingLoop(recipe)
    try:
        summary = loop.run()
    finally:
        shutdown(loop.ctx)
    if loop.ctx.main:
        click.echo(summary.text(recipe.summary_terms))
