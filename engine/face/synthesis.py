"""The synthesis stage: align, generate, enhance, landmarks, mask and paste.

Records of the analysis stage in, finished frames out, in order and without holding
any back. Each output frame gets `meta["faces_swapped"]` and `meta["faces"]` (per
detected face: box, score, five points, the smoothed points it was aligned with (swapped
faces), track_id, source index or None, its similarity to each reference (or to the
first face), and for swapped faces the crop matrix and the 224 mask). Mask parameters
per track are the only state (GHOST freezes them at a track segment's first frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ghost_engine.errors import UserInputError
from ghost_engine.face.mask import LAYOUTS, MaskParams, cheek_offset, ghost_params, smooth_params
from ghost_engine.face.records import AnalysedFrame, SwapOverrides
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.timing import StepTimer
from ghost_engine.interfaces import Enhancer, Generator, ImageOps, LandmarkModel
from ghost_engine.types import Face, Frame

STEPS = ("align", "generator", "enhance", "landmarks", "mask", "paste")


@dataclass
class SynthesisModels:
    """The networks synthesis runs: the generator, the mask landmarks and, with
    `SwapConfig.enhance`, the face-renovation network."""

    generator: Generator
    landmarks: LandmarkModel
    enhancer: Enhancer | None = None


@dataclass
class _Job:
    """One face to swap: its record, index in the record's faces, source row, points."""

    item: AnalysedFrame
    face_index: int
    source: int
    points: np.ndarray

    @property
    def face(self) -> Face:
        return self.item.faces[self.face_index]

    @property
    def track(self) -> int:
        track = self.face.track_id
        return track if track is not None else -1


class MaskState:
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

    def params(self, track: int, frame_index: int, offset: float | None) -> MaskParams:
        last = self._state.get(track)
        fresh = last is None or last[0] != frame_index - 1
        if self.mode == "ghost":
            if fresh or last is None:
                assert offset is not None  # `targets_needed` asks for the target's landmarks
                p = ghost_params(offset)
            else:
                p = last[1]
            self._state[track] = (frame_index, p)
            return p
        assert offset is not None  # adaptive parameters need the target's every frame
        if fresh or last is None:
            smoothed = offset
        else:
            smoothed = self.momentum * last[1] + (1 - self.momentum) * offset
        self._state[track] = (frame_index, smoothed)
        return smooth_params(smoothed)

    def state(self) -> list[dict[str, Any]]:
        """Per track: the last frame and its frozen parameters (ghost) or smoothed offset."""
        out = []
        for track, (frame, value) in self._state.items():
            entry: dict[str, Any] = {"track": track, "frame": frame}
            if isinstance(value, MaskParams):
                entry["params"] = asdict(value)
            else:
                entry["offset"] = None if value is None else float(value)
            out.append(entry)
        return out

    def restore(self, state: list[dict[str, Any]]) -> None:
        self._state = {
            int(e["track"]): (
                int(e["frame"]),
                MaskParams(**e["params"]) if "params" in e else e["offset"],
            )
            for e in state
        }


class SynthesisStage:
    """Implements `StreamStage` from `AnalysedFrame`s to frames; one stream each.

    `source_ids` holds one identity row per source person (None with the passthrough
    generator); `overrides` are the caller's live changes (see `SwapOverrides`).
    """

    name = "face-synthesis"

    def __init__(
        self,
        config: SwapConfig,
        models: SynthesisModels,
        source_ids: np.ndarray | None,
        ops: ImageOps,
        overrides: SwapOverrides | None = None,
    ) -> None:
        self.config = config
        self.models = models
        self.source_ids = source_ids
        self.ops = ops
        self.overrides = overrides if overrides is not None else SwapOverrides()
        self.masks = MaskState(config.mask_mode)
        self.layout = LAYOUTS[models.landmarks.layout]
        self._timer = StepTimer(STEPS)

    def timings(self) -> dict[str, float]:
        return self._timer.timings()

    def state(self) -> dict[str, Any]:
        """The mask parameters per track (what later frames depend on), as plain data."""
        return {"masks": self.masks.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.masks.restore(state["masks"])

    def close(self) -> None:
        """Nothing to release: the models belong to whoever built them."""

    def flush(self) -> list[Frame]:
        return []

    def process(self, items: list[AnalysedFrame]) -> list[Frame]:
        jobs = [
            _Job(item, fi, src, item.points(fi))
            for item in items
            for fi, src in item.sources.items()
        ]
        blends: dict[tuple[int, int], dict] = {}
        if jobs:
            blends = self._swap(jobs)
        out = []
        for item in items:
            item.frame.meta["faces_swapped"] = len(item.sources)
            sims = item.similarities
            item.frame.meta["faces"] = [
                {
                    "box": f.box,
                    "score": f.score,
                    "kps": f.kps,
                    "smoothed": item.points(i) if i in item.sources else None,
                    "track_id": f.track_id,
                    "source": item.sources.get(i),
                    "similarities": None if sims is None else sims[i],
                    **blends.get((id(item), i), {}),
                }
                for i, f in enumerate(item.faces)
            ]
            out.append(item.frame)
        return out

    def _swap(self, jobs: list[_Job]) -> dict[tuple[int, int], dict]:
        """Swap, mask and paste every job's face; (record id, face index) -> its blend."""
        with self._timer.timed("align"):
            crops = self.ops.crops([(j.item.frame, j.points) for j in jobs])
        z = None if self.source_ids is None else self.source_ids[self.rows(jobs)]
        swaps = self.ops.swaps(
            self.models.generator, self.models.enhancer, crops.images, z, self._timer.timed
        )
        with self._timer.timed("landmarks"):
            swap_lms, target_lms = self._landmarks(jobs, crops.images, swaps)
        blends = {}
        for k, job in enumerate(jobs):
            offset = None
            if target_lms[k] is not None:
                offset = cheek_offset(swap_lms[k], target_lms[k], self.layout)
            matrix = crops.matrices[k]
            mask = self._blend(job, crops.images[k], swaps[k], swap_lms[k], offset, matrix)
            blends[(id(job.item), job.face_index)] = {"matrix": matrix, "mask": mask}
        return blends

    def rows(self, jobs: Sequence[Any]) -> list[int]:
        """Source row of each job: its matched source, or the live override."""
        source = self.overrides.source
        if source is None:
            return [j.source for j in jobs]
        count = 0 if self.source_ids is None else len(self.source_ids)
        if not 0 <= source < count:
            raise UserInputError(
                f"source {source} does not exist; there are {count}",
                option="source",
                value=source,
                allowed=tuple(range(count)),
            )
        return [source] * len(jobs)

    def _landmarks(self, jobs: list[_Job], crops: Any, swaps: Any) -> tuple[np.ndarray, list]:
        """Landmarks of every swap, and of the target crops whose mask parameters are due
        (`None` for the others), in one batched call of the landmark network."""
        keys = [(j.track, j.item.frame.index) for j in jobs]
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

    def _blend(self, job: _Job, crop: Any, swap: Any, swap_lm: Any, offset: Any, matrix: Any):
        """Mask (from the swap's landmarks and, when due, the cheek offset against the
        target's), colour-match and paste one swap; returns the mask used."""
        frame = job.item.frame
        with self._timer.timed("mask"):
            params = self.masks.params(job.track, frame.index, offset)
            scale = self.overrides.blur_scale
            if scale != 1.0:
                params = replace(
                    params, sigma_x=params.sigma_x * scale, sigma_y=params.sigma_y * scale
                )
            mask = self.ops.mask(swap_lm, params, self.layout)
            if self.config.color_match:
                swap = self.ops.color_match(swap, crop, mask)
        with self._timer.timed("paste"):
            self.ops.paste(frame, swap, mask, matrix)
        return mask
