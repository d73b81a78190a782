"""What a resumable run is made of, by content: so a resume never mixes two jobs.

The journal keeps the fingerprint of the run that started it; `--resume` compares it
with the new run's and refuses, naming the first difference, when the target, a source
or reference photo (by SHA-256 of its bytes, not its path), a model file (by its pinned
hash, else size and modification time), or a setting that changes pixels differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def photos_fingerprint(
    people: Sequence[Sequence[Path]], references: Sequence[Path]
) -> dict[str, Any]:
    """Source photos per person and reference photos, by content (None for a file that
    cannot be read: the run refuses it later, with its own message)."""
    return {
        "sources": [[_digest(p) for p in person] for person in people],
        "target_faces": [_digest(p) for p in references],
    }


def _digest(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def first_difference(old: Any, new: Any, where: str = "") -> str | None:
    """The path of the first entry where two fingerprints differ ("swap.generator_blocks",
    "photos.sources[0][1]"), with both values when they are short; None when equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            inner = f"{where}.{key}" if where else str(key)
            if key not in old or key not in new:
                return inner
            found = first_difference(old[key], new[key], inner)
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return f"{where} ({len(old)} entries before, {len(new)} now)"
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found = first_difference(a, b, f"{where}[{i}]")
            if found is not None:
                return found
        return None
    if old == new:
        return None
    if len(repr(old)) + len(repr(new)) <= 60:
        return f"{where} ({old!r} before, {new!r} now)"
    return where
