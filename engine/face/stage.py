"""The face-swap stream stage: detect, track, match, smooth, align, swap, mask, paste.

Frames go in and come out in order; the stage holds back only the look-ahead its
smoothing needs (2 frames for `window`, none for `ema`/`none`). Each output frame gets
`meta["faces_swapped"]` and `meta["faces"]` (per detected face: box, score, track_id,
source index or None, and for swapped faces the crop matrix and the 224 mask).
See DESIGN.md section 3 for the GHOST behaviour reproduced.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.face.builder import (
    FaceModels,
    build_models,
    person_embeddings,
    photo_face,
    read_photo,
)
from ghost_engine.face.geometry import transform_points
from ghost_engine.face.mask import LAYOUTS, cheek_offset, ghost_params, smooth_params
from ghost_engine.face.matching import MatchConfig, TargetMatcher
from ghost_engine.face.smoothing import make_smoother
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.tracking import Tracker, TrackerConfig, box_iou
from ghost_engine.types import Face, Frame, StreamStage

__all__ = ["SwapConfig", "SwapStage", "build_swap_stage"]

# Re-check a continuing track's identity at least this often (frames).
REEMBED_EVERY = 15
# Mean absolute difference (0-255) of grey thumbnails that marks a scene cut.
CUT_THRESHOLD = 30.0

STEPS = ("detect", "align", "identity", "generator", "enhance", "landmarks", "mask", "paste")


@dataclass
class _Pending:
    frame: Any  # Frame, or a DeviceFrame with the CUDA backend's image ops
    faces: list[Face]
    sources: dict[int, int]  # face index -> source index
    smoothed: dict = field(default_factory=dict)  # track -> smoothed 5 points, once ready
    # face index -> {"matrix": frame->crop 2x3, "mask": the blend mask} once pasted
    # (host ops: float32 (224, 224) in [0, 1]; device ops: uint8 on the device)
    blends: dict[int, dict] = field(default_factory=dict)


class _MaskState:
    """Mask parameters per track: frozen per segment (ghost) or smoothed (adaptive)."""

    def __init__(self, mode: str, momentum: float = 0.8) -> None:
        self.mode = mode
        self.momentum = momentum
        self._state: dict[int, tuple[int, Any]] = {}  # track -> (last frame, params|offset)

    def targets_needed(self, keys: Sequence[tuple[int, int]]) -> list[bool]:
        """For each (track, frame index) in order, whether its mask parameters are due
        (so the target crop's landmarks are needed), as if each one's `params` call came
        before the next; the state itself is not changed."""
        if self.mode == "adaptive":
            return [True] * len(keys)
        last = {track: state[0] for track, state in self._state.items()}
        needed = []
        for track, frame_index in keys:
            needed.append(last.get(track) != frame_index - 1)
            last[track] = frame_index
        return needed

    def params(self, track: int, frame_index: int, offset: float | None):
        last = self._state.get(track)
        fresh = last is None or last[0] != frame_index - 1
        if self.mode == "ghost":
            p = ghost_params(offset) if fresh else last[1]
            self._state[track] = (frame_index, p)
            return p
        smoothed = offset if fresh else self.momentum * last[1] + (1 - self.momentum) * offset
        self._state[track] = (frame_index, smoothed)
        return smooth_params(smoothed)


class SwapStage:
    """Implements `ghost_engine.types.StreamStage`; not thread-safe (one stream each).

    `ops` does the pixel work (`HostImageOps` on numpy frames by default; the CUDA
    backend passes its device image ops), everything else is decided here.
    """

    name = "face-swap"

    def __init__(
        self,
        config: SwapConfig,
        models: FaceModels,
        source_ids: np.ndarray | None,
        references: np.ndarray | None,
        fps: float = 30.0,
        ops: Any | None = None,
    ) -> None:
        self.config = config
        self.ops = ops if ops is not None else HostImageOps()
        self.models = models
        self.source_ids = source_ids
        # Live controls (webcam): a source row every swapped face takes instead of its
        # matched one, and a factor on the mask's blur sigmas.
        self.active_source: int | None = None
        self.mask_blur_scale = 1.0
        similarity = None if models.recognizer is None else models.recognizer.similarity
        self.tracker = Tracker(
            similarity, TrackerConfig(link_similarity=config.similarity_threshold)
        )
        self.matcher = TargetMatcher(
            MatchConfig(config.all_faces, config.similarity_threshold), similarity, references
        )
        self.smoother = make_smoother(config.smoothing, fps)
        self.masks = _MaskState(config.mask_mode)
        self.layout = LAYOUTS[models.landmarks.layout]
        self._pending: deque[_Pending] = deque()
        self._thumb: tuple[int, np.ndarray] | None = None
        self._timings = dict.fromkeys(STEPS, 0.0)
        self._timings_lock = threading.Lock()

    @contextmanager
    def _timed(self, step: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._timings_lock:  # split stages time steps from two threads
                self._timings[step] += time.perf_counter() - start

    def timings(self) -> dict[str, float]:
        """Seconds spent per sub-step so far."""
        return dict(self._timings)

    def close(self) -> None:
        self._pending.clear()

    # -- analysis: detect, embed, track, match ------------------------------------------

    def _analyse(self, frames: list[Frame]) -> None:
        with self._timed("detect"):
            detections = self.ops.detect(self.models.detector, frames)
        for frame, faces in zip(frames, detections, strict=True):
            matching = faces and self.matcher.needs_embeddings
            if matching and not self._continues_track(frame, faces):
                self._embed(frame, faces)
            self.tracker.update(frame.index, faces)
            if matching:
                unknown = [f for f in faces if not self.matcher.knows(f)]
                if unknown:
                    self._embed(frame, unknown)
                for face in faces:
                    if face.embedding is not None:
                        self.tracker.tracks[face.track_id].extra["embedded_at"] = frame.index
            sources = self.matcher.assign(faces)
            self.smoother.push(frame.index, {faces[i].track_id: faces[i].kps for i in sources})
            self._pending.append(_Pending(frame, faces, sources))

    def _embed(self, frame: Frame, faces: list[Face]) -> None:
        """Identity embeddings of `faces` (for tracking and matching)."""
        with self._timed("align"):
            crops = self.ops.crops([(frame, f.kps) for f in faces])
            images = self.ops.to_host(crops.images)
        with self._timed("identity"):
            kps = np.stack(
                [transform_points(f.kps, m) for f, m in zip(faces, crops.matrices, strict=True)]
            )
            emb = self.models.recognizer.embed(images, kps)
        for face, e in zip(faces, emb, strict=True):
            face.embedding = e

    def _continues_track(self, frame: Frame, faces: list[Face]) -> bool:
        """True when identity is not in doubt, so the recogniser can be skipped: one face,
        overlapping the one track of the previous frame (IoU >= 0.5), no scene cut
        between the frames, and an embedding of that track less than `REEMBED_EVERY`
        frames old. Several faces, cuts and new tracks always get embeddings, so people
        who swap places are still told apart; this saves the recogniser on most frames
        of a one-person shot."""
        cut = self._scene_cut(frame)
        if len(faces) != 1 or cut:
            return False
        recent = [t for t in self.tracker.tracks.values() if t.last_frame == frame.index - 1]
        if len(recent) != 1:
            return False
        track = recent[0]
        fresh = frame.index - track.extra.get("embedded_at", -REEMBED_EVERY) < REEMBED_EVERY
        return fresh and box_iou(faces[0].box, track.box)[0, 0] >= 0.5

    def _scene_cut(self, frame: Frame) -> bool:
        """Whether `frame` starts a new shot: mean absolute difference of 64x36 grey
        thumbnails above `CUT_THRESHOLD` (in-shot motion stays far below it)."""
        thumb = self.ops.thumbnail(frame)
        last, self._thumb = self._thumb, (frame.index, thumb)
        if last is None or last[0] != frame.index - 1:
            return True
        return float(np.abs(thumb - last[1]).mean()) > CUT_THRESHOLD

    # -- synthesis: align, swap, mask, paste --------------------------------------------

    def _finish(self, items: list[_Pending]) -> list[Frame]:
        jobs = []  # (item, face index, source, smoothed points)
        for item in items:
            smoothed = item.smoothed
            for fi, src in item.sources.items():
                face = item.faces[fi]
                jobs.append((item, fi, src, smoothed.get(face.track_id, face.kps)))
        if jobs:
            with self._timed("align"):
                crops = self.ops.crops([(j[0].frame, j[3]) for j in jobs])
            z = None if self.source_ids is None else self.source_ids[self._rows(jobs)]
            swaps = self.ops.swaps(
                self.models.generator, self.models.enhancer, crops.images, z, self._timed
            )
            with self._timed("landmarks"):
                swap_lms, target_lms = self._landmarks(jobs, crops.images, swaps)
            for k, (item, fi, _, _) in enumerate(jobs):
                face, matrix = item.faces[fi], crops.matrices[k]
                offset = None
                if target_lms[k] is not None:
                    offset = cheek_offset(swap_lms[k], target_lms[k], self.layout)
                mask = self._blend(
                    item.frame, face, crops.images[k], swaps[k], swap_lms[k], offset, matrix
                )
                item.blends[fi] = {"matrix": matrix, "mask": mask}
        out = []
        for item in items:
            item.frame.meta["faces_swapped"] = len(item.sources)
            item.frame.meta["faces"] = [
                {
                    "box": f.box,
                    "score": f.score,
                    "track_id": f.track_id,
                    "source": item.sources.get(i),
                    **item.blends.get(i, {}),
                }
                for i, f in enumerate(item.faces)
            ]
            if self.config.debug_overlay:
                blends = [
                    {"matrix": b["matrix"], "mask": self.ops.host_mask(b["mask"])}
                    for b in item.blends.values()
                ]
                self.ops.draw(item.frame, partial(_draw_overlay, faces=item.faces, blends=blends))
            out.append(item.frame)
        return out

    def _rows(self, jobs: list) -> list[int]:
        """Source row of each job: its matched source, or the live `active_source`."""
        if self.active_source is None:
            return [j[2] for j in jobs]
        if not 0 <= self.active_source < len(self.source_ids):
            raise ValueError(
                f"source {self.active_source} does not exist; there are {len(self.source_ids)}"
            )
        return [self.active_source] * len(jobs)

    def _landmarks(self, jobs: list, crops: Any, swaps: Any) -> tuple[np.ndarray, list]:
        """Landmarks of every swap, and of the target crops whose mask parameters are due
        (`None` for the others), in one batched call of the landmark network."""
        keys = [
            (
                j[0].faces[j[1]].track_id if j[0].faces[j[1]].track_id is not None else -1,
                j[0].frame.index,
            )
            for j in jobs
        ]
        needed = [k for k, due in enumerate(self.masks.targets_needed(keys)) if due]
        images = self.ops.to_host(swaps)
        if needed:
            targets = self.ops.to_host(crops[needed] if len(needed) < len(jobs) else crops)
            images = np.concatenate([images, targets])
        points = self.models.landmarks(images)
        target_lms: list = [None] * len(jobs)
        for row, k in enumerate(needed):
            target_lms[k] = points[len(jobs) + row]
        return points[: len(jobs)], target_lms

    def _blend(self, frame, face: Face, crop, swap, swap_lm, offset, matrix):
        """Mask (from the swap's landmarks and, when due, the cheek offset against the
        target's), colour-match and paste one swap; returns the mask used."""
        track = face.track_id if face.track_id is not None else -1
        with self._timed("mask"):
            params = self.masks.params(track, frame.index, offset)
            if self.mask_blur_scale != 1.0:
                params = replace(
                    params,
                    sigma_x=params.sigma_x * self.mask_blur_scale,
                    sigma_y=params.sigma_y * self.mask_blur_scale,
                )
            mask = self.ops.mask(swap_lm, params, self.layout)
            if self.config.color_match:
                swap = self.ops.color_match(swap, crop, mask)
        with self._timed("paste"):
            self.ops.paste(frame, swap, mask, matrix)
        return mask

    # -- StreamStage ----------------------------------------------------------------------

    def process(self, frames: list[Frame]) -> list[Frame]:
        if not frames:
            return []
        self._analyse(frames)
        return self._finish(self._ready(self.smoother.lookahead))

    def flush(self) -> list[Frame]:
        return self._finish(self._ready(0))

    def _ready(self, keep: int) -> list[_Pending]:
        """Analysed frames beyond the last `keep`, with their smoothed points."""
        ready = []
        while len(self._pending) > keep:
            item = self._pending.popleft()
            item.smoothed = self.smoother.pop(item.frame.index)
            ready.append(item)
        return ready

    def split(self) -> list[StreamStage]:
        """The stage as two stages for two threads: analysis (detect, embed, track,
        match, smooth) and synthesis (crops, generator, masks, paste), so detection of
        the next frames overlaps the generator's work on these. Same results as one."""
        return [_AnalysisStage(self), _SynthesisStage(self)]


class _AnalysisStage:
    """Frames in, analysed items out (in order, after the smoothing look-ahead)."""

    name = "face-analysis"

    def __init__(self, stage: SwapStage) -> None:
        self.stage = stage

    def process(self, frames: list[Frame]) -> list[_Pending]:
        if not frames:
            return []
        self.stage._analyse(frames)
        return self.stage._ready(self.stage.smoother.lookahead)

    def flush(self) -> list[_Pending]:
        return self.stage._ready(0)


class _SynthesisStage:
    """Analysed items in, swapped frames out."""

    name = "face-synthesis"

    def __init__(self, stage: SwapStage) -> None:
        self.stage = stage

    def process(self, items: list[_Pending]) -> list[Frame]:
        return self.stage._finish(items)

    def flush(self) -> list[Frame]:
        return []


def _mask_outline(mask: np.ndarray, matrix: np.ndarray) -> list[np.ndarray]:
    """The mask's half-strength contour, in frame coordinates."""
    binary = (np.asarray(mask) >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    return [cv2.transform(c.astype(np.float64), inverse).round().astype(np.int32) for c in contours]


def _draw_overlay(image: np.ndarray, faces: list[Face], blends=()) -> None:
    """Boxes with track and score (green), the 5 points (red), mask outlines (yellow)."""
    for blend in blends:
        cv2.polylines(image, _mask_outline(blend["mask"], blend["matrix"]), True, (255, 255, 0), 1)
    for face in faces:
        x1, y1, x2, y2 = (int(v) for v in face.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        for x, y in face.kps:
            cv2.circle(image, (int(x), int(y)), 3, (255, 0, 0), -1)
        label = f"{face.track_id}:{face.score:.2f}"
        cv2.putText(
            image, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1
        )


def build_swap_stage(
    config: SwapConfig,
    sources: Sequence[Sequence[Path]],
    target_faces: Sequence[Path] = (),
    *,
    store: Any | None = None,
    fps: float = 30.0,
    ops: Any | None = None,
) -> SwapStage:
    """The stage for `config`: one inner list of photos per source person (their
    identities averaged); the i-th reference photo in `target_faces` gets the i-th source.
    `ops` does the pixel work (default: `HostImageOps`, numpy frames).

    Raises NoFaceError (naming the photo), ModelMissingError, InputFileNotFoundError or
    UnsupportedMediaError.
    """
    if not sources or any(len(p) == 0 for p in sources):
        raise ValueError("give at least one photo for every source person")
    for photo in [*(p for person in sources for p in person), *target_faces]:
        read_photo(Path(photo))  # unreadable files fail before any model loads
    models = build_models(config, store)
    source_ids = None
    if models.id_encoder is not None:
        source_ids = np.stack(
            [person_embeddings(models.id_encoder, models.detector, list(p)) for p in sources]
        ).astype(np.float32)
    else:
        for person in sources:
            for photo in person:
                photo_face(models.detector, Path(photo))
    references = None
    if target_faces and not config.all_faces:
        references = np.stack(
            [person_embeddings(models.recognizer, models.detector, [Path(t)]) for t in target_faces]
        )
    elif target_faces:
        for photo in target_faces:
            photo_face(models.detector, Path(photo))
    return SwapStage(config, models, source_ids, references, fps, ops)
