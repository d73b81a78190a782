"""A network's forward pass replayed from CUDA graphs, one per batch-size bucket.

The generator is hundreds of small kernels per face; at the batch sizes a stream gives
(one face per frame, a few frames per batch) launching them from Python costs as much as
running them. A graph captured once per bucket replays them in one launch. Batches are
padded up to the next bucket (powers of two up to the largest batch), so a stream needs
a handful of captures, not one per size; without a largest batch, each distinct set of
input shapes gets its own graph (the detector: one frame size per video). Where capture
fails (an operation the network uses cannot be captured), the failure is logged once
and the eager forward is used. With `capture_all`, the first call captures every bucket
up to the largest batch, so a batch size first met mid-stream (a frame with more faces,
the last short batch) replays instead of stopping the stream for a capture.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_log = logging.getLogger(__name__)

# One capture at a time in the process: stage threads capturing at once would record
# into each other's graphs.
_CAPTURE_LOCK = threading.Lock()


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
    output: Any  # a tensor, or a list/tuple of tensors


class GraphedForward:
    """`forward(*inputs) -> tensor(s)` through CUDA graphs (see module doc).

    `forward` takes and returns CUDA tensors (one, or a list/tuple); with `largest`, the
    first axis of inputs and outputs is the batch and batches are padded to buckets.
    Inputs are copied into the graph's static buffers, outputs are copied out (the next
    replay overwrites them). One instance per thread: replays share static buffers.
    """

    def __init__(
        self,
        forward: Callable[..., Any],
        largest: int | None = None,
        warmup: int = 2,
        *,
        capture_all: bool = False,
    ) -> None:
        if capture_all and largest is None:
            raise ValueError("capture_all needs a largest batch to know the buckets")
        self.forward = forward
        self.largest = largest
        self.warmup = warmup
        self.capture_all = capture_all
        self._graphs: dict[Any, _Captured] = {}
        self._pool: Any = None
        self.failed: str | None = None  # why capture failed; eager from then on

    @property
    def captured_sizes(self) -> list[Any]:
        """Batch buckets (with `largest`) or input shapes captured so far."""
        if self.largest is None:
            return sorted(self._graphs)
        return sorted({key[0] for key in self._graphs})

    def buckets(self) -> list[int]:
        """Every batch size a stream is padded to (powers of two, then the largest)."""
        if self.largest is None:
            return []
        return sorted({bucket(n, self.largest) for n in range(1, self.largest + 1)})

    def __call__(self, *inputs: Any) -> Any:
        if self.failed is not None:
            return self.forward(*inputs)
        n = int(inputs[0].shape[0])
        if self.largest is None:
            size = n
            key: Any = tuple(tuple(x.shape) for x in inputs)
        else:
            size = bucket(n, self.largest)
            key = (size, *((tuple(x.shape[1:]), str(x.dtype)) for x in inputs))
        captured = self._graphs.get(key)
        if captured is None and self.capture_all and size <= (self.largest or 0):
            self._capture_buckets(inputs)
            captured = self._graphs.get(key)
            if captured is None and self.failed is not None:
                return self.forward(*inputs)
        if captured is None:
            captured = self._capture(key, size, inputs)
            if captured is None:
                return self.forward(*inputs)
        for static, x in zip(captured.inputs, inputs, strict=True):
            static[:n].copy_(x)
            if n < size:
                static[n:].zero_()  # padding rows: defined values, results discarded
        captured.graph.replay()
        rows = slice(None) if size == n else slice(0, n)
        out = captured.output
        if isinstance(out, (list, tuple)):
            return type(out)(t[rows].clone() for t in out)
        return out[rows].clone()

    def _capture_buckets(self, like: tuple[Any, ...]) -> None:
        """Captures every bucket for inputs shaped and typed like `like` (one pass, at the
        first call); stops at the first failure, which turns graphs off for good."""
        tail = tuple((tuple(x.shape[1:]), str(x.dtype)) for x in like)
        for size in self.buckets():
            key = (size, *tail)
            if key not in self._graphs and self._capture(key, size, like) is None:
                return

    def _capture(self, key: Any, size: int, like: tuple[Any, ...]) -> _Captured | None:
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
        caller = None
        try:
            caller = torch.cuda.current_stream()
            with _CAPTURE_LOCK:
                side = torch.cuda.Stream()
                side.wait_stream(caller)
                with torch.cuda.stream(side):
                    for _ in range(self.warmup):
                        self.forward(*statics)
                caller.wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                # thread_local: the decode, download and encode threads keep using the
                # GPU while this thread captures (on its own stream, not a shared one)
                with torch.cuda.graph(
                    graph, pool=self._pool, stream=side, capture_error_mode="thread_local"
                ):
                    output = self.forward(*statics)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: run eagerly
            self.failed = f"{type(exc).__name__}: {exc}"
            _log.warning("CUDA graph capture failed, running eagerly: %s", self.failed)
            return None
        finally:
            if caller is not None:  # a failed capture leaves its stream current
                torch.cuda.set_stream(caller)
        if self._pool is None:
            self._pool = graph.pool()
        captured = _Captured(graph, tuple(statics), output)
        self._graphs[key] = captured
        return captured
