"""The checks on every path a run reads and writes, before it starts.

No file the run reads (the target, the source and reference photos, a camera file) may
be written: the output and every side output (`--json`, `--report`) are compared with
each input through any alias (a symbolic or hard link, `..`), by device and inode where
both exist and by resolved path otherwise. An existing output is replaced only with
consent (`overwrite`); side outputs must be creatable and may not be the output either.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import OutputError, OutputExistsError, one_line
from ghost_engine.video.output import check_output_path, final_path

Role = tuple[str, Path]  # ("target", path), ("--json", path)...


@dataclass(frozen=True)
class RunPaths:
    """What one run reads (`inputs`) and writes (`output`, `side_outputs`), each with the
    word or flag that names it in messages."""

    output: Path
    inputs: tuple[Role, ...] = ()
    side_outputs: tuple[Role, ...] = ()
    output_option: str = "-o/--output"


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: same device and inode when both exist (links and
    `..` included), else the same path once every link is resolved."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return _resolved(a) == _resolved(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def output_exists(path: Path) -> bool:
    """Whether something (a file, or even a dangling link) already sits at `path`."""
    return os.path.lexists(path)


def check_run_paths(paths: RunPaths, *, overwrite: bool) -> None:
    """Refuse, before any work: an output or side output that is one of the inputs or one
    another, a side output that cannot be created, and an existing output without
    consent. `check_output_path` is the caller's for the output itself."""
    written = [(paths.output_option, Path(paths.output))]
    for option, side in paths.side_outputs:
        check_output_path(final_path(Path(side)), option, option)
        written.append((option, Path(side)))
    for i, (option, path) in enumerate(written):
        for role, source in paths.inputs:
            if same_file(path, Path(source)):
                raise OutputError(
                    f"{option} {_show(path)} is the {role} {_show(source)}: writing it "
                    "would destroy that input; choose another name",
                    path=path,
                    option=option,
                )
        for other_option, other in written[:i]:
            if same_file(path, other):
                raise OutputError(
                    f"{option} {_show(path)} is also given as {other_option}; give each "
                    "output its own name",
                    path=path,
                    option=option,
                )
    if not overwrite and output_exists(paths.output):
        raise OutputExistsError(
            f"output {_show(paths.output)} already exists; add -y/--overwrite to replace it, "
            "or choose another name",
            path=paths.output,
            option=paths.output_option,
        )


def named_inputs(role: str, paths: Sequence[Path]) -> tuple[Role, ...]:
    """(role, path) pairs for a list of inputs of one kind."""
    return tuple((role, Path(p)) for p in paths)


def _resolved(path: Path) -> str:
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


def _show(path: Path) -> str:
    return one_line(str(path))
