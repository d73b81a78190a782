"""`--faces-log PATH`: one JSON line per output frame saying who got which face.

Each line (schema version 1, documented in the README):

    {"frame": 12, "time_s": 0.4, "faces": [
        {"box": [x1, y1, x2, y2], "score": 0.98, "kps": [[x, y] x5],
         "smoothed": [[x, y] x5] | null, "track": 3, "source": 0 | null,
         "similarities": [s_ref0, s_ref1, ...] | null}]}

`kps` are the detector's points, `smoothed` the points the swap was aligned with (null
for faces that got no source), `similarities` the face's (track-averaged) similarity to
each `-t` reference, or to the first face without references (null with
`--all-faces`). Frames without faces have `"faces": []`.

During a video run the lines of each output segment go to their own file in the work
folder (rewritten whole if the segment is encoded again after a resume); at the end
they are joined into PATH through a temporary file and a rename, so PATH appears whole
or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ghost_engine.errors import OutputError
from ghost_engine.types import Frame

_PART = "faces-{:05d}.jsonl"


def frame_record(frame: Frame) -> dict[str, Any]:
    """The log line of one output frame (see the module doc)."""
    faces = []
    for face in frame.meta.get("faces", []):
        sims = face.get("similarities")
        smoothed = face.get("smoothed")
        faces.append(
            {
                "box": _floats(face["box"]),
                "score": round(float(face["score"]), 5),
                "kps": _floats(face["kps"]),
                "smoothed": None if smoothed is None else _floats(smoothed),
                "track": face.get("track_id"),
                "source": face.get("source"),
                "similarities": None if sims is None else _floats(sims),
            }
        )
    return {"frame": frame.index, "time_s": frame.pts_seconds, "faces": faces}


def _floats(values: Any) -> Any:
    return np.round(np.asarray(values, dtype=np.float64), 3).tolist()


class SegmentedFacesLog:
    """Writes each segment's lines to its own file in `folder`; `join` makes the log."""

    def __init__(self, folder: Path, segment_key: str = "segment") -> None:
        self.folder = Path(folder)
        self.segment_key = segment_key
        self._segment: int | None = None
        self._file: IO[str] | None = None

    def __call__(self, frame: Frame) -> None:
        segment = int(frame.meta.get(self.segment_key, 0))
        if segment != self._segment:
            self.close()
            self._segment = segment
            self._file = (self.folder / _PART.format(segment)).open("w")
        assert self._file is not None
        self._file.write(json.dumps(frame_record(frame)) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def join(self, segments: Iterable[int], path: Path) -> None:
        """Write the lines of `segments`, in order, to `path` (atomically)."""
        self.close()
        write_atomically(
            path,
            ((self.folder / _PART.format(s)).read_text() for s in segments),
        )


def write_atomically(path: Path, chunks: Iterable[str]) -> None:
    """`path` gets the concatenated chunks whole, through a temporary file and a rename."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temp.open("w") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(
            f"cannot write the faces log {path}: {exc.strerror or exc}", path=path
        ) from exc


def write_frames_log(frames: Iterable[Frame], path: Path) -> None:
    """The faces log of frames at hand (an image job): one line each."""
    write_atomically(path, (json.dumps(frame_record(f)) + "\n" for f in frames))
