"""Resumable HTTP downloads with retries, back-off and a hash computed while writing.

Bytes go to `<final>.part`; an interrupted download continues from the part's size with an
HTTP Range request. Only the caller renames the part to its final name, after the hash
(and structure) checks, so a final name never holds a partial or unverified file.

A mirror is not trusted to behave: its Content-Length must be a whole number that fits the
file's size limit, the body is cut off at that limit, and the whole file must arrive
before its deadline (a server that drips bytes fails then). Hitting the limit or the
deadline, or filling the disk, removes the part, which would otherwise only be resumed
into the same failure.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ghost_engine import __version__
from ghost_engine.errors import DownloadError, OutputError, UserInputError
from ghost_engine.store.deadline import Deadline
from ghost_engine.store.download_progress import Progress
from ghost_engine.store.hashing import hash_into
from ghost_engine.store.limits import DEFAULT_CAPS_BYTES, SizeLimit

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class DownloadConfig:
    """How hard to try and how much to accept. Tests shrink these so a dead, endless or
    dripping server fails in well under a second.

    The size caps apply to files whose size is not published (downloads, archive members
    and offline imports alike); a published size is always enforced exactly.
    """

    retries: int = 4  # further attempts per URL after the first
    backoff_s: float = 1.0  # wait before the first retry; doubles each time
    backoff_max_s: float = 30.0
    timeout_s: float = 30.0  # connect timeout and longest silence while reading
    jobs: int = 3  # files downloaded in parallel
    chunk_bytes: int = 1 << 20
    deadline_s: float = 3600.0  # longest one file may take, all attempts and mirrors together
    pth_cap_bytes: int = DEFAULT_CAPS_BYTES["pth"]
    onnx_cap_bytes: int = DEFAULT_CAPS_BYTES["onnx"]
    zip_cap_bytes: int = DEFAULT_CAPS_BYTES["zip"]

    def __post_init__(self) -> None:
        # The first setting out of range, named by its `models download` flag.
        for option, value, bad in (
            ("--retries", self.retries, self.retries < 0),
            ("--jobs", self.jobs, self.jobs < 1),
            ("--timeout", self.timeout_s, self.timeout_s <= 0),
            ("--deadline", self.deadline_s, self.deadline_s <= 0),
            ("backoff_s", self.backoff_s, self.backoff_s < 0),
            ("pth_cap_bytes", self.pth_cap_bytes, self.pth_cap_bytes < 1),
            ("onnx_cap_bytes", self.onnx_cap_bytes, self.onnx_cap_bytes < 1),
            ("zip_cap_bytes", self.zip_cap_bytes, self.zip_cap_bytes < 1),
        ):
            if bad:
                raise UserInputError(
                    f"invalid download settings: {self}", option=option, value=value
                )

    def size_limit(self, kind: str, expected: int | None, known_as: str = "published") -> SizeLimit:
        """The limit for a file of `kind` ('pth', 'onnx' or 'zip') whose size may be known
        (`known_as` says from where: 'published' or 'pinned')."""
        caps = {"pth": self.pth_cap_bytes, "onnx": self.onnx_cap_bytes, "zip": self.zip_cap_bytes}
        return SizeLimit(expected=expected, cap=caps[kind], kind=kind, known_as=known_as)


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
    """This URL will not work (404, 403, a bad header, too many bytes); try the next mirror."""


class _OutOfTime(Exception):
    """The file's deadline passed; no further attempt may start."""


@dataclass(frozen=True)
class _Job:
    """What every URL and attempt of one file's download shares."""

    part: Path
    label: str
    config: DownloadConfig
    progress: Progress
    limit: SizeLimit
    deadline: Deadline


def fetch(
    urls: list[str],
    part: Path,
    *,
    label: str,
    config: DownloadConfig,
    progress: Progress,
    limit: SizeLimit,
) -> Fetched:
    """Download to `part` from the first URL that works, resuming and retrying.

    Raises DownloadError naming every URL and its last failure when all of them fail; the
    part file is kept so a later call resumes it, except after a size-limit or deadline
    failure, which removes it (OutputError, also removing it, when the disk is full).
    """
    if not urls:
        raise DownloadError(
            f"{label} has no download URL; set GHOST_ENGINE_MODEL_BASE_URL to a mirror or "
            f"use 'ghost-engine models import PATH' with a copy obtained elsewhere",
            path=part,
        )
    part.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with Deadline(config.deadline_s) as deadline:
        job = _Job(part, label, config, progress, limit, deadline)
        try:
            for url in urls:
                got = _try_url(url, job, failures)
                if got is not None:
                    return got
        except _OutOfTime as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"could not download {label} within the {config.deadline_s:g} s deadline "
                f"({exc}); the partial file was removed. On a slow connection raise "
                f"--deadline, or fetch the file elsewhere and run 'ghost-engine models "
                f"import PATH'",
                path=part,
            ) from None
    raise DownloadError(
        f"could not download {label}: " + "; ".join(failures) + ". Check the network, set "
        "GHOST_ENGINE_MODEL_BASE_URL to a mirror, or fetch the file elsewhere and run "
        "'ghost-engine models import PATH'"
    )


def _try_url(url: str, job: _Job, failures: list[str]) -> Fetched | None:
    """The download from `url` with its retries, or None (the reason added to `failures`)."""
    config, deadline = job.config, job.deadline
    for attempt in range(config.retries + 1):
        if deadline.expired:
            raise _OutOfTime(f"{url}: time ran out before attempt {attempt + 1}")
        try:
            sha, size = _attempt(url, job)
            return Fetched(part=job.part, sha256=sha, size=size, url=url)
        except _NextUrl as exc:
            failures.append(f"{url}: {exc}")
            return None
        except _Retry as exc:
            if attempt == config.retries:
                failures.append(f"{url}: {exc} (after {attempt + 1} attempts)")
                return None
            wait = min(config.backoff_s * 2**attempt, config.backoff_max_s)
            if wait >= deadline.remaining_s():
                raise _OutOfTime(f"{url}: {exc}, and no time is left to retry") from None
            job.progress.note(f"{job.label}: {exc}; retrying in {wait:.1f} s")
            time.sleep(wait)
    return None


def _attempt(url: str, job: _Job) -> tuple[str, int]:
    part, limit, deadline = job.part, job.limit, job.deadline
    if part.is_symlink():
        part.unlink()  # a part is only ever a file we wrote: never write through a link
    have = part.stat().st_size if part.is_file() else 0
    if have > limit.most_bytes:
        part.unlink()
        have = 0
    hasher = hashlib.sha256()
    if have:
        hash_into(hasher, part)
    if limit.expected is not None and have == limit.expected:
        return hasher.hexdigest(), have
    headers = {"User-Agent": f"ghost-engine/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = deadline.opener().open(request, timeout=job.config.timeout_s)
    except urllib.error.HTTPError as exc:
        return _http_error(exc, part, have, hasher)
    except _NETWORK_ERRORS as exc:
        _raise_if_out_of_time(deadline, url, have)
        raise _Retry(_reason(exc)) from exc
    with response:
        if not _range_starts_at(response, have):
            part.unlink(missing_ok=True)  # the server ignored the range: start over
            have, hasher = 0, hashlib.sha256()
        length = _declared_length(response.headers.get("Content-Length"), url)
        total = limit.expected
        if length is not None:
            total = have + length
            problem = limit.problem(total)
            if problem is not None:
                raise _NextUrl(f"the server offers {problem}; nothing was downloaded")
        job.progress.start(job.label, total, have, url)
        size = _copy(response, hasher, have, job)
    if total is not None and size != total:
        raise _Retry(f"connection closed after {size} of {total} bytes")
    return hasher.hexdigest(), size


def _declared_length(value: str | None, url: str) -> int | None:
    """The Content-Length header as a byte count; a malformed one refuses the server.

    A mirror that cannot state its size in digits is broken or hostile: its body is not
    read at all.
    """
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        host = urlsplit(url).netloc or url
        raise _NextUrl(
            f"the server {host} sent an invalid Content-Length {value!r} (not a whole number "
            f"of bytes); nothing was downloaded"
        )
    return int(text)


def _copy(response: http.client.HTTPResponse, hasher: Any, have: int, job: _Job) -> int:
    """Append the response body to the part, hashing as it goes; returns the part's size."""
    part, limit, deadline = job.part, job.limit, job.deadline
    size = have
    try:
        out = open(part, "ab")
    except OSError as exc:
        raise OutputError(f"cannot write {part}: {exc}", path=part) from exc
    with out:
        while True:
            try:
                block = response.read1(job.config.chunk_bytes)  # whatever arrived: no waiting
            except (*_NETWORK_ERRORS, OSError, ValueError) as exc:
                _raise_if_out_of_time(deadline, response.geturl(), size)
                raise _Retry(_reason(exc)) from exc
            _raise_if_out_of_time(deadline, response.geturl(), size)
            if not block:
                return size
            if size + len(block) > limit.most_bytes:
                out.close()
                part.unlink(missing_ok=True)
                raise _NextUrl(
                    f"the server sent {limit.overflow()}; stopped and removed the partial file"
                )
            try:
                out.write(block)
                out.flush()
            except OSError as exc:
                raise _write_error(exc, part, out) from exc
            hasher.update(block)
            size += len(block)
            job.progress.advance(job.label, len(block))


def _write_error(exc: OSError, part: Path, out: Any) -> OutputError:
    if exc.errno not in _DISK_FULL:
        return OutputError(f"cannot write {part}: {exc}", path=part)
    try:
        out.close()
    except OSError:
        pass  # the unwritten buffer is lost either way
    part.unlink(missing_ok=True)
    return OutputError(
        f"the disk is full while writing {part}; the partial file was removed. Free some "
        f"space (or use --models-dir on a bigger disk) and download again",
        path=part,
    )


def _raise_if_out_of_time(deadline: Deadline, url: str, size: int) -> None:
    if deadline.expired:
        raise _OutOfTime(f"{url} had sent {size} bytes")


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
