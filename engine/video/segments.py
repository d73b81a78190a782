"""Encode the output as keyframe-aligned segment files, journalled for `--resume`.

Segment k holds the frames whose output time lies in [k*L, (k+1)*L) for a segment length
L in seconds; each segment is its own encoder (so it starts on a keyframe) and its own
file, recorded in the journal once closed. The final output concatenates them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ghost_engine.types import Frame
from ghost_engine.video.encode import EncodeSettings, SegmentEncoder
from ghost_engine.video.journal import Journal, SegmentRecord, segment_file_name


@dataclass(frozen=True)
class SegmentPlan:
    """Where segments start: output time 0 is `origin_s` in the input's time line."""

    origin_s: float
    length_s: float
    time_base: Fraction

    def index_of(self, pts: int) -> int:
        t = Fraction(pts) * self.time_base - Fraction(self.origin_s)
        return max(0, math.floor(t / Fraction(self.length_s) + Fraction(1, 10**9)))

    def start_s(self, index: int) -> float:
        """Input time at which segment `index` starts."""
        return self.origin_s + index * self.length_s


class SegmentWriter:
    """Pipeline sink: frames in, segment files and journal entries out.

    Frames of segments already in the journal are dropped here. When a segment closes,
    `save_state(next segment)` (if given) saves the stages' states for the resume and
    its answer goes into the segment's journal record. Not thread-safe: one thread.
    """

    def __init__(
        self,
        folder: Path,
        journal: Journal,
        plan: SegmentPlan,
        *,
        settings: EncodeSettings,
        format_name: str,
        suffix: str,
        width: int,
        height: int,
        rate: Fraction,
        pts_offset: int,
        save_state: Callable[[int], dict | None] | None = None,
    ) -> None:
        self._folder, self._journal, self._plan = folder, journal, plan
        self._settings, self._format, self._suffix = settings, format_name, suffix
        self._size, self._rate, self._offset = (width, height), rate, pts_offset
        self._save_state = save_state  # segment -> journal entry of the states before it
        self._encoder: SegmentEncoder | None = None
        self._current = -1
        self._faces = 0
        self._first_pts = self._last_pts = 0
        self.frames_written = 0

    @property
    def first_pending(self) -> int:
        """Index of the first segment not yet in the journal."""
        done = self._journal.segments
        return done[-1].index + 1 if done else 0

    def __call__(self, frame: Frame) -> None:
        pts = frame.pts if frame.pts is not None else frame.index  # decoders always set pts
        seg = self._plan.index_of(pts)
        if seg < self.first_pending:
            return  # warm-up frame of a segment finished by an earlier run
        if seg != self._current or self._encoder is None:
            self._finish(next_segment=seg)
            self._encoder = self._open(seg)
            self._first_pts = pts
        self._encoder.encode(frame)
        self._last_pts = pts
        self._faces += int(frame.meta.get("faces_swapped", 0) > 0)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the last segment (end of stream)."""
        self._finish()

    def abort(self) -> None:
        """Stop after an error: the unfinished segment is removed, the journal kept."""
        if self._encoder is not None:
            self._encoder.abort()
            self._encoder.path.unlink(missing_ok=True)
            self._encoder = None

    def segment_files(self) -> list[Path]:
        return [self._folder / s.file for s in self._journal.segments]

    def _open(self, seg: int) -> SegmentEncoder:
        encoder = SegmentEncoder(
            self._folder / segment_file_name(seg, self._suffix),
            format_name=self._format,
            settings=self._settings,
            width=self._size[0],
            height=self._size[1],
            time_base=self._plan.time_base,
            rate=self._rate,
            pts_offset=self._offset,
        )
        self._current = seg
        self._faces = 0
        return encoder

    def _finish(self, next_segment: int | None = None) -> None:
        enc = self._encoder
        if enc is None:
            return
        enc.close()
        state = None
        if self._save_state is not None and next_segment is not None:
            state = self._save_state(next_segment)
        self._journal.segments.append(
            SegmentRecord(
                index=self._current,
                file=enc.path.name,
                frames=enc.frames,
                frames_with_faces=self._faces,
                first_pts=self._first_pts,
                last_pts=self._last_pts,
                size=enc.path.stat().st_size,
                state=state,
            )
        )
        self._journal.save(self._folder)
        self._encoder = None
