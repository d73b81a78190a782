"""The whole pipeline end to end: decode -> face-swap stage -> encode, in threads.

Runs the engine's own threaded runner with the same stage and encoder `ghost-engine
run` uses, on the benchmark's frames, after one untimed warm-up run. Each run gets a
fresh face stage (trackers and smoothing start clean) over the already loaded models.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ghost_engine.backend import open_backend
from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.measure.bench_config import BenchConfig
from ghost_engine.measure.memory import MemoryPeak, MemorySampler
from ghost_engine.measure.workload import Workload, encoding, first_frames
from ghost_engine.pipeline.runner import PipelineConfig, PipelineStats, run_pipeline
from ghost_engine.pipeline.swap import assemble_stage
from ghost_engine.runtime import devices
from ghost_engine.video.encode import SegmentEncoder


@dataclass
class EndToEndResult:
    """Wall seconds of each timed run over `frames` frames and what the runner saw."""

    frames: int
    runs_s: list[float]
    faces_swapped: int
    step_seconds: dict[str, float] = field(default_factory=dict)
    swap_seconds: dict[str, float] = field(default_factory=dict)
    memory: MemoryPeak = field(default_factory=MemoryPeak)

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.runs_s))

    @property
    def fps(self) -> float:
        return self.frames / self.median_s

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "runs_s": [round(s, 4) for s in self.runs_s],
            "median_s": round(self.median_s, 4),
            "frames_per_s": round(self.fps, 4),
            "faces_swapped": self.faces_swapped,
            "busy_seconds_per_thread": {k: round(v, 4) for k, v in self.step_seconds.items()},
            "face_stage_seconds": {k: round(v, 4) for k, v in self.swap_seconds.items()},
            "memory": self.memory.to_dict(),
        }


class _CountingSink:
    """Encodes every frame and counts the faces the stage swapped."""

    def __init__(self, encoder: SegmentEncoder) -> None:
        self.encoder = encoder
        self.faces = 0

    def __call__(self, frame) -> None:
        self.encoder.encode(frame)
        self.faces += int(frame.meta.get("faces_swapped", 0))


def run_once(
    work: Workload, frames: int, batch: int, folder: Path
) -> tuple[float, int, PipelineStats, dict[str, float]]:
    """One pipeline run over the first `frames` frames: (wall s, faces, stats, face-stage s).

    The wall time includes starting the threads and flushing the encoder, as a real run.
    """
    info = work.info
    cfg = work.swap_config
    stage = assemble_stage(cfg, work.models, work.source_ids, None, HostImageOps())
    backend = open_backend(cfg.device)
    started = time.perf_counter()
    pipeline = PipelineConfig(batch_size=batch)
    with encoding(info, folder / "e2e.mp4") as encoder:
        sink = _CountingSink(encoder)
        if backend.frames_on_device:
            with backend.video_run(None, pipeline, "yuv420p", stage=stage) as run:
                source = _first(run.read(info.path), frames)
                stats = run_pipeline(source, run.stages, sink, pipeline, stop=run.stop)
        else:
            stats = run_pipeline(first_frames(info.path, frames), [stage], sink, pipeline)
    wall = time.perf_counter() - started
    return wall, sink.faces, stats, stage.timings()


def _first(source, count: int):
    """The first `count` items of `source`, which is closed when this is."""
    frames = iter(source)
    try:
        for _ in range(count):  # never takes a frame (and its pooled buffer) past `count`
            item = next(frames, None)
            if item is None:
                return
            yield item
    finally:
        source.close()


def measure_end_to_end(work: Workload, config: BenchConfig) -> EndToEndResult:
    """Median wall time of `e2e_repeats` runs after one warm-up run of one batch."""
    n = len(work.frames)
    cuda = devices.is_gpu(config.device)
    with tempfile.TemporaryDirectory(prefix="ghost-bench-e2e-") as tmp:
        folder = Path(tmp)
        if config.warmup > 0:
            run_once(work, min(n, config.pipeline_batch), config.pipeline_batch, folder)
        result = EndToEndResult(frames=n, runs_s=[], faces_swapped=0)
        with MemorySampler(cuda=cuda) as sampler:
            for _ in range(config.e2e_repeats):
                wall, faces, stats, swap = run_once(work, n, config.pipeline_batch, folder)
                result.runs_s.append(wall)
        result.faces_swapped = faces
        result.step_seconds = {k: v.seconds for k, v in stats.steps.items()}
        result.swap_seconds = swap
        result.memory = sampler.peak
    return result
