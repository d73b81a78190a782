"""The analysis stage: detect, embed, track, match and smooth; frames in, records out.

It decides who is in each frame and which source each face gets, and holds frames back
only for the smoother's look-ahead (2 frames for `window`, none for `ema`/`none`). Its
output, `AnalysedFrame`, is everything the synthesis stage needs. See DESIGN.md
section 3 for the GHOST behaviour reproduced.

With a detection budget (`SwapConfig.detect_every` > 1 and a detector that can search
regions), frames are detected one by one, whole where `face.detection_budget` says one
is needed and in the regions around the live tracks otherwise; the faces are those of a
full-frame detection either way.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ghost_engine.face.detection_budget import (
    DetectionBudget,
    detect_in_regions,
    explains,
    searches_regions,
)
from ghost_engine.face.geometry import transform_points
from ghost_engine.face.matching import MatchConfig, TargetMatcher
from ghost_engine.face.records import AnalysedFrame
from ghost_engine.face.smoothing import make_smoother
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.timing import StepTimer
from ghost_engine.face.tracking import Tracker, TrackerConfig, box_iou
from ghost_engine.interfaces import Detector, ImageOps, Recognizer
from ghost_engine.types import Face, Frame

# Re-check a continuing track's identity at least this often (frames).
REEMBED_EVERY = 15
# Mean absolute difference (0-255) of grey thumbnails that marks a scene cut.
CUT_THRESHOLD = 30.0  # the budget's own cut test uses the same (detection_budget)

STEPS = ("detect", "align", "identity")


@dataclass
class AnalysisModels:
    """The networks analysis runs: a detector, and a recogniser for matching (None when
    every face is swapped, so identities are not needed)."""

    detector: Detector
    recognizer: Recognizer | None


class AnalysisStage:
    """Implements `StreamStage` from frames to `AnalysedFrame`s; one stream each (not
    thread-safe). `references` are the target-face embeddings (None: first-face or
    all-faces mode)."""

    name = "face-analysis"

    def __init__(
        self,
        config: SwapConfig,
        models: AnalysisModels,
        references: np.ndarray | None,
        ops: ImageOps,
    ) -> None:
        self.config = config
        self.models = models
        self.ops = ops
        similarity = None if models.recognizer is None else models.recognizer.similarity
        self.tracker = Tracker(
            similarity, TrackerConfig(link_similarity=config.similarity_threshold)
        )
        self.matcher = TargetMatcher(
            MatchConfig(config.all_faces, config.similarity_threshold), similarity, references
        )
        self.smoother = make_smoother(config.smoothing)
        self._pending: deque[AnalysedFrame] = deque()
        self._done: deque[int] = deque()  # held frames a resumed run must not emit
        self._thumb: tuple[int, np.ndarray] | None = None
        self._frame_thumb: tuple[int, np.ndarray] | None = None  # this frame's, made once
        self._timer = StepTimer(STEPS)
        self.budget: DetectionBudget | None = None
        if config.detect_every > 1 and searches_regions(models.detector):
            self.budget = DetectionBudget(
                config.detect_every, config.detect_change_threshold, CUT_THRESHOLD
            )

    @property
    def lookahead(self) -> int:
        """How many frames the stage holds back (the smoother's look-ahead)."""
        return int(self.smoother.lookahead)

    def timings(self) -> dict[str, float]:
        return self._timer.timings()

    def close(self) -> None:
        self._pending.clear()

    def process(self, frames: list[Frame]) -> list[AnalysedFrame]:
        if not frames:
            return []
        self._analyse(frames)
        return self._ready(self.lookahead)

    def flush(self) -> list[AnalysedFrame]:
        return self._ready(0)

    def _analyse(self, frames: list[Frame]) -> None:
        detections: list[list[Face]] | None = None
        if self.budget is None:
            with self._timer.timed("detect"):
                detections = self.ops.detect(self.models.detector, frames)
        for k, frame in enumerate(frames):
            faces = self._detect(frame) if detections is None else detections[k]
            matching = faces and self.matcher.needs_embeddings
            if matching and not self._continues_track(frame, faces):
                self._embed(frame, faces)
            track_ids = self.tracker.update(frame.index, faces)
            if matching:
                unknown = [f for f in faces if not self.matcher.knows(f)]
                if unknown:
                    self._embed(frame, unknown)
                for face, track_id in zip(faces, track_ids, strict=True):
                    if face.embedding is not None:
                        self.tracker.tracks[track_id].extra["embedded_at"] = frame.index
            sources = self.matcher.assign(faces)
            self.smoother.push(frame.index, {track_ids[i]: faces[i].kps for i in sources})
            sims = self.matcher.last_similarities
            self._pending.append(AnalysedFrame(frame, faces, sources, sims))

    def _detect(self, frame: Frame) -> list[Face]:
        """One frame's faces under the budget: a region search around the live tracks
        where the budget allows it and the search explains every track, else a
        full-frame detection."""
        budget = self.budget
        assert budget is not None
        with self._timer.timed("detect"):
            thumb = self._thumbnail(frame)
            starts_shot = budget.observe(frame.index, thumb)
            live = budget.live(frame.index, self.tracker.tracks.values())
            size = (int(frame.width), int(frame.height))
            reason = budget.full_reason(frame.index, starts_shot, live, thumb, size)
            if reason is None:
                regions = budget.regions(live)
                found = detect_in_regions(self.ops, self.models.detector, frame, regions)
                if found is not None and explains(found, regions):
                    budget.searched()
                    return found
                reason = "fallback"
            faces = self.ops.detect(self.models.detector, [frame])[0]
            budget.detected_whole(frame.index, reason)
            return faces

    def _ready(self, keep: int) -> list[AnalysedFrame]:
        """Analysed frames beyond the last `keep`, with their smoothed points. Frames an
        earlier run already finished (see `restore`) are popped from the smoother, as
        that run did, and dropped."""
        ready = []
        while self._done and len(self._done) + len(self._pending) > keep:
            self.smoother.pop(self._done.popleft())
        while len(self._pending) > keep:
            item = self._pending.popleft()
            item.smoothed = self.smoother.pop(item.frame.index)
            ready.append(item)
        return ready

    def state(self) -> dict[str, Any]:
        """Everything the frames after this point depend on, as plain data: tracks,
        matching, smoother buffers, the scene-cut thumbnail and the detection budget's
        state (None without a budget). Taken between frames (before the next `process`);
        the frames still held for look-ahead are named by index only, as a resumed run
        starts after them."""
        thumb = None if self._thumb is None else {"frame": self._thumb[0], "image": self._thumb[1]}
        return {
            "tracker": self.tracker.state(),
            "matcher": self.matcher.state(),
            "smoother": self.smoother.state(),
            "thumbnail": thumb,
            "held": [*self._done, *(item.frame.index for item in self._pending)],
            "budget": None if self.budget is None else self.budget.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state()` of an earlier run; its held frames are already done."""
        self.tracker.restore(state["tracker"])
        self.matcher.restore(state["matcher"])
        self.smoother.restore(state["smoother"])
        thumb = state["thumbnail"]
        self._thumb = None if thumb is None else (int(thumb["frame"]), np.asarray(thumb["image"]))
        self._frame_thumb = None
        self._pending.clear()
        self._done = deque(int(i) for i in state["held"])
        if (state["budget"] is None) != (self.budget is None):
            raise ValueError("the saved state and this stage differ in the detection budget")
        if self.budget is not None:
            self.budget.restore(state["budget"])

    def _embed(self, frame: Frame, faces: list[Face]) -> None:
        """Identity embeddings of `faces` (for tracking and matching)."""
        assert self.models.recognizer is not None  # matching implies a recogniser
        with self._timer.timed("align"):
            crops = self.ops.crops([(frame, f.kps) for f in faces])
            images = self.ops.to_host(crops.images)
        with self._timer.timed("identity"):
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
        cut = self.scene_cut(frame)
        if len(faces) != 1 or cut:
            return False
        recent = [t for t in self.tracker.tracks.values() if t.last_frame == frame.index - 1]
        if len(recent) != 1:
            return False
        track = recent[0]
        fresh = frame.index - track.extra.get("embedded_at", -REEMBED_EVERY) < REEMBED_EVERY
        return fresh and box_iou(faces[0].box, track.box)[0, 0] >= 0.5

    def scene_cut(self, frame: Frame) -> bool:
        """Whether `frame` starts a new shot: mean absolute difference of 64x36 grey
        thumbnails above `CUT_THRESHOLD` (in-shot motion stays far below it)."""
        thumb = self._thumbnail(frame)
        last, self._thumb = self._thumb, (frame.index, thumb)
        if last is None or last[0] != frame.index - 1:
            return True
        return float(np.abs(thumb - last[1]).mean()) > CUT_THRESHOLD

    def _thumbnail(self, frame: Frame) -> np.ndarray:
        """`frame`'s grey thumbnail, made once for the cut test and the budget."""
        if self._frame_thumb is None or self._frame_thumb[0] != frame.index:
            self._frame_thumb = (frame.index, self.ops.thumbnail(frame))
        return self._frame_thumb[1]
