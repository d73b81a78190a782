"""SCRFD face detector (insightface's ONNX exports with 5 points), batched.

Input handling follows insightface's `SCRFD.detect` as GHOST calls it: the image is
resized with its aspect kept into a 640x640 canvas (padding bottom/right), fed as RGB
`(x - 127.5) / 128`; outputs are decoded per stride with vectorised numpy and merged by
greedy NMS. The runtime is injected (anything with `run`, `get_inputs`, `get_outputs`
like an `onnxruntime.InferenceSession`), so tests need no model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ghost_engine.errors import CheckpointError
from ghost_engine.types import Face

# Output count -> (strides, anchors per cell). SCRFD exports put all score maps first,
# then all box maps, then all point maps, stride by stride.
_LAYOUTS = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}


@dataclass(frozen=True)
class ScrfdConfig:
    """GHOST's settings: 640x640 input, score threshold 0.6, NMS IoU 0.4."""

    input_size: tuple[int, int] = (640, 640)  # (width, height)
    score_threshold: float = 0.6
    nms_threshold: float = 0.4
    mean: float = 127.5
    std: float = 128.0


def anchor_centers(height: int, width: int, stride: int, num_anchors: int) -> np.ndarray:
    """(height*width*num_anchors, 2) anchor centres (x, y) in input pixels, row-major."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, num_anchors, axis=0)


def distance_to_box(centers: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Decode (left, top, right, bottom) distances into (x1, y1, x2, y2) boxes."""
    return np.concatenate([centers - dist[:, :2], centers + dist[:, 2:4]], axis=1)


def distance_to_points(centers: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Decode point offsets (N, 2K) into points (N, K, 2)."""
    return centers[:, None, :] + dist.reshape(len(dist), dist.shape[1] // 2, 2)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS with insightface's inclusive (+1) pixel areas; indices kept, best first."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= threshold]
    return np.asarray(keep, dtype=np.int64)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect into a zero canvas of `size` (w, h); return it and scale."""
    width, height = size
    im_ratio = image.shape[0] / image.shape[1]
    if im_ratio > height / width:
        new_h, new_w = height, int(height / im_ratio)
    else:
        new_w, new_h = width, int(width * im_ratio)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h))
    return canvas, new_h / image.shape[0]


def decode(
    outputs: list[np.ndarray],
    input_size: tuple[int, int],
    score_threshold: float,
    nms_threshold: float,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw SCRFD outputs -> (boxes (N, 4), scores (N,), points (N, 5, 2)).

    Coordinates are divided by `scale` (input pixels -> image pixels) before NMS, as
    insightface does (its inclusive +1 areas make NMS depend on the pixel scale); best
    score first.
    """
    if len(outputs) not in _LAYOUTS:
        raise CheckpointError(
            f"SCRFD model has {len(outputs)} outputs; expected 9 or 15 (a variant with 5 "
            "points, e.g. scrfd_10g_bnkps.onnx)"
        )
    strides, num_anchors = _LAYOUTS[len(outputs)]
    fmc = len(strides)
    width, height = input_size
    all_scores, all_boxes, all_points = [], [], []
    for level, stride in enumerate(strides):
        scores = outputs[level].reshape(-1)
        keep = np.nonzero(scores >= score_threshold)[0]
        centers = anchor_centers(height // stride, width // stride, stride, num_anchors)[keep]
        box_dist = outputs[level + fmc].reshape(-1, 4)[keep] * stride
        kps_dist = outputs[level + 2 * fmc].reshape(-1, 10)[keep] * stride
        all_scores.append(scores[keep])
        all_boxes.append(distance_to_box(centers, box_dist))
        all_points.append(distance_to_points(centers, kps_dist))
    scores = np.concatenate(all_scores).astype(np.float32)
    boxes = (np.concatenate(all_boxes) / scale).astype(np.float32)
    points = (np.concatenate(all_points) / scale).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    scores, boxes, points = scores[order], boxes[order], points[order]
    keep = nms(boxes, scores, nms_threshold)
    return boxes[keep], scores[keep], points[keep]


class ScrfdDetector:
    """SCRFD over a batch of RGB images -> per image, faces best score first.

    Not thread-safe for one session shared between threads with different batch sizes;
    give each thread its own detector.
    """

    def __init__(self, session: Any, config: ScrfdConfig = ScrfdConfig()) -> None:
        self.session = session
        self.config = config
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        outputs = session.get_outputs()
        self.output_names = [o.name for o in outputs]
        self.batched = len(outputs[0].shape) == 3
        batch_dim = inp.shape[0] if inp.shape else 1
        self.max_batch = None if (self.batched and not isinstance(batch_dim, int)) else 1
        if len(outputs) not in _LAYOUTS:
            raise CheckpointError(
                f"SCRFD model has {len(outputs)} outputs; expected 9 or 15 (a variant with "
                "5 points, e.g. scrfd_10g_bnkps.onnx)"
            )

    @classmethod
    def from_file(
        cls, path: Path, config: ScrfdConfig = ScrfdConfig(), providers: list[str] | None = None
    ) -> ScrfdDetector:
        """Open an SCRFD ONNX file with ONNX Runtime (CPU unless providers say otherwise)."""
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(path), providers=providers or ["CPUExecutionProvider"]
        )
        return cls(session, config)

    @property
    def input_side(self) -> int:
        """Side of the square letterbox the network reads (640)."""
        return int(self.config.input_size[0])

    @property
    def accepts_device_blobs(self) -> bool:
        """Whether `detect_blob` may get a device tensor (the session runs PyTorch there)."""
        return bool(getattr(self.session, "accepts_torch", False))

    def _blob(self, canvases: list[np.ndarray]) -> np.ndarray:
        x = np.stack(canvases).astype(np.float32)
        x = (x - self.config.mean) / self.config.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        if not images:
            return []
        boxed = [letterbox(img, self.config.input_size) for img in images]
        blob = self._blob([canvas for canvas, _ in boxed])
        return self._faces(self._run(blob), [scale for _, scale in boxed])

    def detect_blob(self, blob: np.ndarray, scales: list[float]) -> list[list[Face]]:
        """Faces from an already letterboxed, normalised (N, 3, H, W) float32 blob (made
        on the GPU by the CUDA backend); `scales` are the letterbox scales per image."""
        return self._faces(self._run(blob), scales)

    def _run(self, blob: np.ndarray) -> list[list[np.ndarray]]:
        """Raw outputs per image, running the whole batch at once where the model allows."""
        if self.max_batch is None:
            outs = self.session.run(self.output_names, {self.input_name: blob})
            raw = [[o[i] for o in outs] for i in range(len(blob))]
        else:
            raw = []
            for i in range(len(blob)):
                outs = self.session.run(self.output_names, {self.input_name: blob[i : i + 1]})
                raw.append([o[0] if self.batched else o for o in outs])
        return raw

    def _faces(self, raw: list[list[np.ndarray]], scales: list[float]) -> list[list[Face]]:
        faces: list[list[Face]] = []
        for outputs, scale in zip(raw, scales, strict=True):
            boxes, scores, points = decode(
                outputs,
                self.config.input_size,
                self.config.score_threshold,
                self.config.nms_threshold,
                scale,
            )
            faces.append(
                [Face(box=b, score=s, kps=p) for b, s, p in zip(boxes, scores, points, strict=True)]
            )
        return faces
