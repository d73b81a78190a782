"""Resumable HTTP downloads with retries, back-off and a hash computed while writing.

Bytes go to `<final>.part`; an interrupted download continues from the part's size with an
HTTP Range request. Only the caller renames the part to its final name, after the hash
(and structure) checks, so a final name never holds a partial or unverified file.
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghost_engine import __version__
from ghost_engine.errors import DownloadError, OutputError, UserInputError
from ghost_engine.store.download_progress import Progress
from ghost_engine.store.hashing import hash_into

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


@dataclass(frozen=True)
class DownloadConfig:
    """How hard to try. Tests shrink these so a dead server fails in well under a second."""

    retries: int = 4  # further attempts per URL after the first
    backoff_s: float = 1.0  # wait before the first retry; doubles each time
    backoff_max_s: float = 30.0
    timeout_s: float = 30.0  # connect timeout and longest silence while reading
    jobs: int = 3  # files downloaded in parallel
    chunk_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        # The first setting out of range, named by its `models download` flag.
        for option, value, bad in (
            ("--retries", self.retries, self.retries < 0),
            ("--jobs", self.jobs, self.jobs < 1),
            ("--timeout", self.timeout_s, self.timeout_s <= 0),
            ("backoff_s", self.backoff_s, self.backoff_s < 0),
        ):
            if bad:
                raise UserInputError(
                    f"invalid download settings: {self}", option=option, value=value
                )


@dataclass(frozen=True)
class Fetched:
    """A complete download sitting at `part` (not yet under its final name)."""

    part: Path
    sha256: str
    size: int
    url: str


class _Retry(Exception):
    """This attempt failed in a way another attempt may fix."""


class _NextUrl(Exception):
    """This URL will not work (404, 403...); try the next mirror."""


def fetch(
    urls: list[str],
    part: Path,
    *,
    label: str,
    config: DownloadConfig,
    progress: Progress,
    expected_size: int | None = None,
) -> Fetched:
    """Download to `part` from the first URL that works, resuming and retrying.

    Raises DownloadError naming every URL and its last failure when all of them fail; the
    part file is kept so a later call resumes it.
    """
    if not urls:
        raise DownloadError(
            f"{label} has no download URL; set GHOST_ENGINE_MODEL_BASE_URL to a mirror or "
            f"use 'ghost-engine models import PATH' with a copy obtained elsewhere",
            path=part,
        )
    part.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        for attempt in range(config.retries + 1):
            try:
                sha, size = _attempt(url, part, label, config, progress, expected_size)
                return Fetched(part=part, sha256=sha, size=size, url=url)
            except _NextUrl as exc:
                failures.append(f"{url}: {exc}")
                break
            except _Retry as exc:
                if attempt == config.retries:
                    failures.append(f"{url}: {exc} (after {attempt + 1} attempts)")
                    break
                wait = min(config.backoff_s * 2**attempt, config.backoff_max_s)
                progress.note(f"{label}: {exc}; retrying in {wait:.1f} s")
                time.sleep(wait)
    raise DownloadError(
        f"could not download {label}: " + "; ".join(failures) + ". Check the network, set "
        "GHOST_ENGINE_MODEL_BASE_URL to a mirror, or fetch the file elsewhere and run "
        "'ghost-engine models import PATH'"
    )


def _attempt(
    url: str,
    part: Path,
    label: str,
    config: DownloadConfig,
    progress: Progress,
    expected_size: int | None,
) -> tuple[str, int]:
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have > expected_size:
        part.unlink()
        have = 0
    hasher = hashlib.sha256()
    if have:
        hash_into(hasher, part)
    if expected_size is not None and have == expected_size:
        return hasher.hexdigest(), have
    headers = {"User-Agent": f"ghost-engine/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=config.timeout_s
        )
    except urllib.error.HTTPError as exc:
        return _http_error(exc, part, have, hasher)
    except _NETWORK_ERRORS as exc:
        raise _Retry(_reason(exc)) from exc
    with response:
        if not _range_starts_at(response, have):
            part.unlink(missing_ok=True)  # the server ignored the range: start over
            have, hasher = 0, hashlib.sha256()
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else expected_size
        progress.start(label, total, have, url)
        size = _copy(response, part, hasher, have, label, config, progress)
    if total is not None and size != total:
        raise _Retry(f"connection closed after {size} of {total} bytes")
    return hasher.hexdigest(), size


def _copy(
    response: http.client.HTTPResponse,
    part: Path,
    hasher: Any,
    have: int,
    label: str,
    config: DownloadConfig,
    progress: Progress,
) -> int:
    """Append the response body to `part`, hashing as it goes; returns the part's size."""
    size = have
    try:
        out = open(part, "ab")
    except OSError as exc:
        raise OutputError(f"cannot write {part}: {exc}", path=part) from exc
    with out:
        while True:
            try:
                block = response.read(config.chunk_bytes)
            except _NETWORK_ERRORS as exc:
                raise _Retry(_reason(exc)) from exc
            if not block:
                return size
            try:
                out.write(block)
            except OSError as exc:
                raise OutputError(f"cannot write {part}: {exc}", path=part) from exc
            hasher.update(block)
            size += len(block)
            progress.advance(label, len(block))


def _range_starts_at(response: http.client.HTTPResponse, have: int) -> bool:
    """For a 206 answer, check the server resumed exactly where the part ends."""
    if response.status != 206:
        return have == 0
    content_range = response.headers.get("Content-Range", "")
    try:
        start = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return False
    return start == have


def _http_error(exc: urllib.error.HTTPError, part: Path, have: int, hasher: Any) -> tuple[str, int]:
    exc.close()
    if exc.code == 416 and have:
        total = exc.headers.get("Content-Range", "").rpartition("/")[2]
        if total.isdigit() and int(total) == have:
            return hasher.hexdigest(), have  # the part was already complete
        part.unlink(missing_ok=True)
        raise _Retry("the server refused to resume; starting over")
    if exc.code in _RETRY_STATUS:
        raise _Retry(f"HTTP {exc.code} {exc.reason}")
    raise _NextUrl(f"HTTP {exc.code} {exc.reason}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return f"network error: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the server"
    return f"{type(exc).__name__}: {exc}"
