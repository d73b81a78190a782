"""`ModelStore`: the one place the engine asks for model files.

A file sits under its final name in the cache only after its SHA-256 matched (the manifest
or the lock file) and its structure check passed; until then it lives as `NAME.part` or in
`.incoming/`. Callers get paths from `path()` / `require()`, which name the exact command
that fixes whatever is missing.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import CheckpointError, ModelMissingError
from ghost_engine.store.download_progress import Progress
from ghost_engine.store.fetch import DownloadConfig
from ghost_engine.store.limits import SizeLimit
from ghost_engine.store.manifest import Manifest, ModelEntry, load_manifest
from ghost_engine.store.paths import default_models_dir
from ghost_engine.store.records import CacheRecords, archive_key

BASE_URL_ENV = "GHOST_ENGINE_MODEL_BASE_URL"
# A manifest of one's own (self-hosted files, where the published hashes do not apply):
# read by every store that is given no manifest, so runs check what `models` commands
# given the same variable installed.
MANIFEST_ENV = "GHOST_ENGINE_MODEL_MANIFEST"
UNVERIFIED_SOURCE = "pinned on first download, unverified source"


@dataclass(frozen=True)
class ModelStatus:
    """What `models list` shows for one entry (cheap: no hashing)."""

    entry: ModelEntry
    path: Path
    present: bool
    verified: bool  # present and unchanged since its last full verification
    size: int | None  # bytes on disk, None when absent
    converted: Path | None  # the verified .safetensors copy, if any


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a full verification of one installed file."""

    name: str
    path: Path
    sha256: str
    pinned: bool  # True when this verification recorded the hash in the lock file
    converted: Path | None


class ModelStore:
    """The model cache: lookup, verification, download and import of model files.

    `root` defaults to `default_models_dir()`. `manifest`, `config`, `base_url` and
    `progress` default to the manifest at `manifest_path` (else at
    `$GHOST_ENGINE_MODEL_MANIFEST`, else the packaged one), `DownloadConfig()`,
    `$GHOST_ENGINE_MODEL_BASE_URL` and a progress reporter on stderr. Safe to share between
    threads for lookups; downloads of the same file must not run twice at once.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        manifest: Manifest | None = None,
        config: DownloadConfig | None = None,
        base_url: str | None = None,
        progress: Progress | None = None,
        manifest_path: Path | None = None,
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_models_dir()
        if manifest is None and manifest_path is None and os.environ.get(MANIFEST_ENV):
            manifest_path = Path(os.environ[MANIFEST_ENV]).expanduser()
        self.manifest = manifest if manifest is not None else load_manifest(manifest_path)
        self.manifest_path = manifest_path
        self.config = config if config is not None else DownloadConfig()
        env_url = os.environ.get(BASE_URL_ENV, "")
        self.base_url = base_url if base_url is not None else (env_url or None)
        self.progress = progress if progress is not None else Progress()
        self.records = CacheRecords(self.root)

    # ---- lookup -------------------------------------------------------------------------

    def entry(self, name: str) -> ModelEntry:
        """The manifest entry `name` (UserInputError listing known names if unknown)."""
        return self.manifest.entry(name)

    def file_path(self, name: str) -> Path:
        """Where `name`'s file lives once installed (whether or not it is there)."""
        return self.root / self.entry(name).file

    def is_installed(self, name: str) -> bool:
        """True when `name`'s file is present under its final name (no hashing)."""
        return self.file_path(name).is_file()

    def path(self, name: str) -> Path:
        """The file to load for `name`: its verified `.safetensors` copy if there is one.

        A file changed since its last verification is verified again first (hash, then
        structure); a corrupt one is removed. One verified against another hash than this
        store expects (installed under another manifest) is refused with CheckpointError
        and left in place. Missing: ModelMissingError naming the command.
        """
        if not self.is_installed(name):
            raise self.missing_error([name])
        stamp, converted = self.records.stamp(name)
        path = self.file_path(name)
        conv_path = path.with_suffix(".safetensors")
        # a converted copy that changed is checked (and remade) with its file
        conv_changed = converted is not None and not converted.matches(conv_path)
        if stamp is None or not stamp.matches(path) or conv_changed:
            from ghost_engine.store.install import verify_installed

            return _preferred(verify_installed(self, name))
        if not self._hash_fits(name, stamp.sha256):
            raise self._other_hash_error(name, stamp.sha256, path)
        return conv_path if converted is not None else path

    def _hash_fits(self, name: str, stamped: str) -> bool:
        """Whether a file stamped with SHA-256 `stamped` has the hash this store expects
        (any hash, where neither the manifest nor the lock file states one)."""
        expected, _ = self.expected_sha256(self.entry(name))
        return expected is None or stamped == expected

    def _other_hash_error(self, name: str, stamped: str, path: Path) -> CheckpointError:
        """The error for a file verified against another hash than this store expects.

        It was installed under another manifest (or lock file): trusting its stamp would
        let a self-hosted file pass where the published hash applies. The file is intact,
        so it is left in place for the manifest it belongs to.
        """
        expected, where = self.expected_sha256(self.entry(name))
        if where == "the manifest":
            where = f"the manifest {self.manifest.source}"
        return CheckpointError(
            f"{name}: {path} was verified as SHA-256 {stamped}, but {where} expects "
            f"{expected}: it was installed under another manifest, so it is not used (it "
            f"was left in place). Use that manifest "
            f"(${MANIFEST_ENV}, or --manifest on 'ghost-engine models'), or replace the "
            f"file with: {self.fix_command([name])} --force",
            path=path,
        )

    def require(
        self,
        names: list[str],
        *,
        download: bool = False,
        confirm: Callable[[str], bool] | None = None,
    ) -> dict[str, Path]:
        """Paths for all `names` at once; one error naming every missing file.

        With `download=True` the missing files are fetched first, after `confirm(question)`
        agrees (when given; a run on a terminal asks the user, elsewhere it may be None).
        """
        for name in names:
            self.entry(name)
        missing = [n for n in names if not self.is_installed(n)]
        if missing:
            if not download:
                raise self.missing_error(missing)
            question = f"Download {self.describe(missing)} into {self.root}?"
            if confirm is not None and not confirm(question):
                raise self.missing_error(missing, declined=True)
            self.download(missing)
        return {name: self.path(name) for name in names}

    def status(self, name: str) -> ModelStatus:
        """Presence and verification state of `name`, without hashing."""
        entry = self.entry(name)
        path = self.root / entry.file
        stamp, converted = self.records.stamp(name)
        present = path.is_file()
        verified = (
            present
            and stamp is not None
            and stamp.matches(path)
            and self._hash_fits(name, stamp.sha256)
        )
        conv_path = path.with_suffix(".safetensors")
        conv_ok = verified and converted is not None and converted.matches(conv_path)
        return ModelStatus(
            entry=entry,
            path=path,
            present=present,
            verified=verified,
            size=path.stat().st_size if present else None,
            converted=conv_path if conv_ok else None,
        )

    def expected_sha256(self, entry: ModelEntry) -> tuple[str | None, str]:
        """The hash a file must have and where it comes from ('manifest' / 'lock file')."""
        if entry.sha256:
            return entry.sha256, "the manifest"
        pinned = self.records.pinned(entry.name)
        return (pinned, f"the lock file {self.records.lock.path}") if pinned else (None, "")

    def hash_origin(self, entry: ModelEntry) -> str:
        """How far `entry`'s file can be trusted, in words for `models list` and `verify`.

        Only a hash stated in the manifest ties the file to its publisher; otherwise the
        first file that passed the structure check was pinned, whoever served it.
        """
        if entry.has_published_hash:
            return "published hash"
        return UNVERIFIED_SOURCE

    def size_limit(self, entry: ModelEntry) -> SizeLimit:
        """How big `entry`'s file may be: its published or pinned size, else the kind's cap."""
        if entry.size is not None:
            return self.config.size_limit(entry.kind, entry.size)
        return self.config.size_limit(entry.kind, self.records.pinned_size(entry.name), "pinned")

    def archive_limit(self, entry: ModelEntry) -> SizeLimit:
        """The same for the archive `entry`'s file is a member of."""
        if entry.archive is None:
            raise ValueError(f"{entry.name} is not an archive member")
        if entry.archive.size is not None:
            return self.config.size_limit("zip", entry.archive.size)
        pinned = self.records.pinned_size(archive_key(entry.archive.file))
        return self.config.size_limit("zip", pinned, "pinned")

    def urls(self, entry: ModelEntry) -> list[str]:
        """Mirror first (`base_url` + file name), then the manifest's URLs in order."""
        urls = list(entry.urls)
        if self.base_url:
            urls.insert(0, self.base_url.rstrip("/") + "/" + entry.download_file)
        return urls

    # ---- actions (implemented in ghost_engine.store.install) -----------------------------

    def download(self, names: list[str], *, force: bool = False) -> dict[str, Path]:
        """Fetch, verify and install `names` in parallel; returns their final paths."""
        from ghost_engine.store.install import download_models

        return download_models(self, names, force=force)

    def verify(self, name: str) -> VerifyResult:
        """Hash and structure-check the installed file of `name` (removed if bad)."""
        from ghost_engine.store.install import verify_installed

        return verify_installed(self, name)

    # ---- messages -----------------------------------------------------------------------

    def describe(self, names: list[str]) -> str:
        """'a (file.pth), b (file.onnx)' for messages."""
        return ", ".join(f"{n} ({self.entry(n).file})" for n in names)

    def fix_command(self, names: list[str]) -> str:
        """The exact command that downloads `names` into this store."""
        parts = ["ghost-engine", "models", "download", *names]
        if self.root != default_models_dir():
            parts += ["--models-dir", str(self.root)]
        if self.manifest_path is not None:
            parts += ["--manifest", str(self.manifest_path)]
        return shlex.join(parts)

    def missing_error(self, names: list[str], *, declined: bool = False) -> ModelMissingError:
        """The error for missing files: which ones, where, and the command that gets them."""
        why = "the download was declined; " if declined else ""
        return ModelMissingError(
            f"missing model files in {self.root}: {self.describe(names)}; {why}get them "
            f"with: {self.fix_command(names)} (offline: ghost-engine models import PATH)",
            path=self.root,
        )


def _preferred(result: VerifyResult) -> Path:
    return result.converted if result.converted is not None else result.path
