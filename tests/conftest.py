"""Shared fixtures: where the golden vectors and real media are, and how to miss them.

Shared material is read in place. Where it is absent a test is skipped with the reason,
except under CI (`CI=true`), which always has it: there a missing folder is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghost_engine.shared_paths import golden_dir, media_dir


def _require(path: Path, what: str, env_var: str) -> Path:
    if path.exists():
        return path
    reason = f"{what} not found at {path} (set {env_var} to its location)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI must have it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def golden() -> Path:
    """Folder of golden vectors (`../shared/golden`)."""
    return _require(golden_dir(), "golden vectors", "GHOST_ENGINE_GOLDEN")


@pytest.fixture(scope="session")
def media() -> Path:
    """Folder of real test media (`../shared/media`)."""
    return _require(media_dir(), "test media", "GHOST_ENGINE_MEDIA")
