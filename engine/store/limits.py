"""How big a model file may be before the store refuses it.

A file whose size is published (or pinned by an earlier verified download) must have
exactly that size; any other file may not exceed a cap for its kind. Downloads stop at the
limit, archive members and offline imports are measured before a byte is copied, so a
hostile mirror or a zip bomb cannot fill the disk.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30

# The cap for files whose size is not known, by kind ("zip" is an upstream pack). The
# largest published files are well under these (glintr100.onnx is 249 MiB).
DEFAULT_CAPS_BYTES = {"pth": 2 * GIB, "onnx": 1 * GIB, "zip": 3 * GIB}


@dataclass(frozen=True)
class SizeLimit:
    """The size one file must have (`expected`) or may not exceed (`cap`)."""

    expected: int | None
    cap: int
    kind: str
    known_as: str = "published"  # where `expected` comes from: "published" or "pinned"

    @property
    def most_bytes(self) -> int:
        """The largest size that can pass: the published size when known, else the cap."""
        return self.expected if self.expected is not None else self.cap

    def problem(self, size: int) -> str | None:
        """Why a file of `size` bytes is refused, or None when it may be used."""
        if self.expected is not None and size != self.expected:
            return f"{size} bytes, but the {self.known_as} file is {self.expected} bytes"
        if size > self.cap:
            return f"{size} bytes, over the {describe_bytes(self.cap)} limit for .{self.kind} files"
        return None

    def overflow(self) -> str:
        """What to say when more bytes arrive than `most_bytes` allows."""
        if self.expected is not None:
            return f"more than the {self.known_as} {self.expected} bytes"
        return f"more than the {describe_bytes(self.cap)} limit for .{self.kind} files"


def describe_bytes(size: int) -> str:
    """'3 GiB', '12.5 MiB' or '900 bytes' for messages."""
    for unit, scale in (("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"
