"""Where the project's shared reference material lives (golden vectors, test media).

Both folders sit beside the checkout as `../shared/...`; environment variables override
them so installed copies and other layouts work too.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """`GHOST_ENGINE_SHARED`, else `../shared` beside the repository."""
    env = os.environ.get("GHOST_ENGINE_SHARED")
    return Path(env) if env else _REPO_ROOT.parent / "shared"


def golden_dir() -> Path:
    """`GHOST_ENGINE_GOLDEN`, else `<shared>/golden`."""
    env = os.environ.get("GHOST_ENGINE_GOLDEN")
    return Path(env) if env else shared_root() / "golden"


def media_dir() -> Path:
    """`GHOST_ENGINE_MEDIA`, else `<shared>/media`."""
    env = os.environ.get("GHOST_ENGINE_MEDIA")
    return Path(env) if env else shared_root() / "media"
