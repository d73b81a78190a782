"""Face masks on the 224 crop: GHOST's `face_mask_static` rules and our smooth variant.

GHOST compares cheek points of the swap and the target crop: the larger the swap's face
spills past the target's outline, the more the mask is eroded and blurred (erode,
sigmaX, sigmaY) = (15,15,10) if offset > 6, (10,10,8) if > 3, (-5,5,10) if < -3, else
(5,5,5); eyebrows are lifted by 2.7 / 0.5 / 2.0 x half the eye-to-brow distance (for
erode 15 / -5 / otherwise); the convex hull is filled, eroded (dilated when negative)
with a square kernel, a border of 2*sigmaY zeroed, Gaussian-blurred, divided by 255.

Landmark layouts: 2d106det's 106 points (GHOST's own indices) and dlib's 68 points, the
same rules mapped onto them (a 106 point that falls between two 68 points is their
midpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP = 224


@dataclass(frozen=True)
class LandmarkLayout:
    """Index pairs whose midpoint gives each point the mask rules use."""

    name: str
    num_points: int
    left_cheek: tuple[tuple[int, int], ...]
    right_cheek: tuple[tuple[int, int], ...]
    left_eye_top: tuple[tuple[int, int], ...]
    right_eye_top: tuple[tuple[int, int], ...]
    left_brow: tuple[int, ...]
    right_brow: tuple[int, ...]


def _same(*idx: int) -> tuple[tuple[int, int], ...]:
    return tuple((i, i) for i in idx)


LAYOUT_106 = LandmarkLayout(
    name="106",
    num_points=106,
    left_cheek=_same(1, 2, 13),
    right_cheek=_same(17, 18, 29),
    left_eye_top=_same(35, 41, 40, 42, 39),
    right_eye_top=_same(89, 95, 94, 96, 93),
    left_brow=(43, 48, 49, 51, 50),
    right_brow=(102, 103, 104, 105, 101),
)

LAYOUT_68 = LandmarkLayout(
    name="68",
    num_points=68,
    left_cheek=((0, 0), (4, 5), (2, 3)),
    right_cheek=((16, 16), (12, 11), (14, 13)),
    left_eye_top=((36, 36), (37, 37), (37, 38), (38, 38), (39, 39)),
    right_eye_top=((42, 42), (43, 43), (43, 44), (44, 44), (45, 45)),
    left_brow=(17, 18, 19, 20, 21),
    right_brow=(22, 23, 24, 25, 26),
)

LAYOUTS = {"106": LAYOUT_106, "68": LAYOUT_68}


@dataclass(frozen=True)
class MaskParams:
    """Erosion (negative: dilation) kernel size, blur sigmas and the eyebrow lift."""

    erode: int
    sigma_x: float
    sigma_y: float
    brow_lift: float

    def as_ghost(self) -> tuple[int, float, float]:
        return (self.erode, self.sigma_x, self.sigma_y)


def _pick(points: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    idx = np.asarray(pairs)
    return (points[..., idx[:, 0], :] + points[..., idx[:, 1], :]) / 2.0


def cheek_offset(swap_lm: np.ndarray, target_lm: np.ndarray, layout: LandmarkLayout) -> float:
    """GHOST's offset: how far the swap's outline lies inside the target's (pixels, summed
    over three cheek points per side, the larger side)."""
    swap_lm = np.asarray(swap_lm, dtype=np.float64)
    target_lm = np.asarray(target_lm, dtype=np.float64)
    left = (_pick(swap_lm, layout.left_cheek) - _pick(target_lm, layout.left_cheek))[:, 0].sum()
    right = (_pick(target_lm, layout.right_cheek) - _pick(swap_lm, layout.right_cheek))[:, 0].sum()
    return float(max(left, right))


def ghost_params(offset: float) -> MaskParams:
    """GHOST's step rule: offset -> (erode, sigmaX, sigmaY) and the eyebrow lift."""
    if offset > 6:
        return MaskParams(15, 15, 10, 2.7)
    if offset > 3:
        return MaskParams(10, 10, 8, 2.0)
    if offset < -3:
        return MaskParams(-5, 5, 10, 0.5)
    return MaskParams(5, 5, 5, 2.0)


# Knots for the smooth rule: GHOST's four settings placed at the middle of their bins,
# linearly interpolated in between (and held beyond the outer knots).
_KNOTS = np.array([-4.5, 0.0, 4.5, 7.5])
_KNOT_VALUES = np.array(
    [[-5, 5, 10, 0.5], [5, 5, 5, 2.0], [10, 10, 8, 2.0], [15, 15, 10, 2.7]], dtype=np.float64
)


def smooth_params(offset: float) -> MaskParams:
    """Continuous version of `ghost_params`: no jump when the offset crosses a bin edge."""
    vals = [np.interp(offset, _KNOTS, _KNOT_VALUES[:, k]) for k in range(4)]
    erode = int(round(vals[0]))
    return MaskParams(erode, float(vals[1]), float(vals[2]), float(vals[3]))


def lift_eyebrows(landmarks: np.ndarray, layout: LandmarkLayout, lift: float) -> np.ndarray:
    """Integer landmarks with both eyebrows moved up by `lift` x half the eye-to-brow
    distance (GHOST truncates to int before and after)."""
    lm = np.asarray(landmarks).astype(np.int32)
    out = lm.copy()
    for brow, eye in (
        (layout.left_brow, layout.left_eye_top),
        (layout.right_brow, layout.right_eye_top),
    ):
        top = lm[list(brow)].astype(np.float64)
        bottom = _pick(lm.astype(np.float64), eye)
        out[list(brow)] = (top + lift * 0.5 * (top - bottom)).astype(np.int32)
    return out


def hull_mask(points: np.ndarray, size: int = CROP) -> np.ndarray:
    """uint8 (size, size) mask, 255 inside the convex hull of integer `points`."""
    mask = np.zeros((size, size), dtype=np.uint8)
    hull = cv2.convexHull(np.asarray(points, dtype=np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    return mask


def erode_and_blur(mask: np.ndarray, params: MaskParams) -> np.ndarray:
    """Erode (dilate when negative) with a square kernel, zero a 2*sigmaY border, blur."""
    k = abs(int(params.erode))
    out = mask
    if k > 0:
        kernel = np.ones((k, k), np.uint8)
        out = cv2.erode(mask, kernel) if params.erode > 0 else cv2.dilate(mask, kernel)
    else:
        out = mask.copy()
    clip = int(round(params.sigma_y * 2))
    if clip > 0:
        out[:clip, :] = 0
        out[-clip:, :] = 0
        out[:, :clip] = 0
        out[:, -clip:] = 0
    return cv2.GaussianBlur(out, (0, 0), sigmaX=params.sigma_x, sigmaY=params.sigma_y)


def face_mask(landmarks: np.ndarray, params: MaskParams, layout: LandmarkLayout) -> np.ndarray:
    """Float32 (224, 224) mask in [0, 1] from the swap's landmarks and `params`."""
    if landmarks.shape != (layout.num_points, 2):
        raise ValueError(
            f"layout {layout.name} needs ({layout.num_points}, 2) landmarks, got {landmarks.shape}"
        )
    lifted = lift_eyebrows(landmarks, layout, params.brow_lift)
    blurred = erode_and_blur(hull_mask(lifted), params)
    return blurred.astype(np.float32) / np.float32(255.0)
