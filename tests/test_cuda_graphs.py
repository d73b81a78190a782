"""CUDA-graph batching rules, and that only a GPU context replays from graphs.

Capture itself needs a GPU: `bench/gpu_check.py` (section `generator_graphs`) compares
the graphed generator step with the eager one there, pixel for pixel.
"""

from __future__ import annotations

import pytest
import torch

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.device_ops import DeviceImageOps, DeviceOpsConfig
from ghost_engine.backend.cuda.kernel_set import cpu_kernels
from ghost_engine.runtime.cuda_graphs import GraphedForward, bucket


@pytest.mark.parametrize(
    ("n", "largest", "expected"),
    [(1, 8, 1), (2, 8, 2), (3, 8, 4), (5, 8, 8), (8, 8, 8), (6, 6, 6), (5, 6, 6), (9, 8, 9)],
)
def test_batches_pad_to_power_of_two_buckets_up_to_the_largest(n, largest, expected):
    assert bucket(n, largest) == expected


def test_bucket_rejects_empty_batches():
    with pytest.raises(ValueError, match="positive"):
        bucket(0, 8)


class _Generator:
    def __init__(self) -> None:
        self.module = torch.nn.Identity()
        self.batch_size = 4


def test_off_the_gpu_the_generator_runs_eagerly():
    ops = DeviceImageOps(device_context("emulated"), cpu_kernels(), DeviceOpsConfig())
    forward = ops._forward(_Generator())
    assert not isinstance(forward, GraphedForward)
    assert ops.graph_summary() == {"captured_batch_sizes": [], "failed": None}


def test_a_failed_capture_falls_back_to_the_eager_forward_for_good(monkeypatch):
    """On a machine without CUDA the capture raises; the result must still be right."""
    calls = []

    def forward(x):
        calls.append(len(x))
        return x * 2

    if torch.cuda.is_available():  # fail the capture as PyTorch's CPU build does

        def no_cuda():
            raise AssertionError("Torch not compiled with CUDA enabled")

        monkeypatch.setattr(torch.cuda, "current_stream", no_cuda)
    graphed = GraphedForward(forward, largest=8)
    x = torch.arange(6.0).reshape(3, 2)
    torch.testing.assert_close(graphed(x), x * 2)
    assert graphed.failed and graphed.captured_sizes == []
    torch.testing.assert_close(graphed(x[:1]), x[:1] * 2)  # eager from then on
    assert calls[-2:] == [3, 1]


@pytest.mark.parametrize(("largest", "expected"), [(8, [1, 2, 4, 8]), (6, [1, 2, 4, 6]), (1, [1])])
def test_the_buckets_are_the_padded_sizes_of_every_batch_up_to_the_largest(largest, expected):
    graphed = GraphedForward(lambda x: x, largest=largest)
    assert graphed.buckets() == expected
    assert graphed.buckets() == sorted({bucket(n, largest) for n in range(1, largest + 1)})


class _ReplayGraph:
    """Stands in for a captured CUDA graph: replay runs the forward on the static inputs
    into the static output, as a real graph's kernels would."""

    def __init__(self, forward, statics, output):
        self.forward, self.statics, self.output = forward, statics, output

    def replay(self):
        self.output.copy_(self.forward(*self.statics))


def _fake_capture(graphed, sizes):
    from ghost_engine.runtime import cuda_graphs

    def capture(key, size, like):
        sizes.append(size)
        statics = tuple(torch.zeros((size, *x.shape[1:]), dtype=x.dtype) for x in like)
        output = graphed.forward(*statics).clone()
        captured = cuda_graphs._Captured(
            _ReplayGraph(graphed.forward, statics, output), statics, output
        )
        graphed._graphs[key] = captured
        return captured

    return capture


def test_capture_all_captures_every_bucket_at_the_first_call_and_none_later(monkeypatch):
    """A batch size first met mid-stream must replay, not stop the stream to capture."""
    graphed = GraphedForward(lambda x: x * 3, largest=8, capture_all=True)
    sizes: list[int] = []
    monkeypatch.setattr(graphed, "_capture", _fake_capture(graphed, sizes))
    x = torch.arange(10.0).reshape(5, 2)
    torch.testing.assert_close(graphed(x[:3]), x[:3] * 3)
    assert sizes == [1, 2, 4, 8]
    for n in (5, 1, 2, 8):
        torch.testing.assert_close(graphed(torch.ones(n, 2)), torch.full((n, 2), 3.0))
    assert sizes == [1, 2, 4, 8]
    assert graphed.captured_sizes == [1, 2, 4, 8]
    torch.testing.assert_close(graphed(torch.ones(9, 2)), torch.full((9, 2), 3.0))
    assert sizes == [1, 2, 4, 8, 9]  # past the largest: its own graph, as before


def test_capture_all_falls_back_to_eager_when_capture_fails(monkeypatch):
    if torch.cuda.is_available():

        def no_cuda():
            raise AssertionError("Torch not compiled with CUDA enabled")

        monkeypatch.setattr(torch.cuda, "current_stream", no_cuda)
    graphed = GraphedForward(lambda x: x + 1, largest=4, capture_all=True)
    x = torch.zeros(3, 2)
    torch.testing.assert_close(graphed(x), x + 1)
    assert graphed.failed and graphed.captured_sizes == []


def test_capture_all_needs_a_largest_batch():
    with pytest.raises(ValueError, match="largest"):
        GraphedForward(lambda x: x, capture_all=True)


def test_identities_reach_the_device_unchanged_off_the_gpu():
    import numpy as np

    ops = DeviceImageOps(device_context("emulated"), cpu_kernels(), DeviceOpsConfig())
    z = np.random.default_rng(0).standard_normal((3, 512)).astype(np.float32)
    got = ops._identities(z)
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    np.testing.assert_array_equal(got.numpy(), z)
