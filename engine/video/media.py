"""Tell images from videos by their content and open inputs with clear errors.

Users name files however they like (`clip.dat`, a PNG called `.jpg`), so the kind of a
target is read from its first bytes and, failing that, from what FFmpeg finds in it.
"""

from __future__ import annotations

import enum
import os
import stat
from pathlib import Path

import av

from ghost_engine.errors import (
    InputFileNotFoundError,
    UnsupportedMediaError,
    UserInputError,
    one_line,
)

# Still-image signatures OpenCV decodes; animated formats (GIF) go through FFmpeg as video.
_IMAGE_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"\xff\xd8\xff"),
    (0, b"BM"),
    (0, b"II*\x00"),
    (0, b"MM\x00*"),
    (8, b"WEBP"),
)


class MediaKind(enum.Enum):
    IMAGE = "image"
    VIDEO = "video"


def check_readable(path: Path, what: str = "input") -> Path:
    """Return `path` if it is an existing readable file, else raise a one-line error."""
    path = Path(path)
    shown = one_line(str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileNotFoundError(f"{what} file not found: {shown}", path=path) from None
    except OSError as exc:
        raise UserInputError(
            f"cannot read {what} file {shown}: {exc.strerror or exc}", path=path
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise UserInputError(f"{what} is not a regular file: {shown}", path=path)
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise UserInputError(
            f"cannot read {what} file {shown}: {exc.strerror or exc}", path=path
        ) from exc
    return path


def detect_kind(path: Path) -> MediaKind:
    """Image or video, from the file's bytes (not its extension); raise if neither."""
    path = check_readable(path, "target")
    with path.open("rb") as fh:
        head = fh.read(16)
    if not head:
        raise UnsupportedMediaError(f"target file is empty: {one_line(str(path))}", path=path)
    if any(head[off : off + len(magic)] == magic for off, magic in _IMAGE_MAGIC):
        return MediaKind.IMAGE
    with open_input(path) as container:
        if not container.streams.video:
            raise UnsupportedMediaError(
                f"{path} has no video stream (streams: {_stream_kinds(container)}); "
                "give a video or an image as the target",
                path=path,
            )
    return MediaKind.VIDEO


def open_input(path: Path) -> av.container.InputContainer:
    """`av.open` for reading, with FFmpeg's errors turned into the engine's."""
    path = check_readable(path)
    try:
        return av.open(str(path), mode="r")
    except av.error.InvalidDataError as exc:
        raise UnsupportedMediaError(
            f"{one_line(str(path))} is not an image or video FFmpeg can read (invalid data; "
            "a video may also be damaged or cut short)",
            path=path,
        ) from exc
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UnsupportedMediaError(
            f"cannot open {path} as media ({reason}); the file may be truncated or damaged",
            path=path,
        ) from exc


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's reason for an error without the call it came from ("Invalid data found
    when processing input", not the function and its arguments), on one line."""
    text = getattr(exc, "strerror", None) or str(exc)
    return one_line(text.split(":")[0].strip() or type(exc).__name__)


def _stream_kinds(container: av.container.InputContainer) -> str:
    kinds = [s.type for s in container.streams]
    return ", ".join(kinds) if kinds else "none"
