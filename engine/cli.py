"""The `ghost-engine` command line.

Subcommands live in `ghost_engine.commands.*` and are imported only when used, so
`ghost-engine --help` stays fast and a broken optional extra cannot break other commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import signal
import sys
import threading
from types import FrameType

import click

from ghost_engine import __version__
from ghost_engine.errors import GhostEngineError, one_line

_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
_TERMINATED = 128 + signal.SIGTERM

# name -> (module, attribute, one-line help shown before the module is imported)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("ghost_engine.commands.run", "run", "Swap faces in a video or image."),
    "batch": ("ghost_engine.commands.batch", "batch", "Run many swap jobs and report each."),
    "models": ("ghost_engine.commands.models", "models", "List, download and verify models."),
    "export": ("ghost_engine.commands.export", "export", "Export networks to ONNX/TensorRT."),
    "bench": ("ghost_engine.commands.bench", "bench", "Measure throughput per stage."),
    "webcam": ("ghost_engine.commands.webcam", "webcam", "Swap faces live from a camera."),
    "train": ("ghost_engine.commands.train", "train", "Prepare data and train networks."),
    "convert": ("ghost_engine.commands.convert", "convert", "Convert a checkpoint safely."),
    "verify": ("ghost_engine.commands.verify", "verify", "Check a file's C2PA credentials."),
    "ui": ("ghost_engine.commands.ui", "ui", "Serve the preview UI in the browser."),
}


def _available() -> dict[str, tuple[str, str, str]]:
    return {
        name: spec
        for name, spec in _COMMANDS.items()
        if importlib.util.find_spec(spec[0]) is not None
    }


class _Stopped(Exception):
    """Carries a KeyboardInterrupt past click, which would turn it into a bare Abort
    (and print an empty line)."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Stopped(exc) from exc

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


class _TermAsInterrupt:
    """While entered (in the main thread), SIGTERM raises KeyboardInterrupt, so `kill`
    stops a run the way Ctrl-C does: the same message, no partial output, the finished
    segments kept for --resume. A second SIGTERM while the run cleans up is ignored."""

    def __init__(self) -> None:
        self.received = False
        self._installed = False
        self._previous: object = None

    def __enter__(self) -> _TermAsInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received = True
        raise KeyboardInterrupt("terminated (SIGTERM)")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns engine errors into one line and an exit code.

    Every message is one line on stderr: control characters in it (a file name with a
    newline) are escaped, and click's usage errors lose their usage block.
    """
    with _TermAsInterrupt() as term:
        code = _invoke(argv, term)
    sys.exit(code)


def _invoke(argv: list[str] | None, term: _TermAsInterrupt) -> int:
    try:
        cli.main(args=argv, prog_name="ghost-engine", standalone_mode=False)
    except (_Stopped, KeyboardInterrupt) as exc:
        interrupt = exc.interrupt if isinstance(exc, _Stopped) else exc
        # RunInterrupted says what was kept for --resume; a bare interrupt says nothing
        said = str(interrupt) if isinstance(interrupt, GhostEngineError) else "interrupted"
        _say(said)
        return _TERMINATED if term.received else _INTERRUPTED
    except GhostEngineError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except click.exceptions.Abort:
        _say("aborted")
        return _INTERRUPTED
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # no arguments at all: the help, as asked for
        return exc.exit_code
    except click.UsageError as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _say(f"error: {exc.format_message()}{where}")
        return exc.exit_code
    except click.ClickException as exc:
        _say(f"error: {exc.format_message()}")
        return exc.exit_code
    return 0


def _say(message: str) -> None:
    click.echo(one_line(message), err=True)
