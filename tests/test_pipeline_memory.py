"""Memory does not grow with video length: peak RSS for 600 frames vs 60 frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_video_fixtures import make_video

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
