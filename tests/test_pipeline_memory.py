"""Memory does not grow with video length.

Two checks: the pipeline alone (a toy stage, synthetic frames: 600 vs 60 frames), and the
real face stage through `ghost-engine run` on `nggyup.mp4` (dlib detection, recognition
and landmarks, tracking, masks, paste-back, x264), each length in a fresh process, its
peak RSS its own `ru_maxrss`. The real stage runs with the passthrough generator (every
stage but the generator; the random-weight one takes 0.3 s a face); the generator's own
figures are in `bench/results/memory_vs_length.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from test_video_fixtures import make_video

from ghost_engine.pipeline.face_models import dlib_available

TESTS = Path(__file__).resolve().parent

_CHILD = """
import json, resource, sys
from test_video_fixtures import MarkStage
import ghost_engine
from ghost_engine.video.encode import EncodeSettings
ghost_engine.swap_video(sys.argv[1], [], sys.argv[2], stages=[MarkStage(delay=3)],
                        encode=EncodeSettings(preset="ultrafast"), progress="quiet")
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_CLI_CHILD = """
import json, resource, sys
from ghost_engine.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _peak_mb(clip: Path, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(TESTS), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(clip), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"])


@pytest.mark.slow
def test_peak_memory_is_independent_of_length(tmp_path) -> None:
    # 320x240 RGB is 230 kB a frame: keeping the extra 540 frames would cost ~124 MB.
    short = make_video(tmp_path / "short.mp4", 60, 320, 240)
    long = make_video(tmp_path / "long.mp4", 600, 320, 240)
    short_mb = _peak_mb(short, tmp_path / "short-out.mp4")
    long_mb = _peak_mb(long, tmp_path / "long-out.mp4")
    assert long_mb - short_mb < 20.0, (short_mb, long_mb)


def _looped_clip(source: Path, dest: Path, frames: int, width: int, height: int) -> Path:
    """`frames` frames of `source` at `width` x `height`, looped past its end (x264)."""
    with av.open(str(dest), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "20"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        written = 0
        while written < frames:
            with av.open(str(source)) as src:
                for vf in src.decode(src.streams.video[0]):
                    if written == frames:
                        break
                    frame = vf.reformat(width=width, height=height, format="yuv420p")
                    frame.pts, frame.time_base = written, Fraction(1, 30)
                    out.mux(stream.encode(frame))
                    written += 1
        out.mux(stream.encode(None))
    return dest


def _run(clip: Path, face: Path, out: Path) -> tuple[float, int]:
    """Peak RSS (MB) of `ghost-engine run` on `clip` in a fresh process, and the number
    of frames it swapped a face in."""
    report = out.with_suffix(".json")
    argv = ["run", str(clip), "-s", str(face), "-o", str(out), "-q", "--json", str(report)]
    argv += ["--generator", "passthrough", "--detector", "dlib", "--recognizer", "dlib"]
    # Segments of 60 frames, so every length crosses segment boundaries (each one opens
    # the next segment's encoder) and only the number of frames differs.
    argv += ["--preset", "ultrafast", "--segment-seconds", "2"]
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHILD, *argv],
        capture_output=True,
        text=True,
        timeout=150,
        check=True,
    )
    peak = float(json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"])
    return peak, int(json.loads(report.read_text())["frames_with_faces"])


@pytest.mark.slow
@pytest.mark.media
@pytest.mark.skipif(not dlib_available(), reason="needs the dlib extra")
def test_real_face_stage_peak_memory_slope(media: Path, tmp_path: Path) -> None:
    """nggyup at 640x360 (the face stage's memory per frame scales with the frame; at
    720p this takes twice as long), 200 to 800 frames: the slope of peak RSS over length
    by least squares, in MB per 1,000 frames."""
    source = media / "videos" / "nggyup.mp4"
    face = media / "faces" / "mark.jpg"
    # All lengths are past the fill (the queues and the encoder hold ~60 frames and the
    # heaps settle over the first ~150). A 640x360 RGB frame is 0.69 MB: keeping one in
    # a hundred would be a slope of 6.9 MB per 1,000 frames.
    lengths = [200, 400, 800]
    peaks, swapped = [], []
    for n in lengths:
        clip = _looped_clip(source, tmp_path / f"in{n}.mp4", n, 640, 360)
        peak, faces = _run(clip, face, tmp_path / f"out{n}.mp4")
        peaks.append(peak)
        swapped.append(faces)
    assert all(faces >= 0.7 * n for faces, n in zip(swapped, lengths, strict=True)), swapped
    slope = float(np.polyfit(lengths, peaks, 1)[0]) * 1000
    # Measured on 2 cores: -0.1, 2.1 and 3.4 MB per 1,000 frames (peaks 672 to 675 MB).
    assert slope < 5.0, (lengths, peaks, slope)
