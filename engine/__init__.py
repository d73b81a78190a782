"""ghost-engine: streaming one-shot face swapping with the published GHOST networks."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Imported on first use so `import ghost_engine` (and the CLI's --help) stays fast.
_LAZY = {"swap_video": "ghost_engine.api", "swap_image": "ghost_engine.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ghost_engine' has no attribute {name!r}")
