"""The resume journal: which output segments of an interrupted run are complete.

A small JSON file in the work folder, rewritten atomically after each finished segment,
so a run killed at any moment leaves a journal that names only whole segment files.

What is read back is checked before it is used: exactly the known keys (a key added to
`SegmentRecord` with a default may be absent, so older journals still load), whole
numbers where numbers belong, and segment files that are plain names inside the work
folder. `segment_record` is the one place a record is read.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av

from ghost_engine.errors import UserInputError, one_line
from ghost_engine.video.fingerprint import first_difference
from ghost_engine.video.output import translate_write_error

JOURNAL_NAME = "journal.json"
_VERSION = 2  # 2: segments name the stage states saved after them
_TOP_KEYS = ("version", "fingerprint", "segments")
# how the segment writer names its files (`segments.SegmentWriter`)
_SEGMENT_FILE = re.compile(r"segment-\d{5,}\.[a-z0-9]{2,5}")
# how the stage states saved with a segment are named (`pipeline.resume`)
_STATE_NAME = re.compile(r"state-\d{5,}")
# declared field type -> (Python type, the word for it in a refusal)
_TYPES = {
    "int": (int, "whole number"),
    "str": (str, "string"),
    "float": (float, "number"),
    "bool": (bool, "true or false"),
}


def segment_file_name(index: int, suffix: str) -> str:
    """The file name of segment `index` (suffix: ".mp4", ".mov")."""
    return f"segment-{index:05d}{suffix}"


@dataclass(frozen=True)
class SegmentRecord:
    """One finished segment file and what it holds."""

    index: int
    file: str
    frames: int
    frames_with_faces: int
    first_pts: int
    last_pts: int
    size: int
    # the stage states saved when this segment closed, for the segment after it:
    # {"name": file stem in the work folder, "segment": its index}; None: no state
    state: dict | None = None


@dataclass
class Journal:
    """Fingerprint of the run (input, settings) plus the finished segments, in order."""

    fingerprint: dict
    segments: list[SegmentRecord] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        data = {
            "version": _VERSION,
            "fingerprint": self.fingerprint,
            "segments": [asdict(s) for s in self.segments],
        }
        temp = folder / (JOURNAL_NAME + ".tmp")
        try:
            with temp.open("w") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, folder / JOURNAL_NAME)
        except OSError as exc:
            raise translate_write_error(exc, folder / JOURNAL_NAME) from exc

    @classmethod
    def load(cls, folder: Path, fingerprint: dict) -> Journal:
        """The journal in `folder`, checked (`read_journal`) and held against this run's
        fingerprint.

        Segments whose files are missing, of the wrong size or no longer open as video
        (and all after them) are dropped, so they are simply encoded again.
        """
        version, found, records = read_journal(folder)
        if version != _VERSION:
            raise UserInputError(
                f"the interrupted run in {one_line(str(folder))} was made by another version "
                "of ghost-engine; run without --resume to start over",
                path=folder,
                option="--resume",
            )
        changed = first_difference(found, fingerprint)
        if changed is not None:
            raise UserInputError(
                f"the interrupted run in {one_line(str(folder))} was made with a different "
                f"{changed}; run without --resume to start over, or restore what changed",
                path=folder,
                option="--resume",
            )
        journal = cls(fingerprint=fingerprint)
        for record in records:
            seg = folder / record.file
            if not seg.is_file() or seg.stat().st_size != record.size or not _opens(seg):
                break
            journal.segments.append(record)
        return journal

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def frames_with_faces(self) -> int:
        return sum(s.frames_with_faces for s in self.segments)


def read_journal(folder: Path) -> tuple[object, object, list[SegmentRecord]]:
    """(version, fingerprint, segment records) of the journal in `folder`, or a
    UserInputError naming what is not as the engine writes it: the keys, the types, the
    order of the segments, their file names. Needs no run to compare with, so a damaged
    journal is refused before any model loads."""
    path = Path(folder) / JOURNAL_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise _refusal(path, f"cannot be read ({one_line(str(exc))})") from exc
    if not isinstance(data, dict):
        raise _refusal(path, "is not a JSON object")
    _check_keys(path, "its top level", data, _TOP_KEYS, _TOP_KEYS)
    if not isinstance(data["segments"], list):
        raise _refusal(path, "has 'segments' that are not a list")
    records: list[SegmentRecord] = []
    for number, raw in enumerate(data["segments"]):
        record = segment_record(raw, Path(folder), path, number)
        if records and record.index <= records[-1].index:
            raise _refusal(path, f"lists segment {record.index} out of order")
        records.append(record)
    return data["version"], data["fingerprint"], records


def segment_record(raw: object, folder: Path, path: Path, number: int) -> SegmentRecord:
    """Record `number` of the journal at `path`, checked: the keys of `SegmentRecord`
    (those with a default may be absent), values of the declared types, and a file that
    is a segment's plain name inside `folder`."""
    where = f"segment record {number}"
    if not isinstance(raw, dict):
        raise _refusal(path, f"has a {where} that is not a JSON object")
    fields = dataclasses.fields(SegmentRecord)
    required = [f.name for f in fields if _required(f)]
    _check_keys(path, where, raw, [f.name for f in fields], required)
    for f in fields:
        if f.name in raw:
            _check_type(path, where, f.name, raw[f.name], _TYPES.get(str(f.type)))
    record = SegmentRecord(**raw)
    if record.index < 0 or record.frames < 0 or record.size < 0:
        raise _refusal(path, f"has a {where} with a negative count")
    _check_file_name(path, where, record.file, folder)
    if record.state is not None:
        _check_state(path, where, record.state)
    return record


def _check_state(path: Path, where: str, state: object) -> None:
    """A state entry names a state file of the engine's (a plain `state-NNNNN` stem) and
    the segment it precedes."""
    if not isinstance(state, dict) or set(state) != {"name", "segment"}:
        raise _refusal(path, f"has a 'state' in {where} that is not as the engine writes it")
    name, segment = state["name"], state["segment"]
    if not isinstance(name, str) or not _STATE_NAME.fullmatch(name):
        raise _refusal(path, f"names a state file {name!r} in {where} that is not the engine's")
    if not isinstance(segment, int) or isinstance(segment, bool) or segment < 0:
        raise _refusal(path, f"has a state segment {segment!r} in {where}, not a whole number")


def _opens(segment: Path) -> bool:
    """Whether a segment file still opens as a video (a damaged one is encoded again)."""
    try:
        with av.open(str(segment)) as container:
            return bool(container.streams.video)
    except av.error.FFmpegError:
        return False


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _check_keys(
    path: Path, where: str, raw: dict, known: Sequence[str], required: Sequence[str]
) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise _refusal(path, f"has an unknown key {unknown[0]!r} in {where}", value=unknown[0])
    missing = [k for k in required if k not in raw]
    if missing:
        raise _refusal(path, f"lacks the key {missing[0]!r} in {where}", value=missing[0])


def _check_type(
    path: Path, where: str, key: str, value: Any, kind: tuple[type, str] | None
) -> None:
    if kind is None:
        return
    wanted, word = kind
    ok = isinstance(value, wanted) and not (wanted is not bool and isinstance(value, bool))
    if not ok:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise _refusal(path, f"has {key!r} = {shown} in {where}, not a {word}", value=key)


def _check_file_name(path: Path, where: str, name: str, folder: Path) -> None:
    """A plain segment name (no folder part, no `..`) whose resolved path is in `folder`."""
    plain = (
        name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\x00" not in name
        and os.path.basename(name) == name
        and _SEGMENT_FILE.fullmatch(name) is not None
    )
    inside = plain and Path(os.path.realpath(folder / name)).parent == Path(
        os.path.realpath(folder)
    )
    if not inside:
        raise _refusal(
            path,
            f"names the file {name!r} in {where}, which is not a segment inside the work folder",
            value=name,
        )


def _refusal(path: Path, what: str, value: object = None) -> UserInputError:
    return UserInputError(
        f"the resume journal {one_line(str(path))} {what}; run without --resume to start over",
        path=path,
        option="--resume",
        value=value,
    )
