"""Errors of the model manager, as subclasses of the engine's hierarchy."""

from __future__ import annotations

from ghost_engine.errors import CheckpointError, GhostEngineError


class DownloadError(GhostEngineError, ConnectionError):
    """A model file could not be fetched from any of its URLs after the retries."""

    exit_code = 5


class ModelIntegrityError(CheckpointError):
    """A model file's SHA-256 does not match the manifest or the lock file.

    The message carries both hashes; the bad file has already been removed.
    """

    def __init__(self, name: str, path: str, expected: str, actual: str, where: str) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        hint = (
            f" If the published file really changed, delete the {name!r} entry from the lock "
            f"file first."
            if "lock file" in where
            else ""
        )
        super().__init__(
            f"{name}: {path} is corrupt or not the published file: SHA-256 {actual}, "
            f"expected {expected} (from {where}). The file was removed and will not be "
            f"used; download it again with: ghost-engine models download {name}.{hint}"
        )


class UnsafeArchiveError(GhostEngineError, ValueError):
    """A zip archive has a member that would land outside the target folder."""

    exit_code = 4
