"""The generator's ONNX file for ONNX Runtime, exported once per weights.

It is kept in the model folder under `onnx/`, named by the weights' fingerprint, so a
changed checkpoint exports afresh and later runs start at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ghost_engine.export.exporter import ExportRequest, export_model

log = logging.getLogger(__name__)


def weights_fingerprint(checkpoint: Path | None) -> str:
    """'random' for fill-rule weights, else a hash of the file's name, size and mtime.

    Cheap on purpose (a 740 MB checkpoint is not re-hashed on every run); the model store
    has already verified the file's content.
    """
    if checkpoint is None:
        return "random"
    stat = Path(checkpoint).stat()
    key = f"{Path(checkpoint).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cached_onnx(name: str, checkpoint: Path | None, cache_dir: Path) -> Path:
    """The fp32 ONNX of network `name` with these weights, exported on first use."""
    target = cache_dir / f"{name}.{weights_fingerprint(checkpoint)}.fp32.onnx"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.warning("exporting %s to ONNX Runtime once (%s); later runs reuse it", name, target)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp:
        result = export_model(
            ExportRequest(
                model=name,
                out_dir=Path(tmp),
                checkpoint=checkpoint,
                random_weights=checkpoint is None,
                check=False,
            )
        )
        produced = result.onnx_files["fp32"]
        staged = Path(tmp) / "staged.onnx"
        shutil.move(produced, staged)
        os.replace(staged, target)
    return target
