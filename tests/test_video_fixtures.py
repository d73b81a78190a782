"""Helpers shared by the video, pipeline and run tests: synthetic clips and toy stages.

The clips are made with PyAV so every test knows exactly what is in its input. The toy
stages stand in for the face stages (they change pixels, hold frames back, fail on
cue) so the pipeline is tested independently of face analysis.
"""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ghost_engine.interfaces import PassStage
from ghost_engine.types import Frame


def pattern(index: int, width: int, height: int) -> np.ndarray:
    """A frame that differs from its neighbours: gradient plus a moving square."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    img[..., 2] = (index * 7) % 256
    s = max(2, min(width, height) // 6)
    x0 = (index * 3) % max(1, width - s)
    img[s : 2 * s, x0 : x0 + s] = (255, 255, 255)
    return img


def make_video(
    path: Path,
    frames: int,
    width: int = 64,
    height: int = 48,
    *,
    rate: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: str | None = None,
    rotation: int = 0,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    subtitles: bool = False,
) -> Path:
    """Write a test clip; `pts` (in `time_base`) gives variable frame rate timestamps."""
    options = {"preset": "ultrafast", "crf": "0"} if codec.startswith("libx264") else {}
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        tb = time_base or Fraction(1, rate)
        stream.codec_context.time_base = tb
        if rotation:
            stream.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = out.add_stream(audio, rate=48000)
            astream.layout = "stereo"
        sub = None
        if subtitles:
            sub = out.add_mux_stream("subrip")
            sub.time_base = Fraction(1, 1000)
        if frames == 0:
            out.start_encoding()  # a header with a video stream and no frames
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(pattern(i, width, height), format="rgb24")
            vf.pts = pts[i] if pts else i
            vf.time_base = tb
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
        if sub is not None:
            cue = av.Packet(b"hello")
            cue.stream, cue.pts, cue.dts, cue.duration = sub, 0, 0, 500
            cue.time_base = Fraction(1, 1000)
            out.mux(cue)
        if astream is not None:
            _write_tone(out, astream, frames / rate)
    return Path(path)


def _write_tone(out: av.container.OutputContainer, stream, seconds: float) -> None:
    rate, chunk = 48000, 1024
    total = int(seconds * rate)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        af.sample_rate, af.pts, af.time_base = rate, start, Fraction(1, rate)
        out.mux(stream.encode(af))
    out.mux(stream.encode(None))


def write_audio_only(path: Path) -> None:
    """A file with one short silent mono PCM stream and no video."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def first_frames(path: Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of the video at `path` (fewer if it is shorter), as RGB."""
    with av.open(str(path)) as container:
        out = []
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame (RGB) and its time in seconds."""
    images, times = [], []
    with av.open(str(path)) as c:
        for vf in c.decode(video=0):
            images.append(vf.to_ndarray(format="rgb24"))
            times.append(float(vf.time))
    return images, times


def stream_seconds(path: Path, kind: str) -> float:
    """Duration of the first stream of a kind, from its packets (end of the last one)."""
    with av.open(str(path)) as c:
        stream = next(s for s in c.streams if s.type == kind)
        end = 0.0
        for p in c.demux(stream):
            if p.pts is not None:
                end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        return end - start


class MarkStage(PassStage):
    """Inverts a corner patch, marks even frames as having a face, holds `delay` back;
    raises `error` when frame `fail_at` arrives (an interrupted run of the same stage)."""

    name = "mark"

    def __init__(
        self,
        delay: int = 0,
        sleep_s: float = 0.0,
        fail_at: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.delay, self.sleep_s = delay, sleep_s
        self.fail_at, self.error = fail_at, error
        self._held: list[Frame] = []

    def process(self, frames: list[Frame]) -> list[Frame]:
        if self.fail_at is not None and any(f.index >= self.fail_at for f in frames):
            raise self.error or RuntimeError(f"failing at frame {self.fail_at}")
        for f in frames:
            img = f.image.copy()
            img[:8, :8] = 255 - img[:8, :8]
            f.image = img
            f.meta["faces_swapped"] = int(f.index % 2 == 0)
        if self.sleep_s:
            time.sleep(self.sleep_s * len(frames))
        self._held.extend(frames)
        cut = max(0, len(self._held) - self.delay)
        out, self._held = self._held[:cut], self._held[cut:]
        return out

    def flush(self) -> list[Frame]:
        out, self._held = self._held, []
        return out

    def timings(self) -> dict[str, float]:
        return {"mark": 0.0}


class FailStage(PassStage):
    """Raises `error` when the frame with index `at` arrives."""

    name = "fail"

    def __init__(self, at: int, error: BaseException) -> None:
        self.at, self.error = at, error

    def process(self, frames: list[Frame]) -> list[Frame]:
        if any(f.index >= self.at for f in frames):
            raise self.error
        return frames


def test_pattern_frames_differ() -> None:
    a, b = pattern(0, 32, 24), pattern(1, 32, 24)
    assert a.shape == (24, 32, 3) and np.count_nonzero(a != b) > 0
