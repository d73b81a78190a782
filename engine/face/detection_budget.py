"""The detection budget: a full-frame detection only where one is needed, regions between.

Full-frame detection is the analysis stage's costliest step on a CPU (dlib's HOG pyramid:
about 74 ms of every 720p frame), though a tracked face moves a few pixels per frame.
With a budget (`SwapConfig.detect_every` K > 1), a frame gets a full-frame detection when

- it starts a shot: the first frame, a gap in frame numbers, or a scene cut (the
  analysis stage's thumbnail test, on this module's own chain of thumbnails);
- no track is live (seen in the last `LIVE_FRAMES` frames of this shot): there is
  nothing to search around, and a new face can only be found everywhere;
- the picture outside the tracked regions changed suddenly: some `CHANGE_BLOCK`-cell
  block of the 64x36 grey thumbnail that no region touches lies outside what the frame
  before holds within `CHANGE_REACH` cells of it by more than the threshold
  (`changed_outside`): a face pasted in, a person stepping into view;
- K frames have passed since the last full-frame detection;

otherwise the detector searches a region around each live track's last box (enlarged
`REGION_MARGIN` times), and the frame falls back to a full-frame detection where the
search loses a track, finds a face no track explains, or cannot vouch for its answer.

What a budget can change: a face that comes in gradually outside every region (sliding
in from an edge, slower than the scene around it moves) is found by the next full-frame
detection, at most K - 1 frames late. The change test compares with the frame before,
not with the last full-frame detection's: on nggyup.mp4 the dancing and the camera
change an 80 px block outside the face by more than 40 (moves of up to 40 px allowed)
in 96 of 216 frames 1-9 frames after a full detection (such a test would detect nearly
every other frame whole), while
frame to frame they pass 40 in 3 of 239.

A region search gives the faces a full-frame detection gives inside the regions (each
detector keeps its own scale and pixel grid there: `dlib_regions`, `ScrfdDetector.
plan_regions`), so tracking, matching and the output stay the same; what the budget
decides from (`DetectionBudget.state()`) is part of the analysis stage's exported state,
so a resumed run decides the same way.

The crops are cut where the frame is (a slice of a host or device array) and copied to
the host (`detect_in_regions`): the same code on both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from ghost_engine.face.tracking import Track, box_iou
from ghost_engine.interfaces import ImageOps
from ghost_engine.types import Face, Frame

# Tracks seen this recently are searched: the tracker links a detection to a track by
# overlap only within this many frames (beyond, by identity alone, which can be anywhere).
LIVE_FRAMES = 2
# A region is the last box enlarged this many times about its centre (dlib on nggyup.mp4:
# 1.5 and 2.0 leave the same fallbacks, and 1.5 searches 30% faster).
REGION_MARGIN = 1.5
# A region has found its track's face when a face overlaps the track's box this much
# (the tracker's own minimum overlap for a link).
FOUND_IOU = 0.1
# The change test: blocks of CHANGE_BLOCK x CHANGE_BLOCK thumbnail cells (80 px square at
# 720p); a cell changes by how far (grey, 0-255) it lies outside the range of the frame
# before's cells within CHANGE_REACH of it. Measured (64x36 thumbnails, outside the
# face's region): nggyup.mp4 passes 40 in 3 of 239 frame pairs, 30 in 10, 20 in 32; a
# face pasted into a 720p two-person clip scores 78, into a 512x256 one 107, while the
# faces there drifting 3-9 px a frame score at most 30.
CHANGE_BLOCK = 4
CHANGE_REACH = 1  # cells (20 px at 720p): motion up to this much a frame is not a change
CHANGE_THRESHOLD = 40.0
# Scene cut: the analysis stage's threshold (mean absolute difference of thumbnails).
CUT_THRESHOLD = 30.0


@dataclass(frozen=True)
class SearchRegion:
    """Where to look for one track's face: `face`, its last box, and `area`, the box
    enlarged by the margin (x1, y1, x2, y2 frame pixels; may reach past the frame)."""

    face: np.ndarray
    area: np.ndarray


def search_region(box: np.ndarray, margin: float = REGION_MARGIN) -> SearchRegion:
    """The region around box `box`."""
    box = np.asarray(box, np.float64)
    centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) * margin / 2
    return SearchRegion(box, np.concatenate([centre - half, centre + half]))


@dataclass(frozen=True)
class RegionPlan:
    """What a region search reads: `crops`, (x0, y0, x1, y1) frame pixels inside the
    frame, handed over as host RGB arrays; `detail`: the detector's own plan."""

    crops: tuple[tuple[int, int, int, int], ...]
    detail: Any = None


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can search regions of a frame for the faces a full-frame
    detection finds there. `searches_regions`: whether it can (dlib with upsampling, or
    an SCRFD graph with a fixed input size, cannot)."""

    searches_regions: bool

    def plan_regions(
        self, frame_size: tuple[int, int], regions: Sequence[SearchRegion]
    ) -> RegionPlan | None:
        """The crops of a (width, height) frame that searching `regions` reads; None
        where a region cannot be searched (the frame then gets a full detection)."""
        ...

    def detect_crops(self, plan: RegionPlan, crops: Sequence[np.ndarray]) -> list[Face] | None:
        """The faces in the planned crops, in frame coordinates, best score first, as a
        full-frame detection lists them; None when the search cannot vouch for that."""
        ...


def searches_regions(detector: Any) -> bool:
    """Whether `detector` can search regions (see `RegionDetector`)."""
    return isinstance(detector, RegionDetector) and bool(detector.searches_regions)


def detect_in_regions(
    ops: ImageOps, detector: Any, frame: Frame, regions: Sequence[SearchRegion]
) -> list[Face] | None:
    """The faces a full-frame detection of `frame` finds inside `regions` (None: the
    detector cannot tell). The planned crops are slices of the frame where it lives,
    copied to the host by the backend's `to_host`: no backend-specific code."""
    plan = detector.plan_regions((int(frame.width), int(frame.height)), regions)
    if plan is None:
        return None
    crops = [
        np.ascontiguousarray(ops.to_host(frame.image[y0:y1, x0:x1]))
        for x0, y0, x1, y1 in plan.crops
    ]
    faces: list[Face] | None = detector.detect_crops(plan, crops)
    return faces


def explains(faces: Sequence[Face], regions: Sequence[SearchRegion]) -> bool:
    """Whether a region search's faces match its tracks: every region's box overlapped
    by a found face (no track lost) and every face by a region's box (no new track)."""
    if not faces or not regions:
        return not faces and not regions
    iou = box_iou(np.stack([r.face for r in regions]), np.stack([f.box for f in faces]))
    hit = iou >= FOUND_IOU
    return bool(hit.any(axis=1).all() and hit.any(axis=0).all())


def changed_outside(
    reference: np.ndarray,
    now: np.ndarray,
    frame_size: tuple[int, int],
    areas: Iterable[np.ndarray],
    threshold: float = CHANGE_THRESHOLD,
) -> float | None:
    """How much the picture changed outside `areas` (x1, y1, x2, y2 frame pixels) between
    two grey thumbnails of a (width, height) frame, when that passes `threshold`; else
    None. A cell's change is how far it lies outside the range of the reference's cells
    within `CHANGE_REACH` of it (a picture moved by up to that much, camera pans and
    people moving about, stays inside; a face arriving does not); a block's change is the
    mean over its `CHANGE_BLOCK` x `CHANGE_BLOCK` cells, and the result is the largest
    over the blocks that no area touches."""
    ref = np.ascontiguousarray(reference, np.float32)
    cur = np.asarray(now, np.float32)
    rows, cols = cur.shape
    block = CHANGE_BLOCK
    reach = np.ones((2 * CHANGE_REACH + 1, 2 * CHANGE_REACH + 1), np.uint8)
    high = cv2.dilate(ref, reach, borderType=cv2.BORDER_REPLICATE)
    low = cv2.erode(ref, reach, borderType=cv2.BORDER_REPLICATE)
    outside = np.maximum(np.maximum(cur - high, low - cur), 0.0)
    if rows < block or cols < block:
        change = float(outside.mean())
        return change if change > threshold else None
    free = np.ones_like(cur, bool)
    sx, sy = cols / frame_size[0], rows / frame_size[1]
    for x1, y1, x2, y2 in areas:
        c0, c1 = max(0, int(np.floor(x1 * sx))), max(0, int(np.ceil(x2 * sx)))
        r0, r1 = max(0, int(np.floor(y1 * sy))), max(0, int(np.ceil(y2 * sy)))
        free[r0:r1, c0:c1] = False
    means = _block_sums(outside, block) / block**2
    clear = _block_sums(free.astype(np.float64), block) == block**2
    worst = float(means[clear].max()) if clear.any() else 0.0
    return worst if worst > threshold else None


def _block_sums(image: np.ndarray, block: int) -> np.ndarray:
    """Sums of every block x block window over the last two axes (an integral image: a
    fraction of a millisecond for a stack of thumbnails, where summing each window
    costs milliseconds)."""
    *lead, rows, cols = image.shape
    total = np.zeros((*lead, rows + 1, cols + 1), np.float64)
    np.cumsum(np.cumsum(image, axis=-2, dtype=np.float64), axis=-1, out=total[..., 1:, 1:])
    return (
        total[..., block:, block:] - total[..., :-block, block:]
        - total[..., block:, :-block] + total[..., :-block, :-block]
    )  # fmt: skip


# Why a frame was detected whole (the counters of `DetectionBudget.counts`).
REASONS = ("shot", "no_tracks", "changed", "every", "fallback")


@dataclass
class DetectionBudget:
    """When a frame gets a full-frame detection, and where the others are searched (see
    module doc). Holds what that depends on beyond the tracks; `state()` / `restore()`
    carry it over a resume. One stream; frames in order."""

    every: int
    change_threshold: float = CHANGE_THRESHOLD
    cut_threshold: float = CUT_THRESHOLD
    margin: float = REGION_MARGIN
    shot_start: int = 0
    last_full: int | None = None
    previous: tuple[int, np.ndarray] | None = None  # the last frame's thumbnail
    before: np.ndarray | None = None  # the thumbnail before the frame being decided
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("regions", *REASONS), 0))

    def observe(self, index: int, thumb: np.ndarray) -> bool:
        """Take frame `index`'s thumbnail; whether the frame starts a shot."""
        last, self.previous = self.previous, (index, thumb)
        self.before = None if last is None or last[0] != index - 1 else last[1]
        starts = self.before is None
        if self.before is not None:
            starts = float(np.abs(thumb - self.before).mean()) > self.cut_threshold
        if starts:
            self.shot_start = index
        return starts

    def live(self, index: int, tracks: Iterable[Track]) -> list[Track]:
        """The tracks to search around at frame `index` (seen lately, in this shot)."""
        return [
            t
            for t in tracks
            if t.last_frame >= self.shot_start and 0 < index - t.last_frame <= LIVE_FRAMES
        ]

    def regions(self, live: Sequence[Track]) -> list[SearchRegion]:
        """The region of each live track: its last box, enlarged by the margin."""
        return [search_region(track.box, self.margin) for track in live]

    def full_reason(
        self,
        index: int,
        starts_shot: bool,
        live: Sequence[Track],
        thumb: np.ndarray,
        frame_size: tuple[int, int],
    ) -> str | None:
        """Why frame `index` (after `observe`) needs a full-frame detection before any
        region search (one of `REASONS`), or None."""
        if starts_shot or self.last_full is None or self.before is None:
            return "shot"
        if not live:
            return "no_tracks"
        if index - self.last_full >= self.every:
            return "every"
        areas = [r.area for r in self.regions(live)]
        if changed_outside(self.before, thumb, frame_size, areas, self.change_threshold):
            return "changed"
        return None

    def searched(self) -> None:
        """A region search gave the frame's faces."""
        self.counts["regions"] += 1

    def detected_whole(self, index: int, reason: str) -> None:
        """Frame `index` was detected whole, for `reason`."""
        self.last_full = index
        self.counts[reason] += 1

    def state(self) -> dict[str, Any]:
        """What the next frames' decisions depend on, as plain data."""
        previous = self.previous
        return {
            "every": self.every,
            "shot_start": self.shot_start,
            "last_full": self.last_full,
            "previous": None if previous is None else {"frame": previous[0], "image": previous[1]},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state()` of an earlier run."""
        if int(state["every"]) != self.every:
            raise ValueError(
                f"the saved detection budget searches whole every {state['every']} frames, "
                f"this one every {self.every}"
            )
        self.shot_start = int(state["shot_start"])
        self.last_full = None if state["last_full"] is None else int(state["last_full"])
        previous = state["previous"]
        self.previous = (
            None
            if previous is None
            else (int(previous["frame"]), np.asarray(previous["image"], np.float32))
        )
        self.before = None
