"""Per-frame latency records of a live run and their summary (the JSON report).

Every delivered frame has clock stamps (seconds, one clock for all): `captured` (left the
camera), `taken` (the loop took it from the slot), `detected` (analysis done: detection,
identity embeddings and alignment, i.e. the generator starts), `swapped` (the generator
returned), `blended` (mask, paste-back and hold finished), `output` (the output accepted
it); `detected`/`swapped` are None when that step did not run (swap off, no face).
Latency is `output - captured`. In a micro-batch the frames share the step stamps.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

from ghost_engine.webcam.slot import SlotCounts

PERCENTILES = (50, 95, 99)


@dataclass
class FrameRecord:
    """Stamps of one delivered frame (see the module docstring)."""

    index: int
    captured: float
    taken: float
    detected: float | None
    swapped: float | None
    blended: float
    output: float
    faces_swapped: int = 0
    held: bool = False
    source: int | None = None

    @property
    def latency(self) -> float:
        return self.output - self.captured

    def steps(self) -> dict[str, float | None]:
        """Seconds spent per step: waiting in the slot, detect, swap, blend, output."""
        detect_end = self.detected if self.detected is not None else self.taken
        swap_end = self.swapped if self.swapped is not None else detect_end
        return {
            "wait": self.taken - self.captured,
            "detect": None if self.detected is None else self.detected - self.taken,
            "swap": None if self.swapped is None else self.swapped - detect_end,
            "blend": self.blended - swap_end,
            "output": self.output - self.blended,
        }


def percentiles_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50/p95/p99, mean and max in milliseconds (numpy's linear interpolation)."""
    out: dict[str, float | None]
    if not seconds:
        out = {f"p{p}": None for p in PERCENTILES}
        return out | {"mean": None, "max": None}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    out = {f"p{p}": float(np.percentile(ms, p)) for p in PERCENTILES}
    return out | {"mean": float(ms.mean()), "max": float(ms.max())}


def delivered_fps(records: list[FrameRecord]) -> float | None:
    """Frames per second between the first and the last output (None below 2 frames)."""
    if len(records) < 2:
        return None
    span = records[-1].output - records[0].output
    return (len(records) - 1) / span if span > 0 else None


def summarise(records: list[FrameRecord], counts: SlotCounts, lost: int = 0) -> dict:
    """The report: frame counts, delivered frames/s, latency and per-step percentiles.

    `dropped` comes from the slot (overwritten before being taken, or left at the end)
    plus `lost` (taken but not delivered, e.g. the run stopped mid-frame).
    """
    steps: dict[str, list[float]] = {}
    for rec in records:
        for name, value in rec.steps().items():
            if value is not None:
                steps.setdefault(name, []).append(value)
    return {
        "frames": {
            "captured": counts.captured,
            "delivered": len(records),
            "dropped": counts.dropped + lost,
            "overwritten": counts.overwritten,
            "with_swap": sum(1 for r in records if r.faces_swapped > 0),
            "held": sum(1 for r in records if r.held),
        },
        "fps_delivered": delivered_fps(records),
        "duration_s": (records[-1].output - records[0].captured) if records else 0.0,
        "latency_ms": percentiles_ms([r.latency for r in records]),
        "steps_ms": {name: percentiles_ms(values) for name, values in steps.items()},
    }


def records_as_dicts(records: list[FrameRecord]) -> list[dict]:
    return [asdict(r) for r in records]


class LiveWindow:
    """The last `seconds` of records, for the numbers printed while running; thread-safe
    (the control server reads it while the loop adds to it)."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._recent: deque[FrameRecord] = deque()

    def add(self, record: FrameRecord) -> None:
        with self._lock:
            self._recent.append(record)
            while self._recent and record.output - self._recent[0].output > self.seconds:
                self._recent.popleft()

    def numbers(self) -> dict:
        with self._lock:
            recent = list(self._recent)
        lat = percentiles_ms([r.latency for r in recent])
        return {"fps": delivered_fps(recent), "p50_ms": lat["p50"], "p99_ms": lat["p99"]}

    def line(self, dropped: int) -> str:
        n = self.numbers()
        if n["fps"] is None:
            return f"starting... dropped {dropped}"
        return (
            f"{n['fps']:5.1f} frames/s  latency p50 {n['p50_ms']:6.1f} ms  "
            f"p99 {n['p99_ms']:6.1f} ms  dropped {dropped}"
        )
