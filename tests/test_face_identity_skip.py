"""The recogniser is skipped on frames that continue a one-face track, without changing
which face gets which source."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.face import analysis as analysis_module
from ghost_engine.face.analysis import AnalysisModels, AnalysisStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Frame
from ghost_engine.video.reader import read_frames

DEFAULT_REEMBED = analysis_module.REEMBED_EVERY


def _run(media: Path, frames: int, reembed_every: int, monkeypatch) -> tuple[list, int]:
    monkeypatch.setattr(analysis_module, "REEMBED_EVERY", reembed_every)
    config = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")
    stage = build_swap_stage(config, [[media / "faces" / "mark.jpg"]])
    calls = []
    recognizer = stage.analysis.models.recognizer
    embed = recognizer.embed
    recognizer.embed = lambda crops, kps: calls.append(len(crops)) or embed(crops, kps)
    clip = itertools.islice(read_frames(media / "videos" / "nggyup.mp4"), frames)
    out = []
    for frame in clip:
        out += stage.process([frame])
    out += stage.flush()
    per_frame = [[(f["track_id"], f["source"]) for f in frame.meta["faces"]] for frame in out]
    return per_frame, sum(calls)


@pytest.mark.slow
def test_identity_skipped_on_continuing_track_with_same_assignments(media, monkeypatch):
    frames = 24
    always, always_calls = _run(media, frames, 0, monkeypatch)
    skipping, skipping_calls = _run(media, frames, DEFAULT_REEMBED, monkeypatch)
    assert skipping == always
    faces = sum(len(f) for f in always)
    assert always_calls == faces
    assert skipping_calls <= faces // 3, (skipping_calls, faces)
    assert any(src == 0 for frame in skipping for _, src in frame)


def test_scene_cut_detector() -> None:
    cfg = SwapConfig(generator="passthrough", detector="dlib", all_faces=True)
    stage = AnalysisStage(cfg, AnalysisModels(detector=None, recognizer=None), None, HostImageOps())
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    frame = Frame
    assert stage.scene_cut(frame(0, a))  # the first frame starts a shot
    assert not stage.scene_cut(frame(1, np.clip(a.astype(int) + 8, 0, 255).astype(np.uint8)))
    assert stage.scene_cut(frame(2, np.full_like(a, 255) - b // 4))
    assert stage.scene_cut(frame(5, a))  # a gap in frame numbers is treated as a cut
