"""The stage's live controls: a source row for every face, and the mask blur factor."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Frame


@pytest.fixture(scope="module")
def photo(media: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media / "faces" / "mark.jpg")), cv2.COLOR_BGR2RGB)


def _mask(stage, image: np.ndarray, index: int) -> np.ndarray:
    (frame,) = stage.process([Frame(index, image.copy())]) + stage.flush()
    return next(f["mask"] for f in frame.meta["faces"] if f["source"] is not None)


def test_mask_blur_scale_widens_the_soft_edge(media: Path, photo: np.ndarray) -> None:
    config = SwapConfig(
        generator="passthrough", detector="dlib", recognizer="dlib", smoothing="none"
    )
    stage = build_swap_stage(config, [[media / "faces" / "mark.jpg"]])
    sharp = _mask(stage, photo, 0)
    stage.overrides.blur_scale = 2.0
    soft = _mask(stage, photo, 10)  # a gap: the track and its mask settings start afresh
    edge = lambda m: int(((m > 0.02) & (m < 0.98)).sum())  # noqa: E731
    assert edge(soft) > 1.5 * edge(sharp)


def test_active_source_overrides_the_matched_row(media: Path) -> None:
    config = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")
    stage = build_swap_stage(config, [[media / "faces" / "mark.jpg"]])
    synthesis = stage.synthesis
    synthesis.source_ids = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
    jobs = [SimpleNamespace(source=0), SimpleNamespace(source=0)]
    assert synthesis.rows(jobs) == [0, 0]
    stage.overrides.source = 2
    assert synthesis.rows(jobs) == [2, 2]
    stage.overrides.source = 3
    with pytest.raises(ValueError, match="source 3 does not exist"):
        synthesis.rows(jobs)
