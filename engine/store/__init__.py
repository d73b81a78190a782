"""Model manager: manifest, cache, trusted downloads, verification, offline import.

Other parts of the engine use `ModelStore(root).path(name)` / `.require(names, ...)`;
the `ghost-engine models` command exposes the rest.
"""

from ghost_engine.errors import DownloadError, ModelIntegrityError, UnsafeArchiveError
from ghost_engine.store.download_progress import Progress
from ghost_engine.store.fetch import DownloadConfig
from ghost_engine.store.importer import ImportReport, import_models
from ghost_engine.store.manifest import Manifest, ModelEntry, load_manifest
from ghost_engine.store.model_store import (
    UNVERIFIED_SOURCE,
    ModelStatus,
    ModelStore,
    VerifyResult,
)
from ghost_engine.store.paths import default_models_dir
from ghost_engine.store.terminal import confirm_on_terminal

__all__ = [
    "UNVERIFIED_SOURCE",
    "DownloadConfig",
    "DownloadError",
    "ImportReport",
    "Manifest",
    "ModelEntry",
    "ModelIntegrityError",
    "ModelStatus",
    "ModelStore",
    "Progress",
    "UnsafeArchiveError",
    "VerifyResult",
    "confirm_on_terminal",
    "default_models_dir",
    "import_models",
    "load_manifest",
]
