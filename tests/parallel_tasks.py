"""Task functions for the scheduler tests: module level, so spawned workers import them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ghost_engine.errors import NoFaceError


def square(x: int, *, progress) -> int:
    progress(1)
    return x * x


def fails_once(marker: str, *, progress) -> str:
    """Raises the first time (a marker file remembers), succeeds the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise RuntimeError("a passing failure")
    return "second time lucky"


def dies_once(marker: str, *, progress) -> int:
    """Kills its own worker process the first time, returns its pid the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def no_face(*, progress) -> None:
    raise NoFaceError("no face found in photo.jpg; use a photo with one clear face")


def always_fails(*, progress) -> None:
    raise RuntimeError("broken every time")
