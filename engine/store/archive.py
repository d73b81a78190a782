"""Safe reading of zip archives (upstream packs and offline imports).

An archive is refused as a whole if any member name is absolute, has a drive letter,
climbs out with `..`, or is a symbolic link: such a file is either broken or hostile, and
nothing from it is trusted. Members are streamed to a file we name, never extracted to a
path taken from the archive, and only after the size the member declares passed its
limit (the published size, or the cap for its kind), so a zip bomb writes nothing.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ghost_engine.errors import OutputError, UnsafeArchiveError, UserInputError
from ghost_engine.store.limits import SizeLimit


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' path that leaves the target folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def open_checked(path: Path) -> zipfile.ZipFile:
    """Open `path` as a zip and refuse it if any member is unsafe."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserInputError(f"{path} is not a readable zip archive: {exc}", path=path) from exc
    for info in archive.infolist():
        reason = _unsafe_reason(info)
        if reason is not None:
            archive.close()
            raise UnsafeArchiveError(
                f"refusing {path}: member {info.filename!r} is {reason}; nothing was "
                f"extracted. Get the archive from its official source",
                path=path,
            )
    return archive


def find_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo | None:
    """The member called `name` at any depth (file members only), or None if absent.

    Upstream packs differ in whether files sit at the top or in a folder, so the base name
    decides; two members with that base name make the choice ambiguous and are refused.
    """
    hits = [
        info
        for info in archive.infolist()
        if not info.is_dir() and PurePosixPath(info.filename.replace("\\", "/")).name == name
    ]
    if len(hits) > 1:
        raise UserInputError(
            f"{archive.filename} holds {len(hits)} files named {name!r} "
            f"({', '.join(h.filename for h in hits)}); import them from a folder instead",
            path=archive.filename,
        )
    return hits[0] if hits else None


def check_member_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: SizeLimit) -> None:
    """Refuse `info` when the size it declares breaks `limit`; reads no member data."""
    problem = limit.problem(info.file_size)
    if problem is not None:
        raise UnsafeArchiveError(
            f"refusing {archive.filename}: member {info.filename!r} declares {problem}; "
            f"nothing was extracted. Get the archive from its official source",
            path=archive.filename,
        )


def extract_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limit: SizeLimit
) -> None:
    """Stream one member into `dest` (a path we chose) once its declared size passed `limit`.

    The stream stops at the declared size (zipfile enforces it and the CRC check fails on a
    member that lied about it); the byte count here is a second guard.
    """
    check_member_size(archive, info, limit)
    written = 0
    try:
        with archive.open(info) as src, open(dest, "wb") as out:
            while block := src.read(1 << 20):
                written += len(block)
                if written > info.file_size:
                    raise UnsafeArchiveError(
                        f"refusing {archive.filename}: member {info.filename!r} holds more "
                        f"than the {info.file_size} bytes it declares; nothing was kept",
                        path=archive.filename,
                    )
                out.write(block)
    except UnsafeArchiveError:
        dest.unlink(missing_ok=True)
        raise
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression.
        dest.unlink(missing_ok=True)
        raise UserInputError(
            f"{archive.filename}: member {info.filename} is damaged: {exc}",
            path=archive.filename,
        ) from exc
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise OutputError(f"cannot write {dest}: {exc}", path=dest) from exc
