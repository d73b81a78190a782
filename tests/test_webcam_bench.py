"""The webcam-style measurement the GPU check script calls, run on the CPU."""

from __future__ import annotations

import pytest

from ghost_engine.measure.webcam_latency import (
    TARGET_FPS_FRACTION,
    TARGET_P99_MS,
    measure_webcam_latency,
)


@pytest.mark.slow
def test_measure_on_cpu(media):
    report = measure_webcam_latency(
        media / "videos" / "dance.mp4",
        "cpu",
        seconds=1.5,
        source=media / "faces" / "mark.jpg",
        generator="passthrough",
        detector="dlib",
        resolution=(232, 280),
        detect_max_side=None,
        warmup_frames=1,
    )
    frames = report["frames"]
    assert frames["delivered"] >= 2
    assert frames["captured"] == frames["delivered"] + frames["dropped"]
    settings = report["settings"]
    assert settings["device"] == "cpu" and settings["detector"] == "DlibDetector"
    assert settings["camera_fps"] == pytest.approx(25.0)
    assert settings["resolution"] == [232, 280]
    # the file plays for 1.5 s at 25 frames/s, looping: about 38 frames leave the camera
    assert 30 <= frames["captured"] <= 40
    p99, fps = report["latency_ms"]["p99"], report["fps_delivered"]
    assert report["target"]["p99_ms"] == TARGET_P99_MS
    assert report["target"]["met"] == (p99 < TARGET_P99_MS and fps >= TARGET_FPS_FRACTION * 25)
    assert report["latency_ms"]["p50"] <= p99 <= report["latency_ms"]["max"]
