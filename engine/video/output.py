"""Atomic outputs: write under a temporary name beside the target, rename at the end.

A reader of the output path therefore sees either nothing or a complete file, and an
interrupted run leaves no half-written file there. The engine's own files beside an
output (the temporary file, the work folder, the lock) are named from the output's name
by `own_path`, which keeps them within the file system's name limit however long the
output's name is; temporary files a killed run left behind are removed by the next run
on that output (`remove_stale_partials`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from ghost_engine.errors import OutputError, OutputExistsError, one_line

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
PATH_MAX = 4096
_PID_DIGITS = 10  # room kept for any process id in a temporary name
_HASH_CHARS = 12


def name_limit(folder: Path) -> int:
    """The longest file name (in bytes) the file system of `folder` takes."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def check_output_path(path: Path, what: str = "output", option: str | None = None) -> Path:
    """Fail early (before any decoding) if `path` cannot be created; `what` names the file
    in the messages ("output", "--json file") and `option` is its flag, for the fields."""
    path = Path(path)
    try:
        return _check_output_path(path, what, option)
    except OutputError:
        raise
    except OSError as exc:  # a folder on the way that cannot be looked into
        raise translate_write_error(exc, path) from exc


def _check_output_path(path: Path, what: str, option: str | None) -> Path:
    parent = path.parent if str(path.parent) else Path(".")
    shown = one_line(str(path))
    for part in path.parent.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise OutputError(
                f"a folder name in the {what} path is too long (over {NAME_MAX} bytes): {shown}",
                path=path,
                option=option,
            )
    size = len(os.fsencode(path.name))
    limit = name_limit(parent) if parent.is_dir() else NAME_MAX
    if size > limit:
        raise OutputError(
            f"{what} file name is too long ({size} bytes; this file system allows {limit}); "
            "choose a shorter name",
            path=path,
            option=option,
        )
    if len(os.fsencode(os.path.abspath(path))) >= PATH_MAX:
        raise OutputError(
            f"{what} path is too long (the limit is {PATH_MAX} bytes); choose a shorter one",
            path=path,
            option=option,
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(
                f"{what} {shown} is a symbolic link that loops; remove it or choose another name",
                path=path,
                option=option,
            ) from exc
        if exc.errno not in (errno.ENOTDIR,):
            raise translate_write_error(exc, path) from exc
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(
            f"{what} path is a directory: {shown}; give a file name", path=path, option=option
        )
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"{what} {shown} is not a regular file (a device, pipe or socket), which the "
            "finished file would replace; give a file name",
            path=path,
            option=option,
        )
    if not parent.exists():
        raise OutputError(
            f"{what} folder does not exist: {one_line(str(parent))}; create it first",
            path=parent,
            option=option,
        )
    if not parent.is_dir():
        raise OutputError(
            f"{what} folder is not a directory: {one_line(str(parent))}",
            path=parent,
            option=option,
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"{what} folder is not writable: {one_line(str(parent))}", path=parent, option=option
        )
    return path


def final_path(path: Path) -> Path:
    """Where an output is really written: an existing symbolic link is followed, so the
    run writes the file the link points to (as FFmpeg would) instead of replacing the
    link itself (think of /dev/stdout); a looping link is left for `check_output_path`
    to refuse."""
    path = Path(path)
    if not os.path.islink(path):
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a dangling link: write where it points
        return Path(os.path.realpath(path))
    except OSError:
        return path


def own_path(path: Path, tag: str, *, base: str | None = None, suffix: str = "") -> Path:
    """`.BASE.TAG[SUFFIX]` in `path`'s folder (BASE: the output's file name by default).

    When that would pass the file system's name limit, BASE is cut and a short hash of
    the full output name keeps the name unique to this output (room is kept for a process
    id in `tag`, so every temporary name of one output shares its BASE).
    """
    path = Path(path)
    base = path.name if base is None else base
    limit = name_limit(path.parent if str(path.parent) else Path("."))
    measured = tag.rstrip("0123456789")  # a process id in the tag counts as _PID_DIGITS
    room = limit - len(os.fsencode(f"..{measured}{suffix}")) - _PID_DIGITS
    if len(os.fsencode(base)) > room:
        digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:_HASH_CHARS]
        keep = room - _HASH_CHARS - 1
        while base and len(os.fsencode(base)) > keep:
            base = base[:-1]
        base = f"{base}~{digest}"
    return path.with_name(f".{base}.{tag}{suffix}")


def temp_path_for(path: Path) -> Path:
    """Hidden temporary name in the same folder (same filesystem, so rename is atomic).

    The suffix is kept so FFmpeg picks the muxer from it; the process id tells the next
    run whether the file's writer is still alive.
    """
    path = Path(path)
    return own_path(path, f"partial-{os.getpid()}", base=path.stem, suffix=path.suffix)


def remove_stale_partials(path: Path) -> list[Path]:
    """Remove the temporary files of `path` whose writing process is gone (a run killed
    while it wrote them); the removed paths. Call it holding the output's lock."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    mine = temp_path_for(path).name
    prefix = mine[: mine.rindex(".partial-") + len(".partial-")]
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(path.suffix) + "$")
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or _alive(int(match.group(1))):
            continue
        stale = folder / name
        if stale.is_symlink() or stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or not a pid we can ask about): leave it
    return True


def commit(temp: Path, final: Path, *, replace: bool = True) -> None:
    """Move a finished temporary file onto the output path atomically.

    With `replace=False` a file that appeared at `final` meanwhile is kept
    (OutputExistsError): the move is a hard link, which fails rather than replace, where
    the file system has them.
    """
    try:
        with temp.open("rb+") as fh:
            os.fsync(fh.fileno())
        if replace:
            os.replace(temp, final)
            return
        try:
            os.link(temp, final)
        except FileExistsError as exc:
            raise _exists(final) from exc
        except OSError:  # no hard links here (FAT, some network shares)
            if os.path.lexists(final):
                raise _exists(final) from None
            os.replace(temp, final)
            return
        temp.unlink()
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise translate_write_error(exc, final) from exc


def _exists(path: Path) -> OutputExistsError:
    return OutputExistsError(
        f"output {one_line(str(path))} appeared while the run was writing it; it was left as "
        "it is (add -y/--overwrite to replace it)",
        path=path,
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file (a JSON report) whole or not at all (through a link)."""
    path = final_path(Path(path))
    temp = own_path(path, f"tmp-{os.getpid()}")
    try:
        with temp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except OSError as exc:
        raise translate_write_error(exc, path) from exc
    finally:
        discard(temp)


def discard(*paths: Path) -> None:
    """Remove temporary files; missing ones are fine. Folders are never removed here (the
    work folder goes through `workdir.remove_work_dir`, which checks it is the engine's)."""
    for p in paths:
        if not p.is_dir() or p.is_symlink():
            p.unlink(missing_ok=True)


def translate_write_error(exc: OSError, path: Path) -> OutputError:
    """An OSError while writing `path` as an OutputError that says what to do."""
    code = getattr(exc, "errno", None)
    shown = one_line(str(path))
    if code in _DISK_FULL:
        return OutputError(
            f"no space left while writing {shown} ({os.strerror(code)}); "
            "free disk space or write the output to another folder",
            path=path,
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {shown}: permission denied", path=path)
    if code == errno.ENAMETOOLONG:
        return OutputError(f"cannot write {shown}: the name is too long", path=path)
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {shown}: {one_line(reason)}", path=path)
