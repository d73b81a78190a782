"""One worker's segment: it starts from the mask state the plan holds for the segment,
not from nothing (a track that began in an earlier segment keeps the parameters frozen
there, as in the sequential run)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from parallel_clip import SEGMENT_S, frames, make_clip

from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.parallel.plan import PLAN_NAME, read_plan
from ghost_engine.parallel.planning import write_plan
from ghost_engine.parallel.segment_work import SegmentSpec, synthesise_segment
from ghost_engine.pipeline.runner import PipelineConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.reader import probe_video
from ghost_engine.video.segments import SegmentPlan

FINGERPRINT = {"test": "segment"}


def _reseal(path: Path, segment: int, masks: list) -> None:
    """The plan with another mask state before `segment`, sealed again as the engine
    seals it (so only the state differs)."""
    lines = path.read_text().splitlines(keepends=True)[:-1]
    for n, line in enumerate(lines):
        data = json.loads(line)
        if data["kind"] == "state" and data["segment"] == segment:
            lines[n] = json.dumps({**data, "masks": masks}) + "\n"
    digest = hashlib.sha256("".join(lines).encode()).hexdigest()
    count = sum(json.loads(line)["kind"] == "frame" for line in lines)
    end = {"kind": "end", "frames": count, "sha256": digest}
    path.write_text("".join(lines) + json.dumps(end) + "\n")


def test_a_worker_starts_from_the_plans_mask_state(media, tmp_path):
    clip = make_clip(media, tmp_path / "two.mp4")
    config = SwapConfig(
        generator="passthrough", detector="dlib", recognizer="dlib", batch_size=2,
        models_dir=tmp_path / "models",
    )  # fmt: skip
    info = probe_video(clip)
    segments = SegmentPlan(0.0, SEGMENT_S, info.time_base)
    work = tmp_path / "work"
    work.mkdir()
    stage = build_swap_stage(config, [[media / "faces" / "beckham.jpg"]])
    write_plan(
        stage, target=clip, segments=segments, start_s=0.0, end_s=None, folder=work,
        fingerprint=FINGERPRINT, pipeline=PipelineConfig(batch_size=2),
    )  # fmt: skip
    stage.close()
    plan = read_plan(work / PLAN_NAME, FINGERPRINT)
    (carried,) = plan.states[1]  # Elon's track, swapped since frame 0, frozen there
    assert carried["frame"] == 2 and "params" in carried
    spec = SegmentSpec(
        config=config, target=clip, work=work, plan_fingerprint=FINGERPRINT,
        encode=EncodeSettings(codec="ffv1"), format_name="mp4", suffix=".mp4",
        width=info.width, height=info.height, rate=info.rate, segments=segments, pts_offset=0,
    )  # fmt: skip
    done = synthesise_segment(spec, 1)
    assert done["record"]["frames"] == 3 and done["record"]["frames_with_faces"] == 3
    planned = frames(work / done["record"]["file"])
    other = {**carried["params"], "erode": -5, "sigma_x": 2.0, "sigma_y": 2.0}
    _reseal(work / PLAN_NAME, 1, [{**carried, "params": other}])
    changed = frames(work / synthesise_segment(spec, 1)["record"]["file"])
    assert not np.array_equal(planned[0], changed[0])  # the carried parameters were used
    _reseal(work / PLAN_NAME, 1, [carried])
    again = frames(work / synthesise_segment(spec, 1)["record"]["file"])
    assert all(np.array_equal(a, b) for a, b in zip(planned, again, strict=True))
