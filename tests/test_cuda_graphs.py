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
