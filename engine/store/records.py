"""The two small JSON records kept in the model cache.

- `models.lock.json`: the SHA-256 pinned for each model (and archive) whose manifest entry
  has no hash yet; the first verified download writes it and later ones must match. It is
  meant to be kept (and may be copied to other machines to pin the same files).
- `.verified.json`: a stamp per verified file (hash, size, modification time) so a later
  run can trust an unchanged file without hashing hundreds of megabytes again.

Both are rewritten atomically (temporary file + rename) under a lock, because parallel
downloads finish in worker threads.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import UserInputError

LOCK_FILE = "models.lock.json"
STAMP_FILE = ".verified.json"


def archive_key(archive_file: str) -> str:
    """The lock-file key under which an upstream archive (e.g. buffalo_l.zip) is pinned."""
    return f"archive:{archive_file}"


class JsonRecord:
    """A dict persisted as one JSON file; thread-safe, atomic writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict:
        """The whole record ({} when the file does not exist)."""
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserInputError(
                f"{self.path} is unreadable ({exc}); fix or delete it and run "
                f"'ghost-engine models verify' again",
                path=self.path,
            ) from exc
        if not isinstance(data, dict):
            raise UserInputError(
                f"{self.path} must hold a JSON object; fix or delete it", path=self.path
            )
        return data

    def get(self, key: str) -> dict | None:
        """One entry, or None when there is none (absence is a normal state here)."""
        value = self.read().get(key)
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict | None) -> None:
        """Set (or with None, delete) one entry and rewrite the file atomically."""
        with self._lock:
            data = self.read()
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", "utf-8")
            os.replace(tmp, self.path)


@dataclass(frozen=True)
class FileStamp:
    """What a file looked like when it was last verified."""

    sha256: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path, sha256: str) -> FileStamp:
        """The stamp of `path` now, for a file whose hash was just computed."""
        st = path.stat()
        return cls(sha256=sha256, size=st.st_size, mtime_ns=st.st_mtime_ns)

    def matches(self, path: Path) -> bool:
        """True when `path` still has the stamped size and modification time."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns

    def to_json(self) -> dict:
        """The JSON form stored in `.verified.json`."""
        return {"sha256": self.sha256, "size": self.size, "mtime_ns": self.mtime_ns}

    @classmethod
    def from_json(cls, raw: dict | None) -> FileStamp | None:
        """Inverse of `to_json`; None when nothing was stamped."""
        if not raw:
            return None
        return cls(sha256=raw["sha256"], size=int(raw["size"]), mtime_ns=int(raw["mtime_ns"]))


class CacheRecords:
    """The lock file (pinned hashes) and the verification stamps of one cache folder."""

    def __init__(self, root: Path) -> None:
        self.lock = JsonRecord(root / LOCK_FILE)
        self.stamps = JsonRecord(root / STAMP_FILE)

    def pinned(self, key: str) -> str | None:
        """The SHA-256 pinned for `key` (a model name or 'archive:<file>'), if any."""
        entry = self.lock.get(key)
        return entry["sha256"] if entry else None

    def pinned_size(self, key: str) -> int | None:
        """The size recorded with `key`'s pin, if any."""
        entry = self.lock.get(key)
        size = entry.get("size") if entry else None
        return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None

    def pin(self, key: str, sha256: str, size: int, source: str) -> None:
        """Record the hash of a first verified download of `key`."""
        self.lock.put(
            key,
            {
                "sha256": sha256,
                "size": size,
                "source": source,
                "pinned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )

    def stamp(self, name: str) -> tuple[FileStamp | None, FileStamp | None]:
        """The stamps of model `name`'s file and of its converted safetensors, if any."""
        raw = self.stamps.get(name) or {}
        return FileStamp.from_json(raw.get("file")), FileStamp.from_json(raw.get("converted"))

    def set_stamp(
        self, name: str, file: FileStamp | None, converted: FileStamp | None = None
    ) -> None:
        """Store (or with file=None, forget) the verification stamps of model `name`."""
        if file is None:
            self.stamps.put(name, None)
            return
        value = {"file": file.to_json()}
        if converted is not None:
            value["converted"] = converted.to_json()
        self.stamps.put(name, value)
