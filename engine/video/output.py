"""Atomic outputs: write under a temporary name beside the target, rename at the end.

A reader of the output path therefore sees either nothing or a complete file, and an
interrupted run leaves no half-written file there.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from ghost_engine.errors import OutputError

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def check_output_path(path: Path) -> Path:
    """Fail early (before any decoding) if `path` cannot be created."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"output path is a directory: {path}; give a file name", path=path)
    if not parent.exists():
        raise OutputError(f"output folder does not exist: {parent}; create it first", path=parent)
    if not parent.is_dir():
        raise OutputError(f"output folder is not a directory: {parent}", path=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {parent}", path=parent)
    return path


def temp_path_for(path: Path) -> Path:
    """Hidden temporary name in the same folder (same filesystem, so rename is atomic).

    The suffix is kept so FFmpeg picks the muxer from it.
    """
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def work_dir_for(path: Path) -> Path:
    """Folder beside the output holding segments and the resume journal."""
    return path.with_name(f".{path.name}.ghost-work")


def commit(temp: Path, final: Path) -> None:
    """Move a finished temporary file onto the output path atomically."""
    try:
        with temp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, final)
    except OSError as exc:
        raise translate_write_error(exc, final) from exc


def discard(*paths: Path) -> None:
    """Remove temporary files/folders; missing ones are fine."""
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def translate_write_error(exc: OSError, path: Path) -> OutputError:
    """An OSError while writing `path` as an OutputError that says what to do."""
    code = getattr(exc, "errno", None)
    if code in _DISK_FULL:
        return OutputError(
            f"no space left while writing {path} ({os.strerror(code)}); "
            "free disk space or write the output to another folder",
            path=path,
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {path}: permission denied", path=path)
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}", path=path)
