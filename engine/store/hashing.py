"""SHA-256 of files, read in blocks so memory stays flat for multi-GB checkpoints."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def hash_into(hasher: Any, path: Path) -> int:
    """Feed the bytes of `path` into `hasher`; returns how many bytes were read."""
    total = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            hasher.update(block)
            total += len(block)
    return total


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of `path`."""
    h = hashlib.sha256()
    hash_into(h, path)
    return h.hexdigest()
