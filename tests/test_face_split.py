"""`SwapStage.split()`: analysis and synthesis in two threads give the one-stage result."""

from __future__ import annotations

import numpy as np
import pytest

from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.runner import PipelineConfig, run_pipeline
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.video.reader import read_frames


@pytest.mark.slow
def test_split_stages_give_the_same_frames(media):
    cfg = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib", batch_size=3)
    photo = [[media / "faces" / "mark.jpg"]]
    clip = media / "videos" / "nggyup.mp4"
    results = {}
    for name in ("one", "split"):
        stage = build_swap_stage(cfg, photo)
        stages = [stage] if name == "one" else stage.split()
        out = []
        stats = run_pipeline(
            read_frames(clip, end_s=0.4), stages, out.append, PipelineConfig(batch_size=3)
        )
        results[name] = (out, stats, stage.timings())
    one, split = results["one"][0], results["split"][0]
    assert [f.index for f in split] == [f.index for f in one] == list(range(12))
    for a, b in zip(one, split, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        assert a.meta["faces_swapped"] == b.meta["faces_swapped"] == 1
    steps = results["split"][1].steps
    assert {"face-analysis", "face-synthesis"} <= set(steps)
    assert steps["face-synthesis"].frames == 12
    assert results["split"][2]["paste"] > 0 and results["split"][2]["detect"] > 0
