"""The face stages' state: the first face's identity stays the target, and a stage
restored from a saved state continues exactly as the uninterrupted one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from face_tiles import tile

from ghost_engine.face.matching import MatchConfig, TargetMatcher
from ghost_engine.face.photos import read_photo
from ghost_engine.face.recognizers import cosine_similarity
from ghost_engine.face.smoothing import make_smoother
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import MaskState
from ghost_engine.pipeline.stage_state import (
    SEGMENT_KEY,
    Checkpointed,
    StateStore,
    load_state,
    save_state,
)
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Face, Frame

CONFIG = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")


def _face(track: int, emb: np.ndarray, score: float = 0.9) -> Face:
    return Face(
        box=[0, 0, 10, 10], score=score, kps=np.zeros((5, 2)), track_id=track, embedding=emb
    )


def test_first_face_identity_stays_the_target() -> None:
    """Target present, then absent while another face passes the threshold, then back
    (on its own track, then on a new one): the other person never keeps the swap."""
    target, other = np.array([1.0, 0.0, 0.0]), np.array([0.6, 0.8, 0.0])  # cosine 0.6
    matcher = TargetMatcher(MatchConfig(similarity_threshold=0.15), cosine_similarity)
    assert matcher.assign([_face(0, target)]) == {0: 0}
    for _ in range(3):  # the target is away: the most similar face stands in, frame by frame
        assert matcher.assign([_face(1, other)]) == {0: 0}
    assert matcher.assign([_face(1, other), _face(0, target)]) == {1: 0}
    assert matcher.assign([_face(1, other), _face(7, target * 0.9)]) == {1: 0}  # a new track
    assert matcher.assign([_face(1, other)]) == {0: 0}
    assert matcher.assign([_face(1, np.array([0.0, 0.0, 1.0]))]) == {0: 0}  # track average
    assert matcher.target_track == 0


@pytest.mark.parametrize("smoother", ["window", "ghost", "ema", "none"])
def test_smoother_state_round_trip(smoother: str) -> None:
    rng = np.random.default_rng(0)
    points = [rng.normal(100, 2, (5, 2)) + [[0, 0], [40, 0], [20, 20], [5, 40], [35, 40]]]
    for _ in range(29):
        points.append(points[-1] + rng.normal(0.5, 1.0, (5, 2)))

    def run(sm, start: int, out: dict) -> None:
        for i in range(start, 30):
            sm.push(i, {3: points[i]} if i % 11 else {})
            if i - sm.lookahead >= start:
                out[i - sm.lookahead] = sm.pop(i - sm.lookahead).get(3)

    whole: dict = {}
    first = make_smoother(smoother)
    run_until = 15
    for i in range(run_until):
        first.push(i, {3: points[i]} if i % 11 else {})
        if i - first.lookahead >= 0:
            whole[i - first.lookahead] = first.pop(i - first.lookahead).get(3)
    saved = first.state()
    rest: dict = {}
    run(first, run_until, rest)
    restored = make_smoother(smoother)
    restored.restore(saved)
    again: dict = {}
    run(restored, run_until, again)
    assert again.keys() == rest.keys() and len(rest) >= 10
    for k in rest:
        assert (rest[k] is None) == (again[k] is None)
        if rest[k] is not None:
            np.testing.assert_array_equal(rest[k], again[k])


def test_mask_state_round_trip(tmp_path: Path) -> None:
    """Frozen mask parameters survive a save; a fresh state would recompute them."""
    masks = MaskState("ghost")
    first = masks.params(4, 0, 7.0)  # the track's first frame fixes its parameters
    assert masks.params(4, 1, None) == first
    save_state(tmp_path, "masks", {"masks": masks.state()})
    restored = MaskState("ghost")
    restored.restore(load_state(tmp_path, "masks")["masks"])
    assert restored.params(4, 2, None) == first
    assert MaskState("ghost").params(4, 2, 0.0) != first


@pytest.fixture(scope="module")
def two_people(media: Path) -> list[np.ndarray]:
    """24 frames: Elon alone (0-3), Mark alone (4-9), both (10-23), drifting a little."""
    elon = tile(read_photo(media / "faces" / "elon_musk.jpg"), 260)
    mark = tile(read_photo(media / "faces" / "mark.jpg"), 260)
    frames = []
    for i in range(24):
        canvas = np.full((300, 600, 3), 40, np.uint8)
        dx = 2 * (i % 6)
        if i < 4 or i >= 10:
            canvas[20:280, 20 + dx : 280 + dx] = elon
        if i >= 4:
            canvas[20:280, 320 - dx : 580 - dx] = mark
        frames.append(canvas)
    return frames


def _side(face: dict) -> str:
    return "left" if (face["box"][0] + face["box"][2]) / 2 < 300 else "right"


@pytest.mark.slow
def test_first_face_gets_the_swap_back_on_real_faces(media, two_people):
    # a loose threshold lets Mark stand in while Elon is away
    config = dataclasses.replace(CONFIG, similarity_threshold=-0.9)
    stage = build_swap_stage(config, [[media / "faces" / "beckham.jpg"]])
    out = []
    for i in range(0, 24, 4):
        out += stage.process([Frame(j, two_people[j].copy()) for j in range(i, i + 4)])
    out += stage.flush()
    swapped = [[_side(f) for f in frame.meta["faces"] if f["source"] == 0] for frame in out]
    assert swapped[:4] == [["left"]] * 4  # Elon, the first face
    assert swapped[4:10] == [["right"]] * 6  # Mark stands in
    assert swapped[10:] == [["left"]] * 14  # Elon is back: the swap is his again


def _run(stage_parts, frames, start: int, segment_frames: int, batch: int) -> list[Frame]:
    out: list[Frame] = []
    for i in range(start, len(frames), batch):
        chunk = []
        for j in range(i, min(i + batch, len(frames))):
            frame = Frame(j, frames[j].copy())
            frame.meta[SEGMENT_KEY] = j // segment_frames
            chunk.append(frame)
        items = chunk
        for part in stage_parts:
            items = part.process(items)
        out += items
    items = []
    for part in stage_parts:
        items = part.process(items) + part.flush()
    return out + items


@pytest.mark.slow
@pytest.mark.parametrize("references", [False, True])
def test_restored_stage_continues_like_the_uninterrupted_one(
    media, two_people, tmp_path, references
):
    refs = [media / "faces" / "elon_musk.jpg", media / "faces" / "mark.jpg"] if references else []
    sources = [[media / "faces" / "beckham.jpg"]] + (
        [[media / "faces" / "murakami.jpg"]] * references
    )

    def parts(store: StateStore) -> list[Checkpointed]:
        stage = build_swap_stage(CONFIG, sources, refs)
        return [Checkpointed(p, store) for p in stage.split()]

    store = StateStore()
    whole = _run(parts(store), two_people, 0, segment_frames=8, batch=4)
    assert [f.index for f in whole] == list(range(24))
    names = ["face-analysis", "face-synthesis"]
    for boundary in (1, 2):  # before frame 8 and before frame 16
        state = store.take(boundary, names)
        assert state is not None
        save_state(tmp_path, f"state-{boundary}", state)
        loaded = load_state(tmp_path, f"state-{boundary}")
        resumed_parts = parts(StateStore())
        for part, name in zip(resumed_parts, names, strict=True):
            part.restore(boundary, loaded[name])
        resumed = _run(resumed_parts, two_people, 8 * boundary, segment_frames=8, batch=4)
        expected = whole[8 * boundary :]
        assert [f.index for f in resumed] == [f.index for f in expected]
        for a, b in zip(resumed, expected, strict=True):
            np.testing.assert_array_equal(a.image, b.image)
            assert [(f["track_id"], f["source"]) for f in a.meta["faces"]] == [
                (f["track_id"], f["source"]) for f in b.meta["faces"]
            ]
    # the state carries what the frames depend on: a fresh stage differs after a boundary
    fresh = _run(parts(StateStore()), two_people, 16, segment_frames=8, batch=4)
    assert any(
        [f["track_id"] for f in a.meta["faces"]] != [f["track_id"] for f in b.meta["faces"]]
        or not np.array_equal(a.image, b.image)
        for a, b in zip(fresh, whole[16:], strict=True)
    )
