"""Run a source, stages and a sink in threads joined by bounded queues.

Backpressure from the bounded queues keeps memory independent of the video's length.
Every thread sends an end marker downstream in a `finally` block, so a crashed stage
never leaves another waiting forever; the first error is re-raised in the caller with
its own type, and Ctrl-C in the caller stops every thread before it propagates.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ghost_engine.interfaces import StreamStage
from ghost_engine.types import SEGMENT_KEY, Frame

_log = logging.getLogger(__name__)


class _Marker(enum.Enum):
    END = "end"  # end of stream (also sent after an error; the error itself is recorded)


_END: Final = _Marker.END
_Item = list[Any] | _Marker  # what the queues carry: a batch of items, or the end marker


@dataclass(frozen=True)
class PipelineConfig:
    """Batching and buffering. At most `(len(stages)+1) * queue_batches * batch_size`
    frames wait in queues at any time (plus what each thread is working on)."""

    batch_size: int = 8
    queue_batches: int = 2
    poll_s: float = 0.05
    join_timeout_s: float = 30.0


@dataclass
class StageStats:
    """Seconds spent inside a step (not waiting on queues) and frames it produced."""

    seconds: float = 0.0
    frames: int = 0


@dataclass
class PipelineStats:
    """Per-step statistics in pipeline order: source, each stage, sink."""

    steps: dict[str, StageStats] = field(default_factory=dict)
    wall_s: float = 0.0


class _Shared:
    """State all threads see: the stop flag and the first error."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop if stop is not None else threading.Event()
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
        self.stop.set()


def run_pipeline(
    source: Iterable[Frame],
    stages: Sequence[StreamStage],
    sink: Callable[[Frame], None],
    config: PipelineConfig = PipelineConfig(),
    on_frame: Callable[[Frame], None] | None = None,
    stop: threading.Event | None = None,
) -> PipelineStats:
    """Push every frame of `source` through `stages` into `sink`, in order.

    `stop` (optional) is the event the runner sets when a step fails; a source that may
    block on something only later steps give back (pooled buffers) watches it, so the
    run ends with the error instead of waiting.

    `sink` and `on_frame` run in one thread of their own (the sink need not be
    thread-safe). Each frame's `release()` is called once the sink and `on_frame` are
    done with it (a pooled buffer goes back; a no-op for other frames).
    Raises the first error any step raised; on KeyboardInterrupt every thread is stopped
    before it is re-raised.
    """
    if config.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
    shared = _Shared(stop)
    labels = [s.name or "stage" for s in stages]
    unique = [lab if labels.count(lab) == 1 else f"{lab}#{i}" for i, lab in enumerate(labels)]
    names = ["decode", *unique, "encode"]
    stats = PipelineStats(steps={n: StageStats() for n in names})
    queues: list[queue.Queue[_Item]] = [
        queue.Queue(maxsize=config.queue_batches) for _ in range(len(stages) + 1)
    ]
    workers = [_thread("decode", _read, source, queues[0], shared, config, stats.steps["decode"])]
    for i, stage in enumerate(stages):
        st = stats.steps[names[i + 1]]
        args = (stage, queues[i], queues[i + 1], shared, config, st)
        workers.append(_thread(names[i + 1], _transform, *args))
    workers.append(
        _thread("encode", _write, queues[-1], sink, on_frame, shared, config, stats.steps["encode"])
    )
    started = time.perf_counter()
    try:
        for w in workers:
            w.start()
        _wait(workers, shared, config)
    except BaseException as exc:  # KeyboardInterrupt or SystemExit in the caller
        shared.fail(exc)
        _join(workers, config)
        raise
    _join(workers, config)
    stats.wall_s = time.perf_counter() - started
    if shared.error is not None:
        raise shared.error
    return stats


class _Worker(threading.Thread):
    """A pipeline thread that also records its own end in `finished`.

    `Thread.join` interrupted by Ctrl-C can leave CPython believing the thread has
    stopped while it still runs (the interrupted lock wait marks it stopped), so the
    joins after Ctrl-C wait on this event instead.
    """

    def __init__(self, name: str, target: Callable, args: tuple) -> None:
        super().__init__(name=f"ghost-{name}", daemon=True)
        self._work = (target, args)
        self.finished = threading.Event()

    def run(self) -> None:
        target, args = self._work
        try:
            target(*args)
        finally:
            self.finished.set()


def _thread(name: str, target: Callable, *args: object) -> _Worker:
    return _Worker(name, target, args)


def _wait(workers: list[_Worker], shared: _Shared, config: PipelineConfig) -> None:
    """Until every thread ends, or one fails (then `_join` gives the rest a deadline)."""
    for w in workers:
        while not w.finished.wait(timeout=config.poll_s):  # short waits: Ctrl-C responsive
            if shared.stop.is_set():
                return


def _join(workers: list[_Worker], config: PipelineConfig) -> None:
    deadline = time.monotonic() + config.join_timeout_s
    for w in workers:
        if not w.is_alive() and not w.ident:
            continue  # never started (Ctrl-C while the threads were starting)
        if not w.finished.wait(timeout=max(0.0, deadline - time.monotonic())):
            _log.warning("thread %s did not stop within %.0f s", w.name, config.join_timeout_s)
            continue
        w.join(timeout=1.0)


def _put(q: queue.Queue[_Item], item: _Item, shared: _Shared, config: PipelineConfig) -> bool:
    while not shared.stop.is_set():
        try:
            q.put(item, timeout=config.poll_s)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[_Item], shared: _Shared, config: PipelineConfig) -> _Item:
    while not shared.stop.is_set():
        try:
            return q.get(timeout=config.poll_s)
        except queue.Empty:
            continue
    return _END


def _timed(iterator: Iterator[Frame], stats: StageStats) -> Iterator[Frame]:
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(iterator)
        except StopIteration:
            stats.seconds += time.perf_counter() - t0
            return
        stats.seconds += time.perf_counter() - t0
        stats.frames += 1
        yield frame


def _read(source, out_q, shared, config, stats) -> None:
    try:
        batch: list[Frame] = []
        for frame in _timed(iter(source), stats):
            if batch and frame.meta.get(SEGMENT_KEY) != batch[-1].meta.get(SEGMENT_KEY):
                # a batch never spans two output segments, so a run resumed at a segment
                # hands the stages the same batches as an uninterrupted one
                if not _put(out_q, batch, shared, config):
                    return
                batch = []
            batch.append(frame)
            if len(batch) >= config.batch_size:
                if not _put(out_q, batch, shared, config):
                    return
                batch = []
        if batch:
            _put(out_q, batch, shared, config)
    except BaseException as exc:
        shared.fail(exc)
    finally:
        _close_source(source, shared)
        _put(out_q, _END, shared, config)


def _close_source(source: object, shared: _Shared) -> None:
    close = getattr(source, "close", None)  # a generator source: release the decoder now
    if close is None:
        return
    try:
        close()
    except Exception as exc:
        shared.fail(exc)


def _transform(stage, in_q, out_q, shared, config, stats) -> None:
    try:
        while True:
            item = _get(in_q, shared, config)
            if item is _END:
                if shared.stop.is_set():
                    return
                t0 = time.perf_counter()
                rest = stage.flush()
                stats.seconds += time.perf_counter() - t0
                stats.frames += len(rest)
                if rest:
                    _put(out_q, rest, shared, config)
                return
            t0 = time.perf_counter()
            done = stage.process(item)
            stats.seconds += time.perf_counter() - t0
            stats.frames += len(done)
            if done and not _put(out_q, done, shared, config):
                return
    except BaseException as exc:
        shared.fail(exc)
    finally:
        _put(out_q, _END, shared, config)


def _write(in_q, sink, on_frame, shared, config, stats) -> None:
    last = None
    try:
        while True:
            item = _get(in_q, shared, config)
            if item is _END:
                return
            for frame in item:
                if last is not None and frame.index <= last:
                    raise RuntimeError(
                        f"frames out of order: {frame.index} after {last}; a stage broke order"
                    )
                last = frame.index
                t0 = time.perf_counter()
                sink(frame)
                stats.seconds += time.perf_counter() - t0
                stats.frames += 1
                if on_frame is not None:
                    on_frame(frame)
                frame.release()  # a pooled buffer goes back (the CUDA backend's pinned frames)
    except BaseException as exc:
        shared.fail(exc)
