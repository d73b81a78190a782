"""Offline installs: file model files obtained elsewhere (a folder, a zip, or one file).

Files are recognised by their manifest file name (or, for archive members, by the
archive's name too, e.g. `buffalo_l.zip` in the folder), copied in through the same
hash -> structure -> rename step as downloads, so an imported file is as trusted as a
downloaded one and unknown hashes get pinned the same way.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ghost_engine.errors import GhostEngineError, InputFileNotFoundError, UserInputError
from ghost_engine.store.archive import extract_member, find_member, open_checked
from ghost_engine.store.hashing import hash_into
from ghost_engine.store.install import install_part

if TYPE_CHECKING:
    from ghost_engine.store.model_store import ModelStore

# A source of one file: copies its bytes to the given path.
_Copier = Callable[[Path], None]


@dataclass
class ImportReport:
    """What an import did, per model name."""

    imported: dict[str, Path] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def import_models(store: ModelStore, source: Path, *, force: bool = False) -> ImportReport:
    """Verify and file every known model found in `source`; bad files are reported."""
    source = Path(source)
    if not source.exists():
        raise InputFileNotFoundError(
            f"{source} does not exist; give a folder, zip or file", path=source
        )
    with _Candidates(source) as candidates:
        report = ImportReport()
        found_any = False
        for name, entry in store.manifest.entries.items():
            copier = candidates.find(entry.file)
            if copier is None and entry.archive is not None:
                copier = candidates.member_of(entry.archive.file, entry.archive.member)
            if copier is None:
                continue
            found_any = True
            if store.is_installed(name) and not force:
                report.already.append(name)
                continue
            try:
                report.imported[name] = _import_one(store, name, copier, source)
            except GhostEngineError as exc:
                report.failed[name] = str(exc)
    if not found_any:
        files = ", ".join(sorted({e.file for e in store.manifest.entries.values()}))
        raise UserInputError(
            f"no model files found in {source}; expected any of: {files}", path=source
        )
    return report


def _import_one(store: ModelStore, name: str, copier: _Copier, source: Path) -> Path:
    entry = store.entry(name)
    store.root.mkdir(parents=True, exist_ok=True)
    part = store.root / f"{entry.file}.part"
    part.unlink(missing_ok=True)
    copier(part)
    h = hashlib.sha256()
    hash_into(h, part)
    return install_part(store, entry, part, h.hexdigest(), f"import from {source}").path


class _Candidates:
    """The files offered by a folder, a zip or a single file, looked up by base name."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._zip: zipfile.ZipFile | None = None
        self._files: dict[str, Path] = {}

    def __enter__(self) -> _Candidates:
        if self.source.is_dir():
            for path in sorted(self.source.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    self._files.setdefault(path.name, path)
        elif zipfile.is_zipfile(self.source):
            self._zip = open_checked(self.source)
        else:
            self._files[self.source.name] = self.source
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def find(self, file_name: str) -> _Copier | None:
        """A copier for the file called `file_name`, if offered."""
        if self._zip is not None:
            info = find_member(self._zip, file_name)
            if info is None:
                return None
            zf = self._zip
            return lambda dest: extract_member(zf, info, dest)
        path = self._files.get(file_name)
        if path is None:
            return None
        return lambda dest: _copy_file(path, dest)

    def member_of(self, archive_name: str, member: str) -> _Copier | None:
        """A copier for `member` inside an offered archive called `archive_name`."""
        path = self._files.get(archive_name)
        if path is None:
            return None

        def copy(dest: Path) -> None:
            with open_checked(path) as zf:
                info = find_member(zf, PurePosixPath(member).name)
                if info is None:
                    raise UserInputError(f"{path} has no member {member!r}", path=path)
                extract_member(zf, info, dest)

        return copy


def _copy_file(src: Path, dest: Path) -> None:
    try:
        shutil.copyfile(src, dest)
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise UserInputError(f"cannot copy {src} into the model cache: {exc}", path=src) from exc
