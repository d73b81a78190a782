"""The live loop: latest camera frame -> swap (batch 1 or a micro-batch) -> hold -> output.

Capture runs in its own thread and fills a one-slot buffer; this loop (the caller's
thread, which a preview window needs) always takes the newest frame, so when it is slower
than the camera the frames in between are dropped, never queued. Control changes are
read once per iteration and apply from the next frame taken. Every delivered frame gets
a `FrameRecord` of clock stamps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ghost_engine.errors import CameraError, GhostEngineError
from ghost_engine.types import Frame
from ghost_engine.webcam.capture import CameraSource, Captured, CaptureThread, Clock
from ghost_engine.webcam.controls import ControlState, LiveControls
from ghost_engine.webcam.hold import SwapHold
from ghost_engine.webcam.latency import FrameRecord, LiveWindow, summarise
from ghost_engine.webcam.live_stage import StepStamps
from ghost_engine.webcam.sinks import Sink
from ghost_engine.webcam.slot import LatestSlot, SlotClosed, SlotCounts


class LiveStage(Protocol):
    """What the loop needs from the swap stage (`LiveSwapStage` is the real one)."""

    def apply(self, state: ControlState) -> None: ...

    def skip(self) -> None: ...

    def process(self, frames: list[Frame]) -> tuple[list[Frame], StepStamps]: ...


@dataclass(frozen=True)
class LoopConfig:
    """`micro_batch`: frames swapped per call (1 = lowest latency; more only pays when
    the accelerator is faster per frame in batches than the camera delivers);
    `batch_wait_s`: how long to wait for each further frame of a micro-batch;
    `max_seconds` / `max_frames`: stop after that long / that many delivered frames;
    `print_every_s`: live numbers through `echo` (0: silent); `frame_timeout_s`: a camera
    silent for that long is an error."""

    hold_frames: int = 5
    micro_batch: int = 1
    batch_wait_s: float = 0.05
    max_seconds: float | None = None
    max_frames: int | None = None
    print_every_s: float = 0.0
    frame_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.micro_batch < 1:
            raise ValueError(f"micro_batch must be at least 1, got {self.micro_batch}")
        if self.hold_frames < 0:
            raise ValueError(f"hold_frames must be >= 0, got {self.hold_frames}")


@dataclass
class LiveResult:
    """Records of the delivered frames, the slot's counts and the summary report."""

    records: list[FrameRecord]
    counts: SlotCounts
    summary: dict = field(default_factory=dict)


def _take_batch(slot: LatestSlot, config: LoopConfig) -> tuple[list[Captured], bool]:
    """(frames, ended): the newest frame, plus up to micro_batch - 1 following ones."""
    items = [slot.take(timeout=config.frame_timeout_s)]
    while len(items) < config.micro_batch:
        try:
            items.append(slot.take(timeout=config.batch_wait_s))
        except TimeoutError:
            break
        except SlotClosed:
            return items, True
    return items, False


class _Run:
    """State of one live run (kept out of `run_live` to keep each step short)."""

    def __init__(
        self,
        stage: LiveStage,
        sink: Sink,
        controls: LiveControls,
        config: LoopConfig,
        clock: Clock,
        echo: Callable[[str], None] | None,
        monitor: LiveWindow | None,
    ) -> None:
        self.stage, self.sink, self.controls = stage, sink, controls
        self.config, self.clock, self.echo = config, clock, echo
        self.hold = SwapHold(config.hold_frames)
        self.window = monitor if monitor is not None else LiveWindow()
        self.records: list[FrameRecord] = []
        self.t0: float | None = None
        self.next_print = 0.0
        self.lost = 0
        self.source: int | None = None

    def step(self, items: list[Captured], state: ControlState) -> None:
        taken = self.clock()
        if self.t0 is None:
            self.t0 = items[0].captured_s
        frames = [it.frame for it in items]
        if state.source != self.source:
            self.hold.reset()  # never show the previous source's face after a switch
            self.source = state.source
        if state.swap:
            self.stage.apply(state)
            frames, stamps = self.stage.process(frames)
            for frame in frames:
                self.hold.update(frame)
        else:
            for _ in frames:
                self.stage.skip()
            self.hold.reset()
            stamps = StepStamps(None, None)
        blended = self.clock()
        self.lost += len(items)
        for item, frame in zip(items, frames, strict=True):
            self.sink.write(frame, item.captured_s - self.t0)
            record = FrameRecord(
                index=frame.index,
                captured=item.captured_s,
                taken=taken,
                detected=stamps.detected,
                swapped=stamps.swapped,
                blended=blended,
                output=self.clock(),
                faces_swapped=int(frame.meta.get("faces_swapped", 0)),
                held=bool(frame.meta.get("held", False)),
                source=state.source if state.swap else None,
            )
            self.lost -= 1
            self.records.append(record)
            self.window.add(record)

    def maybe_print(self, slot: LatestSlot) -> None:
        if self.config.print_every_s <= 0 or self.echo is None or not self.records:
            return
        now = self.records[-1].output
        if now >= self.next_print:
            self.echo(self.window.line(slot.counts().dropped + self.lost))
            self.next_print = now + self.config.print_every_s

    def done(self, start: float) -> bool:
        cfg = self.config
        if cfg.max_frames is not None and len(self.records) >= cfg.max_frames:
            return True
        return cfg.max_seconds is not None and self.clock() - start >= cfg.max_seconds


def run_live(
    stage: LiveStage,
    camera: CameraSource,
    sink: Sink,
    controls: LiveControls,
    config: LoopConfig = LoopConfig(),
    *,
    clock: Clock = time.perf_counter,
    echo: Callable[[str], None] | None = None,
    monitor: LiveWindow | None = None,
) -> LiveResult:
    """Run until the camera ends, `controls` says quit, or a limit in `config` is hit.

    `monitor` (optional) receives every record, for live numbers read from another
    thread (the control server). The sink is written but not closed (the caller owns
    it). Raises CameraError when the
    capture thread fails or the camera stays silent for `frame_timeout_s`.
    """
    slot: LatestSlot[Captured] = LatestSlot()
    capture = CaptureThread(camera, slot, clock)
    run = _Run(stage, sink, controls, config, clock, echo, monitor)
    start = clock()
    capture.start()
    try:
        ended = False
        while not ended and not run.done(start) and not controls.snapshot().quit:
            try:
                items, ended = _take_batch(slot, config)
            except SlotClosed:
                break
            except TimeoutError as exc:
                raise CameraError(
                    f"no frame from the camera for {config.frame_timeout_s} s; check that "
                    "it is connected and not used by another program"
                ) from exc
            state = controls.snapshot()  # after the wait: a change applies to this frame
            if state.quit:
                run.lost += len(items)
                break
            run.step(items, state)
            run.maybe_print(slot)
    finally:
        capture.stop()
        slot.close()
        capture.join(timeout=10.0)
    if isinstance(capture.error, GhostEngineError):
        raise capture.error
    if capture.error is not None:
        raise CameraError(f"the camera failed: {capture.error}") from capture.error
    counts = slot.counts()
    return LiveResult(run.records, counts, summarise(run.records, counts, run.lost))
