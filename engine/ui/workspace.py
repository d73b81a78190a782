"""The UI server's temporary folder: uploads, people thumbnails and run outputs.

Everything the server writes lives under one folder made at start and removed whole at
exit, so uploads never outlast the server; the user's own files are only read.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import threading
from pathlib import Path


class Workspace:
    """`root/uploads` (the browser's uploads), `root/people` (thumbnails written as
    reference photos), `root/runs/N` (one folder per run's output and report)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="ghost-ui-"))
        self.uploads = self.root / "uploads"
        self.people = self.root / "people"
        self.runs = self.root / "runs"
        for folder in (self.uploads, self.people, self.runs):
            folder.mkdir(parents=True, exist_ok=True)
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def new_folder(self, under: Path) -> Path:
        """A fresh, empty numbered folder under `under` (one of this workspace's)."""
        with self._lock:
            folder = under / f"{next(self._count):04d}"
        folder.mkdir(parents=True)
        return folder

    def close(self) -> None:
        """Remove everything the server wrote."""
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
