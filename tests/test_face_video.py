"""The face stages on real video: landmark jitter after smoothing, invisible seams."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_video_fixtures import first_frames

from ghost_engine.face.dlib_backend import DlibDetector
from ghost_engine.face.paste import paste_back
from ghost_engine.face.smoothing import (
    VelocitySmoother,
    WindowSmoother,
    ghost_window_smooth,
    make_smoother,
)
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Frame


def _points(path: Path, count: int) -> list[np.ndarray | None]:
    """Raw dlib 5 points of the largest face in each of the first `count` frames."""
    found = DlibDetector()(first_frames(path, count))
    return [
        max(faces, key=lambda f: float(np.prod(f.box[2:] - f.box[:2]))).kps.astype(np.float64)
        if faces
        else None
        for faces in found
    ]


@pytest.fixture(scope="module")
def nggyup_points(media) -> list[np.ndarray | None]:
    """Raw points of the first 150 frames of nggyup.mp4 (None: no face)."""
    return _points(media / "videos" / "nggyup.mp4", 150)


@pytest.fixture(scope="module")
def dance_points(media) -> list[np.ndarray | None]:
    """Raw points of the first 150 frames of dance.mp4 (a dancer: fast real motion)."""
    return _points(media / "videos" / "dance.mp4", 150)


def _is_cut(a: np.ndarray, b: np.ndarray) -> bool:
    """A move of the left eye larger than the eye distance: a cut or another face."""
    return bool(np.linalg.norm(b[0] - a[0]) > np.linalg.norm(a[1] - a[0]))


def jitter(raw: list, smoothed: list) -> float:
    """Mean |p[t+1] - 2p[t] + p[t-1]| over the 5 points, on raw triples without gaps/cuts."""
    acc = []
    for t in range(1, len(raw) - 1):
        a, b, c = raw[t - 1], raw[t], raw[t + 1]
        if a is None or b is None or c is None or _is_cut(a, b) or _is_cut(b, c):
            continue
        s = smoothed[t - 1 : t + 2]
        acc.append(np.linalg.norm(s[2] - 2 * s[1] + s[0], axis=1).mean())
    assert len(acc) > 40
    return float(np.mean(acc))


def lag(raw: list, smoothed: list) -> float:
    """Mean distance of the smoothed points from the raw ones, in eye distances: what a
    smoother gives up for its jitter (a frozen output has none of the one, all of this)."""
    acc = [
        np.linalg.norm(s - r, axis=1).mean() / np.linalg.norm(r[1] - r[0])
        for r, s in zip(raw, smoothed, strict=True)
        if r is not None
    ]
    return float(np.mean(acc))


def _stream(smoother, points: list) -> list:
    """Run a smoother as the stage does: push every frame, pop after its look-ahead."""
    out = [None] * len(points)
    for i, kps in enumerate(points):
        smoother.push(i, {} if kps is None else {0: kps})
        done = i - smoother.lookahead
        if done >= 0:
            out[done] = smoother.pop(done).get(0)
    for done in range(max(len(points) - smoother.lookahead, 0), len(points)):
        out[done] = smoother.pop(done).get(0)
    return out


@pytest.mark.slow
def test_smoothing_cuts_jitter_without_lag(nggyup_points):
    raw = nggyup_points
    assert sum(p is not None for p in raw[:60]) >= 54  # dlib finds the face in 56 of 60
    j_raw = jitter(raw, raw)
    window = _stream(WindowSmoother(), raw)
    ema = _stream(VelocitySmoother(), raw)
    # measured over 150 frames: window 0.40 of the raw jitter at 3.7% of the eye distance,
    # ema (causal) 0.63 at 5.5%
    assert jitter(raw, window) <= 0.5 * j_raw and lag(raw, window) <= 0.05
    assert jitter(raw, ema) <= 0.7 * j_raw and lag(raw, ema) <= 0.06
    # the pair of measures cannot be gamed: a frozen output has no jitter but lags
    frozen = [None if p is None else raw[0] for p in raw]
    assert jitter(raw, frozen) == 0.0 and lag(raw, frozen) > 0.2


@pytest.mark.slow
def test_smoothing_on_a_dancer_keeps_up(dance_points):
    """Fast real motion: little jitter to remove, and none of the motion may be lost."""
    raw = dance_points
    window = _stream(WindowSmoother(), raw)
    ema = _stream(VelocitySmoother(), raw)
    # measured: window 0.84 of the raw jitter at 3.8% lag, ema 1.09 at 8.4%
    assert jitter(raw, window) <= 0.9 * jitter(raw, raw) and lag(raw, window) <= 0.05
    assert lag(raw, ema) <= 0.09


@pytest.mark.slow
def test_ghost_mode_is_ghosts_offline_rule(nggyup_points):
    raw = nggyup_points
    exact = _stream(make_smoother("ghost"), raw)
    reference = ghost_window_smooth(raw, n=2, jump=5.0)
    for a, b in zip(exact, reference, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, atol=1e-9)
    # GHOST's 5-px rule hardly smooths this 720p clip; the default does (why it differs)
    assert jitter(raw, reference) > 0.85 * jitter(raw, raw)
    assert jitter(raw, _stream(WindowSmoother(), raw)) < 0.5 * jitter(raw, reference)


def _gradient(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


def _boundary(mask: np.ndarray, matrix: np.ndarray, shape) -> np.ndarray:
    m = cv2.warpAffine(
        mask, matrix, (shape[1], shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    )
    return (m > 0.2) & (m < 0.8)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ghost", "adaptive"])
def test_passthrough_seams_are_invisible(media, mode):
    images = first_frames(media / "videos" / "nggyup.mp4", 4)
    config = SwapConfig(
        generator="passthrough", detector="dlib", recognizer="dlib", all_faces=True, mask_mode=mode
    )
    stage = build_swap_stage(config, [[media / "faces" / "elon_musk.jpg"]])
    frames = [Frame(i, img.copy()) for i, img in enumerate(images)]
    out = stage.process(frames[:3]) + stage.process(frames[3:]) + stage.flush()
    assert [f.index for f in out] == list(range(4))
    checked = 0
    for frame, original in zip(out, images, strict=True):
        assert frame.meta["faces_swapped"] == 1
        face = frame.meta["faces"][0]
        band = _boundary(face["mask"], face["matrix"], original.shape)
        assert band.sum() > 2000
        g_in = _gradient(original)[band].mean()
        g_out = _gradient(frame.image)[band].mean()
        assert abs(g_out - g_in) <= 0.1 * g_in, (frame.index, g_in, g_out)
        # outside the face region nothing changed at all
        untouched = (
            cv2.warpAffine(
                np.ones((224, 224), np.float32),
                face["matrix"],
                original.shape[1::-1],
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            )
            == 0
        )
        assert np.array_equal(frame.image[untouched], original[untouched])
        checked += 1
    assert checked == 4
    # Control: the same swap pasted 4 px off shows a seam the check catches.
    face = out[0].meta["faces"][0]
    shifted = face["matrix"].copy()
    shifted[:, 2] += 4.0
    crop = cv2.warpAffine(images[0], face["matrix"], (224, 224))
    broken = images[0].copy()
    paste_back(broken, crop, np.where(face["mask"] > 0.05, 1.0, 0.0).astype(np.float32), shifted)
    band = _boundary(face["mask"], shifted, images[0].shape)
    g_in = _gradient(images[0])[band].mean()
    assert abs(_gradient(broken)[band].mean() - g_in) > 0.1 * g_in
