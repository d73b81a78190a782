"""Installing model files: download, verify, and the shared hash -> structure -> rename step.

Every route into the cache (download, archive member, offline import) ends in
`install_part`, so all of them get the same checks and the same lock-file rule.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ghost_engine.errors import (
    CheckpointError,
    DownloadError,
    GhostEngineError,
    ModelIntegrityError,
)
from ghost_engine.store.archive import extract_member, find_member, open_checked
from ghost_engine.store.fetch import fetch
from ghost_engine.store.hashing import sha256_file
from ghost_engine.store.manifest import ModelEntry
from ghost_engine.store.records import FileStamp, archive_key
from ghost_engine.store.structure import check_structure

if TYPE_CHECKING:
    from ghost_engine.store.model_store import ModelStore, VerifyResult

INCOMING = ".incoming"


def install_part(
    store: ModelStore, entry: ModelEntry, part: Path, sha256: str, origin: str
) -> VerifyResult:
    """Check a complete `part` (hash, then structure) and move it to its final name.

    A bad file is removed and ModelIntegrityError / CheckpointError raised; a good one is
    pinned in the lock file when its hash was not known yet. Returns the VerifyResult.
    """
    from ghost_engine.store.model_store import VerifyResult

    expected, where = store.expected_sha256(entry)
    if expected is not None and sha256 != expected:
        part.unlink(missing_ok=True)
        raise ModelIntegrityError(entry.name, str(part), expected, sha256, where)
    problem = store.size_limit(entry).problem(part.stat().st_size)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise CheckpointError(
            f"{entry.name}: {origin} gave a file of {problem}, so it is not the published "
            f"file; it was removed. Download it with: ghost-engine models download {entry.name}",
            path=part,
        )
    staged = store.root / INCOMING / entry.file
    staged.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, staged)
    try:
        converted = check_structure(entry, staged)
    except GhostEngineError:
        _remove(staged, staged.with_suffix(".safetensors"))
        raise
    final = store.root / entry.file
    conv_final = None
    if converted is not None:
        conv_final = final.with_suffix(".safetensors")
        os.replace(converted, conv_final)
    os.replace(staged, final)
    pinned = expected is None
    if pinned:
        store.records.pin(entry.name, sha256, final.stat().st_size, origin)
    _stamp(store, entry, final, sha256, conv_final)
    return VerifyResult(entry.name, final, sha256, pinned, conv_final)


def verify_installed(store: ModelStore, name: str) -> VerifyResult:
    """Full check of an installed file: hash against manifest/lock, then structure."""
    from ghost_engine.store.model_store import VerifyResult

    entry = store.entry(name)
    path = store.root / entry.file
    if not path.is_file():
        raise store.missing_error([name])
    conv = path.with_suffix(".safetensors")
    sha = sha256_file(path)
    expected, where = store.expected_sha256(entry)
    if expected is not None and sha != expected:
        _remove(path, conv)
        store.records.set_stamp(name, None)
        raise ModelIntegrityError(name, str(path), expected, sha, where)
    _, old_conv = store.records.stamp(name)
    if conv.is_file() and (old_conv is None or sha256_file(conv) != old_conv.sha256):
        conv.unlink()  # not the copy we made from this file: make it again
    try:
        converted = check_structure(entry, path)
    except GhostEngineError as exc:
        _remove(path, conv)
        store.records.set_stamp(name, None)
        raise CheckpointError(
            f"{exc} The file was removed and will not be used.", path=path
        ) from exc
    pinned = expected is None
    if pinned:
        store.records.pin(name, sha, path.stat().st_size, f"verified {path}")
    _stamp(store, entry, path, sha, converted)
    return VerifyResult(name, path, sha, pinned, converted)


def download_models(store: ModelStore, names: list[str], *, force: bool = False) -> dict[str, Path]:
    """Download the named models in parallel; one error names every failure."""
    for name in names:
        store.entry(name)
    todo = [n for n in dict.fromkeys(names) if force or not store.is_installed(n)]
    results: dict[str, Path] = {n: store.root / store.entry(n).file for n in names}
    failures: dict[str, GhostEngineError] = {}
    with ThreadPoolExecutor(max_workers=store.config.jobs) as pool:
        futures = {n: pool.submit(download_one, store, store.entry(n)) for n in todo}
        for name, future in futures.items():
            try:
                results[name] = future.result().path
            except GhostEngineError as exc:
                failures[name] = exc
    if len(failures) == 1:
        raise next(iter(failures.values()))
    if failures:
        detail = " | ".join(f"{n}: {exc}" for n, exc in failures.items())
        raise DownloadError(f"{len(failures)} model downloads failed: {detail}")
    return results


def download_one(store: ModelStore, entry: ModelEntry) -> VerifyResult:
    """Fetch one entry (or its archive), verify it and install it."""
    store.root.mkdir(parents=True, exist_ok=True)
    label = entry.download_file
    try:
        if entry.archive is None:
            part = store.root / f"{entry.file}.part"
            got = fetch(
                store.urls(entry),
                part,
                label=label,
                config=store.config,
                progress=store.progress,
                limit=store.size_limit(entry),
            )
            result = install_part(store, entry, part, got.sha256, got.url)
        else:
            result = _download_from_archive(store, entry)
    except GhostEngineError:
        store.progress.finish(label, "failed")
        raise
    store.progress.finish(label, f"verified, installed as {result.path}")
    return result


def _download_from_archive(store: ModelStore, entry: ModelEntry) -> VerifyResult:
    archive = entry.archive
    assert archive is not None  # only called for archive members
    key = archive_key(archive.file)
    part = store.root / f"{archive.file}.part"
    got = fetch(
        store.urls(entry),
        part,
        label=archive.file,
        config=store.config,
        progress=store.progress,
        limit=store.archive_limit(entry),
    )
    expected: str | None
    if archive.sha256 is not None:
        expected, where = archive.sha256, f"the manifest, for {archive.file}"
    else:
        expected, where = store.records.pinned(key), f"the lock file, for {archive.file}"
    if expected is not None and got.sha256 != expected:
        part.unlink(missing_ok=True)
        raise ModelIntegrityError(entry.name, str(part), expected, got.sha256, where)
    member_part = store.root / f"{entry.file}.part"
    try:
        with open_checked(part) as zf:
            info = find_member(zf, archive.member)
            if info is None:
                raise DownloadError(
                    f"{archive.file} from {got.url} has no member {archive.member!r}; "
                    f"the upstream pack changed. Import the file with 'ghost-engine models "
                    f"import PATH' instead",
                    path=part,
                )
            extract_member(zf, info, member_part, store.size_limit(entry))
        result = install_part(store, entry, member_part, sha256_file(member_part), got.url)
    finally:
        part.unlink(missing_ok=True)  # the archive is only a carrier; never keep a bad one
        member_part.unlink(missing_ok=True)  # moved away when installed; else a reject
    if expected is None:
        store.records.pin(key, got.sha256, got.size, got.url)
    return result


def _stamp(
    store: ModelStore, entry: ModelEntry, path: Path, sha: str, converted: Path | None
) -> None:
    conv_stamp = FileStamp.of(converted, sha256_file(converted)) if converted else None
    store.records.set_stamp(entry.name, FileStamp.of(path, sha), conv_stamp)


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
