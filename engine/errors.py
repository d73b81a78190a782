"""One exception hierarchy for everything the engine reports to users.

Each class also subclasses the matching built-in (as PyAV does), so callers can catch
either ours or the standard one. Messages say what went wrong and what to do.
"""

from __future__ import annotations


class GhostEngineError(Exception):
    """Base of every error the engine raises on purpose; the CLI prints it on one line.

    Besides the message, an error carries what it is about as fields, so callers (the
    API, a UI) need not parse text: `path` (the file), `option` (the flag or setting),
    `value` (what was given) and `allowed` (the accepted values). Unset fields are None.
    """

    exit_code: int = 1

    def __init__(
        self,
        message: str = "",
        *,
        path: object | None = None,
        option: str | None = None,
        value: object | None = None,
        allowed: tuple | list | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)
        self.option = option
        self.value = value
        self.allowed = None if allowed is None else tuple(allowed)

    def __str__(self) -> str:
        return self.message if self.message else super().__str__()

    def fields(self) -> dict:
        """The structured fields that are set (for reports and UIs)."""
        names = ("path", "option", "value", "allowed")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


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
            f"used; download it again with: ghost-engine models download {name}.{hint}",
            path=path,
        )


class UnsafeArchiveError(GhostEngineError, ValueError):
    """A zip archive has a member that would land outside the target folder."""

    exit_code = 4


class ExportError(GhostEngineError, RuntimeError):
    """An export step failed (tracing, conversion, checking or engine build).

    The message names the model and the step; parity failures carry the measured error.
    """

    exit_code = 7


class CameraError(GhostEngineError, RuntimeError):
    """The camera failed or went silent; the original error is the cause."""


class UnsupportedGraphError(GhostEngineError, ValueError):
    """The graph uses operators (or attributes) the PyTorch ONNX runner does not implement;
    the caller falls back to ONNX Runtime."""


class NvdecUnavailable(GhostEngineError, RuntimeError):
    """NVDEC cannot give frames equal to the CPU path's for this stream; the text says why
    (the CUDA backend then decodes with PyAV and uploads)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output path already holds a file and the run has no consent to replace it
    (`-y/--overwrite`, or a yes at the terminal's prompt; the API's `overwrite=True`)."""


class OutputBusyError(OutputError, BlockingIOError):
    """Another run holds the output's lock: two runs never write one output at once."""


class DamagedMediaError(UnsupportedMediaError):
    """An input stopped decoding before its end (a decode error, or fewer frames than its
    header lists); the message gives the frames decoded, the frames expected and where."""


class RunInterrupted(GhostEngineError, KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; no partial output was left at the output path.

    It is a `KeyboardInterrupt` (callers that stop on Ctrl-C still do); the message says
    whether finished segments were kept for `--resume`.
    """

    exit_code = 130


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters escaped as `repr` writes them,
    so an error naming a file called "a\\nb.mp4" still prints as one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
