"""The threaded pipeline: order, look-ahead, errors with their type, Ctrl-C, bounded memory."""

from __future__ import annotations

import _thread
import threading
import time

import numpy as np
import pytest
from test_video_fixtures import FailStage, MarkStage

from ghost_engine.errors import NoFaceError
from ghost_engine.interfaces import PassStage
from ghost_engine.pipeline.runner import PipelineConfig, run_pipeline
from ghost_engine.types import Frame


def _frames(n: int, live: list[int] | None = None):
    for i in range(n):
        if live is not None:
            live[0] += 1
        yield Frame(index=i, image=np.full((4, 4, 3), i % 256, np.uint8), pts=i)


def _ghost_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ghost-")]


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_frames_arrive_in_order_through_look_ahead_stages(batch) -> None:
    got: list[Frame] = []
    stages = [MarkStage(delay=5), MarkStage(delay=2)]
    stats = run_pipeline(_frames(50), stages, got.append, PipelineConfig(batch_size=batch))
    assert [f.index for f in got] == list(range(50))
    # two inversions of the corner cancel out; the rest is untouched
    assert all(int(f.image[0, 0, 0]) == f.index % 256 for f in got)
    assert list(stats.steps) == ["decode", "mark#0", "mark#1", "encode"]
    assert [s.frames for s in stats.steps.values()] == [50, 50, 50, 50]


def test_stage_error_is_reraised_with_its_type_and_threads_stop() -> None:
    got: list[Frame] = []
    with pytest.raises(NoFaceError, match="boom"):
        run_pipeline(_frames(100), [MarkStage(), FailStage(40, NoFaceError("boom"))], got.append)
    assert len(got) <= 40  # frames before the failing batch only
    assert _ghost_threads() == []


def test_source_and_sink_errors_propagate() -> None:
    def bad_source():
        yield Frame(index=0, image=np.zeros((2, 2, 3), np.uint8))
        raise OSError("disk read failed")

    with pytest.raises(OSError, match="disk read failed"):
        run_pipeline(bad_source(), [MarkStage()], lambda f: None)

    def bad_sink(frame: Frame) -> None:
        if frame.index == 10:
            raise ValueError("encoder broke")

    with pytest.raises(ValueError, match="encoder broke"):
        run_pipeline(_frames(1000), [MarkStage()], bad_sink)
    assert _ghost_threads() == []


def test_out_of_order_stage_is_caught() -> None:
    class Reverse(PassStage):
        name = "reverse"

        def process(self, frames):
            return frames[::-1]

    with pytest.raises(RuntimeError, match="out of order"):
        run_pipeline(_frames(10), [Reverse()], lambda f: None, PipelineConfig(batch_size=4))


def test_ctrl_c_stops_every_thread() -> None:
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(_frames(10_000), [MarkStage(sleep_s=0.01)], lambda f: None)
    assert time.monotonic() - started < 5.0
    assert _ghost_threads() == []


def test_queues_bound_the_frames_in_flight() -> None:
    live = [0]  # frames produced so far
    peak = [0]
    done = [0]

    def slow_sink(frame: Frame) -> None:
        done[0] += 1
        peak[0] = max(peak[0], live[0] - done[0])
        time.sleep(0.001)

    cfg = PipelineConfig(batch_size=4, queue_batches=2)
    run_pipeline(_frames(400, live), [MarkStage(delay=3)], slow_sink, cfg)
    # 2 queues x 2 batches x 4 frames, plus one batch in each of 3 threads, plus look-ahead
    assert peak[0] <= 2 * 2 * 4 + 3 * 4 + 3
    assert done[0] == 400
