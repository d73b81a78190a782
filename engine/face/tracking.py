"""Linking faces across frames into tracks: box overlap plus identity embedding.

A detection joins a live track when the pair is the best joint choice (Hungarian on
IoU + similarity) and the embeddings agree (similarity above `link_similarity`), so at
a cut where two people swap places the overlap alone cannot hand one person's track to
the other. A track missing for a while can be picked up again by its embedding alone
(`reid_similarity`), which carries it through short occlusions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ghost_engine.types import Face


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) -> (N, M) intersection over union of (x1, y1, x2, y2) boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass(frozen=True)
class TrackerConfig:
    min_iou: float = 0.1
    link_similarity: float = 0.15
    reid_similarity: float = 0.4
    max_missing: int = 150
    embedding_momentum: float = 0.9


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    last_frame: int
    embedding: np.ndarray | None = None
    frames: int = 1
    extra: dict = field(default_factory=dict)


Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Tracker:
    """Assigns `track_id` to the faces of each frame, in frame order."""

    def __init__(
        self, similarity: Similarity | None, config: TrackerConfig = TrackerConfig()
    ) -> None:
        self.similarity = similarity
        self.config = config
        self.tracks: dict[int, Track] = {}
        self._next_id = 0

    def _scores(self, faces: list[Face], tracks: list[Track], frame_index: int) -> np.ndarray:
        """(faces, tracks) link score; -inf where a link is not allowed."""
        cfg = self.config
        iou = box_iou(np.stack([f.box for f in faces]), np.stack([t.box for t in tracks]))
        recent = np.array([frame_index - t.last_frame <= 2 for t in tracks])
        sim = np.zeros_like(iou)
        embeddings = [f.embedding for f in faces if f.embedding is not None]
        if self.similarity is not None and len(embeddings) == len(faces):
            for j, t in enumerate(tracks):
                if t.embedding is not None:
                    sim[:, j] = self.similarity(np.stack(embeddings), t.embedding[None])[:, 0]
            allowed = (sim >= cfg.link_similarity) & (
                ((iou >= cfg.min_iou) & recent[None, :]) | (sim >= cfg.reid_similarity)
            )
        else:
            allowed = (iou >= cfg.min_iou) & recent[None, :]
        return np.where(allowed, iou + sim, -np.inf)

    def update(self, frame_index: int, faces: list[Face]) -> list[int]:
        """Set and return the track id of each face of frame `frame_index`."""
        cfg = self.config
        for tid in [
            t for t, tr in self.tracks.items() if frame_index - tr.last_frame > cfg.max_missing
        ]:
            del self.tracks[tid]
        tracks = list(self.tracks.values())
        assigned: dict[int, Track] = {}
        if faces and tracks:
            scores = self._scores(faces, tracks, frame_index)
            finite = np.where(np.isfinite(scores), scores, -1e6)
            rows, cols = linear_sum_assignment(-finite)
            for r, c in zip(rows, cols, strict=True):
                if np.isfinite(scores[r, c]):
                    assigned[r] = tracks[c]
        ids = []
        for i, face in enumerate(faces):
            track = assigned.get(i)
            if track is None:
                track = Track(self._next_id, face.box.copy(), frame_index, None, 0)
                self.tracks[self._next_id] = track
                self._next_id += 1
            track.box = face.box.copy()
            track.last_frame = frame_index
            track.frames += 1
            if face.embedding is not None:
                emb = np.asarray(face.embedding, dtype=np.float64)
                m = cfg.embedding_momentum
                track.embedding = (
                    emb if track.embedding is None else m * track.embedding + (1 - m) * emb
                )
            face.track_id = track.track_id
            ids.append(track.track_id)
        return ids

    def state(self) -> dict[str, Any]:
        """The live tracks and the next id, as plain data (for resume)."""
        return {
            "next_id": self._next_id,
            "tracks": [
                {
                    "track": t.track_id,
                    "box": t.box,
                    "last_frame": t.last_frame,
                    "embedding": t.embedding,
                    "frames": t.frames,
                    "embedded_at": t.extra.get("embedded_at"),
                }
                for t in self.tracks.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._next_id = int(state["next_id"])
        self.tracks = {}
        for t in state["tracks"]:
            emb = t["embedding"]
            track = Track(
                int(t["track"]),
                np.asarray(t["box"], np.float32),
                int(t["last_frame"]),
                None if emb is None else np.asarray(emb, np.float64),
                int(t["frames"]),
            )
            if t["embedded_at"] is not None:
                track.extra["embedded_at"] = int(t["embedded_at"])
            self.tracks[track.track_id] = track
