"""The generator through ONNX Runtime (the CPU default) gives PyTorch's faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ghost_engine import networks
from ghost_engine.backend.sessions import SessionOpener
from ghost_engine.export.onnx_cache import cached_onnx, weights_fingerprint
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.networks.fill import fill_module
from ghost_engine.runtime.onnx_generator import OnnxGenerator


def test_auto_runtime_follows_the_measured_defaults() -> None:
    name = "G_unet_2blocks"
    assert SessionOpener("cpu").generator_runtime(name, SwapConfig().runtime) == "onnxruntime"
    assert SessionOpener("cuda").generator_runtime(name, "auto") == "torch"
    assert SessionOpener("cpu").generator_runtime(name, "torch") == "torch"


def test_fingerprint_changes_with_the_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "G.pth"
    ckpt.write_bytes(b"a")
    first = weights_fingerprint(ckpt)
    ckpt.write_bytes(b"ab")
    assert weights_fingerprint(ckpt) != first
    assert weights_fingerprint(None) == "random"


@pytest.mark.slow
def test_onnx_runner_matches_torch_runner_on_real_crops(media: Path, tmp_path: Path) -> None:
    crops = np.stack(
        [
            cv2.cvtColor(cv2.imread(str(media / "aligned" / f"target{i}.png")), cv2.COLOR_BGR2RGB)
            for i in (1, 2, 3)
        ]
    )
    z = np.random.default_rng(0).standard_normal((3, 512)).astype(np.float32)
    name = "G_unet_1blocks"
    path = cached_onnx(name, None, tmp_path)
    stamp = path.stat().st_mtime_ns
    assert cached_onnx(name, None, tmp_path) == path and path.stat().st_mtime_ns == stamp

    torch_runner = GeneratorRunner(fill_module(networks.build(name)), "cpu", batch_size=2)
    onnx_runner = GeneratorRunner(OnnxGenerator(path), "cpu", batch_size=2)
    assert (torch_runner.runtime, onnx_runner.runtime) == ("torch", "onnxruntime")
    expected, got = torch_runner(crops, z), onnx_runner(crops, z)
    assert got.shape == expected.shape == (3, 224, 224, 3)
    diff = np.abs(got.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert np.abs(expected.astype(int) - crops.astype(int)).mean() > 10  # a real network ran
