"""The live loop on real video: dance.mp4 played as a camera at its own frame rate, the
dlib detector, and the passthrough generator (or a colour generator that shows which
identity reached it). A deliberately slow stage makes the loop slower than the camera.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.face.dlib_backend import DlibDetector, DlibLandmarks68
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.face.mask import LAYOUT_68, MaskParams, face_mask, ghost_params
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.face_models import FaceModels
from ghost_engine.pipeline.swap import assemble_stage
from ghost_engine.types import Frame
from ghost_engine.webcam.capture import FileCamera
from ghost_engine.webcam.controls import ControlState, LiveControls
from ghost_engine.webcam.hold import SwapHold
from ghost_engine.webcam.live_stage import LiveSwapStage
from ghost_engine.webcam.loop import LoopConfig, run_live

CONFIG = SwapConfig(
    generator="passthrough", detector="dlib", recognizer="dlib", smoothing="ema", all_faces=True
)
RED, BLUE = np.array([250.0, 6.0, 6.0]), np.array([6.0, 6.0, 250.0])


@pytest.fixture(scope="module")
def models() -> FaceModels:
    """What `build_models(CONFIG)` gives, minus the recogniser that all-faces mode drops
    (loading it costs seconds)."""
    torch.set_num_threads(1)
    return FaceModels(
        detector=DlibDetector(),
        recognizer=None,
        id_encoder=None,
        generator=GeneratorRunner(None),
        landmarks=DlibLandmarks68(),
    )


@pytest.fixture(scope="module")
def dance(media) -> Path:
    return media / "videos" / "dance.mp4"


class ColourNet(torch.nn.Module):
    """AEI-Net's call signature; the face becomes a flat colour from z_id[:3], so the
    output shows which identity embedding reached the generator."""

    def forward(self, xt: torch.Tensor, z: torch.Tensor):
        colour = torch.tanh(z[:, :3])[:, :, None, None]
        return colour.expand_as(xt).contiguous(), None


def colour_ids() -> np.ndarray:
    ids = np.zeros((2, 512), np.float32)
    ids[0, :3] = [3.0, -3.0, -3.0]  # red
    ids[1, :3] = [-3.0, -3.0, 3.0]  # blue
    return ids


def live_stage(models, *, ids: np.ndarray | None = None, sources: int = 1) -> LiveSwapStage:
    """A fresh stage (own tracking state) on the shared models."""
    own = dataclasses.replace(models)
    if ids is not None:
        own.generator = GeneratorRunner(ColourNet())
    stage = assemble_stage(CONFIG, own, ids, None, HostImageOps())
    return LiveSwapStage(stage, sources, time.perf_counter)


def face_colour(image: np.ndarray, face: dict) -> np.ndarray:
    """Mean RGB inside the core of a swapped face's mask, read back from the frame."""
    crop = cv2.warpAffine(image, face["matrix"], (224, 224))
    return crop[face["mask"] > 0.97].mean(0)


class RecordingCamera:
    """A FileCamera that notes when each frame left it (test clock)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.inner = FileCamera(path)
        self.description = self.inner.description
        self.limit = limit
        self.produced: dict[int, float] = {}

    def read(self):
        if len(self.produced) >= self.limit:
            return None
        frame = self.inner.read()
        if frame is not None:
            self.produced[frame.index] = time.perf_counter()
        return frame

    def close(self) -> None:
        self.inner.close()


class RecordingSink:
    def __init__(self, on_write=None) -> None:
        self.written: list[tuple[int, float]] = []
        self.frames: list[Frame] = []
        self.on_write = on_write

    def write(self, frame: Frame, at_s: float) -> None:
        self.frames.append(frame)
        self.written.append((frame.index, time.perf_counter()))
        if self.on_write is not None:
            self.on_write(len(self.written))

    def close(self) -> None:
        return None


class SlowStage:
    """The live stage plus a fixed delay, noting when each call started (test clock)."""

    def __init__(self, inner: LiveSwapStage, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.entered: dict[int, float] = {}

    def apply(self, state: ControlState) -> None:
        self.inner.apply(state)

    def skip(self) -> None:
        self.inner.skip()

    def process(self, frames):
        for f in frames:
            self.entered[f.index] = time.perf_counter()
        time.sleep(self.delay_s)
        return self.inner.process(frames)


def test_file_camera_plays_at_its_own_rate(dance):
    cam = FileCamera(dance, size=(232, 280))
    start = time.perf_counter()
    times, frames = [], []
    for _ in range(8):
        frames.append(cam.read())
        times.append(time.perf_counter() - start)
    cam.close()
    assert [f.index for f in frames] == list(range(8))
    assert frames[0].image.shape == (280, 232, 3)
    assert [f.pts_seconds for f in frames] == pytest.approx([k / 25 for k in range(8)])
    # frame k leaves at k/25 s after the first (never early, at most 25 ms late)
    rel = np.array(times) - times[0]
    expected = np.arange(8) / 25.0
    assert np.all(rel >= expected - 0.002)
    assert np.all(rel <= expected + 0.025)


@pytest.mark.slow
def test_slow_loop_drops_stale_frames_and_reports_true_latency(models, dance):
    camera = RecordingCamera(dance, limit=40)  # 1.6 s of camera at 25 frames/s
    stage = SlowStage(live_stage(models), delay_s=0.12)
    sink = RecordingSink()
    result = run_live(stage, camera, sink, LiveControls(1), LoopConfig(hold_frames=0))
    summary = result.summary

    delivered = [i for i, _ in sink.written]
    assert delivered == [r.index for r in result.records]
    assert all(a < b for a, b in zip(delivered, delivered[1:], strict=False))  # in order
    assert 4 <= len(delivered) < 40
    # no processed frame was older than the newest frame the camera had given out when
    # the loop started on it (10 ms slack for the capture thread's stamp-to-put gap)
    for index in delivered:
        newer = [j for j, t in camera.produced.items() if j > index]
        assert all(camera.produced[j] > stage.entered[index] - 0.010 for j in newer), index
    assert summary["frames"]["captured"] == len(camera.produced) == 40
    assert summary["frames"]["delivered"] == len(delivered)
    assert summary["frames"]["dropped"] == len(camera.produced) - len(delivered)
    assert summary["frames"]["dropped"] > len(delivered)  # 120 ms per frame vs 40 ms
    assert summary["frames"]["with_swap"] >= len(delivered) // 2

    # the report's numbers from the test's own stamps
    latencies = np.array([t - camera.produced[i] for i, t in sink.written]) * 1000
    for p in (50, 95, 99):
        assert summary["latency_ms"][f"p{p}"] == pytest.approx(np.percentile(latencies, p), abs=3)
    assert summary["latency_ms"]["p50"] > 120  # includes the deliberate delay
    out_times = [t for _, t in sink.written]
    fps = (len(out_times) - 1) / (out_times[-1] - out_times[0])
    assert summary["fps_delivered"] == pytest.approx(fps, rel=0.02)
    for rec in result.records:
        assert rec.captured <= rec.taken <= rec.blended <= rec.output
        if rec.faces_swapped:
            assert rec.taken + 0.12 <= rec.detected <= rec.blended
    assert summary["steps_ms"]["detect"]["p50"] >= 120


@pytest.mark.slow
def test_source_switch_takes_effect_on_the_next_frame(models, dance):
    controls = LiveControls(2)
    switch_after = 3

    def on_write(n: int) -> None:
        if n == switch_after:  # a key press while frame 3 is shown
            controls.update(source=1)

    stage = live_stage(models, ids=colour_ids(), sources=2)
    sink = RecordingSink(on_write)
    result = run_live(
        stage, FileCamera(dance), sink, controls, LoopConfig(hold_frames=3, max_frames=7)
    )
    assert len(sink.frames) == 7
    for n, frame in enumerate(sink.frames):
        want = RED if n < switch_after else BLUE
        faces = [f for f in frame.meta["faces"] if "matrix" in f]
        assert faces, f"no face swapped in delivered frame {n}"
        np.testing.assert_allclose(face_colour(frame.image, faces[0]), want, atol=12)
        assert result.records[n].source == (0 if n < switch_after else 1)


def test_lost_face_holds_the_last_swap_then_falls_back(models, dance):
    cam = FileCamera(dance, size=None)
    frames = [cam.read() for _ in range(2)]
    cam.close()
    grey = np.full_like(frames[0].image, 128)
    frames += [Frame(index=2 + k, image=grey.copy()) for k in range(3)]
    stage = live_stage(models, ids=colour_ids(), sources=2)
    hold = SwapHold(max_frames=2)
    out = []
    for frame in frames:
        (done,), _ = stage.process([frame])
        hold.update(done)
        out.append(done)
    last = [f for f in out[1].meta["faces"] if "matrix" in f][0]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    cover = cv2.warpAffine(last["mask"], last["matrix"], grey.shape[1::-1], flags=flags)
    cover = cv2.dilate((cover > 0).astype(np.uint8), np.ones((3, 3), np.uint8))
    assert not out[1].meta["held"]
    for k in (2, 3):  # face lost: the red swap stays where it was
        assert out[k].meta["faces_swapped"] == 0 and out[k].meta["held"]
        np.testing.assert_allclose(face_colour(out[k].image, last), RED, atol=12)
        outside = out[k].image.copy()
        outside[cover > 0] = 128
        assert np.array_equal(outside, grey)
    assert not out[4].meta["held"]
    assert np.array_equal(out[4].image, grey)  # after max_frames: the camera image


def test_blur_control_scales_the_mask_sigmas(models, dance):
    cam = FileCamera(dance)
    first = cam.read()
    cam.close()
    for blur in (1.0, 1.6):
        stage = live_stage(models)
        stage.apply(ControlState(blur=blur))
        frame = Frame(index=0, image=first.image.copy())
        (done,), _ = stage.process([frame])
        face = [f for f in done.meta["faces"] if "matrix" in f][0]
        # passthrough: the swap is the crop itself, so the cheek offset is 0 -> (5, 5, 5)
        crop = cv2.warpAffine(first.image, face["matrix"], (224, 224), borderValue=0.0)
        landmarks = models.landmarks(crop[None])[0]
        base = ghost_params(0.0)
        want = face_mask(
            landmarks,
            MaskParams(base.erode, base.sigma_x * blur, base.sigma_y * blur, base.brow_lift),
            LAYOUT_68,
        )
        np.testing.assert_allclose(face["mask"], want, atol=1e-6)
