"""The pixel limit: a frame larger than `max_pixels` is refused before it is decoded.

A small file can declare a huge image (a "decompression bomb": a 16385 x 16385 PNG is a
few hundred kB and 800 MB decoded), so sizes are read from the header: the stream
parameters for videos (`reader.probe_video`), the first bytes for still images (PNG,
JPEG, BMP, WebP and TIFF, the formats OpenCV decodes for us). The default fits 8K
(7680 x 4320, 33.2 megapixels); `--max-pixels` raises it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from ghost_engine.errors import UnsupportedMediaError, UserInputError, one_line

DEFAULT_MAX_PIXELS = 7680 * 4320
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_SCAN_LIMIT = 16 << 20  # bytes of markers read before giving up on a JPEG's size


def check_max_pixels(max_pixels: int) -> None:
    """The limit itself must be a positive whole number."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise UserInputError(
            f"--max-pixels must be a whole number of at least 1, got {max_pixels!r}",
            option="--max-pixels",
            value=max_pixels,
        )


def check_pixels(width: int, height: int, max_pixels: int, path: Path, what: str) -> None:
    """Refuse a `width` x `height` frame of `what` at `path` above `max_pixels`, or empty."""
    if width < 1 or height < 1:
        raise UnsupportedMediaError(
            f"{what} {one_line(str(path))} declares a {width}x{height} frame; nothing to read",
            path=path,
        )
    if width * height > max_pixels:
        raise UserInputError(
            f"{what} {one_line(str(path))} is {width}x{height} ({_amount(width * height)}), "
            f"above the limit of {_amount(max_pixels)}; add --max-pixels {width * height} "
            "if it is meant",
            path=path,
            option="--max-pixels",
            value=width * height,
        )


def _amount(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 100_000 else f"{pixels} pixels"


def check_image_pixels(path: Path, max_pixels: int, what: str = "image") -> None:
    """Check an image file's declared size; a header this cannot read is left to the
    decoder (which then reports the file as unreadable)."""
    size = image_size(Path(path))
    if size is not None:
        check_pixels(size[0], size[1], max_pixels, Path(path), what)


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, None if the format is not one of the
    header layouts known here or the header is cut short."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return _pair(">II", head, 16)
            if head.startswith(b"\xff\xd8"):
                return _jpeg_size(fh)
            if head.startswith(b"BM"):
                return _bmp_size(head)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp_size(head)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff_size(fh, "<" if head[:2] == b"II" else ">")
    except (OSError, struct.error, ValueError):
        return None
    return None


def _pair(fmt: str, data: bytes, offset: int) -> tuple[int, int] | None:
    if len(data) < offset + struct.calcsize(fmt):
        return None
    width, height = struct.unpack_from(fmt, data, offset)
    return int(width), int(height)


def _jpeg_size(fh: BinaryIO) -> tuple[int, int] | None:
    fh.seek(2)
    while fh.tell() < _JPEG_SCAN_LIMIT:
        byte = fh.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            continue
        marker = fh.read(1)
        while marker == b"\xff":  # fill bytes
            marker = fh.read(1)
        if not marker:
            return None
        code = marker[0]
        if code in (0x01, 0xD8) or 0xD0 <= code <= 0xD7:
            continue  # markers without a length
        if code == 0xD9 or code == 0xDA:
            return None  # end of image, or the scan began without a frame header
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if code in _JPEG_SOF:
            body = fh.read(5)
            if len(body) < 5:
                return None
            height, width = struct.unpack(">xHH", body)
            return int(width), int(height)
        fh.seek(length - 2, 1)
    return None


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 26:
        return None
    header_size = struct.unpack_from("<I", head, 14)[0]
    if header_size == 12:  # BITMAPCOREHEADER
        return _pair("<HH", head, 18)
    size = _pair("<ii", head, 18)
    return None if size is None else (abs(size[0]), abs(size[1]))


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack_from("<HH", head, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = struct.unpack_from("<I", head, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    return None


def _tiff_size(fh: BinaryIO, order: str) -> tuple[int, int] | None:
    fh.seek(4)
    offset = struct.unpack(order + "I", fh.read(4))[0]
    fh.seek(offset)
    count = struct.unpack(order + "H", fh.read(2))[0]
    found: dict[int, int] = {}
    for _ in range(min(count, 512)):
        entry = fh.read(12)
        if len(entry) < 12:
            break
        tag, kind = struct.unpack_from(order + "HH", entry)
        if tag in (256, 257):
            fmt = order + ("H" if kind == 3 else "I")
            found[tag] = struct.unpack_from(fmt, entry, 8)[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None
