"""What several commands share, declared once: the options that mean the same in each
(device, generator size, model folder, source photos, quiet, JSON report) and the forms
most options take: `shown` (a type and a default that --help shows), `count_option`
(a bounded whole number) and `choice_option` (one of a `ghost_engine.choices` tuple).

Commands never print errors or exit themselves: they raise engine errors, and
`ghost_engine.cli.main` prints each as one line with its exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ghost_engine.choices import DEVICES, GENERATOR_BLOCKS
from ghost_engine.runtime.devices import CPU

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]


def shown(
    *decls: str, default: Any, kind: Any = None, help: str | None = None, **attrs: Any
) -> Decorator:
    """`click.option(*decls)` of type `kind` (None: from the default) whose default --help
    shows."""
    return click.option(*decls, type=kind, default=default, show_default=True, help=help, **attrs)


def count_option(
    flag: str, default: int, help: str | None = None, *, low: int = 1, high: int | None = None
) -> Decorator:
    """A whole number from `low` (up to `high`) with its default shown: counts and sizes."""
    return shown(flag, kind=click.IntRange(low, high), default=default, help=help)


def choice_option(
    flag: str, choices: tuple[str, ...], default: str, help: str | None = None
) -> Decorator:
    """One of `choices` (a `ghost_engine.choices` tuple) with its default shown."""
    return shown(flag, kind=click.Choice(choices), default=default, help=help)


def device_option(command: F) -> F:
    """`--device cpu|cuda` (default cpu)."""
    return shown("--device", kind=click.Choice(DEVICES), default=CPU)(command)


def generator_blocks_option(command: F) -> F:
    """`--generator-blocks N`: which published generator (G_unet_<N>blocks)."""
    fewest, most = min(GENERATOR_BLOCKS), max(GENERATOR_BLOCKS)
    return count_option("--generator-blocks", 2, low=fewest, high=most)(command)


def models_dir_option(command: F) -> F:
    """`--models-dir DIR` for a command that loads models (default: the store's folder)."""
    return click.option(
        "--models-dir", type=Path, help="Model folder (default: the model store's)."
    )(command)


def sources_option(help: str) -> Decorator:
    """`-s/--source IMG[,IMG]`, repeatable and required: commas join photos of one person."""
    return click.option(
        "-s", "--source", "sources", multiple=True, required=True, metavar="IMG[,IMG]", help=help
    )


def quiet_option(help: str) -> Decorator:
    """`-q/--quiet`; `help` says what this command then leaves out."""
    return click.option("-q", "--quiet", is_flag=True, help=help)


def json_option(dest: str, metavar: str, help: str) -> Decorator:
    """`--json PATH`: where the command writes what it did, as JSON."""
    return click.option("--json", dest, type=Path, metavar=metavar, help=help)
