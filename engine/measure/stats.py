"""Timing statistics: warm-up excluded, median of repeats, throughput and efficiency.

One rule for every number the benchmarks publish: call the work `warmup` times without
timing it (first calls pay for allocation, caches, JIT), then time `repeats` calls and
report the median, which a single slow call (another process on a shared machine)
cannot move much.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """Seconds of each timed call and how many items (frames or faces) one call does."""

    samples_s: tuple[float, ...]
    items: int
    warmup: int
    # Process CPU seconds (all threads) of each timed call: more than the wall time when
    # the work runs on several cores; empty where not recorded.
    cpu_samples_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.samples_s:
            raise ValueError("a measurement needs at least one timed call")
        if self.items < 1:
            raise ValueError(f"items per call must be >= 1, got {self.items}")

    @property
    def median_s(self) -> float:
        """Median seconds per call."""
        return float(statistics.median(self.samples_s))

    @property
    def cpu_median_s(self) -> float | None:
        """Median process CPU seconds per call, or None when not recorded."""
        return float(statistics.median(self.cpu_samples_s)) if self.cpu_samples_s else None

    @property
    def per_s(self) -> float:
        """Items per second at the median call time."""
        median = self.median_s
        return self.items / median if median > 0 else float("inf")

    def to_dict(self) -> dict:
        out = {
            "items_per_call": self.items,
            "warmup_calls": self.warmup,
            "samples_s": [round(s, 6) for s in self.samples_s],
            "median_s": round(self.median_s, 6),
            "per_s": round(self.per_s, 4),
        }
        cpu_median_s = self.cpu_median_s
        if cpu_median_s is not None:
            out["cpu_median_s"] = round(cpu_median_s, 6)
        return out


def measure(
    fn: Callable[[], object],
    *,
    items: int,
    warmup: int = 1,
    repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.process_time,
) -> Measurement:
    """Run `fn` `warmup` times untimed, then `repeats` times timed; each call does `items`.

    The clocks are injectable so the rule itself can be tested with fake ones.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(repeats):
        cpu_start, start = cpu_clock(), clock()
        fn()
        samples.append(clock() - start)
        cpu.append(cpu_clock() - cpu_start)
    return Measurement(tuple(samples), items, warmup, tuple(cpu))


@dataclass(frozen=True)
class Efficiency:
    """End-to-end frames/s over the slowest stage's own frames/s (1.0: no overhead)."""

    value: float
    e2e_fps: float
    slowest_stage: str
    slowest_fps: float

    def to_dict(self) -> dict:
        return {
            "value": round(self.value, 4),
            "e2e_fps": round(self.e2e_fps, 4),
            "slowest_stage": self.slowest_stage,
            "slowest_fps": round(self.slowest_fps, 4),
        }


def efficiency(e2e_fps: float, stage_fps: Mapping[str, float]) -> Efficiency:
    """How close the whole pipeline comes to its slowest stage measured alone.

    A perfectly overlapped pipeline runs exactly as fast as its slowest stage, so the
    ratio shows what the rest (serial steps, threads competing for cores) costs.
    """
    if not stage_fps:
        raise ValueError("efficiency needs at least one stage throughput")
    if e2e_fps <= 0:
        raise ValueError(f"end-to-end frames/s must be > 0, got {e2e_fps}")
    name, slowest = min(stage_fps.items(), key=lambda kv: kv[1])
    if slowest <= 0:
        raise ValueError(f"stage {name!r} has no positive throughput ({slowest})")
    return Efficiency(e2e_fps / slowest, e2e_fps, name, slowest)
