"""Peak memory while a piece of work runs: resident set size and, on CUDA, device memory.

The process-wide peak (`ru_maxrss`) also counts model loading; a sampling thread gives
the peak inside one measured section, which is what a streaming pipeline must keep flat.
"""

from __future__ import annotations

import resource
import sys
import threading
from dataclasses import dataclass

import psutil


def process_peak_rss_mib() -> float:
    """Highest resident memory of this process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@dataclass
class MemoryPeak:
    """Peaks seen while the section ran (MiB); GPU figures stay None off CUDA."""

    rss_mib: float = 0.0
    gpu_allocated_mib: float | None = None
    gpu_reserved_mib: float | None = None

    def to_dict(self) -> dict:
        out = {"peak_rss_mib": round(self.rss_mib, 1)}
        if self.gpu_allocated_mib is not None:
            out["peak_gpu_allocated_mib"] = round(self.gpu_allocated_mib, 1)
            out["peak_gpu_reserved_mib"] = round(self.gpu_reserved_mib or 0.0, 1)
        return out


class MemorySampler:
    """Context manager: samples RSS every `interval_s` in a thread and keeps the peak.

    On CUDA it also resets and reads torch's peak allocator statistics.
    """

    def __init__(self, interval_s: float = 0.02, cuda: bool = False) -> None:
        self.interval_s = interval_s
        self.cuda = cuda
        self.peak = MemoryPeak()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()

    def _sample(self) -> None:
        rss = self._process.memory_info().rss / 2**20
        self.peak.rss_mib = max(self.peak.rss_mib, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> MemorySampler:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="ghost-bench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak.gpu_allocated_mib = torch.cuda.max_memory_allocated() / 2**20
            self.peak.gpu_reserved_mib = torch.cuda.max_memory_reserved() / 2**20
