"""Stage state at segment boundaries: taken while a run goes, saved beside each segment,
restored by `--resume`, so a resumed run gives the frames of an uninterrupted one.

A stage with state (`interfaces.StatefulStage`: tracking, matching, smoothing, frozen
mask parameters) is wrapped in `Checkpointed`: it splits its input where the segment
changes (`frame.meta["segment"]`, set by the video job) and records the stage's
`state()` just before the first frame of each new segment, before any of it is
processed. Because every run splits the same way, a resumed run and an uninterrupted
one hand the networks the same batches from the boundary on.

States are plain data: a JSON tree whose arrays live in an `.npz` beside it (loaded
with `allow_pickle=False`); nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ghost_engine.errors import UserInputError
from ghost_engine.interfaces import StatefulStage
from ghost_engine.types import SEGMENT_KEY

_ARRAY = "$array"


def segment_of(item: Any) -> int:
    """The segment an item belongs to: a frame's, or an analysed frame's frame's."""
    frame = getattr(item, "frame", item)
    return int(frame.meta.get(SEGMENT_KEY, 0))


class Checkpointed:
    """Implements `StreamStage` around a `StatefulStage`; states go to `store`."""

    def __init__(self, stage: StatefulStage, store: StateStore) -> None:
        self.stage = stage
        self.name = stage.name
        self.store = store
        self._segment: int | None = None

    def process(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        start = 0
        for i, item in enumerate(items):
            segment = segment_of(item)
            if self._segment is not None and segment != self._segment:
                out += self.stage.process(items[start:i]) if i > start else []
                start = i
                self.store.put(self.name, segment, self.stage.state())
            self._segment = segment
        if start < len(items):
            out += self.stage.process(items[start:])
        return out

    def flush(self) -> list[Any]:
        return self.stage.flush()

    def timings(self) -> dict[str, float]:
        return self.stage.timings()

    def close(self) -> None:
        self.stage.close()

    def restore(self, segment: int, state: dict[str, Any]) -> None:
        """Continue from the state an earlier run took before `segment`."""
        self.stage.restore(state)
        self._segment = segment


class StateStore:
    """States taken by the stage threads, collected by the writer thread when a segment
    is finished (thread-safe). A state waits here only until its segment's turn."""

    def __init__(self) -> None:
        self._states: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, stage: str, segment: int, state: dict[str, Any]) -> None:
        with self._lock:
            self._states.setdefault(segment, {})[stage] = state

    def take(self, segment: int, stages: list[str]) -> dict[str, Any] | None:
        """Every stage's state before `segment`, once all are in (else None)."""
        with self._lock:
            states = self._states.get(segment, {})
            if any(name not in states for name in stages):
                return None
            for old in [s for s in self._states if s <= segment]:
                del self._states[old]
            return {name: states[name] for name in stages}


def save_state(folder: Path, name: str, state: dict[str, Any]) -> str:
    """Write `state` as `name.json` + `name.npz` in `folder` (atomically); returns `name`."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays)
    npz_tmp = folder / f".{name}.npz.tmp"
    with npz_tmp.open("wb") as fh:
        # numpy's stub lets a str-keyed ** reach savez's allow_pickle (keys are "a0"...)
        np.savez(fh, **arrays)  # type: ignore[arg-type]
        fh.flush()
        os.fsync(fh.fileno())
    json_tmp = folder / f".{name}.json.tmp"
    with json_tmp.open("w") as fh:
        json.dump(tree, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(npz_tmp, folder / f"{name}.npz")
    os.replace(json_tmp, folder / f"{name}.json")
    return name


def load_state(folder: Path, name: str) -> dict[str, Any]:
    """Read what `save_state` wrote; a missing or damaged file is a UserInputError."""
    try:
        tree = json.loads((folder / f"{name}.json").read_text())
        with np.load(folder / f"{name}.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return _decode(tree, arrays)
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(
            f"the saved stage state {name} in {folder} is missing or damaged ({exc}); run "
            "without --resume to start over",
            path=folder / f"{name}.json",
        ) from exc


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {_ARRAY: key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"state keys must be strings, got {list(value)[:3]}")
        return {k: _encode(v, arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a stage state")


def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value
