"""The detection budget: full-frame detection only where it is needed, regions between.

Full-frame detection is the analysis stage's costliest step on a CPU (dlib's HOG pyramid:
about 74 ms of every 720p frame), though a tracked face moves a few pixels per frame.
With a budget, a frame gets a full-frame detection when

- it starts a shot (a scene cut, the first frame, a gap in frame numbers),
- no track is live (seen in the last `LIVE_FRAMES` frames, since the shot began):
  there is nothing to look around, so new faces can only be found everywhere,
- `every` frames have passed since the last full-frame detection (`SwapConfig.
  full_detect_every`; 1 turns the budget off);

otherwise the detector searches a region around each live track's last box, enlarged
`REGION_MARGIN` times, and the frame falls back to a full-frame detection where a
region yields no face for its track (a lost track is looked for everywhere at once), a
face no track's box explains (a new track: more faces may be arriving), or the detector
cannot search a region or vouch for its answer. (The last box moved on by the track's
last motion predicts worse: dlib's boxes jump by a HOG cell from frame to frame, and on
nggyup.mp4, with regions of twice the box, extrapolating the jump put 2 of 110 faces
past their region's edge, where a smaller box inside it was taken instead.)

The regions give the faces a full-frame detection gives inside them (each detector
keeps its own scale and pixel grid there: see `dlib_regions` and `ScrfdDetector.
plan_regions`), so tracking, matching and the output do not change. What a budget can
change: a face that enters the picture outside every region (without a cut, while
other faces are tracked) is found by the next full-frame detection, at most `every - 1`
frames late.

The pixels cross the backend's `ImageOps.detect_regions`: a detector plans the crops it
reads (`RegionDetector.plan_regions`), the image ops cut them where the frame is (host
or device) and hand them back (`detect_crops`, or a letterboxed device batch through
`detect_crop_blob`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ghost_engine.face.tracking import Track, box_iou
from ghost_engine.types import Face

# Tracks seen this recently are searched: the tracker links a detection to a track by
# overlap only within this many frames (beyond, by identity alone, which can be anywhere).
LIVE_FRAMES = 2
# A region is the last box enlarged this many times about its centre. On 110 frame pairs
# of nggyup.mp4 (dlib) 1.5 and 2.0 leave the same fallbacks (6, all frames where dlib
# finds no face at all) and 1.5 searches 30% faster (crops grow with the region).
REGION_MARGIN = 1.5
# A region has found its track's face when a face overlaps the predicted box this much
# (the tracker's own minimum overlap for a link).
FOUND_IOU = 0.1


@dataclass(frozen=True)
class SearchRegion:
    """Where to look for one track's face: `face`, its predicted box, and `area`, the
    box enlarged by the margin (x1, y1, x2, y2 frame pixels; may reach past the frame)."""

    face: np.ndarray
    area: np.ndarray

    @property
    def face_side(self) -> float:
        """The predicted face's longer side (pixels)."""
        return float(max(self.face[2] - self.face[0], self.face[3] - self.face[1]))


def search_region(box: np.ndarray, margin: float = REGION_MARGIN) -> SearchRegion:
    """The region around predicted box `box`."""
    box = np.asarray(box, np.float64)
    centre = (box[:2] + box[2:]) / 2
    half = (box[2:] - box[:2]) * margin / 2
    return SearchRegion(box, np.concatenate([centre - half, centre + half]))


@dataclass(frozen=True)
class RegionPlan:
    """What a region search reads: `crops`, (x0, y0, x1, y1) frame pixels inside the
    frame, one per network input; `side`: each crop letterboxed to side x side (SCRFD),
    or None for the crops' raw pixels (dlib); `detail`: the detector's own plan."""

    crops: tuple[tuple[int, int, int, int], ...]
    side: int | None = None
    detail: Any = None


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can search regions of a frame for the faces a full-frame
    detection finds there. `searches_regions`: whether it can (dlib with upsampling,
    or an SCRFD graph with a fixed input size, cannot)."""

    searches_regions: bool

    def plan_regions(
        self, frame_size: tuple[int, int], regions: Sequence[SearchRegion]
    ) -> RegionPlan | None:
        """The crops of a (width, height) frame that searching `regions` reads; None
        where a region cannot be searched (then the frame gets a full detection)."""
        ...

    def detect_crops(self, plan: RegionPlan, crops: Sequence[np.ndarray]) -> list[Face] | None:
        """The faces in the planned crops (host RGB pixels), in frame coordinates, best
        score first, as a full-frame detection lists them; None when the search cannot
        vouch for that (a better box may reach past a crop): the frame is then detected
        whole."""
        ...


@runtime_checkable
class BlobRegionDetector(RegionDetector, Protocol):
    """A region detector that also takes its crops letterboxed and normalised (made on
    the device by the CUDA backend): `detect_crop_blob(plan, batch, scales)`."""

    accepts_device_blobs: bool

    def detect_crop_blob(
        self, plan: RegionPlan, batch: Any, scales: Sequence[float]
    ) -> list[Face] | None:
        """As `detect_crops`, from the (N, 3, side, side) batch of the plan's crops."""
        ...


def searches_regions(detector: Any) -> bool:
    """Whether `detector` can search regions (see `RegionDetector`)."""
    return isinstance(detector, RegionDetector) and bool(detector.searches_regions)


def explains(faces: Sequence[Face], regions: Sequence[SearchRegion]) -> bool:
    """Whether a region search's faces match its tracks: every region's predicted box
    overlapped by a found face (no track lost) and every face by a predicted box (no
    new track)."""
    if not faces or not regions:
        return not faces and not regions
    iou = box_iou(np.stack([r.face for r in regions]), np.stack([f.box for f in faces]))
    hit = iou >= FOUND_IOU
    return bool(hit.any(axis=1).all() and hit.any(axis=0).all())


@dataclass
class DetectionBudget:
    """When a frame gets a full-frame detection, and where the regions of the others
    are (see module doc). Holds what that depends on beyond the tracks: the frames of
    the last full-frame detection and of the last cut; `state()` / `restore()` carry it
    over a resume."""

    every: int
    margin: float = REGION_MARGIN
    last_full: int | None = None
    shot_start: int = 0

    def live(self, index: int, cut: bool, tracks: Iterable[Track]) -> list[Track]:
        """The tracks to search around at frame `index` (none at a cut, which starts a
        shot: tracks from before it are not looked for where they were)."""
        if cut:
            self.shot_start = index
            return []
        return [
            t
            for t in tracks
            if t.last_frame >= self.shot_start and 0 < index - t.last_frame <= LIVE_FRAMES
        ]

    def wants_full(self, index: int, live: Sequence[Track]) -> bool:
        """Whether frame `index` gets a full-frame detection without a region search."""
        return not live or self.last_full is None or index - self.last_full >= self.every

    def regions(self, live: Sequence[Track]) -> list[SearchRegion]:
        """The region of each live track: its last box, enlarged by the margin."""
        return [search_region(track.box, self.margin) for track in live]

    def detected_whole(self, index: int) -> None:
        self.last_full = index

    def state(self) -> dict[str, Any]:
        return {"every": self.every, "last_full": self.last_full, "shot_start": self.shot_start}

    def restore(self, state: dict[str, Any]) -> None:
        self.every = int(state["every"])
        self.last_full = None if state["last_full"] is None else int(state["last_full"])
        self.shot_start = int(state["shot_start"])
