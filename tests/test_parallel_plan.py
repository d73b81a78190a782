"""The plan file: what the analysis writes comes back exactly (values and dtypes), and
a plan that was edited, cut short or made for another job is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ghost_engine.errors import UserInputError
from ghost_engine.face.records import AnalysedFrame
from ghost_engine.parallel.plan import PLAN_NAME, PlanWriter, read_plan
from ghost_engine.types import Face, Frame

FINGERPRINT = {"target": "/videos/in.mp4", "segment_s": 0.5}


def _item(index: int, rng: np.random.Generator) -> AnalysedFrame:
    frame = Frame(index, np.zeros((8, 8, 3), np.uint8), pts=512 * index)
    faces = [
        Face(rng.random(4) * 100, float(rng.random()), rng.random((5, 2)) * 100, track_id=t)
        for t in (3, 7)
    ]
    smoothed = {7: rng.random((5, 2)), 3: rng.random((5, 2)).astype(np.float32)}
    sims = rng.random((2, 2)).astype(np.float32)
    return AnalysedFrame(frame, faces, {1: 0, 0: 1}, sims, smoothed)


def _write(folder, items, masks=None):
    writer = PlanWriter(folder, FINGERPRINT, np.arange(6, dtype=np.float32).reshape(2, 3) / 7)
    writer.state(0, masks or [])
    for n, item in enumerate(items):
        writer.frame(item, segment=0, call=n // 2)
    return writer.finish()


def test_a_plan_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    items = [_item(i, rng) for i in range(3)]
    masks = [{"track": 3, "frame": 2, "params": {"sigma_x": 0.1 + 0.2, "sigma_y": 1 / 3}}]
    plan = read_plan(_write(tmp_path, items, masks), FINGERPRINT)
    assert plan.segments == [0] and plan.states == {0: masks}
    assert np.array_equal(plan.source_ids, np.arange(6, dtype=np.float32).reshape(2, 3) / 7)
    assert plan.source_ids.dtype == np.float32
    for item, planned in zip(items, plan.frames[0], strict=True):
        assert (planned.index, planned.pts) == (item.frame.index, item.frame.pts)
        assert list(planned.sources.items()) == [(1, 0), (0, 1)]  # order kept
        for a, b in zip(item.faces, planned.faces, strict=True):
            assert np.array_equal(a.box, b.box) and np.array_equal(a.kps, b.kps)
            assert (a.score, a.track_id) == (b.score, b.track_id)
        for track, points in item.smoothed.items():
            assert planned.smoothed[track].dtype == points.dtype
            assert np.array_equal(planned.smoothed[track], points)
        assert np.array_equal(planned.similarities, item.similarities)
        again = planned.analysed(item.frame)
        assert again.frame is item.frame and np.array_equal(again.points(0), item.points(0))
    assert [p.call for p in plan.frames[0]] == [0, 0, 1]


def _refused(path, fingerprint=FINGERPRINT) -> str:
    with pytest.raises(UserInputError) as info:
        read_plan(path, fingerprint)
    message = str(info.value)
    assert "\n" not in message and "delete it to analyse the video again" in message
    return message


def test_an_edited_plan_is_refused(tmp_path):
    path = _write(tmp_path, [_item(i, np.random.default_rng(1)) for i in range(2)])
    lines = path.read_text().splitlines(keepends=True)
    frame = json.loads(lines[2])
    frame["faces"][0]["track"] = 99  # a well-formed line with another value
    path.write_text("".join([*lines[:2], json.dumps(frame) + "\n", *lines[3:]]))
    assert "checksum" in _refused(path)


def test_a_plan_cut_short_or_malformed_is_refused(tmp_path):
    path = _write(tmp_path, [_item(i, np.random.default_rng(2)) for i in range(2)])
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    assert "cut short" in _refused(path)
    bad = json.loads(lines[2])
    bad["faces"][0]["box"]["shape"] = [5]
    path.write_text("".join([*lines[:2], json.dumps(bad) + "\n", *lines[3:]]))
    assert "does not fit its shape" in _refused(path)
    bad = json.loads(lines[2])
    bad["sources"] = [[9, 0]]
    path.write_text("".join([*lines[:2], json.dumps(bad) + "\n", *lines[3:]]))
    assert "missing face 9" in _refused(path)


def test_a_plan_of_another_job_is_refused(tmp_path):
    path = _write(tmp_path, [_item(0, np.random.default_rng(3))])
    assert "another job" in _refused(path, {**FINGERPRINT, "segment_s": 1.0})
    assert path.name == PLAN_NAME
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, through a temporary name
