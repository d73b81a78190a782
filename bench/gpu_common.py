"""What the GPU check's sections share: the timer, partial results, the stand-in generator.

Imported by `gpu_check.py`, `gpu_probe.py` and `gpu_end_to_end.py` (scripts beside it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ghost_engine.runtime import devices

GENERATOR_GFLOP = 62.0  # AEI-Net, 2 blocks, one face at 256x256 (DESIGN.md, cost model)
ARCFACE_GFLOP = 24.0  # iresnet100 at 112x112


class Recorder:
    """A section's results, written to `path` (atomically) on every `save()`, so the
    parent keeps what a section had when it is killed at its time box."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)


def time_ms(fn: Callable[[], object], device: str, reps: int, deadline: float) -> float | None:
    """Median wall time of `fn` in milliseconds (after one warm-up), synchronised.

    `reps` 0 skips timing (simulator runs, where times mean nothing) and returns None.
    Stops repeating at `deadline` (time.monotonic()).
    """
    if reps == 0:
        return None
    fn()
    devices.synchronize(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        devices.synchronize(device)
        times.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() > deadline:
            break
    times.sort()
    return round(times[len(times) // 2], 4)


def rate(faces: int, ms: float | None, gflop: float) -> dict:
    """ms per batch -> faces/s and achieved TFLOP/s."""
    if not ms:
        return {"ms": ms}
    fps = faces / (ms / 1000)
    return {"ms": ms, "faces_per_s": round(fps, 1), "tflops": round(fps * gflop / 1000, 2)}


def max_diff(a: Any, b: Any) -> int:
    import numpy as np

    return int(np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64)).max())


def no_timer(step: str) -> Any:
    """The face stages' `timed(step)` context, timing nothing."""
    return nullcontext()


def stand_in_generator() -> Any:
    """A small network with AEI-Net's interface (`(x, z_id) -> (y, attributes)`, 256x256
    in and out, [-1, 1]) for CPU runs, where the 184 M parameters take minutes."""
    import torch
    from torch import nn

    class StandIn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encode = nn.Conv2d(3, 8, 3, 2, 1)
            self.identity = nn.Linear(512, 8)
            self.decode = nn.ConvTranspose2d(8, 3, 4, 2, 1)

        def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple:
            h = torch.relu(self.encode(x) + self.identity(z)[:, :, None, None])
            return torch.tanh(self.decode(h)), [h]

    torch.manual_seed(0)
    return StandIn().eval()


def generator_module(tiny: bool) -> tuple[Any, str, float]:
    """(module, name, GFLOP per face): AEI-Net with fill-rule weights (the real cost;
    faces are meaningless), or the stand-in for `tiny` runs."""
    if tiny:
        return stand_in_generator(), "stand-in (tiny)", 0.02
    from ghost_engine.networks import build
    from ghost_engine.networks.fill import fill_module

    return fill_module(build("G_unet_2blocks")), "G_unet_2blocks", GENERATOR_GFLOP


def past(deadline: float, margin: float = 0.0) -> bool:
    return time.monotonic() > deadline - margin
