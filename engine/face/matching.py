"""Which face gets which source: `--all-faces`, the first face, or reference photos.

- all faces: every face gets source 0;
- no references (GHOST's default): the first face seen (the best-scored face of the
  first frame with a face) is the target, and its identity stays fixed; in each frame
  the face on the target's own track gets source 0, or, when that track is not in the
  frame, the face most similar to the fixed identity above the threshold (for that frame
  only: a person who passes the threshold while the target is away never keeps the
  swap once the target is back). GHOST compares every frame with that identity too; we
  add the track preference and the per-track averaging below;
- references: each face goes to the reference it matches best above the threshold,
  one face per reference per frame (Hungarian on the similarities), reference i -> source
  i. A face's similarity is averaged over its track, so a profile view that matches
  poorly on its own keeps the source its track earned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from ghost_engine.types import Face

Similarity = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MatchConfig:
    all_faces: bool = False
    similarity_threshold: float = 0.15


class TargetMatcher:
    """Per frame: face index -> source index (faces without a source are left out)."""

    def __init__(
        self,
        config: MatchConfig,
        similarity: Similarity | None,
        references: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.similarity = similarity
        self.references = None if references is None or len(references) == 0 else references
        if not config.all_faces and similarity is None:
            raise ValueError("matching faces to targets needs a recogniser's similarity")
        self.target_embedding: np.ndarray | None = None
        self.target_track: int | None = None
        self._track_sums: dict[int, tuple[np.ndarray, int]] = {}
        # per face of the last `assign` call: its (track-averaged) similarity to each
        # reference, or to the first face; None in all-faces mode
        self.last_similarities: np.ndarray | None = None

    @property
    def needs_embeddings(self) -> bool:
        return not self.config.all_faces

    def _track_similarity(self, faces: list[Face], refs: np.ndarray) -> np.ndarray:
        """Similarity to `refs` averaged over each face's track; a face the stage did
        not embed (an unambiguous continuation of its track) takes its track's average."""
        assert self.similarity is not None  # the constructor requires it for matching
        embedded = {i: f.embedding for i, f in enumerate(faces) if f.embedding is not None}
        sims = np.zeros((len(faces), refs.shape[0]))
        if embedded:
            sims[list(embedded)] = self.similarity(np.stack(list(embedded.values())), refs)
        out = np.empty_like(sims)
        for i, face in enumerate(faces):
            key = face.track_id if face.track_id is not None else -1 - i
            total, count = self._track_sums.get(key, (np.zeros(refs.shape[0]), 0))
            if face.embedding is not None:
                total, count = total + sims[i], count + 1
            if face.track_id is not None:
                self._track_sums[key] = (total, count)
            out[i] = total / count
        return out

    def knows(self, face: Face) -> bool:
        """Whether `face` can be assigned without an embedding of its own."""
        return face.embedding is not None or (
            face.track_id is not None
            and (face.track_id == self.target_track or face.track_id in self._track_sums)
        )

    def assign(self, faces: list[Face]) -> dict[int, int]:
        self.last_similarities = None
        if not faces:
            return {}
        if self.config.all_faces:
            return {i: 0 for i in range(len(faces))}
        if not all(self.knows(f) for f in faces):
            raise ValueError("a face on a new track needs an embedding for matching")
        thr = self.config.similarity_threshold
        if self.references is None:
            return self._assign_first(faces, thr)
        sims = self._track_similarity(faces, self.references)
        self.last_similarities = sims
        rows, cols = linear_sum_assignment(-sims)
        return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if sims[r, c] > thr}

    def _assign_first(self, faces: list[Face], thr: float) -> dict[int, int]:
        if self.target_embedding is None:
            best = int(np.argmax([f.score for f in faces]))
            self.target_embedding = np.asarray(faces[best].embedding, dtype=np.float64)
            self.target_track = faces[best].track_id
            self.last_similarities = self._track_similarity(faces, self.target_embedding[None])
            return {best: 0}
        sims = self._track_similarity(faces, self.target_embedding[None])
        self.last_similarities = sims
        for i, face in enumerate(faces):
            if self.target_track is not None and face.track_id == self.target_track:
                return {i: 0}
        best = int(np.argmax(sims[:, 0]))
        return {best: 0} if sims[best, 0] > thr else {}

    def state(self) -> dict[str, Any]:
        """Everything later frames depend on, as plain data (for resume)."""
        return {
            "target_embedding": self.target_embedding,
            "target_track": self.target_track,
            "track_sums": [
                {"track": t, "total": total, "count": count}
                for t, (total, count) in self._track_sums.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        emb = state["target_embedding"]
        self.target_embedding = None if emb is None else np.asarray(emb, np.float64)
        track = state["target_track"]
        self.target_track = None if track is None else int(track)
        self._track_sums = {
            int(t["track"]): (np.asarray(t["total"], np.float64), int(t["count"]))
            for t in state["track_sums"]
        }
