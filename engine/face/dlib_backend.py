"""Offline face analysis with dlib: HOG detector, 68 landmarks, 128-d descriptor.

Needs no download: the `dlib-bin` wheel and the model files shipped in the
`face-recognition-models` wheel. That package imports `pkg_resources` on import, which
recent setuptools lacks, so its files are found through its import spec instead.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ghost_engine.errors import OptionalDependencyError
from ghost_engine.face.detection_budget import RegionPlan, SearchRegion
from ghost_engine.face.dlib_regions import RegionSearch
from ghost_engine.types import Face

# 68-point indices that give GHOST's 5 points: eye centres, nose tip, mouth corners.
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54

# The box the 68-point predictor gets inside a 224 GHOST crop: the mean HOG box over the
# twelve shared aligned crops (measured, HOG with one upsampling), rounded.
CROP_BOX_224 = (31, 56, 188, 214)


def import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise OptionalDependencyError.for_extra(
            "dlib-bin", "dlib", "The dlib face backend"
        ) from exc
    return dlib


def dlib_model_path(name: str) -> Path:
    """Path of a model file (e.g. 'shape_predictor_68_face_landmarks.dat') of the
    `face-recognition-models` wheel, found without importing that package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise OptionalDependencyError.for_extra(
            "face-recognition-models", "dlib", "The dlib face backend"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / name
        if path.is_file():
            return path
    raise OptionalDependencyError(
        f"dlib model file {name!r} is missing from the face-recognition-models package; "
        "reinstall it with: pip install --force-reinstall face-recognition-models"
    )


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (..., 5, 2): eye centres, nose tip, mouth corners (SCRFD order)."""
    lm = np.asarray(landmarks68, dtype=np.float32)
    return np.stack(
        [
            lm[..., _LEFT_EYE, :].mean(-2),
            lm[..., _RIGHT_EYE, :].mean(-2),
            lm[..., _NOSE_TIP, :],
            lm[..., _MOUTH_LEFT, :],
            lm[..., _MOUTH_RIGHT, :],
        ],
        axis=-2,
    )


def _shape_to_array(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


@dataclass(frozen=True)
class DlibConfig:
    """`upsample`: HOG pyramid upsampling (0 finds faces of ~80 px and up);
    `max_side`: detect on a copy downscaled to this longest side (landmarks still use
    the full image); `score_threshold`: HOG score below which boxes are dropped."""

    upsample: int = 0
    max_side: int | None = None
    score_threshold: float = 0.0


class DlibDetector:
    """HOG detection + 68 landmarks reduced to 5 points; same interface as ScrfdDetector.

    dlib objects are not thread-safe: give each thread its own detector.
    """

    def __init__(self, config: DlibConfig = DlibConfig()) -> None:
        dlib = import_dlib()
        self.config = config
        self._dlib = dlib
        self._hog = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(
            str(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
        )
        self._rect = dlib.rectangle
        self._search: RegionSearch | None = None
        self._search_error: str | None = None

    def landmarks68(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """The 68 points (68, 2) of the face inside `box` (x1, y1, x2, y2) of RGB `image`."""
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        return _shape_to_array(self._predictor(image, self._rect(x1, y1, x2, y2)))

    def _scale(self, height: int, width: int) -> float:
        """The factor the HOG search shrinks a (height, width) image by (`max_side`)."""
        side = max(height, width)
        if self.config.max_side is not None and side > self.config.max_side:
            return self.config.max_side / side
        return 1.0

    def _searched(self, image: np.ndarray, scale: float) -> np.ndarray:
        if scale == 1.0:
            return image
        return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def detect_one(self, image: np.ndarray) -> list[tuple[Face, np.ndarray]]:
        """Faces of one RGB image with their 68 points, best HOG score first."""
        image = np.ascontiguousarray(image)
        scale = self._scale(*image.shape[:2])
        small = self._searched(image, scale)
        rects, scores, _ = self._hog.run(small, self.config.upsample, self.config.score_threshold)
        found = []
        for rect, score in sorted(zip(rects, scores, strict=True), key=lambda rs: -rs[1]):
            box = np.array([rect.left(), rect.top(), rect.right(), rect.bottom()]) / scale
            lm = self.landmarks68(image, box)
            found.append((Face(box=box, score=score, kps=five_points(lm)), lm))
        return found

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return [[face for face, _ in self.detect_one(img)] for img in images]

    # -- the detection budget's region search (`ghost_engine.face.detection_budget`) ---------

    def _region_search(self) -> RegionSearch | None:
        """The region search, made once from the detector held in memory (no file)."""
        if self._search is None and self._search_error is None:
            try:
                self._search = RegionSearch(self._dlib, self._hog)
            except ValueError as exc:  # a dlib build that lays its detector out otherwise
                self._search_error = str(exc)
        return self._search

    @property
    def searches_regions(self) -> bool:
        """Whether regions can be searched: not with HOG upsampling (the search starts
        its pyramid from the image itself), nor with a dlib build this module cannot read."""
        return self.config.upsample == 0 and self._region_search() is not None

    def plan_regions(
        self, frame_size: tuple[int, int], regions: Sequence[SearchRegion]
    ) -> RegionPlan | None:
        """Crops that give the boxes of a full-frame detection inside `regions` (see
        `dlib_regions`): each region's part of the frame, or the whole frame where dlib's
        own pyramid of it costs less (or `max_side` shrinks it first)."""
        search = self._region_search()
        if search is None or self.config.upsample != 0 or not regions:
            return None
        width, height = frame_size
        scale = self._scale(height, width)
        size = (round(height * scale), round(width * scale))
        plan = search.plan(size, [(r.area * scale, r.face * scale) for r in regions])
        if plan is None:
            return None
        if scale != 1.0 or plan.whole:
            crops = [(0, 0, width, height)]
        else:
            crops = [(x0, y0, x1, y1) for y0, y1, x0, x1 in plan.footprints]
        return RegionPlan(tuple(crops), (plan, scale))

    def detect_crops(self, plan: RegionPlan, crops: Sequence[np.ndarray]) -> list[Face] | None:
        """The faces of a full-frame detection inside the planned regions, best first,
        with their landmarks from the same pixels; None where the search cannot tell they
        are (`RegionSearch.trusted`)."""
        search = self._region_search()
        if search is None:
            raise RuntimeError("detect_crops needs a plan from plan_regions")
        searched, scale = plan.detail
        crops = [np.ascontiguousarray(c) for c in crops]
        images = crops
        if scale != 1.0:
            images = [self._searched(crops[0], scale)]
            if images[0].shape[:2] != searched.sizes[0]:
                raise RuntimeError(
                    f"shrunk frame is {images[0].shape[:2]}, planned {searched.sizes[0]}"
                )
        found = search.search(searched, images, self.config.score_threshold)
        if found is None:
            return None
        faces = []
        for cand in found:
            box = np.array(cand.rect, np.float64) / scale
            index = 0 if len(crops) == 1 else cand.region
            x0, y0 = plan.crops[index][:2]
            lm = self.landmarks68(crops[index], box - [x0, y0, x0, y0]) + [x0, y0]
            faces.append(Face(box=box, score=cand.score, kps=five_points(lm)))
        return faces


class DlibLandmarks68:
    """68 points on 224 GHOST crops (the dlib stand-in for 2d106det), (N, 68, 2)."""

    layout = "68"

    def __init__(self, box: tuple[int, int, int, int] = CROP_BOX_224) -> None:
        dlib = import_dlib()
        self._predictor = dlib.shape_predictor(
            str(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
        )
        self._rect = dlib.rectangle(*box)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:3] != (224, 224):
            raise ValueError(f"expected crops (N, 224, 224, 3), got {crops.shape}")
        out = [_shape_to_array(self._predictor(np.ascontiguousarray(c), self._rect)) for c in crops]
        return np.stack(out) if out else np.zeros((0, 68, 2), np.float32)
