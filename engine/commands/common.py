"""What several commands share, declared once: the options that mean the same in each
(device, generator size, model folder, source photos, quiet, JSON report, overwrite,
pixel limit) and the forms most options take: `shown` (a type and a default that --help
shows), `count_option` (a bounded whole number), `choice_option` (one of a
`ghost_engine.choices` tuple) and `FiniteFloat` (a bounded real number, never nan or
infinite).

Commands never print errors or exit themselves: they raise engine errors, and
`ghost_engine.cli.main` prints each as one line with its exit code. Their warnings go
to stderr one line each (`log_to_stderr`).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ghost_engine.choices import DEVICES, GENERATOR_BLOCKS
from ghost_engine.errors import OutputExistsError, one_line
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
    return shown(flag, kind=WholeNumber(low, high), default=default, help=help)


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


def _bounds(low: float | None, high: float | None, kind: str) -> str:
    if low is not None and high is not None:
        return f"{kind} from {low:g} to {high:g}"
    if low is not None:
        return f"{kind} of at least {low:g}"
    if high is not None:
        return f"{kind} of at most {high:g}"
    return kind


class WholeNumber(click.IntRange):
    """`click.IntRange` whose refusal of a non-number (`--crf nan`) names the range."""

    name = "whole number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            try:
                int(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a whole number; use {self.allowed()}", param, ctx)
            raise

    def allowed(self) -> str:
        """The accepted values in words, for the refusal."""
        return _bounds(self.min, self.max, "a whole number")


class FiniteFloat(click.FloatRange):
    """`click.FloatRange` that also refuses nan and infinities: nan compares false with
    every bound, so a plain range lets it through (and `--similarity-threshold nan`
    would silently change matching)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number; use {self.allowed()}", param, ctx)
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; use {self.allowed()}", param, ctx)
        return number

    def allowed(self) -> str:
        """The accepted values in words, for the refusal."""
        return _bounds(self.min, self.max, "a number")


def overwrite_option(command: F) -> F:
    """`-y/--overwrite`: replace an existing output without asking (FFmpeg's `-y`)."""
    return click.option(
        "-y",
        "--overwrite",
        is_flag=True,
        help="Replace an existing output without asking (otherwise: ask at a terminal, "
        "refuse elsewhere).",
    )(command)


def max_pixels_option(command: F) -> F:
    """`--max-pixels N`: the largest frame read (width x height), checked from headers."""
    from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS

    return shown(
        "--max-pixels",
        kind=WholeNumber(min=1),
        default=DEFAULT_MAX_PIXELS,
        help="Largest frame (width x height) read from any input; 8K by default.",
    )(command)


def confirm_overwrite(path: Path, yes: bool) -> bool:
    """Whether the run may replace `path`: -y says so; at a terminal the user is asked
    (y/N); elsewhere the answer is no and the engine refuses an existing output.
    An answer of no at the prompt is refused here, in one line."""
    from ghost_engine.video.paths import output_exists

    if yes or not output_exists(path):
        return yes
    if not sys.stdin.isatty():
        return False
    if click.confirm(f"{one_line(str(path))} already exists. Overwrite?", default=False, err=True):
        return True
    raise OutputExistsError(
        f"not overwriting {one_line(str(path))}; choose another output name", path=path
    )


class _StderrLines(logging.Handler):
    """Log records as one line each on the current stderr (escaped like errors)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(one_line(record.getMessage()), err=True)
        except Exception:  # a broken stderr must not end the run
            self.handleError(record)


def log_to_stderr() -> None:
    """Send the engine's warnings to stderr, one line each. `-q` does not hide them: it
    hides progress, while a warning says something about the output (a damaged input,
    the face a photo gave, a padded size) that the user needs to know.

    The handler sits on the `ghost_engine` logger and replaces one an earlier command in
    this process installed; the root logger is left to the application.
    """
    logger = logging.getLogger("ghost_engine")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrLines)]:
        logger.removeHandler(handler)
    logger.addHandler(_StderrLines(logging.WARNING))
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
