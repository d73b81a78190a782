"""What a run did, for `--json REPORT` and the Python API's return value."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ghost_engine import __version__
from ghost_engine.errors import OutputError
from ghost_engine.face.timing import add_timings
from ghost_engine.interfaces import StreamStage


@dataclass
class RunReport:
    """One run: inputs, output, frame counts and seconds per stage."""

    kind: str  # "video" | "image"
    target: str
    output: str
    sources: list[list[str]]
    frames: int = 0
    frames_with_faces: int = 0
    frames_without_faces: int = 0
    wall_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    swap_seconds: dict[str, float] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    audio: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    resumed_segments: int = 0
    resumed_frames: int = 0
    # the output's provenance: {"form": "c2pa", signer...} or {"form": "label", "reason"}
    provenance: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def add_swap_seconds(self, stages: Sequence[StreamStage]) -> None:
        """Seconds per face sub-step over every stage (a step two stages share, such as
        "align", is summed)."""
        total: dict[str, float] = {}
        for stage in stages:
            add_timings(total, stage.timings())
        self.swap_seconds.update({k: round(v, 4) for k, v in total.items()})

    def to_dict(self) -> dict:
        data = asdict(self)
        data["frames_per_second"] = round(self.fps, 3)
        data["engine"] = {"version": __version__, "python": platform.python_version()}
        return data

    def write_json(self, path: Path) -> None:
        """Write the report atomically (temporary file, then rename)."""
        path = Path(path)
        temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            temp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            os.replace(temp, path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise OutputError(f"cannot write the JSON report {path}: {exc.strerror}") from exc
