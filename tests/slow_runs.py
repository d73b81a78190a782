"""CLI runs in child processes that take their time (the run-safety tests and the
bad-input corpus stop, signal and race them): start one, wait on it, count the segments
its journal records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ghost_engine.video.journal import JOURNAL_NAME

TESTS = Path(__file__).resolve().parent

# A CLI run in a child process whose face stage is a slow marker stage (the face models
# are not what these tests are about): argv after the script are the CLI's.
_SLOW_CLI = """
import sys
import ghost_engine.api
from test_video_fixtures import MarkStage
ghost_engine.api.build_swap_stage = lambda *a, **k: MarkStage(delay=2, sleep_s=0.02)
from ghost_engine.cli import main
main(sys.argv[1:])
"""


def slow_cli_child(argv: list[str], cwd: Path | None = None) -> subprocess.Popen:
    """`ghost-engine ARGV` in a child process (in `cwd`) with a slow marker face stage;
    its stderr is a text pipe."""
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    return subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, *argv],
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Callable[[], object], timeout_s: float = 60.0) -> bool:
    """Poll `condition` every 20 ms until it holds or `timeout_s` passes: whether it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def segments_done(work: Path) -> int:
    """Segments the journal in the work folder `work` records (0 while it is unreadable)."""
    try:
        return len(json.loads((work / JOURNAL_NAME).read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0
