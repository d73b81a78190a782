"""Webcam latency: a video file as the camera at its own frame rate (720p by default),
the live stage at batch 1, no output. The GPU check script (`bench/gpu_check.py`,
section `webcam`) runs it on the GPU.

    from ghost_engine.measure.webcam_latency import measure_webcam_latency
    from ghost_engine.runtime.devices import CUDA
    report = measure_webcam_latency(Path("nggyup.mp4"), CUDA, seconds=10.0)

The generator defaults to "random" (fill-rule weights: the real network and cost, no
checkpoint needed); `all_faces` avoids a recogniser pass per frame. The result holds the
summary of `run_live` plus the settings and whether the realtime target (p99 latency
under one camera frame, frames/s at the camera's rate) was met.
"""

from __future__ import annotations

import time
from pathlib import Path

from ghost_engine.runtime.devices import CUDA
from ghost_engine.webcam.capture import FileCamera
from ghost_engine.webcam.controls import LiveControls
from ghost_engine.webcam.live_stage import build_live_stage
from ghost_engine.webcam.loop import LoopConfig, run_live
from ghost_engine.webcam.sinks import NullSink

TARGET_P99_MS = 33.0
TARGET_FPS_FRACTION = 0.95  # delivered frames/s at least this share of the camera's


def default_source() -> Path:
    from ghost_engine.shared_paths import media_dir

    return media_dir() / "faces" / "elon_musk.jpg"


def measure_webcam_latency(
    video: Path,
    device: str = CUDA,
    seconds: float = 10.0,
    *,
    source: Path | None = None,
    generator: str = "random",
    detector: str = "auto",
    resolution: tuple[int, int] | None = (1280, 720),
    detect_max_side: int | None = 640,
    warmup_frames: int = 5,
) -> dict:
    """Play `video` as a camera for `seconds` (looping it) through the live stage on
    `device`; returns the latency report with settings and the target check."""
    from ghost_engine.face.swap_config import SwapConfig

    config = SwapConfig(
        generator=generator,
        detector=detector,
        recognizer="dlib",
        smoothing="ema",
        all_faces=True,
        batch_size=1,
        device=device,
    )
    started = time.perf_counter()
    camera = FileCamera(Path(video), size=resolution, loop=True)
    fps = float(camera.info.rate)
    stage = build_live_stage(
        config, [[Path(source or default_source())]], detect_max_side=detect_max_side
    )
    built = time.perf_counter()
    warm = FileCamera(Path(video), size=resolution)
    for _ in range(warmup_frames):  # first calls allocate, compile and autotune
        frame = warm.read()
        if frame is None:
            break
        stage.process([frame])
    warm.close()
    result = run_live(stage, camera, NullSink(), LiveControls(1), LoopConfig(max_seconds=seconds))
    stage.close()
    summary = result.summary
    p99 = summary["latency_ms"]["p99"]
    delivered = summary["fps_delivered"]
    return {
        **summary,
        "settings": {
            "video": str(video),
            "device": device,
            "generator": generator,
            "detector": type(stage.detector.fn).__name__,
            "resolution": list(resolution) if resolution else None,
            "camera_fps": fps,
            "seconds": seconds,
            "warmup_frames": warmup_frames,
            "setup_s": built - started,
        },
        "target": {
            "p99_ms": TARGET_P99_MS,
            "fps": fps,
            "met": p99 is not None
            and delivered is not None
            and p99 < TARGET_P99_MS
            and delivered >= TARGET_FPS_FRACTION * fps,
        },
    }
