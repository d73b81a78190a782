"""`--resume`: an interrupted run continues from its last finished segment and the result
equals an uninterrupted run's, frame for frame (lossless FFV1 so equality is exact)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_video_fixtures import MarkStage, decode_all, make_video, stream_seconds

import ghost_engine
from ghost_engine.errors import NoFaceError, UserInputError
from ghost_engine.video.encode import EncodeSettings
from ghost_engine.video.workdir import work_dir_for

TESTS = Path(__file__).resolve().parent
FFV1 = EncodeSettings(codec="ffv1")
OPTS = {"encode": FFV1, "segment_s": 1.0, "progress": "quiet"}

_CHILD = """
import sys
from test_video_fixtures import MarkStage
import ghost_engine
from ghost_engine.video.encode import EncodeSettings
ghost_engine.swap_video(sys.argv[1], [], sys.argv[2], stages=[MarkStage(delay=3, sleep_s=0.03)],
                        encode=EncodeSettings(codec="ffv1"), segment_s=1.0, progress="quiet")
"""


def _failing(at: int) -> MarkStage:
    return MarkStage(fail_at=at, error=NoFaceError("stopped"))


@pytest.fixture()
def clip(tmp_path) -> Path:
    return make_video(tmp_path / "in.mkv", 125, 64, 48, codec="ffv1", pix_fmt="bgr0", audio="aac")


def _reference(clip: Path, tmp_path: Path):
    ref = tmp_path / "ref.mkv"
    ghost_engine.swap_video(clip, [], ref, stages=[MarkStage(delay=3)], **OPTS)
    return decode_all(ref)


def _assert_same(out: Path, ref) -> None:
    images, times = decode_all(out)
    assert len(images) == len(ref[0]) == 125
    np.testing.assert_allclose(times, ref[1], atol=1e-6)
    for a, b in zip(images, ref[0], strict=True):
        np.testing.assert_array_equal(a, b)


def _segments_done(work: Path) -> int:
    try:
        return len(json.loads((work / "journal.json").read_text())["segments"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_killed_run_resumes_to_identical_output(tmp_path, clip) -> None:
    ref = _reference(clip, tmp_path)
    out = tmp_path / "out.mkv"
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(clip), str(out)], env=env)
    work = work_dir_for(out)
    deadline = time.monotonic() + 60
    while _segments_done(work) < 2 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    done = _segments_done(work)
    assert 2 <= done < 5, "the child should be killed halfway"
    assert not out.exists()

    report = ghost_engine.swap_video(
        clip, [], out, stages=[MarkStage(delay=3)], resume=True, **OPTS
    )
    assert report.resumed_segments == done and report.frames == 125
    assert report.frames_with_faces == 63  # even indices, counted across both runs
    _assert_same(out, ref)
    assert stream_seconds(out, "audio") == pytest.approx(stream_seconds(clip, "audio"), abs=0.03)
    assert not work.exists()


def test_failed_run_resumes_from_finished_segments(tmp_path, clip) -> None:
    ref = _reference(clip, tmp_path)
    out = tmp_path / "out.mkv"
    stages = [MarkStage(delay=3, fail_at=80, error=NoFaceError("stop here"))]
    with pytest.raises(NoFaceError):
        ghost_engine.swap_video(clip, [], out, stages=stages, **OPTS)
    # frames 0..74 fill three segments; how many the sink finished before the stop
    # reached it depends on thread timing
    done = _segments_done(work_dir_for(out))
    assert not out.exists() and 1 <= done <= 3

    report = ghost_engine.swap_video(
        clip, [], out, stages=[MarkStage(delay=3)], resume=True, **OPTS
    )
    assert report.resumed_segments == done and report.resumed_frames == 25 * done
    _assert_same(out, ref)


def test_resume_with_other_settings_is_refused(tmp_path, clip) -> None:
    out = tmp_path / "out.mkv"
    with pytest.raises(NoFaceError):
        ghost_engine.swap_video(clip, [], out, stages=[_failing(60)], **OPTS)
    other = dict(OPTS, segment_s=2.0)
    with pytest.raises(UserInputError, match=r"different segment_s \(1.0 before, 2.0 now\)"):
        ghost_engine.swap_video(clip, [], out, stages=[MarkStage()], resume=True, **other)
    assert not out.exists()


def test_without_resume_a_stale_work_folder_is_replaced(tmp_path, clip) -> None:
    out = tmp_path / "out.mkv"
    with pytest.raises(NoFaceError):
        ghost_engine.swap_video(clip, [], out, stages=[_failing(60)], **OPTS)
    assert _segments_done(work_dir_for(out)) >= 1
    report = ghost_engine.swap_video(clip, [], out, stages=[MarkStage()], **OPTS)
    assert report.resumed_segments == 0 and report.frames == 125
    assert not work_dir_for(out).exists()
