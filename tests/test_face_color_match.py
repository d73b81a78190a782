"""`--color-match` on real photos: the swap's Lab statistics inside the blend mask moved
to the target's, and nothing outside the mask.

`color_match` works in OpenCV's 8-bit Lab (`cv2.cvtColor` of uint8 RGB, not of float32
in [0, 1]: L scaled to 0..255, a and b offset by 128), so the tests measure in those
units, with their own conversion and mask-weighted statistics in float64.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.face.dlib_backend import DlibDetector, DlibLandmarks68
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.face.mask import LAYOUT_68, face_mask, ghost_params
from ghost_engine.face.paste import color_match
from ghost_engine.face.photos import photo_face, read_photo
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.face_models import FaceModels
from ghost_engine.pipeline.swap import assemble_stage
from ghost_engine.types import Frame


def lab_stats(rgb: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of 8-bit Lab, weighted by `weights`."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float64)
    w = np.asarray(weights, np.float64)[..., None]
    mean = (lab * w).sum((0, 1)) / w.sum()
    std = np.sqrt((((lab - mean) ** 2) * w).sum((0, 1)) / w.sum())
    return mean, std


@pytest.fixture(scope="module")
def detector() -> DlibDetector:
    return DlibDetector()


@pytest.fixture(scope="module")
def target(media: Path, detector: DlibDetector) -> np.ndarray:
    """The 224 aligned crop of mark.jpg."""
    crop, _ = photo_face(detector, media / "faces" / "mark.jpg")
    return crop


@pytest.fixture(scope="module")
def mask(target: np.ndarray) -> np.ndarray:
    """GHOST's blend mask of the target's dlib landmarks (soft edge; 50% of the crop
    nonzero, 35% above 0.5)."""
    landmarks = DlibLandmarks68()(target[None])[0]
    return face_mask(landmarks, ghost_params(0.0), LAYOUT_68)


def _lab_shifted(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The target with its Lab channels scaled about the masked mean and shifted."""
    lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float64)
    mean, _ = lab_stats(target, mask)
    moved = (lab - mean) * np.array([0.6, 1.5, 1.4]) + mean + np.array([25.0, 12.0, -10.0])
    return cv2.cvtColor(np.clip(np.rint(moved), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


@pytest.fixture(scope="module", params=["lab-shifted", "another-person"])
def swap(request, media: Path, detector: DlibDetector, target, mask) -> np.ndarray:
    if request.param == "lab-shifted":
        return _lab_shifted(target, mask)
    crop, _ = photo_face(detector, media / "faces" / "beckham.jpg")
    return crop


def test_inside_the_mask_mean_and_spread_become_the_targets(target, mask, swap):
    t_mean, t_std = lab_stats(target, mask)
    s_mean, s_std = lab_stats(swap, mask)
    # before: far apart. Target mean (144.9, 146.0, 137.5), std (23.4, 4.0, 3.4); the
    # shifted swap (170.0, 157.8, 127.5), (14.1, 6.0, 4.8); beckham (140.8, 140.1, 152.8),
    # (43.2, 3.7, 7.1)
    assert np.abs(s_mean - t_mean).max() > 10
    assert np.abs(s_std / t_std - 1).max() > 0.3
    out = color_match(swap, target, mask)
    assert out.shape == swap.shape and out.dtype == np.uint8
    o_mean, o_std = lab_stats(out, mask)
    # after: mean within 1.0 (measured at most 0.06 shifted, 0.11 beckham), std within 10%
    # (measured 1.000 shifted; 0.984..1.014 beckham); the rest is 8-bit rounding
    np.testing.assert_array_less(np.abs(o_mean - t_mean), 1.0)
    np.testing.assert_array_less(np.abs(o_std / t_std - 1), 0.10)


def test_pixels_outside_the_mask_do_not_count(target, mask, swap):
    """The statistics come from inside the mask alone: whatever the swap and the target
    hold where the mask is 0, the matched face inside it is the same, bit for bit.

    (Outside the mask `color_match` recolours the crop with the same transfer; the paste
    blends through the same mask, so none of it reaches the frame: see the stage test.)
    """
    outside = mask == 0
    assert 0.3 < outside.mean() < 0.7
    rng = np.random.default_rng(5)
    noisy_swap, noisy_target = swap.copy(), target.copy()
    noisy_swap[outside] = rng.integers(0, 256, (int(outside.sum()), 3), dtype=np.uint8)
    noisy_target[outside] = rng.integers(0, 256, (int(outside.sum()), 3), dtype=np.uint8)
    plain = color_match(swap, target, mask)
    noisy = color_match(noisy_swap, noisy_target, mask)
    np.testing.assert_array_equal(noisy[~outside], plain[~outside])
    # had those pixels counted (a mask of ones), the noise would have changed the face by
    # 18.0 (shifted) and 6.9 (beckham) RGB levels on average
    everywhere = np.ones_like(mask)
    clean = color_match(swap, target, everywhere)[~outside].astype(np.int16)
    dirty = color_match(noisy_swap, noisy_target, everywhere)[~outside]
    assert np.abs(dirty - clean).mean() > 3


class TintNet(torch.nn.Module):
    """AEI-Net's call signature; the face comes back with its colours scaled and shifted
    (redder, less blue), its features kept so the mask landmarks still find them."""

    def forward(self, xt: torch.Tensor, z: torch.Tensor):
        gain = torch.tensor([0.6, 0.8, 0.5]).view(1, 3, 1, 1)
        shift = torch.tensor([0.35, -0.1, -0.35]).view(1, 3, 1, 1)
        return (xt * gain + shift).clamp(-1, 1), None


def _swap_photo(
    detector: DlibDetector, photo: np.ndarray, color: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(output frame, the pasted mask warped back into it) for one run of the stage."""
    models = FaceModels(
        detector=detector,
        recognizer=None,
        id_encoder=None,
        generator=GeneratorRunner(TintNet()),
        landmarks=DlibLandmarks68(),
    )
    # the generator field only chooses what gets loaded; the stage runs `models`
    config = SwapConfig(
        generator="passthrough", all_faces=True, smoothing="none", color_match=color
    )
    stage = assemble_stage(config, models, np.zeros((1, 512), np.float32), None, HostImageOps())
    frames = stage.process([Frame(index=0, image=photo.copy())]) + stage.flush()
    assert len(frames) == 1
    faces = [f for f in frames[0].meta["faces"] if "mask" in f]
    assert len(faces) == 1
    h, w = photo.shape[:2]
    weights = cv2.warpAffine(
        np.asarray(faces[0]["mask"], np.float32),
        np.asarray(faces[0]["matrix"], np.float64),
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    return frames[0].image, weights


def test_the_stage_pastes_a_face_in_the_frames_colours(media: Path, detector) -> None:
    photo = read_photo(media / "faces" / "mark.jpg")
    tinted, weights = _swap_photo(detector, photo, color=False)
    matched, matched_weights = _swap_photo(detector, photo, color=True)
    # the mask comes from the swap's landmarks, before the colour match: the same in both
    np.testing.assert_array_equal(matched_weights, weights)
    support = weights > 0
    assert support.mean() > 0.1
    # outside the pasted mask the frame is untouched, with or without colour match
    np.testing.assert_array_equal(tinted[~support], photo[~support])
    np.testing.assert_array_equal(matched[~support], photo[~support])
    # inside it (weighted by the mask): the tint moves the Lab mean by up to 20.7 (in a);
    # matched, by at most 0.23 (measured); bounds 10 and 1.0
    original, _ = lab_stats(photo, weights)
    off_tinted = np.abs(lab_stats(tinted, weights)[0] - original)
    off_matched = np.abs(lab_stats(matched, weights)[0] - original)
    assert off_tinted.max() > 10, off_tinted
    np.testing.assert_array_less(off_matched, 1.0)
