"""Asking before a download, only when a person can answer."""

from __future__ import annotations

import sys


def confirm_on_terminal(question: str) -> bool:
    """Ask `question` (y/N) when stdin and stderr are terminals; otherwise agree.

    Pass it as `ModelStore.require(..., download=True, confirm=confirm_on_terminal)`: an
    interactive `run --download` asks first, a script or CI job that asked for
    `--download` gets it without a prompt.
    """
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    import click

    return click.confirm(question, default=True, err=True)
