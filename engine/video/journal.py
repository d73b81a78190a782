"""The resume journal: which output segments of an interrupted run are complete.

A small JSON file in the work folder, rewritten atomically after each finished segment,
so a run killed at any moment leaves a journal that names only whole segment files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ghost_engine.errors import UserInputError
from ghost_engine.video.fingerprint import first_difference

JOURNAL_NAME = "journal.json"
_VERSION = 2  # 2: segments name the stage states saved after them


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
        with temp.open("w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, folder / JOURNAL_NAME)

    @classmethod
    def load(cls, folder: Path, fingerprint: dict) -> Journal:
        """The journal in `folder`, checked against this run's fingerprint.

        Segments whose files are missing or of the wrong size (and all after them) are
        dropped, so they are simply encoded again.
        """
        path = folder / JOURNAL_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserInputError(
                f"cannot read the resume journal {path} ({exc}); "
                "run without --resume to start over",
                path=path,
                option="--resume",
            ) from exc
        if data.get("version") != _VERSION:
            raise UserInputError(
                f"the interrupted run in {folder} was made by another version of "
                "ghost-engine; run without --resume to start over",
                path=folder,
                option="--resume",
            )
        changed = first_difference(data.get("fingerprint"), fingerprint)
        if changed is not None:
            raise UserInputError(
                f"the interrupted run in {folder} was made with a different {changed}; "
                "run without --resume to start over, or restore what changed",
                path=folder,
                option="--resume",
            )
        journal = cls(fingerprint=fingerprint)
        for raw in data.get("segments", []):
            record = SegmentRecord(**raw)
            seg = folder / record.file
            if not seg.is_file() or seg.stat().st_size != record.size:
                break
            journal.segments.append(record)
        return journal

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def frames_with_faces(self) -> int:
        return sum(s.frames_with_faces for s in self.segments)
