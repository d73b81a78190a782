"""Offline installs: file model files obtained elsewhere (a folder, a zip, or one file).

Files are recognised by their manifest file name (or, for archive members, by the
archive's name too, e.g. `buffalo_l.zip` in the folder), copied in through the same
hash -> structure -> rename step as downloads, so an imported file is as trusted as a
downloaded one and unknown hashes get pinned the same way.

The source is only ever read. Anything that is not a regular file or a folder (a FIFO, a
socket, a device) is refused before it is opened, since reading one can block forever or
never end; and each offered file's size is checked against its limit before a byte is
copied.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ghost_engine.errors import (
    CheckpointError,
    GhostEngineError,
    InputFileNotFoundError,
    UserInputError,
)
from ghost_engine.networks.checkpoint import special_file_kind
from ghost_engine.store.archive import check_member_size, extract_member, find_member, open_checked
from ghost_engine.store.hashing import hash_into
from ghost_engine.store.install import install_part
from ghost_engine.store.limits import SizeLimit
from ghost_engine.store.manifest import ModelEntry

if TYPE_CHECKING:
    from ghost_engine.store.model_store import ModelStore

# torch.save writes a zip archive: a file with these suffixes is one checkpoint, not a pack.
_TORCH_SUFFIXES = (".pth", ".pt")


@dataclass
class ImportReport:
    """What an import did, per model name."""

    imported: dict[str, Path] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Offer:
    """One file the source offers: a size check to pass before anything is copied (on the
    file's size, or a zip member's declared size) and how to copy it."""

    check: Callable[[SizeLimit], None]
    copy: Callable[[Path, SizeLimit], None]


def import_models(store: ModelStore, source: Path, *, force: bool = False) -> ImportReport:
    """Verify and file every known model found in `source`; bad files are reported."""
    source = Path(source)
    _refuse_special(source)
    with _Candidates(source) as candidates:
        report = ImportReport()
        found_any = False
        for name, entry in store.manifest.entries.items():
            try:
                offer = candidates.offer(entry)
            except GhostEngineError as exc:
                found_any = True
                report.failed[name] = str(exc)
                continue
            if offer is None:
                continue
            found_any = True
            if store.is_installed(name) and not force:
                report.already.append(name)
                continue
            try:
                report.imported[name] = _import_one(store, entry, offer, source)
            except GhostEngineError as exc:
                report.failed[name] = str(exc)
    if not found_any:
        files = ", ".join(sorted({e.file for e in store.manifest.entries.values()}))
        raise UserInputError(
            f"no model files found in {source}; expected any of: {files}", path=source
        )
    return report


def _refuse_special(source: Path) -> None:
    """Refuse a missing source, or one that is neither a regular file nor a folder,
    looking only at its metadata (opening a FIFO would wait for a writer)."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        raise InputFileNotFoundError(
            f"{source} does not exist; give a folder, zip or file", path=source
        ) from None
    except OSError as exc:
        raise UserInputError(f"cannot read {source}: {exc}", path=source) from exc
    kind = special_file_kind(mode)
    if kind is not None:
        raise UserInputError(
            f"{source} is {kind}, not a file or folder; nothing was read from it. Give a "
            f"folder, a zip or a model file",
            path=source,
        )


def _import_one(store: ModelStore, entry: ModelEntry, offer: _Offer, source: Path) -> Path:
    limit = store.size_limit(entry)
    offer.check(limit)
    store.root.mkdir(parents=True, exist_ok=True)
    part = store.root / f"{entry.file}.part"
    part.unlink(missing_ok=True)
    offer.copy(part, limit)
    h = hashlib.sha256()
    hash_into(h, part)
    return install_part(store, entry, part, h.hexdigest(), f"import from {source}").path


class _Candidates:
    """The files offered by a folder, a zip or a single file, looked up by base name."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self._zip: zipfile.ZipFile | None = None
        self._files: dict[str, Path] = {}
        self._opened: list[zipfile.ZipFile] = []

    def __enter__(self) -> _Candidates:
        if self.source.is_dir():
            for path in sorted(self.source.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    self._files.setdefault(path.name, path)
        elif self.source.suffix.lower() not in _TORCH_SUFFIXES and zipfile.is_zipfile(self.source):
            self._zip = open_checked(self.source)
            self._opened.append(self._zip)
        else:
            self._files[self.source.name] = self.source
        return self

    def __exit__(self, *exc: object) -> None:
        for archive in self._opened:
            archive.close()

    def offer(self, entry: ModelEntry) -> _Offer | None:
        """`entry`'s file if the source offers it (directly or inside its archive)."""
        found = self._find(entry.file)
        if found is None and entry.archive is not None:
            found = self._member_of(entry.archive.file, entry.archive.member)
        return found

    def _find(self, file_name: str) -> _Offer | None:
        if self._zip is not None:
            return _member_offer(self._zip, file_name)
        path = self._files.get(file_name)
        return None if path is None else _file_offer(path)

    def _member_of(self, archive_name: str, member: str) -> _Offer | None:
        path = self._files.get(archive_name)
        if path is None:
            return None
        archive = open_checked(path)
        self._opened.append(archive)
        found = _member_offer(archive, PurePosixPath(member).name)
        if found is None:
            raise UserInputError(f"{path} has no member {member!r}", path=path)
        return found


def _member_offer(archive: zipfile.ZipFile, name: str) -> _Offer | None:
    info = find_member(archive, name)
    if info is None:
        return None
    return _Offer(
        check=lambda limit: check_member_size(archive, info, limit),
        copy=lambda dest, limit: extract_member(archive, info, dest, limit),
    )


def _file_offer(path: Path) -> _Offer:
    def check(limit: SizeLimit) -> None:
        problem = limit.problem(path.stat().st_size)
        if problem is not None:
            raise CheckpointError(
                f"{path} is {problem}, so it is not the published file; nothing was copied",
                path=path,
            )

    # install_part measures the copy again, so a file that grew meanwhile is caught too.
    return _Offer(check=check, copy=lambda dest, limit: _copy_file(path, dest))


def _copy_file(src: Path, dest: Path) -> None:
    try:
        shutil.copyfile(src, dest)
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise UserInputError(f"cannot copy {src} into the model cache: {exc}", path=src) from exc
