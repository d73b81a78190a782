"""Source and reference photos: read one, find its face, embed a person.

A photo must hold a face; several faces pick the best-scored one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ghost_engine.errors import InputFileNotFoundError, NoFaceError, UnsupportedMediaError
from ghost_engine.face.geometry import align_face, transform_points
from ghost_engine.interfaces import Detector, Recognizer


def read_photo(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"photo not found: {path}; check the path")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnsupportedMediaError(
            f"cannot read {path} as an image; use a JPEG, PNG, BMP or WebP photo"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def photo_face(detector: Detector, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(224 crop, 5 points in the crop) of the best face of a photo, or NoFaceError."""
    image = read_photo(path)
    faces = detector([image])[0]
    if not faces:
        raise NoFaceError(f"no face found in {path}; use a photo where one face is clearly visible")
    crop = align_face(image, faces[0].kps)
    return crop.image, transform_points(faces[0].kps, crop.matrix)


def person_embeddings(encoder: Recognizer, detector: Detector, photos: list[Path]) -> np.ndarray:
    """Mean embedding of one person over several photos."""
    crops, kps = zip(*(photo_face(detector, Path(p)) for p in photos), strict=True)
    return encoder.embed(np.stack(crops), np.stack(kps)).mean(0)
