"""What the run-safety tests and the bad-input corpus check after every run: the exit
code, stderr (one line for a refusal, never a traceback), the inputs byte for byte
(SHA-256 before and after), the folder (nothing left beside the output) and any output
(it must decode to the end with PyAV and hold the expected frames)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import av
import pytest

from ghost_engine.cli import main

FAST = ["--generator", "passthrough", "--detector", "dlib", "--recognizer", "dlib"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`ghost-engine ARGV` in this process: (exit code, stderr)."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
    else:  # main always exits
        code = -1
    return int(code) if isinstance(code, int) else 1, capsys.readouterr().err


def refusal_lines(err: str) -> list[str]:
    """The problems with a refusal's stderr (empty when it is one `error: ` line)."""
    problems = []
    lines = err.splitlines()
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines: {err!r}")
    if "Traceback" in err:
        problems.append("a traceback")
    if lines and not lines[0].startswith("error: "):
        problems.append(f"not an error line: {lines[0]!r}")
    return problems


def assert_refused(code: int, err: str, want_code: int, fragment: str) -> None:
    """Exit code, one line, and the words that say what went wrong."""
    assert code == want_code, err
    assert not refusal_lines(err), err
    assert fragment in err, err


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every regular file under `folder` (links not followed), by relative path."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def listing(folder: Path) -> set[str]:
    """Every entry under `folder`, hidden ones included, as relative paths."""
    out = set()
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            out.add(str((Path(root) / name).relative_to(folder)))
    return out


def decoded_frames(path: Path) -> int:
    """Frames PyAV decodes from the first video stream, to the end (an error raises)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
