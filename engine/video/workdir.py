"""The work folder beside an output: the finished segments and the resume journal.

It is the engine's own: a marker file is written into it when it is made, and a folder
without the marker is never deleted, emptied or resumed (a user's folder that happens to
carry the name is refused with one line naming it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ghost_engine.errors import OutputError, one_line
from ghost_engine.video.output import own_path, translate_write_error

MARKER_NAME = ".ghost-engine-work"


def work_dir_for(path: Path) -> Path:
    """Folder beside the output holding segments and the resume journal (its name is cut
    and hashed when the output's name is long, see `output.own_path`)."""
    return own_path(Path(path), "ghost-work")


def is_work_dir(folder: Path) -> bool:
    """Whether `folder` is a real folder (not a link) that the engine made."""
    folder = Path(folder)
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER_NAME).is_file()


def check_work_dir(folder: Path) -> None:
    """Refuse a path at the work folder's name that the engine did not make."""
    folder = Path(folder)
    if os.path.lexists(folder) and not is_work_dir(folder):
        raise OutputError(
            f"{one_line(str(folder))} exists but is not a ghost-engine work folder (it has no "
            f"{MARKER_NAME} file), so it is left alone; move or rename it, or choose another "
            "output name",
            path=folder,
        )


def make_work_dir(folder: Path, output: Path) -> None:
    """A fresh work folder for `output` (an earlier one of the engine's is replaced)."""
    folder = Path(folder)
    remove_work_dir(folder)
    try:
        folder.mkdir()
        marker = {"made_by": "ghost-engine", "output": os.fsdecode(Path(output).name)}
        (folder / MARKER_NAME).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    except OSError as exc:
        raise translate_write_error(exc, folder) from exc


def remove_work_dir(folder: Path) -> None:
    """Delete a work folder the engine made; a missing one is fine, any other is refused."""
    folder = Path(folder)
    if not os.path.lexists(folder):
        return
    check_work_dir(folder)
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise OutputError(
            f"cannot remove the work folder {one_line(str(folder))}: {exc.strerror or exc}",
            path=folder,
        ) from exc
