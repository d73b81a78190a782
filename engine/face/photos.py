"""Source and reference photos: read one, find its face, embed a person.

A photo must hold a face. Where it holds several, the largest box is used (the person
the photo is of is nearly always the nearest, largest face; a detector's score says how
sure it is that a box is a face, not whose photo it is), and a warning names the photo,
the count and the box chosen. The warning's record carries the same as a dict in its
`CHOICE_NOTE` attribute, so a caller can put it in its report (the API does).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ghost_engine.errors import (
    InputFileNotFoundError,
    NoFaceError,
    UnsupportedMediaError,
    one_line,
)
from ghost_engine.face.geometry import align_face, transform_points
from ghost_engine.interfaces import Detector, Recognizer
from ghost_engine.types import Face

PHOTO_LOG = logging.getLogger(__name__)
CHOICE_NOTE = "photo_choice"  # LogRecord attribute of the several-faces warning


def read_photo(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(
            f"photo not found: {one_line(str(path))}; check the path", path=path
        )
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnsupportedMediaError(
            f"cannot read {one_line(str(path))} as an image; use a JPEG, PNG, BMP or WebP photo",
            path=path,
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def largest_face(faces: list[Face]) -> Face:
    """The face with the largest box area (the first of equals, in detector order)."""
    areas = [max(0.0, f.box[2] - f.box[0]) * max(0.0, f.box[3] - f.box[1]) for f in faces]
    return faces[int(np.argmax(areas))]


def photo_face(detector: Detector, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(224 crop, 5 points in the crop) of the photo's face (the largest, where there are
    several: see the module's note), or NoFaceError."""
    image = read_photo(path)
    faces = detector([image])[0]
    if not faces:
        raise NoFaceError(
            f"no face found in {one_line(str(path))}; use a photo where one face is clearly "
            "visible",
            path=path,
        )
    face = largest_face(faces)
    if len(faces) > 1:
        _note_choice(Path(path), face, len(faces))
    crop = align_face(image, face.kps)
    return crop.image, transform_points(face.kps, crop.matrix)


def person_embeddings(encoder: Recognizer, detector: Detector, photos: list[Path]) -> np.ndarray:
    """Mean embedding of one person over several photos."""
    crops, kps = zip(*(photo_face(detector, Path(p)) for p in photos), strict=True)
    return encoder.embed(np.stack(crops), np.stack(kps)).mean(0)


def _note_choice(path: Path, face: Face, count: int) -> None:
    x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
    note = {"photo": str(path), "faces": count, "used": "largest", "box": [x1, y1, x2, y2]}
    PHOTO_LOG.warning(
        "%s has %d faces; using the largest (%dx%d at %d,%d)",
        one_line(str(path)),
        count,
        x2 - x1,
        y2 - y1,
        x1,
        y1,
        extra={CHOICE_NOTE: note},
    )
