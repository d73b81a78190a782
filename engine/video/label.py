"""Mark every output as synthetic in its metadata, so downstream tools can tell.

Videos get a container comment; PNGs a `tEXt` chunk; JPEGs an EXIF ImageDescription.
The byte layouts are written by hand (a few lines each) to avoid an imaging dependency.
"""

from __future__ import annotations

import struct
import zlib

from ghost_engine import __version__

LABEL_KEY = "synthetic"
LABEL_TEXT = (
    f"Synthetic media: faces altered by ghost-engine {__version__} (GHOST face swap). "
    "Not an authentic recording."
)


def video_metadata() -> dict[str, str]:
    """Container tags for a video output (`comment` survives mp4, mov, mkv and webm)."""
    return {"comment": LABEL_TEXT, LABEL_KEY: "true", "encoder_note": LABEL_TEXT}


def is_labelled(metadata: dict[str, str]) -> bool:
    """Whether container metadata carries the label (for tests and inspection)."""
    return any("Synthetic media" in str(v) for v in metadata.values())


def label_png(data: bytes) -> bytes:
    """Insert a `tEXt` chunk (keyword "synthetic") right after IHDR."""
    signature, ihdr_len = data[:8], struct.unpack(">I", data[8:12])[0]
    if signature != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG byte string")
    cut = 8 + 12 + ihdr_len  # signature + IHDR (length, type, data, crc)
    body = b"tEXt" + LABEL_KEY.encode("latin-1") + b"\x00" + LABEL_TEXT.encode("latin-1")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:cut] + chunk + data[cut:]


def read_png_text(data: bytes) -> dict[str, str]:
    """The `tEXt` chunks of a PNG as a dict."""
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"tEXt":
            key, _, value = data[pos + 8 : pos + 8 + length].partition(b"\x00")
            out[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return out


def label_jpeg(data: bytes) -> bytes:
    """Insert an APP1 EXIF segment with ImageDescription after the SOI marker.

    Encoders like OpenCV's write JFIF (APP0) and no EXIF, so adding one is safe.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG byte string")
    text = LABEL_TEXT.encode("ascii") + b"\x00"
    # TIFF header (little endian), one IFD with one entry: 0x010E ImageDescription, ASCII.
    ifd_offset = 8
    value_offset = ifd_offset + 2 + 12 + 4
    tiff = b"II*\x00" + struct.pack("<I", ifd_offset)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x010E, 2, len(text), value_offset)
    tiff += struct.pack("<I", 0) + text
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def read_jpeg_description(data: bytes) -> str | None:
    """The EXIF ImageDescription written by `label_jpeg`, if present."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            tiff = data[pos + 10 : pos + 2 + length]
            count = struct.unpack("<H", tiff[8:10])[0]
            for i in range(count):
                tag, _, n, off = struct.unpack("<HHII", tiff[10 + 12 * i : 22 + 12 * i])
                if tag == 0x010E:
                    return tiff[off : off + n].rstrip(b"\x00").decode("ascii")
        if marker == 0xDA:
            break
        pos += 2 + length
    return None
