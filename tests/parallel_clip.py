"""The two-person clip and the command lines the parallel and batch tests share.

Elon alone (frames 0-2), then Elon and Mark (3-11), drifting a few pixels, at 6 fps in
0.5 s segments: 4 segments of 3 frames. The face path is dlib's (detector, recogniser,
68 landmarks): the constructed SCRFD file of `model_files.py` finds its one fixed face in
every image, so it cannot show two people, and dlib keeps the runs short on 2 cores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np
from face_tiles import tile

from ghost_engine.face.photos import read_photo

FPS = 6
FRAMES = 12
SEGMENT_S = 0.5


def make_clip(media: Path, path: Path) -> Path:
    elon = tile(read_photo(media / "faces" / "elon_musk.jpg"), 220)
    mark = tile(read_photo(media / "faces" / "mark.jpg"), 220)
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


def swap_args(media: Path, models: Path) -> list[str]:
    """Two sources matched to two references; random generator at batch size 2."""
    faces = media / "faces"
    argv = ["-s", str(faces / "beckham.jpg"), "-s", str(faces / "murakami.jpg")]
    argv += ["-t", str(faces / "elon_musk.jpg"), "-t", str(faces / "mark.jpg")]
    argv += ["--generator", "random", "--generator-blocks", "1", "--runtime", "torch"]
    argv += ["--detector", "dlib", "--recognizer", "dlib", "--batch-size", "2"]
    argv += ["--segment-seconds", str(SEGMENT_S), "--models-dir", str(models), "-q"]
    return argv


def run_argv(clip: Path, out: Path, media: Path, models: Path) -> list[str]:
    argv = [sys.executable, "-m", "ghost_engine", "run", str(clip), "-o", str(out)]
    return [*argv, *swap_args(media, models), "--codec", "ffv1"]


def env() -> dict[str, str]:
    """One thread per process for every run, sequential or not: the generator's sums
    then split the same way in each (see `parallel.segment_work.worker_threads`)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
