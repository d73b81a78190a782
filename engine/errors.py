"""One exception hierarchy for everything the engine reports to users.

Each class also subclasses the matching built-in (as PyAV does), so callers can catch
either ours or the standard one. Messages say what went wrong and what to do.
"""

from __future__ import annotations


class GhostEngineError(Exception):
    """Base of every error the engine raises on purpose; the CLI prints it on one line."""

    exit_code: int = 1


class UserInputError(GhostEngineError, ValueError):
    """An argument, file or setting given by the user cannot be used."""

    exit_code = 2


class InputFileNotFoundError(GhostEngineError, FileNotFoundError):
    """A file the user named does not exist."""

    exit_code = 2


class UnsupportedMediaError(UserInputError):
    """A file is not an image or video the engine can read."""


class NoFaceError(UserInputError):
    """A photo that must contain a face has none."""


class OutputError(GhostEngineError, OSError):
    """The output cannot be written (permissions, full disk, bad path)."""

    exit_code = 3


class CheckpointError(GhostEngineError, ValueError):
    """A checkpoint file is unsafe, unreadable or does not fit the network."""

    exit_code = 4


class ModelMissingError(GhostEngineError, FileNotFoundError):
    """A model file the run needs is not installed; the message names the fixing command."""

    exit_code = 5


class OptionalDependencyError(GhostEngineError, ImportError):
    """An optional extra (CUDA, TensorRT, dlib...) is needed but not installed."""

    exit_code = 6

    @classmethod
    def for_extra(cls, package: str, extra: str, purpose: str) -> OptionalDependencyError:
        return cls(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install 'ghost-engine[{extra}]'"
        )
