"""`--resume` with the real face stage: killed with SIGKILL at about 30%, 60% and inside
the last segment, the resumed run's frames equal an uninterrupted run's; a changed job
is refused by name; the faces log matches the run's own matching."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from face_tiles import tile

from ghost_engine.face.photos import read_photo
from ghost_engine.video.journal import JOURNAL_NAME
from ghost_engine.video.workdir import work_dir_for

FPS = 6
FRAMES = 12
SEGMENT_S = 0.5  # 4 segments of 3 frames


@pytest.fixture(scope="module")
def clip(media: Path, tmp_path_factory) -> Path:
    """Two people: Elon alone (frames 0-2), both (3-11), drifting a few pixels."""
    elon = tile(read_photo(media / "faces" / "elon_musk.jpg"), 220)
    mark = tile(read_photo(media / "faces" / "mark.jpg"), 220)
    path = tmp_path_factory.mktemp("clip") / "two.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 512, 256, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(FRAMES):
            canvas = np.full((256, 512, 3), 60, np.uint8)
            dx = 3 * (i % 4)
            canvas[18:238, 14 + dx : 234 + dx] = elon
            if i >= 3:
                canvas[18:238, 276 - dx : 496 - dx] = mark
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _argv(media: Path, clip: Path, out: Path, codec: str, refs: bool, models: Path) -> list:
    faces = media / "faces"
    argv = [sys.executable, "-m", "ghost_engine", "run", str(clip), "-o", str(out)]
    argv += ["-s", str(faces / "beckham.jpg")]
    if refs:
        argv += ["-s", str(faces / "murakami.jpg")]
        argv += ["-t", str(faces / "elon_musk.jpg"), "-t", str(faces / "mark.jpg")]
    argv += ["--generator", "random", "--generator-blocks", "1", "--runtime", "torch"]
    argv += ["--detector", "dlib", "--recognizer", "dlib", "--codec", codec, "-q"]
    argv += ["--segment-seconds", str(SEGMENT_S), "--models-dir", str(models)]
    return argv


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "2"}


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _segments_done(out: Path) -> int:
    journal = work_dir_for(out) / JOURNAL_NAME
    try:
        return len(json.loads(journal.read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def _kill_after(argv: list, out: Path, segments: int) -> None:
    """Start the run and SIGKILL it once `segments` segments are journalled."""
    proc = subprocess.Popen(argv, env=_env(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _segments_done(out) < segments:
        assert proc.poll() is None, f"the run ended early: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("codec", "refs"), [("ffv1", True), ("h264", True), ("h264", False)], ids=str
)
def test_killed_three_times_and_resumed_gives_the_uninterrupted_frames(
    media, clip, tmp_path, codec, refs
):
    suffix = ".mkv" if codec == "ffv1" else ".mp4"
    models = tmp_path / "models"
    reference = tmp_path / f"reference{suffix}"
    done = subprocess.run(_argv(media, clip, reference, codec, refs, models), env=_env())
    assert done.returncode == 0
    expected = _frames(reference)
    assert len(expected) == FRAMES

    out = tmp_path / f"out{suffix}"
    argv = _argv(media, clip, out, codec, refs, models)
    _kill_after(argv, out, 1)  # about 30%: one of four segments done
    _kill_after([*argv, "--resume"], out, 2)  # about 60%
    _kill_after([*argv, "--resume"], out, 3)  # inside the last segment
    assert subprocess.run([*argv, "--resume"], env=_env()).returncode == 0
    got = _frames(out)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs"


@pytest.mark.slow
def test_a_changed_job_is_refused_naming_the_change(media, clip, tmp_path):
    faces = tmp_path / "faces"
    shutil.copytree(media / "faces", faces)
    out, models = tmp_path / "out.mp4", tmp_path / "models"
    argv = _argv(tmp_path, clip, out, "h264", False, models)
    _kill_after(argv, out, 1)
    work = work_dir_for(out)
    source = faces / "beckham.jpg"
    keep = source.read_bytes()
    source.write_bytes((faces / "murakami.jpg").read_bytes())  # same path, other face
    run = subprocess.run([*argv, "--resume"], env=_env(), capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "photos.sources[0][0]" in lines[0], run.stderr
    assert work.is_dir()
    source.write_bytes(keep)
    blocks = [*argv, "--resume"]
    blocks[blocks.index("--generator-blocks") + 1] = "2"
    run = subprocess.run(blocks, env=_env(), capture_output=True, text=True)
    assert run.returncode == 2
    assert "swap.generator_blocks (1 before, 2 now)" in run.stderr, run.stderr
    assert work.is_dir() and not out.exists()


@pytest.mark.slow
def test_faces_log_follows_the_runs_matching(media, clip, tmp_path):
    import ghost_engine
    from ghost_engine.face.swap_config import SwapConfig
    from ghost_engine.video.encode import EncodeSettings

    faces = media / "faces"
    log = tmp_path / "faces.jsonl"
    config = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib")
    report = ghost_engine.swap_video(
        clip,
        [[faces / "beckham.jpg"], [faces / "murakami.jpg"]],
        tmp_path / "out.mkv",
        target_faces=[faces / "elon_musk.jpg", faces / "mark.jpg"],
        config=config,
        encode=EncodeSettings(codec="ffv1"),
        segment_s=SEGMENT_S,
        progress="quiet",
        faces_log=log,
    )
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(FRAMES)) == list(range(report.frames))
    for line in lines:
        assert line["time_s"] == pytest.approx(line["frame"] / FPS)
        for face in line["faces"]:
            assert set(face) == {
                "box", "score", "kps", "smoothed", "track", "source", "similarities"
            }  # fmt: skip
            left = (face["box"][0] + face["box"][2]) / 2 < 256
            sims = face["similarities"]
            # the run's own matching: each face takes the reference it is most like
            assert face["source"] == int(np.argmax(sims)) == (0 if left else 1)
            assert len(face["kps"]) == len(face["smoothed"]) == 5
        assert len(line["faces"]) == (1 if line["frame"] < 3 else 2)
