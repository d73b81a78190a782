"""Damaged inputs: a decode error mid-stream, or a video that ends before its header says.

`DecodeWatch` wraps any frame source (PyAV's reader, the CUDA backend's): it counts the
frames and, at a decode error, ends the stream there (policy "warn": the frames decoded
so far are kept) or raises `DamagedMediaError` (policy "fail"). After the run,
`find_damage` compares what was decoded with what the header promised (its frame count,
the stream's duration), which also catches a truncated file whose index survived.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from ghost_engine.choices import ON_DAMAGE, check_choice
from ghost_engine.errors import DamagedMediaError, one_line
from ghost_engine.types import Frame
from ghost_engine.video.media import ffmpeg_reason

WARN, FAIL = ON_DAMAGE


def check_on_damage(policy: str) -> None:
    message = f"--on-damage must be one of {', '.join(ON_DAMAGE)}, got {policy!r}"
    check_choice("--on-damage", policy, ON_DAMAGE, message)


@dataclass(frozen=True)
class Damage:
    """What was decoded of a damaged input and where it stopped."""

    frames_decoded: int
    frames_expected: int | None  # None when the header gives no count or duration
    stopped_at_s: float | None  # the time of the last frame decoded (None: no frame)
    reason: str

    def message(self, path: Path, policy: str) -> str:
        """One line for stderr and the error: what, where, and what was done about it."""
        of = f" of {self.frames_expected}" if self.frames_expected else ""
        at = "before the first frame"
        if self.stopped_at_s is not None:
            at = f"after the frame at {self.stopped_at_s:.3f} s"
        head = (
            f"target {one_line(str(path))} is damaged: decoded {self.frames_decoded}{of} "
            f"frame(s), stopped {at} ({self.reason})"
        )
        if policy == FAIL:
            return f"{head}; run with --on-damage warn to keep the frames that decode"
        return f"{head}; the output holds the {self.frames_decoded} frame(s) that decoded"

    def as_dict(self) -> dict:
        return {
            "frames_decoded": self.frames_decoded,
            "frames_expected": self.frames_expected,
            "stopped_at_s": None if self.stopped_at_s is None else round(self.stopped_at_s, 6),
            "reason": self.reason,
        }


class DecodeWatch:
    """Iterable of `frames` that counts them and stops at a decode error (or raises
    DamagedMediaError under policy "fail"). Like the source it wraps, iterate it once;
    `close()` closes that source."""

    def __init__(
        self,
        frames: Iterable[Frame],
        *,
        path: Path,
        policy: str = WARN,
        expected: int | None = None,
    ) -> None:
        check_on_damage(policy)
        self._frames = frames
        self.path = Path(path)
        self.policy = policy
        self.expected = expected  # frames the header promises, for the messages
        self.decoded = 0
        self.last_s: float | None = None
        self.error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        source = iter(self._frames)
        while True:
            try:
                frame = next(source)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                self.error = f"decode error: {ffmpeg_reason(exc)}"
                if self.policy == FAIL:
                    message = self.damage().message(self.path, FAIL)
                    raise DamagedMediaError(message, path=self.path) from exc
                return
            self.decoded += 1
            if frame.pts_seconds is not None:
                self.last_s = frame.pts_seconds
            yield frame

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def damage(self, reason: str | None = None, expected: int | None = None) -> Damage:
        """What was decoded, against the expected frames; the reason is the decode error
        seen, else `reason`."""
        expected = expected if expected is not None else self.expected
        return Damage(self.decoded, expected, self.last_s, self.error or reason or "damaged")


def find_damage(
    watch: DecodeWatch, *, start_s: float, expected_end_s: float | None, frame_s: float
) -> Damage | None:
    """The damage `watch` saw, if any: a decode error; fewer frames than it expected (the
    header's count, given when the whole file is read); or a last frame well before
    `expected_end_s` (the stream's end, or the range's), allowing two frames or half a
    second of slack for variable frame rates."""
    if watch.error is not None:
        return watch.damage()
    if watch.expected and watch.decoded < watch.expected:
        return watch.damage("fewer frames than its header lists")
    if expected_end_s is not None:
        reached = start_s if watch.last_s is None else watch.last_s + frame_s
        if reached < expected_end_s - max(2 * frame_s, 0.5):
            estimate = round((expected_end_s - start_s) / frame_s)
            return watch.damage("the video ends before its header says", max(1, estimate))
    return None
