"""The `ghost-engine` command line.

Subcommands live in `ghost_engine.commands.*` and are imported only when used, so
`ghost-engine --help` stays fast and a broken optional extra cannot break other commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from ghost_engine import __version__
from ghost_engine.errors import GhostEngineError

# name -> (module, attribute, one-line help shown before the module is imported)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("ghost_engine.commands.run", "run", "Swap faces in a video or image."),
    "models": ("ghost_engine.commands.models", "models", "List, download and verify models."),
    "export": ("ghost_engine.commands.export", "export", "Export networks to ONNX/TensorRT."),
    "bench": ("ghost_engine.commands.bench", "bench", "Measure throughput per stage."),
    "webcam": ("ghost_engine.commands.webcam", "webcam", "Swap faces live from a camera."),
    "train": ("ghost_engine.commands.train", "train", "Prepare data and train networks."),
    "convert": ("ghost_engine.commands.convert", "convert", "Convert a checkpoint safely."),
}


def _available() -> dict[str, tuple[str, str, str]]:
    return {
        name: spec
        for name, spec in _COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _available().get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in sorted(_available().items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ghost-engine")
def cli() -> None:
    """ghost-engine: fast, streaming one-shot face swapping (GHOST)."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns engine errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="ghost-engine", standalone_mode=False)
    except GhostEngineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
