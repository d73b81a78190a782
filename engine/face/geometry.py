"""Pure geometry of GHOST's face crop: pose templates, similarity fits, warps.

GHOST crops with insightface 0.2.x `estimate_norm(kps, 224, mode='none')`: five pose
templates, a least-squares similarity transform (Umeyama) to each, and the one with the
smallest summed point distance wins. The 2x3 matrix (frame -> crop) is kept so that the
swap and its mask can be warped back into the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from ghost_engine.types import AlignedCrop

# The five pose templates in 112-pixel coordinates (left profile, left, frontal, right,
# right profile), as GHOST's insightface copy defines them.
TEMPLATES_112 = np.array(
    [
        [[51.642, 50.115], [57.617, 49.990], [35.740, 69.007], [51.157, 89.050], [57.025, 89.702]],
        [[45.031, 50.118], [65.568, 50.872], [39.677, 68.111], [45.177, 86.190], [64.246, 86.758]],
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
        [[46.845, 50.872], [67.382, 50.118], [72.737, 68.111], [48.167, 86.758], [67.236, 86.190]],
        [[54.796, 49.990], [60.771, 50.115], [76.673, 69.007], [55.388, 89.702], [61.257, 89.050]],
    ],
    dtype=np.float64,
)
TEMPLATE_NAMES = ("left profile", "left", "frontal", "right", "right profile")
CROP_SIZE = 224
GENERATOR_SIZE = 256
IDENTITY_SIZE = 112


def mirror_template(index: int) -> int:
    """The template index a horizontally mirrored face picks (left <-> right)."""
    return len(TEMPLATES_112) - 1 - index


def templates(size: int = CROP_SIZE) -> np.ndarray:
    """The templates scaled to a `size` crop (insightface: 112 as is, 224 doubled)."""
    return TEMPLATES_112 * (size / 112.0)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) taking points `src` (N, 2) onto `dst`.

    Umeyama (1991), the estimator behind skimage's `SimilarityTransform.estimate`, which
    insightface uses; written here so alignment needs no scikit-image.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    if np.linalg.matrix_rank(cov) == 0:
        raise ValueError(f"degenerate landmarks, cannot fit a similarity: {src.tolist()}")
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine `matrix` to points (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (crop -> frame)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def estimate_norm(kps: np.ndarray, size: int = CROP_SIZE) -> tuple[np.ndarray, int]:
    """GHOST's crop transform for 5 points: (2x3 matrix, index of the chosen template).

    Each template gets its own similarity fit; the smallest summed Euclidean residual
    wins (ties go to the lower index, as insightface's strict `<` does).
    """
    kps = np.asarray(kps, dtype=np.float64)
    if kps.shape != (5, 2):
        raise ValueError(f"expected 5 points (5, 2), got {kps.shape}")
    best_err, best_m, best_i = np.inf, None, -1
    for i, tpl in enumerate(templates(size)):
        m = umeyama(kps, tpl)
        err = float(np.linalg.norm(transform_points(kps, m) - tpl, axis=1).sum())
        if err < best_err:
            best_err, best_m, best_i = err, m, i
    if best_m is None:  # every residual was inf or NaN
        raise ValueError(f"no template fits the points {kps.tolist()}")
    return best_m, best_i


def align_face(image: np.ndarray, kps: np.ndarray, size: int = CROP_SIZE) -> AlignedCrop:
    """The `size` crop of the face with 5 points `kps` in `image` (borderValue=0)."""
    matrix, index = estimate_norm(kps, size)
    crop = cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
    return AlignedCrop(image=crop, matrix=matrix, template=index)


def generator_input(crops: np.ndarray) -> np.ndarray:
    """Batch (N, 224, 224, 3) uint8 RGB -> (N, 3, 256, 256) float32 in [-1, 1].

    GHOST resizes the crop to 256 with cv2's default (bilinear) and normalises
    `(x/255 - 0.5)/0.5`.
    """
    crops = np.asarray(crops)
    resized = np.stack(
        [
            cv2.resize(c, (GENERATOR_SIZE, GENERATOR_SIZE), interpolation=cv2.INTER_LINEAR)
            for c in crops
        ]
    )
    x = resized.astype(np.float32) / 255.0
    return np.ascontiguousarray(((x - 0.5) / 0.5).transpose(0, 3, 1, 2))


def generator_output(y: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Generator output (N, 3, 256, 256) in [-1, 1] -> (N, size, size, 3) uint8 RGB."""
    img = np.clip((np.asarray(y, dtype=np.float32) * 0.5 + 0.5) * 255.0, 0, 255)
    img = img.astype(np.uint8).transpose(0, 2, 3, 1)
    return np.stack(
        [
            cv2.resize(np.ascontiguousarray(i), (size, size), interpolation=cv2.INTER_LINEAR)
            for i in img
        ]
    )
