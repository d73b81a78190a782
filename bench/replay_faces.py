"""Recorded faces for timing the pipeline where no detector or landmark model can run.

The GPU check machine has neither detector weights nor dlib, so its end-to-end run
replays what dlib found in the same clip on a CPU: per frame the face box, score and 5
points (`ReplayDetector`) and the 68 points of the aligned target crop
(`ReplayLandmarks`, used for the swap's mask too). Everything after detection runs for
real. Each can be given a `cost`: a call made on the same frames or crops first (the
end-to-end check runs networks of the real ones' size there), so their time is paid.

`python bench/replay_faces.py VIDEO OUT.npz` records a clip (dlib, a few minutes).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

NO_FACE = -1.0


class ReplayDetector:
    """Detections by frame index from a recording, scaled to the frames' size."""

    reads_device_frames = True  # the CUDA backend hands it device frames untouched

    def __init__(
        self, recording: dict[str, np.ndarray], scale: float = 1.0, cost: Any = None
    ) -> None:
        self.boxes = recording["boxes"] * scale
        self.scores = recording["scores"]
        self.kps = recording["kps"] * scale
        self.cost = cost

    def __call__(self, frames: list[Any]) -> list[list[Any]]:
        from ghost_engine.types import Face

        if self.cost is not None:
            self.cost(frames)
        out = []
        for frame in frames:
            i = frame.index % len(self.scores)
            if self.scores[i] == NO_FACE:
                out.append([])
                continue
            box, kps = self.boxes[i].astype(np.float32), self.kps[i].astype(np.float32)
            out.append([Face(box=box, score=float(self.scores[i]), kps=kps)])
        return out


class ReplayLandmarks:
    """The recorded 68 points of the target crop, for every crop in the call, in turn."""

    layout = "68"

    def __init__(self, recording: dict[str, np.ndarray], cost: Any = None) -> None:
        found = recording["scores"] != NO_FACE
        self.points = recording["landmarks68"][found]
        self._next = 0
        self.cost = cost

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if self.cost is not None and len(crops):
            self.cost(crops)
        rows = [(self._next + k) % len(self.points) for k in range(len(crops))]
        self._next += len(crops)
        return self.points[rows].astype(np.float32)


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def record(video: Path, out: Path) -> None:
    """dlib detections and crop landmarks for every frame of `video`."""
    from ghost_engine.face.dlib_backend import DlibDetector, DlibLandmarks68
    from ghost_engine.face.geometry import align_face
    from ghost_engine.video.reader import read_frames

    detector, landmarks = DlibDetector(), DlibLandmarks68()
    boxes, scores, kps, points = [], [], [], []
    for frame in read_frames(video):
        faces = detector([frame.image])[0]
        if not faces:
            boxes.append(np.zeros(4)), scores.append(NO_FACE)
            kps.append(np.zeros((5, 2))), points.append(np.zeros((68, 2)))
            continue
        face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        boxes.append(face.box), scores.append(face.score), kps.append(face.kps)
        points.append(landmarks(align_face(frame.image, face.kps).image[None])[0])
    np.savez_compressed(
        out,
        boxes=np.asarray(boxes, np.float32),
        scores=np.asarray(scores, np.float32),
        kps=np.asarray(kps, np.float32),
        landmarks68=np.asarray(points, np.float32),
    )


if __name__ == "__main__":
    record(Path(sys.argv[1]), Path(sys.argv[2]))
