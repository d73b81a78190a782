"""The plan: everything synthesis reads, per frame, written once by the analysis pass.

A JSON-lines file in the run's work folder, streamed on write and on read, so its size
never has to fit in memory:

    {"kind": "header", "version": 1, "fingerprint": {...}, "source_ids": ARRAY | null}
    {"kind": "state", "segment": k, "masks": [...]}   # MaskState before segment k
    {"kind": "frame", "frame": i, "pts": p, "segment": k, "call": c, "faces": [...],
     "sources": [[face, row], ...], "similarities": ARRAY | null,
     "smoothed": [[track, ARRAY], ...]}
    ...
    {"kind": "end", "frames": n, "sha256": "..."}

`call` numbers the synthesis calls of the sequential run (frames of one call were
synthesised together; the generator sees the same batches in a worker). Arrays are
`{"dtype", "shape", "data"}` with exact values (float32 and float64 survive JSON's
shortest round-trip text). The last line carries the SHA-256 of every line before it:
a plan that was cut short or edited is refused in one line (a `UserInputError`) and simply
analysed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from ghost_engine.errors import UserInputError, one_line
from ghost_engine.face.records import AnalysedFrame
from ghost_engine.types import Face, Frame

PLAN_NAME = "plan.jsonl"
PLAN_VERSION = 1
_DTYPES = ("float32", "float64")
_FACE_KEYS = {"box", "score", "kps", "track"}
_FRAME_KEYS = {"kind", "frame", "pts", "segment", "call", "faces", "sources", "similarities"}
_FRAME_KEYS |= {"smoothed"}


@dataclass
class PlannedFrame:
    """One frame's analysis: what `AnalysedFrame` holds except the pixels."""

    index: int
    pts: int
    segment: int
    call: int
    faces: list[Face]
    sources: dict[int, int]
    similarities: np.ndarray | None
    smoothed: dict[int, np.ndarray] = field(default_factory=dict)

    def analysed(self, frame: Frame) -> AnalysedFrame:
        """The record synthesis takes, on the decoded `frame` of this index."""
        faces = [Face(f.box.copy(), f.score, f.kps.copy(), f.track_id) for f in self.faces]
        return AnalysedFrame(frame, faces, dict(self.sources), self.similarities, self.smoothed)


@dataclass
class Plan:
    """A whole plan in memory: the header's fields, the states and the frames by segment."""

    fingerprint: dict
    source_ids: np.ndarray | None
    states: dict[int, list[dict[str, Any]]]
    frames: dict[int, list[PlannedFrame]]

    @property
    def segments(self) -> list[int]:
        return sorted(self.frames)

    def frame_count(self, segment: int | None = None) -> int:
        if segment is None:
            return sum(len(v) for v in self.frames.values())
        return len(self.frames.get(segment, []))


def encode_array(value: np.ndarray) -> dict[str, Any]:
    array = np.asarray(value)
    if array.dtype.name not in _DTYPES:
        array = array.astype(np.float64)
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": array.ravel().tolist()}


class PlanWriter:
    """Writes a plan line by line to a temporary name; `finish()` seals it (digest line)
    and renames it into place, so a plan file exists only whole."""

    def __init__(self, folder: Path, fingerprint: dict, source_ids: np.ndarray | None) -> None:
        self.path = Path(folder) / PLAN_NAME
        self._temp = Path(folder) / f".{PLAN_NAME}.tmp"
        self._file: IO[str] = self._temp.open("w")
        self._digest = hashlib.sha256()
        self.frames = 0
        ids = None if source_ids is None else encode_array(source_ids)
        self._line(
            {
                "kind": "header",
                "version": PLAN_VERSION,
                "fingerprint": fingerprint,
                "source_ids": ids,
            }
        )

    def state(self, segment: int, masks: list[dict[str, Any]]) -> None:
        """The synthesis state (mask parameters per track) before segment `segment`."""
        self._line({"kind": "state", "segment": segment, "masks": masks})

    def frame(self, item: AnalysedFrame, segment: int, call: int) -> None:
        sims = item.similarities
        self._line(
            {
                "kind": "frame",
                "frame": item.frame.index,
                "pts": item.frame.pts if item.frame.pts is not None else item.frame.index,
                "segment": segment,
                "call": call,
                "faces": [
                    {
                        "box": encode_array(f.box),
                        "score": f.score,
                        "kps": encode_array(f.kps),
                        "track": f.track_id,
                    }
                    for f in item.faces
                ],
                "sources": [[int(k), int(v)] for k, v in item.sources.items()],
                "similarities": None if sims is None else encode_array(sims),
                "smoothed": [[int(t), encode_array(p)] for t, p in item.smoothed.items()],
            }
        )
        self.frames += 1

    def finish(self) -> Path:
        self._file.write(
            json.dumps({"kind": "end", "frames": self.frames, "sha256": self._digest.hexdigest()})
            + "\n"
        )
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self.path)
        return self.path

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self._temp.unlink(missing_ok=True)

    def _line(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, allow_nan=False) + "\n"
        self._digest.update(text.encode())
        self._file.write(text)


def read_plan(path: Path, fingerprint: dict | None = None) -> Plan:
    """The plan at `path`, every line checked as it streams in, the digest last; a
    `UserInputError` in one line says what is wrong (and that the analysis will be redone
    once the file is deleted). With `fingerprint`, the plan must be this job's."""
    digest = hashlib.sha256()
    plan: Plan | None = None
    count = 0
    ended = False
    try:
        with Path(path).open() as fh:
            for number, text in enumerate(fh, start=1):
                if ended:
                    raise _refusal(path, f"has lines after its end (line {number})")
                data = _json(path, number, text)
                kind = data.get("kind")
                if plan is None:
                    plan = _header(path, data, fingerprint)
                elif kind == "state":
                    _keys(path, number, data, {"kind", "segment", "masks"})
                    plan.states[_whole(path, number, data["segment"])] = _masks(
                        path, number, data["masks"]
                    )
                elif kind == "frame":
                    planned = _frame(path, number, data)
                    plan.frames.setdefault(planned.segment, []).append(planned)
                    count += 1
                elif kind == "end":
                    _keys(path, number, data, {"kind", "frames", "sha256"})
                    if data["sha256"] != digest.hexdigest() or data["frames"] != count:
                        raise _refusal(path, "does not match its own checksum (it was edited)")
                    ended = True
                    continue
                else:
                    raise _refusal(path, f"has a line of unknown kind {kind!r} (line {number})")
                digest.update(text.encode())
    except OSError as exc:
        raise _refusal(path, f"cannot be read ({exc.strerror or exc})") from exc
    if plan is None or not ended:
        raise _refusal(path, "is cut short (no end line)")
    for segment in plan.frames:
        if segment not in plan.states:
            raise _refusal(path, f"has no synthesis state for segment {segment}")
    return plan


def _header(path: Path, data: dict, fingerprint: dict | None) -> Plan:
    if data.get("kind") != "header":
        raise _refusal(path, "does not start with its header")
    _keys(path, 1, data, {"kind", "version", "fingerprint", "source_ids"})
    if data["version"] != PLAN_VERSION:
        raise _refusal(path, f"is of plan version {data['version']!r}, not {PLAN_VERSION}")
    if fingerprint is not None and data["fingerprint"] != fingerprint:
        raise _refusal(path, "was made for another job or other settings")
    ids = data["source_ids"]
    source_ids = None if ids is None else _array(path, 1, ids)
    return Plan(data["fingerprint"], source_ids, {}, {})


def _frame(path: Path, number: int, data: dict) -> PlannedFrame:
    _keys(path, number, data, _FRAME_KEYS)
    faces = []
    for raw in _list(path, number, data["faces"]):
        if not isinstance(raw, dict):
            raise _refusal(path, f"has a face that is not an object (line {number})")
        _keys(path, number, raw, _FACE_KEYS)
        track = raw["track"]
        if track is not None:
            track = _whole(path, number, track)
        box, kps = _array(path, number, raw["box"]), _array(path, number, raw["kps"])
        if box.shape != (4,) or kps.shape != (5, 2) or not isinstance(raw["score"], float | int):
            raise _refusal(path, f"has a face of the wrong shape (line {number})")
        faces.append(Face(box, float(raw["score"]), kps, track))
    sources: dict[int, int] = {}
    for pair in _list(path, number, data["sources"]):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _refusal(path, f"has a source entry that is not a pair (line {number})")
        face, row = _whole(path, number, pair[0]), _whole(path, number, pair[1])
        if face >= len(faces):
            raise _refusal(path, f"gives a source to a missing face {face} (line {number})")
        sources[face] = row
    smoothed: dict[int, np.ndarray] = {}
    for pair in _list(path, number, data["smoothed"]):
        if not isinstance(pair, list) or len(pair) != 2:
            raise _refusal(path, f"has a smoothed entry that is not a pair (line {number})")
        smoothed[_whole(path, number, pair[0])] = _array(path, number, pair[1])
    sims = data["similarities"]
    return PlannedFrame(
        index=_whole(path, number, data["frame"]),
        pts=_whole(path, number, data["pts"], negative=True),
        segment=_whole(path, number, data["segment"]),
        call=_whole(path, number, data["call"]),
        faces=faces,
        sources=sources,
        similarities=None if sims is None else _array(path, number, sims),
        smoothed=smoothed,
    )


def _masks(path: Path, number: int, value: object) -> list[dict[str, Any]]:
    entries = _list(path, number, value)
    for entry in entries:
        ok = isinstance(entry, dict) and {"track", "frame"} <= set(entry)
        ok = ok and len(set(entry) - {"track", "frame"}) == 1
        ok = ok and (set(entry) - {"track", "frame"}) <= {"params", "offset"}
        if not ok:
            raise _refusal(path, f"has a mask state not as the engine writes it (line {number})")
    return entries


def _array(path: Path, number: int, value: object) -> np.ndarray:
    if not isinstance(value, dict) or set(value) != {"dtype", "shape", "data"}:
        raise _refusal(path, f"has an array not as the engine writes it (line {number})")
    dtype, shape, data = value["dtype"], value["shape"], value["data"]
    if dtype not in _DTYPES or not isinstance(shape, list) or not isinstance(data, list):
        raise _refusal(path, f"has an array of an unknown type (line {number})")
    try:
        array = np.asarray(data, dtype=np.float64).astype(dtype).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise _refusal(path, f"has an array that does not fit its shape (line {number})") from exc
    if not np.isfinite(array).all():
        raise _refusal(path, f"has an array with values that are not finite (line {number})")
    return array


def _json(path: Path, number: int, text: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise _refusal(path, f"has a line that is not JSON (line {number})") from exc
    if not isinstance(data, dict):
        raise _refusal(path, f"has a line that is not an object (line {number})")
    return data


def _keys(path: Path, number: int, data: dict, keys: set[str]) -> None:
    if set(data) != keys:
        odd = sorted(set(data) ^ keys)[0]
        raise _refusal(path, f"has an unknown or missing key {odd!r} (line {number})")


def _list(path: Path, number: int, value: object) -> list:
    if not isinstance(value, list):
        raise _refusal(path, f"has a list that is not a list (line {number})")
    return value


def _whole(path: Path, number: int, value: object, negative: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not negative):
        raise _refusal(path, f"has {value!r} where a whole number belongs (line {number})")
    return value


def _refusal(path: Path, what: str) -> UserInputError:
    return UserInputError(
        f"the analysis plan {one_line(str(path))} {what}; delete it to analyse the video again",
        path=path,
    )
