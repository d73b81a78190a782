"""Loop mechanics on a synthetic clip with a stand-in stage (no models): micro-batches
of consecutive frames, swap off, quit, camera errors, the file camera's loop mode."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_video_fixtures import make_video

from ghost_engine.errors import CameraError
from ghost_engine.video.reader import read_frames
from ghost_engine.webcam.capture import FileCamera
from ghost_engine.webcam.controls import ControlState, LiveControls
from ghost_engine.webcam.latency import LiveWindow, delivered_fps
from ghost_engine.webcam.live_stage import StepStamps
from ghost_engine.webcam.loop import LoopConfig, run_live
from ghost_engine.webcam.sinks import NullSink


class InvertStage:
    """Inverts the image (so processed frames are recognisable) and notes each call."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.skipped = 0
        self.delay_s = delay_s

    def apply(self, state: ControlState) -> None:
        return None

    def skip(self) -> None:
        self.skipped += 1

    def process(self, frames):
        time.sleep(self.delay_s)
        self.calls.append([f.index for f in frames])
        for f in frames:
            f.image = 255 - f.image
        now = time.perf_counter()
        return frames, StepStamps(now, now)


class KeepSink:
    def __init__(self, on_write=None) -> None:
        self.frames = []
        self.on_write = on_write

    def write(self, frame, at_s: float) -> None:
        self.frames.append(frame)
        if self.on_write:
            self.on_write(len(self.frames))

    def close(self) -> None:
        return None


@pytest.fixture()
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "clip.mp4", 20, 64, 48, rate=50)


def test_micro_batches_hold_consecutive_frames(clip):
    stage = InvertStage()
    config = LoopConfig(micro_batch=3, batch_wait_s=0.2)
    monitor = LiveWindow(seconds=5.0)
    result = run_live(stage, FileCamera(clip), NullSink(), LiveControls(1), config, monitor=monitor)
    # the live numbers (as the control server shows them) cover the whole 0.4 s run
    assert monitor.numbers()["fps"] == pytest.approx(delivered_fps(result.records))
    latencies = np.array([r.output - r.captured for r in result.records]) * 1000
    assert monitor.numbers()["p99_ms"] == pytest.approx(np.percentile(latencies, 99))
    assert any(len(call) == 3 for call in stage.calls)
    for call in stage.calls:
        assert call == list(range(call[0], call[0] + len(call)))
    indices = [r.index for r in result.records]
    assert indices == sorted(indices)
    batched = [r for r in result.records if r.index in stage.calls[0]]
    assert len({r.taken for r in batched}) == 1  # one take stamp per micro-batch


def test_swap_off_passes_frames_through_and_quit_stops(clip):
    controls = LiveControls(1)
    cam = FileCamera(clip)

    def on_write(n: int) -> None:
        if n == 2:
            controls.update(swap=False)
        if n == 5:
            controls.update(quit=True)

    stage = InvertStage(delay_s=0.03)
    sink = KeepSink(on_write)
    result = run_live(stage, cam, sink, controls, LoopConfig())
    assert len(sink.frames) == 5  # quit after the 5th frame
    assert stage.skipped == 3 and len(stage.calls) == 2
    assert [r.source for r in result.records] == [0, 0, None, None, None]
    assert [r.detected is None for r in result.records] == [False, False, True, True, True]
    # swap-on frames went through the stage, swap-off frames are the camera's own images
    originals = {f.index: f.image for f in read_frames(clip)}
    for n, frame in enumerate(sink.frames):
        want = 255 - originals[frame.index] if n < 2 else originals[frame.index]
        np.testing.assert_array_equal(frame.image, want)


def test_file_camera_loops(clip):
    cam = FileCamera(clip, loop=True, sleep=lambda s: None)
    frames = [cam.read() for _ in range(45)]
    cam.close()
    pts = [f.pts_seconds for f in frames]
    assert pts == pytest.approx([k / 50 for k in range(45)], abs=1e-6)
    np.testing.assert_array_equal(frames[20].image, frames[0].image)


class BrokenCamera:
    description = "broken"

    def read(self):
        raise OSError("device unplugged")

    def close(self) -> None:
        return None


def test_camera_failure_is_reported():
    with pytest.raises(CameraError, match="device unplugged"):
        run_live(InvertStage(), BrokenCamera(), NullSink(), LiveControls(1), LoopConfig())
