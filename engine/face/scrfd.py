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
from ghost_engine.face.detection_budget import RegionPlan, SearchRegion
from ghost_engine.types import Face

# Output count -> (strides, anchors per cell). SCRFD exports put all score maps first,
# then all box maps, then all point maps, stride by stride.
_LAYOUTS = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}


@dataclass(frozen=True)
class ScrfdConfig:
    """GHOST's settings: 640x640 input, score threshold 0.6, NMS IoU 0.4.

    `region_side`: the square input a region search letterboxes each region's window
    into (the detection budget, `ghost_engine.face.detection_budget`), for graphs whose
    input size is dynamic (as `scrfd_10g_bnkps.onnx`'s, 1x3x?x?)."""

    input_size: tuple[int, int] = (640, 640)  # (width, height)
    score_threshold: float = 0.6
    nms_threshold: float = 0.4
    mean: float = 127.5
    std: float = 128.0
    region_side: int = 320


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
        spatial = list(inp.shape[2:4]) if inp.shape and len(inp.shape) == 4 else []
        self.dynamic_size = len(spatial) == 2 and not all(isinstance(d, int) for d in spatial)
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

    # -- the detection budget's region search (`ghost_engine.face.detection_budget`) ---------

    @property
    def searches_regions(self) -> bool:
        """Whether regions can be searched: the graph must take a smaller input."""
        return self.dynamic_size and self.config.region_side < min(self.config.input_size)

    def plan_regions(
        self, frame_size: tuple[int, int], regions: Sequence[SearchRegion]
    ) -> RegionPlan | None:
        """One square window per region, letterboxed to `region_side`: the window is
        `region_side / scale` frame pixels wide, `scale` being the full-frame letterbox
        scale, so the network sees the face at the size a full-frame detection gives it;
        it starts on a multiple of the coarsest stride (32 input pixels) where that is a
        whole number of frame pixels, so the anchors and the resampled pixels are the
        full-frame ones. None when a region does not fit in a window, or a window would
        hold the whole frame."""
        if not self.searches_regions or not regions:
            return None
        width, height = frame_size
        side = self.config.region_side
        scale = letterbox_scale(width, height, self.config.input_size)
        window = int(round(side / scale))
        if window >= width and window >= height:
            return None
        step = STRIDE_GRID / scale
        grid = int(round(step)) if abs(step - round(step)) < 1e-6 else 1
        crops = []
        for region in regions:
            x1, y1, x2, y2 = (float(v) for v in region.area)
            if x2 - x1 > window or y2 - y1 > window:
                return None
            x0 = window_origin(x1, x2, window, width, grid)
            y0 = window_origin(y1, y2, window, height, grid)
            crops.append((x0, y0, min(x0 + window, width), min(y0 + window, height)))
        return RegionPlan(tuple(crops), (width, height, side, window))

    def detect_crops(self, plan: RegionPlan, crops: Sequence[np.ndarray]) -> list[Face] | None:
        """The faces in the planned windows, in frame coordinates, best score first; None
        when a face at a cut edge outscores a kept face it overlaps (the whole frame may
        hold a better one there). A window cut short by the frame's edge is letterboxed
        as if whole (its scale is the window's), as the frame's own edge pads."""
        width, height, side, window = plan.detail
        blobs, scales = [], []
        for crop in crops:
            canvas, _ = letterbox_window(np.ascontiguousarray(crop), window, side)
            blobs.append(canvas)
            scales.append(side / window)
        raw = self._run(self._blob(blobs))
        kept_parts, edge_parts = [], []
        for (x0, y0, x1, y1), outputs, scale in zip(plan.crops, raw, scales, strict=True):
            b, s, p = decode(
                outputs, (side, side), self.config.score_threshold, 1.0, scale
            )  # NMS across windows below (1.0: keep every box of this window for now)
            b = b + np.array([x0, y0, x0, y0], np.float32)
            p = p + np.array([x0, y0], np.float32)
            guard = EDGE_GUARD / scale
            inside = np.ones(len(b), bool)
            if x0 > 0:
                inside &= b[:, 0] >= x0 + guard
            if y0 > 0:
                inside &= b[:, 1] >= y0 + guard
            if x1 < width:
                inside &= b[:, 2] <= x1 - guard
            if y1 < height:
                inside &= b[:, 3] <= y1 - guard
            kept_parts.append((b[inside], s[inside], p[inside]))
            edge_parts.append((b[~inside], s[~inside]))
        b = np.concatenate([k[0] for k in kept_parts])
        s = np.concatenate([k[1] for k in kept_parts])
        p = np.concatenate([k[2] for k in kept_parts])
        order = np.argsort(-s, kind="stable")
        b, s, p = b[order], s[order], p[order]
        keep = nms(b, s, self.config.nms_threshold)
        edge_boxes = np.concatenate([e[0] for e in edge_parts])
        edge_scores = np.concatenate([e[1] for e in edge_parts])
        if len(keep) and len(edge_boxes):
            overlap = iou_inclusive(b[keep], edge_boxes)
            better = edge_scores[None, :] > s[keep][:, None]
            if (better & (overlap > self.config.nms_threshold)).any():
                return None
        return [Face(box=b[i], score=s[i], kps=p[i]) for i in keep]


# Input pixels a region's face must keep from a window's cut edge (SCRFD's finest stride).
EDGE_GUARD = 8
# Windows start on multiples of the coarsest stride of the 3-stride layout (input pixels).
STRIDE_GRID = 32


def iou_inclusive(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) IoU with insightface's inclusive (+1) pixel areas, as `nms`."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt + 1, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2] + 1).prod(-1)
    area_b = (b[:, 2:] - b[:, :2] + 1).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def letterbox_scale(width: int, height: int, input_size: tuple[int, int]) -> float:
    """The full-frame letterbox scale (input pixels per frame pixel), as `letterbox`."""
    in_w, in_h = input_size
    if height / width > in_h / in_w:
        return in_h / height
    return int(in_w * (height / width)) / height


def letterbox_window(crop: np.ndarray, window: int, side: int) -> tuple[np.ndarray, float]:
    """A window's crop (window x window frame pixels, or fewer where the frame ends)
    resized by side / window into a zero side x side canvas (top left), as the frame's
    letterbox resizes those pixels."""
    scale = side / window
    h, w = crop.shape[:2]
    new_w, new_h = min(side, round(w * scale)), min(side, round(h * scale))
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(crop, (new_w, new_h))
    return canvas, scale


def window_origin(lo: float, hi: float, window: int, size: int, grid: int) -> int:
    """Where a `window`-wide window holding [lo, hi] starts in a `size`-wide frame:
    centred on the span, on a multiple of `grid` where one holds the span, inside the
    frame where it fits."""
    if size <= window:
        return 0
    start = int(np.floor(((lo + hi) / 2 - window / 2) / grid)) * grid
    if start > lo:
        start = int(np.floor(lo / grid)) * grid
    if start + window < hi:
        start = int(np.ceil((hi - window) / grid)) * grid
    start = min(max(start, 0), size - window)
    aligned = start // grid * grid
    if aligned <= lo and aligned + window >= hi:
        return int(aligned)
    return int(start)
