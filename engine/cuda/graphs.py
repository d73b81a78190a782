"""A network's forward pass replayed from CUDA graphs, one per batch-size bucket.

The generator is hundreds of small kernels per face; at the batch sizes a stream gives
(one face per frame, a few frames per batch) launching them from Python costs as much as
running them. A graph captured once per bucket replays them in one launch. Batches are
padded up to the next bucket (powers of two up to the largest batch), so a stream needs
a handful of captures, not one per size. Where capture fails (an operation the network
uses cannot be captured), the failure is logged once and the eager forward is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger(__name__)


def bucket(n: int, largest: int) -> int:
    """The batch size `n` is padded to: the next power of two, at most `largest` (and
    `n` itself when it exceeds `largest`)."""
    if n <= 0:
        raise ValueError(f"batch size must be positive, got {n}")
    size = 1
    while size < n:
        size *= 2
    return n if n > largest else min(size, largest)


@dataclass
class _Captured:
    graph: Any
    inputs: tuple[Any, ...]
    output: Any


class GraphedForward:
    """`forward(*inputs) -> tensor` through CUDA graphs (see module doc).

    `forward` must take and return CUDA tensors whose first axis is the batch; inputs
    are copied into the graph's static buffers, the output is copied out (the next
    replay overwrites it). One instance per thread: replays share static buffers.
    """

    def __init__(self, forward: Callable[..., Any], largest: int, warmup: int = 2) -> None:
        self.forward = forward
        self.largest = largest
        self.warmup = warmup
        self._graphs: dict[int, _Captured] = {}
        self._pool: Any = None
        self.failed: str | None = None  # why capture failed; eager from then on

    @property
    def captured_sizes(self) -> list[int]:
        return sorted(self._graphs)

    def __call__(self, *inputs: Any) -> Any:
        n = int(inputs[0].shape[0])
        if self.failed is not None:
            return self.forward(*inputs)
        size = bucket(n, self.largest)
        captured = self._graphs.get(size)
        if captured is None:
            captured = self._capture(size, inputs)
            if captured is None:
                return self.forward(*inputs)
        for static, x in zip(captured.inputs, inputs, strict=True):
            static[:n].copy_(x)
            if n < size:
                static[n:].zero_()  # padding rows: defined values, results discarded
        captured.graph.replay()
        return captured.output[:n].clone()

    def _capture(self, size: int, like: tuple[Any, ...]) -> _Captured | None:
        import torch

        statics = []
        for x in like:
            shape = (size, *x.shape[1:])
            fmt = (
                torch.channels_last
                if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                else torch.contiguous_format
            )
            static = torch.zeros(shape, dtype=x.dtype, device=x.device)
            statics.append(static.contiguous(memory_format=fmt))
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self.forward(*statics)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: the decode, download and encode threads keep using the GPU
            # while this thread captures
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                output = self.forward(*statics)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: run eagerly
            self.failed = f"{type(exc).__name__}: {exc}"
            _log.warning("CUDA graph capture failed, running eagerly: %s", self.failed)
            return None
        if self._pool is None:
            self._pool = graph.pool()
        captured = _Captured(graph, tuple(statics), output)
        self._graphs[size] = captured
        return captured
