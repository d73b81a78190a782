"""Which face gets which source: `--all-faces`, the first face, or reference photos.

- all faces: every face gets source 0;
- no references (GHOST's default): the first face seen (the best-scored face of the
  first frame with a face) becomes the target; in each frame the face on its track, or
  else the face most similar to it above the threshold, gets source 0; others are left
  alone;
- references: each face goes to the reference it matches best above the threshold,
  one face per reference per frame (Hungarian on the similarities), reference i -> source
  i. A face's similarity is averaged over its track, so a profile view that matches
  poorly on its own keeps the source its track earned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
        rows, cols = linear_sum_assignment(-sims)
        return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if sims[r, c] > thr}

    def _assign_first(self, faces: list[Face], thr: float) -> dict[int, int]:
        if self.target_embedding is None:
            best = int(np.argmax([f.score for f in faces]))
            self.target_embedding = np.asarray(faces[best].embedding, dtype=np.float64)
            self.target_track = faces[best].track_id
            return {best: 0}
        for i, face in enumerate(faces):
            if self.target_track is not None and face.track_id == self.target_track:
                return {i: 0}
        sims = self._track_similarity(faces, self.target_embedding[None])[:, 0]
        best = int(np.argmax(sims))
        if sims[best] > thr:
            self.target_track = faces[best].track_id
            return {best: 0}
        return {}
