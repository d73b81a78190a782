"""Errors of the export path, in the engine's hierarchy."""

from __future__ import annotations

from ghost_engine.errors import GhostEngineError


class ExportError(GhostEngineError, RuntimeError):
    """An export step failed (tracing, conversion, checking or engine build).

    The message names the model and the step; parity failures carry the measured error.
    """

    exit_code = 7
