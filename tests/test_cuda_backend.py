"""The CUDA backend's code on a CPU ("emulated" flavour): same results as the CPU backend.

The emulated flavour runs every piece of the backend (device frame source and pool,
`DeviceImageOps`, the download stage with pooled pinned frames, the threads) on numpy
arrays with the CPU twins of the kernels; each twin is proven equal to its CUDA kernel
under Numba's simulator in test_kernels_cuda_sim.py. What differs from the CPU backend
is the blend rule (the kernel truncates as GHOST's `get_final_image` does, the CPU path
rounds) and the generator's resizes (torch bilinear vs OpenCV fixed point).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from ghost_engine.backend.cuda.context import device_context
from ghost_engine.backend.cuda.device_ops import DeviceImageOps
from ghost_engine.backend.cuda.kernel_set import cpu_kernels
from ghost_engine.backend.cuda.pipeline import (
    DeviceBackendConfig,
    device_pool_size,
    pinned_pool_size,
)
from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.interfaces import PassStage
from ghost_engine.pipeline.runner import PipelineConfig
from ghost_engine.video.reader import read_frames


def _decode(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [f.to_ndarray(format="rgb24") for f in frames], [f.pts for f in frames]


@pytest.fixture(scope="module")
def runs(media, tmp_path_factory) -> dict:
    """nggyup.mp4, 0-0.5 s, passthrough generator, lossless output; CPU and emulated."""
    from ghost_engine.api import swap_video
    from ghost_engine.face.swap_config import SwapConfig
    from ghost_engine.video.encode import EncodeSettings

    out = tmp_path_factory.mktemp("cuda_backend")
    # batch 3 with the window smoother's look-ahead of 2: batches straddle the held frames
    cfg = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib", batch_size=3)
    results = {}
    emulated = DeviceBackendConfig(flavour="emulated")
    lossless_rgb = EncodeSettings(codec="ffv1")
    lossless_yuv = EncodeSettings(codec="h264", crf=0, preset="ultrafast")  # QP 0: exact YUV
    for name, backend, encode in (
        ("cpu", None, lossless_rgb),
        ("emulated", emulated, lossless_rgb),
        ("cpu_yuv", None, lossless_yuv),
        ("emulated_yuv", emulated, lossless_yuv),
    ):
        report = swap_video(
            media / "videos" / "nggyup.mp4",
            [media / "faces" / "mark.jpg"],
            out / f"{name}.mkv",
            config=cfg,
            encode=encode,
            end_s=0.5,
            progress="quiet",
            backend=backend,
        )
        results[name] = (report, *_decode(out / f"{name}.mkv"))
    results["target"] = media / "videos" / "nggyup.mp4"
    return results


@pytest.mark.slow
def test_emulated_backend_matches_the_cpu_backend(runs):
    cpu_report, cpu_frames, cpu_pts = runs["cpu"]
    emu_report, emu_frames, emu_pts = runs["emulated"]
    assert len(cpu_frames) == len(emu_frames) == 15
    assert emu_pts == cpu_pts
    assert emu_report.frames_with_faces == cpu_report.frames_with_faces == 15
    diffs = [
        np.abs(a.astype(int) - b.astype(int)) for a, b in zip(cpu_frames, emu_frames, strict=True)
    ]
    assert max(int(d.max()) for d in diffs) <= 2  # blend truncation vs rounding
    assert max(float(d.mean()) for d in diffs) < 0.02
    # and the paste really changed the frames (the comparison is not of two copies)
    inputs = [f.image for f in read_frames(runs["target"], end_s=0.5)]
    changed = [
        np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(inputs, emu_frames, strict=True)
    ]
    assert min(changed) >= 5  # passthrough: the crop round trip softens the face
    summary = emu_report.settings["cuda_backend"]
    assert summary["flavour"] == "emulated" and summary["decode"] == "upload"
    assert "GPU" in summary["decode_fallback_reason"]
    assert summary["encoder_input"] == "rgb24"  # FFV1 here stores RGB: no 4:2:0 on the way


def test_yuv420p_outputs_take_i420_made_on_the_device(runs):
    """The encoder's own RGB -> yuv420p (swscale) against our device kernel's I420."""
    cpu_report, cpu_frames, _ = runs["cpu_yuv"]
    emu_report, emu_frames, _ = runs["emulated_yuv"]
    assert emu_report.settings["cuda_backend"]["encoder_input"] == "i420 from the device"
    assert len(cpu_frames) == len(emu_frames) == 15
    diffs = [
        np.abs(a.astype(int) - b.astype(int)) for a, b in zip(cpu_frames, emu_frames, strict=True)
    ]
    assert max(float(d.mean()) for d in diffs) < 0.2
    assert max(int(d.max()) for d in diffs) <= 8  # colour edges: averaged vs picked chroma


class _ZShiftGenerator(torch.nn.Module):
    """A small stand-in for AEI-Net's interface: the output depends on the pixels and on
    each face's own z, so a batching or z-slicing error changes the result."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        seed = torch.Generator().manual_seed(0)
        torch.nn.init.normal_(self.conv.weight, 0.0, 0.2, generator=seed)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.tanh(self.conv(x) + z[:, :3, None, None]), None


def test_device_swaps_match_the_host_generator_path(media):
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(media / "faces" / "mark.jpg")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(5)
    crops = np.stack([cv2.resize(photo, (224, 224)), cv2.resize(photo[::-1], (224, 224))] * 2)
    crops = np.ascontiguousarray(crops[:3])
    z = rng.normal(0, 0.5, (3, 512)).astype(np.float32)
    runner = GeneratorRunner(_ZShiftGenerator(), "cpu", batch_size=2)
    ops = DeviceImageOps(device_context("emulated"), cpu_kernels())

    def timed(_step):
        from contextlib import nullcontext

        return nullcontext()

    host = HostImageOps().swaps(runner, None, crops, z, timed)
    device = ops.swaps(runner, None, crops, z, timed)
    assert device.shape == host.shape == (3, 224, 224, 3)
    diff = np.abs(device.astype(int) - host.astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.3  # OpenCV fixed-point vs float resizes
    assert np.abs(host[0].astype(int) - host[2].astype(int)).mean() > 5  # z matters


def test_pool_sizes_cover_every_frame_in_flight():
    pipeline = PipelineConfig(batch_size=8, queue_batches=2)
    # decoder B + Q*B, analysis B+L, then per face stage Q*(B+L) queued + (B+L) working
    assert device_pool_size(pipeline, 2) == 8 + 16 + 10 + 2 * (20 + 10) + 1
    assert pinned_pool_size(pipeline, 2) == 4 * 10 + 1


def test_device_crops_and_masks_match_the_host_ops(media):
    """Crops from interleaved frames come back in job order; masks within one level."""
    import cv2

    from ghost_engine.face.mask import LAYOUTS, ghost_params
    from ghost_engine.types import Frame

    recording = np.load(Path(__file__).resolve().parent.parent / "bench/data/nggyup_faces.npz")
    frames = [f for f in read_frames(media / "videos" / "nggyup.mp4", end_s=0.1)][:2]
    jobs = [(frames[0], recording["kps"][0]), (frames[1], recording["kps"][1])]
    jobs.append((frames[0], recording["kps"][1] + 7.0))  # back to the first frame
    host, ops = HostImageOps(), DeviceImageOps(device_context("emulated"), cpu_kernels())
    want, got = host.crops(jobs), ops.crops(jobs)
    np.testing.assert_array_equal(got.matrices, want.matrices)
    np.testing.assert_array_equal(got.images, want.images)
    assert np.abs(want.images[0].astype(int) - want.images[2].astype(int)).mean() > 5

    layout = LAYOUTS["68"]
    for offset in (-4.0, 0.0, 6.0):  # erosion and dilation, different blurs
        params = ghost_params(offset)
        points = recording["landmarks68"][0]
        want_mask = host.mask(points, params, layout)
        got_mask = ops.host_mask(ops.mask(points, params, layout))
        assert np.abs(got_mask - want_mask).max() <= 1 / 255 + 1e-6
        assert want_mask.max() == 1.0 and want_mask.min() == 0.0
    frame = Frame(0, cv2.GaussianBlur(frames[0].image, (0, 0), 2))
    assert ops.thumbnail(frame).shape == host.thumbnail(frame).shape == (36, 64)
    assert np.abs(ops.thumbnail(frame) - host.thumbnail(frame)).max() < 1.0


def test_a_failing_stage_ends_the_run_while_the_decoder_waits_for_buffers(media):
    """A pool-bound decoder must not keep the run waiting after a later step failed."""
    import threading
    import time

    from ghost_engine.backend.cuda.decode import open_device_source
    from ghost_engine.pipeline.runner import run_pipeline

    class Broken(PassStage):
        name = "broken"

        def process(self, frames):
            time.sleep(0.2)  # the decoder fills the pool meanwhile, holding every buffer
            raise RuntimeError("stage broke")

    stop = threading.Event()
    source = open_device_source(
        media / "videos" / "nggyup.mp4", device_context("emulated"), 3, stop=stop
    )
    outcome: list = []

    def run() -> None:
        try:
            run_pipeline(
                source, [Broken()], lambda f: None, PipelineConfig(batch_size=2), stop=stop
            )
        except RuntimeError as exc:
            outcome.append(exc)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the run hung after the stage failed"
    assert outcome and "stage broke" in str(outcome[0])
    assert time.monotonic() - started < 10
    assert stop.is_set()
