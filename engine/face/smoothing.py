"""Temporal smoothing of the 5 points, per track, inside the stream.

`window`: GHOST's rule. A track is cut into segments where it is missing or point 0 or
point 2 moves more than 5 pixels between frames; inside a segment a frame's points are
the mean over +-q frames, q = min(2, frames before, frames after in the segment) (the
window shrinks symmetrically at segment ends). It needs 2 frames of look-ahead, held in
a bounded buffer by the stage. GHOST's fixed 5 pixels is too tight for large faces: on
nggyup.mp4 (720p, eyes ~48 px apart) the head moves a median 6.5 px per frame, so
almost every frame starts a new segment and the jitter only drops from 4.97 to 4.53
(measured). Our default resets on moves over max(5 px, half the eye distance) instead,
which still catches cuts and new faces (2.22, measured); `jump_eye_fraction=None` gives
GHOST's rule exactly. `ema`: a causal One-Euro filter (Casiez et al. 2012) for
realtime use: strong smoothing when the face is still, little lag when it moves.

Smoothers take `push(frame_index, {track: kps})` for every frame in order and give
`pop(frame_index) -> {track: smoothed kps}` once `lookahead` later frames were pushed
(or at the end of the stream).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


def ghost_window_smooth(
    sequence: list[np.ndarray | None], n: int = 2, jump: float = 5.0
) -> list[np.ndarray | None]:
    """GHOST's offline smoothing of one track (None = no face in that frame)."""
    out: list[np.ndarray | None] = [None] * len(sequence)
    segments: list[list[tuple[int, np.ndarray]]] = []  # (frame, points) runs
    for i, kps in enumerate(sequence):
        if kps is None:
            continue
        prev = sequence[i - 1] if i > 0 else None
        moved = prev is not None and (
            np.linalg.norm(kps[0] - prev[0]) > jump or np.linalg.norm(kps[2] - prev[2]) > jump
        )
        if prev is None or moved:
            segments.append([(i, kps)])
        else:
            segments[-1].append((i, kps))
    for seg in segments:
        pts = np.stack([kps for _, kps in seg]).astype(np.float64)
        for j, (i, _) in enumerate(seg):
            q = min(j, len(seg) - 1 - j, n)
            out[i] = pts[j - q : j + q + 1].mean(0)
    return out


class NoSmoother:
    """Raw points, no look-ahead."""

    lookahead = 0

    def __init__(self) -> None:
        self._pending: dict[int, dict[int, np.ndarray]] = {}

    def push(self, frame_index: int, points: dict[int, np.ndarray]) -> None:
        self._pending[frame_index] = {k: np.asarray(v, np.float64) for k, v in points.items()}

    def pop(self, frame_index: int) -> dict[int, np.ndarray]:
        return self._pending.pop(frame_index, {})


@dataclass(frozen=True)
class WindowConfig:
    """`n`: half window; a move of point 0 or 2 over max(`jump_px`, `jump_eye_fraction` x
    eye distance) starts a new segment (`jump_eye_fraction=None`: GHOST's `jump_px` only)."""

    n: int = 2
    jump_px: float = 5.0
    jump_eye_fraction: float | None = 0.5

    def threshold(self, kps: np.ndarray) -> float:
        if self.jump_eye_fraction is None:
            return self.jump_px
        eye = float(np.linalg.norm(kps[1] - kps[0]))
        return max(self.jump_px, self.jump_eye_fraction * eye)


class WindowSmoother:
    """GHOST's +-n mean with segment resets, as a stream with n frames of look-ahead."""

    def __init__(self, config: WindowConfig = WindowConfig()) -> None:
        self.config = config
        self.n = config.n
        self.lookahead = config.n
        # track -> recent (frame index, points, segment id), oldest first
        self._hist: dict[int, deque[tuple[int, np.ndarray, int]]] = {}
        self._next_segment = 0

    def push(self, frame_index: int, points: dict[int, np.ndarray]) -> None:
        for track, kps in points.items():
            kps = np.asarray(kps, dtype=np.float64)
            hist = self._hist.setdefault(track, deque())
            last = hist[-1] if hist else None
            segment = None  # the last frame's, when this one continues it
            if last is not None and last[0] == frame_index - 1:
                jump = self.config.threshold(last[1])
                if (
                    np.linalg.norm(kps[0] - last[1][0]) <= jump
                    and np.linalg.norm(kps[2] - last[1][2]) <= jump
                ):
                    segment = last[2]
            if segment is None:
                self._next_segment += 1
                segment = self._next_segment
            hist.append((frame_index, kps, segment))

    def pop(self, frame_index: int) -> dict[int, np.ndarray]:
        out = {}
        for track in list(self._hist):
            hist = self._hist[track]
            while hist and hist[0][0] < frame_index - self.n:
                hist.popleft()
            if not hist:
                del self._hist[track]
                continue
            entries = {idx: (kps, seg) for idx, kps, seg in hist}
            if frame_index not in entries:
                continue
            seg = entries[frame_index][1]
            before = sum(
                1
                for d in range(1, self.n + 1)
                if entries.get(frame_index - d, (None, -1))[1] == seg
            )
            after = sum(
                1
                for d in range(1, self.n + 1)
                if entries.get(frame_index + d, (None, -1))[1] == seg
            )
            q = min(before, after, self.n)
            out[track] = np.mean([entries[frame_index + d][0] for d in range(-q, q + 1)], axis=0)
        return out


@dataclass(frozen=True)
class OneEuroConfig:
    """`min_cutoff` (Hz): smoothing when still; `beta`: how fast the cutoff rises with
    speed (per px/s); `reset_fraction`: a jump larger than this fraction of the eye
    distance (a cut, a new person) restarts the filter."""

    fps: float = 30.0
    min_cutoff: float = 1.0
    beta: float = 0.005
    d_cutoff: float = 1.0
    reset_fraction: float = 0.5


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroSmoother:
    """Causal One-Euro filter per track and point (speed from the point's 2-D velocity)."""

    lookahead = 0

    def __init__(self, config: OneEuroConfig = OneEuroConfig()) -> None:
        self.config = config
        self._state: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
        self._pending: dict[int, dict[int, np.ndarray]] = {}

    def _step(self, track: int, frame_index: int, kps: np.ndarray) -> np.ndarray:
        cfg = self.config
        prev = self._state.get(track)
        eye_dist = max(float(np.linalg.norm(kps[1] - kps[0])), 1.0)
        if (
            prev is None
            or frame_index - prev[0] > 2
            or np.abs(kps - prev[1]).max() > cfg.reset_fraction * eye_dist
        ):
            self._state[track] = (frame_index, kps, np.zeros_like(kps))
            return kps
        last_index, x_hat, dx_hat = prev
        dt = (frame_index - last_index) / cfg.fps
        dx = (kps - x_hat) / dt
        dx_hat = dx_hat + _alpha(cfg.d_cutoff, dt) * (dx - dx_hat)
        speed = np.linalg.norm(dx_hat, axis=1, keepdims=True)
        a = _alpha(cfg.min_cutoff + cfg.beta * speed, dt)
        x_hat = x_hat + a * (kps - x_hat)
        self._state[track] = (frame_index, x_hat, dx_hat)
        return x_hat

    def push(self, frame_index: int, points: dict[int, np.ndarray]) -> None:
        self._pending[frame_index] = {
            t: self._step(t, frame_index, np.asarray(k, np.float64)) for t, k in points.items()
        }
        for track in [t for t, s in self._state.items() if frame_index - s[0] > 2]:
            del self._state[track]

    def pop(self, frame_index: int) -> dict[int, np.ndarray]:
        return self._pending.pop(frame_index, {})


def make_smoother(mode: str, fps: float = 30.0):
    """The smoother for a `--smoothing` mode: 'window', 'ema' or 'none'."""
    if mode == "window":
        return WindowSmoother()
    if mode == "ema":
        return OneEuroSmoother(OneEuroConfig(fps=fps))
    if mode == "none":
        return NoSmoother()
    raise ValueError(f"unknown smoothing mode {mode!r}; choose window, ema or none")
