"""Landmarks run once per batch (swaps plus the target crops whose mask is due) and give
the same frames as one call per crop."""

from __future__ import annotations

import numpy as np
import pytest

from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import MaskState
from ghost_engine.pipeline.runner import PipelineConfig, run_pipeline
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.video.reader import read_frames


@pytest.mark.parametrize("mode", ["ghost", "adaptive"])
def test_targets_needed_predicts_the_sequential_decisions(mode):
    rng = np.random.default_rng(0)
    keys = []
    frame = 0
    for _ in range(60):  # two tracks, gaps, repeats of a frame across tracks
        frame += int(rng.integers(0, 3))
        keys.append((int(rng.integers(0, 2)), frame))
    state = MaskState(mode)
    state.params(1, 0, 4.0)  # state carried over from an earlier batch
    predicted = state.targets_needed(keys)
    sequential = []
    for track, index in keys:
        last = state._state.get(track)  # what `params` recorded: due unless continuing
        due = mode == "adaptive" or last is None or last[0] != index - 1
        sequential.append(due)
        state.params(track, index, 4.0 if due else None)
    assert predicted == sequential
    assert (mode == "adaptive") == all(predicted)


class _Recording:
    """Wraps the landmark model: records batch sizes; `single` calls it crop by crop."""

    def __init__(self, model, single: bool) -> None:
        self.model, self.single, self.sizes = model, single, []
        self.layout = model.layout

    def __call__(self, crops):
        self.sizes.append(len(crops))
        if self.single:
            return np.concatenate([self.model(c[None]) for c in crops])
        return self.model(crops)


@pytest.mark.slow
def test_one_landmark_call_per_batch_gives_the_per_crop_frames(media):
    cfg = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib", batch_size=3)
    clip = media / "videos" / "nggyup.mp4"
    runs = {}
    for single in (False, True):
        stage = build_swap_stage(cfg, [[media / "faces" / "mark.jpg"]])
        models = stage.synthesis.models
        models.landmarks = _Recording(models.landmarks, single)
        out = []
        run_pipeline(read_frames(clip, end_s=0.4), [stage], out.append, PipelineConfig(3))
        runs[single] = (out, models.landmarks.sizes)
    batched, per_crop = runs[False][0], runs[True][0]
    assert len(batched) == len(per_crop) == 12
    for a, b in zip(batched, per_crop, strict=True):
        assert a.meta["faces_swapped"] == 1
        np.testing.assert_array_equal(a.image, b.image)
    # one call per batch of frames leaving the stage (the smoothing window holds 2 back:
    # 1, 3, 3, 3, then 2 at the end), plus the first frame's target crop (GHOST's mask
    # mode computes the mask parameters on a track's first frame only)
    assert runs[False][1] == [1 + 1, 3, 3, 3, 2]
