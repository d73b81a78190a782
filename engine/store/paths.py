"""Where the model cache lives."""

from __future__ import annotations

import os
from pathlib import Path


def default_models_dir() -> Path:
    """`$GHOST_ENGINE_HOME/models` if set, else the user cache folder's `models`.

    The cache folder comes from platformdirs (e.g. `~/.cache/ghost-engine` on Linux,
    `~/Library/Caches/ghost-engine` on macOS, `%LOCALAPPDATA%\\ghost-engine\\Cache` on
    Windows).
    """
    home = os.environ.get("GHOST_ENGINE_HOME")
    if home:
        return Path(home).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("ghost-engine", appauthor=False)) / "models"
