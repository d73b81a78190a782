"""GHOST's mask rules against a direct OpenCV transcription of DESIGN.md section 3."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ghost_engine.face.mask import (
    LAYOUT_68,
    LAYOUT_106,
    MaskParams,
    cheek_offset,
    face_mask,
    ghost_params,
    smooth_params,
)

LEFT = [1, 2, 13]
RIGHT = [17, 18, 29]


def _reference(swap_lm: np.ndarray, target_lm: np.ndarray):
    """Section 3 step by step, on 106 points, with plain OpenCV calls."""
    left = sum(swap_lm[i][0] - target_lm[i][0] for i in LEFT)
    right = sum(target_lm[i][0] - swap_lm[i][0] for i in RIGHT)
    offset = max(left, right)
    if offset > 6:
        erode, sx, sy = 15, 15, 10
    elif offset > 3:
        erode, sx, sy = 10, 10, 8
    elif offset < -3:
        erode, sx, sy = -5, 5, 10
    else:
        erode, sx, sy = 5, 5, 5
    mod = 2.7 if erode == 15 else 0.5 if erode == -5 else 2.0
    lm = np.array(swap_lm, dtype=np.int32)
    for brow, eye in (
        ([43, 48, 49, 51, 50], [35, 41, 40, 42, 39]),
        ([102, 103, 104, 105, 101], [89, 95, 94, 96, 93]),
    ):
        top, bot = lm[brow], lm[eye]
        lm[brow] = top + mod * 0.5 * (top - bot)
    mask = np.zeros((224, 224), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(lm), 255)
    kernel = np.ones((abs(erode), abs(erode)), np.uint8)
    mask = cv2.erode(mask, kernel) if erode > 0 else cv2.dilate(mask, kernel)
    c = sy * 2
    mask[:c, :] = 0
    mask[-c:, :] = 0
    mask[:, :c] = 0
    mask[:, -c:] = 0
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=sx, sigmaY=sy)
    return (erode, sx, sy), mask / 255


def _face106(rng: np.random.Generator) -> np.ndarray:
    """Plausible 106 points: a random cloud in the face area with eyes below brows."""
    lm = rng.uniform([50, 70], [174, 200], (106, 2))
    lm[[35, 41, 40, 42, 39]] = rng.uniform([70, 95], [100, 105], (5, 2))
    lm[[89, 95, 94, 96, 93]] = rng.uniform([124, 95], [154, 105], (5, 2))
    lm[[43, 48, 49, 51, 50]] = rng.uniform([65, 75], [105, 85], (5, 2))
    lm[[102, 103, 104, 105, 101]] = rng.uniform([120, 75], [160, 85], (5, 2))
    return lm


@pytest.mark.parametrize(
    ("shift_left", "shift_right", "expected"),
    [
        (3.0, 0.0, (15, 15, 10)),  # offset 9
        (2.1, 0.0, (15, 15, 10)),  # 6.3
        (0.0, 2.0, (10, 10, 8)),  # exactly 6 -> not > 6
        (1.5, 0.0, (10, 10, 8)),  # 4.5
        (1.0, 0.0, (5, 5, 5)),  # exactly 3
        (0.0, 0.0, (5, 5, 5)),
        (-1.0, -1.0, (5, 5, 5)),  # exactly -3
        (-1.1, -1.5, (-5, 5, 10)),  # -3.3
        (-4.0, -3.0, (-5, 5, 10)),
    ],
)
def test_params_and_mask_equal_the_opencv_reference(shift_left, shift_right, expected):
    rng = np.random.default_rng(int(100 * (shift_left + 7) + 10 * (shift_right + 7)))
    target = _face106(rng)
    swap = target + rng.normal(0, 0.5, target.shape)
    # put the cheek points at exact offsets from the target's
    swap[LEFT, 0] = target[LEFT, 0] + shift_left
    swap[RIGHT, 0] = target[RIGHT, 0] - shift_right
    ref_params, ref_mask = _reference(swap, target)
    params = ghost_params(cheek_offset(swap, target, LAYOUT_106))
    assert ref_params == expected
    assert params.as_ghost() == ref_params
    mask = face_mask(swap, params, LAYOUT_106)
    assert mask.dtype == np.float32 and mask.shape == (224, 224)
    np.testing.assert_allclose(mask, ref_mask, atol=1e-6)
    assert mask.max() > 0.5  # a real face area survived erosion and blur


def test_brow_lift_moves_the_mask_edge_up():
    swap = _face106(np.random.default_rng(5))
    top_rows = []
    for lift in (2.7, 2.0, 0.5):
        mask = face_mask(swap, MaskParams(5, 5, 5, lift), LAYOUT_106)
        top_rows.append(int(np.nonzero(mask.max(1) > 0.5)[0].min()))
    assert top_rows[0] < top_rows[1] < top_rows[2]


def test_smooth_params_meet_ghost_at_the_knots_and_are_continuous():
    for offset, ghost in ((-4.5, -4.5), (0.0, 0.0), (4.5, 4.5), (7.5, 7.5)):
        assert smooth_params(offset).as_ghost() == ghost_params(ghost).as_ghost()
    xs = np.linspace(-8, 10, 721)
    sig = np.array([smooth_params(x).sigma_x for x in xs])
    assert np.abs(np.diff(sig)).max() < 0.1  # GHOST's rule jumps by 5 at offset 6


def test_68_point_layout_mirrors_the_106_rules():
    # The 68-point mapping picks contour points on opposite sides, the same number each.
    assert len(LAYOUT_68.left_cheek) == len(LAYOUT_68.right_cheek) == 3
    lm = np.zeros((68, 2))
    lm[:17, 0] = np.linspace(30, 194, 17)  # jaw from image-left to image-right
    swap = lm.copy()
    swap[:8, 0] += 2.0  # the swap's left contour lies 2 px further in
    assert cheek_offset(swap, lm, LAYOUT_68) == pytest.approx(6.0)
    swap = lm.copy()
    swap[9:, 0] -= 2.0  # right contour 2 px further in
    assert cheek_offset(swap, lm, LAYOUT_68) == pytest.approx(6.0)
