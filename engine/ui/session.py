"""The work behind each control of the page, on `ghost_engine.api`, without Gradio.

A `UiSession` serves one UI server: it finds the people in a target (one thumbnail
each, written as the reference photo that picks that person), previews a frame, runs a
swap with progress and cancel, and lists or downloads models. Every engine error
reaches the page as the one line the CLI prints (`message`), never a traceback.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ghost_engine import api
from ghost_engine.errors import (
    GhostEngineError,
    NoFaceError,
    RunInterrupted,
    UserInputError,
    one_line,
)
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.report import RunReport
from ghost_engine.pipeline.swap import make_config
from ghost_engine.store import ModelStore, Progress
from ghost_engine.ui.workspace import Workspace
from ghost_engine.video.media import MediaKind, detect_kind
from ghost_engine.video.output import write_text_atomic
from ghost_engine.video.pixels import DEFAULT_MAX_PIXELS

_log = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass(frozen=True)
class Controls:
    """The settings the page offers; each is the `SwapConfig` field of that name."""

    mask_mode: str
    smoothing: str
    color_match: bool
    enhance: bool
    generator_blocks: int
    similarity_threshold: float

    @classmethod
    def of(cls, config: SwapConfig) -> Controls:
        """The controls' starting values: the server's `SwapConfig`."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


def swap_config(defaults: SwapConfig, controls: Controls) -> SwapConfig:
    """`defaults` with the page's settings; a bad value is a `UserInputError`."""
    fields = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
    fields.update(dataclasses.asdict(controls))
    fields["generator_blocks"] = int(fields["generator_blocks"])
    fields["similarity_threshold"] = float(fields["similarity_threshold"])
    return make_config(**fields)


def message(exc: BaseException) -> str:
    """The one line the page shows for `exc`: an engine error as the CLI prints it, a
    cancelled run as its note, anything else named by type (its traceback goes to the
    server's log only)."""
    if isinstance(exc, RunInterrupted):
        return one_line(str(exc))
    if isinstance(exc, GhostEngineError):
        return one_line(f"error: {exc}")
    _log.error("unexpected error in the UI", exc_info=exc)
    return one_line(f"error: unexpected {type(exc).__name__}: {exc} (see the server's log)")


@dataclass(frozen=True)
class Person:
    """One person of the target as the page shows it: the thumbnail and the reference
    photo written from it (the `-t` of the person's sources)."""

    reference: Path
    thumbnail: np.ndarray
    label: str


def assigned(
    references: Sequence[Path], sources: Sequence[Sequence[Path]]
) -> tuple[list[list[Path]], list[Path]]:
    """The people given at least one source photo, and their references, in order:
    `run`'s `-s` and `-t` lists. People given none are left as they are."""
    extra = list(sources[len(references) :])
    if any(extra):
        raise UserInputError(
            "source photos were given for more people than the target has; find the "
            "people in the target again",
            option="--source",
        )
    given = [*sources[: len(references)], *[()] * (len(references) - len(sources))]
    pairs = [(list(map(Path, s)), Path(r)) for r, s in zip(references, given, strict=True) if s]
    if not pairs:
        raise UserInputError(
            "give a source photo to at least one person (find the people in the target "
            "first, then add photos under the person to replace)",
            option="--source",
        )
    return [p for p, _ in pairs], [r for _, r in pairs]


@dataclass(frozen=True)
class RunResult:
    """A finished run: the output, its JSON report and the report itself."""

    output: Path
    report_path: Path
    report: RunReport


@dataclass(frozen=True)
class ModelRow:
    """One line of the models panel."""

    name: str
    state: str  # "verified", "unverified" or "missing"
    size_mb: float | None
    licence: str
    role: str


class UiSession:
    """The engine behind one UI server (see the module doc). Thread-safe: Gradio calls
    it from its worker threads; the server runs one swap at a time (its queue)."""

    def __init__(
        self,
        defaults: SwapConfig,
        workspace: Workspace,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        sample_frames: int = 12,
        store: ModelStore | None = None,
    ) -> None:
        self.defaults = defaults
        self.workspace = workspace
        self.max_pixels = max_pixels
        self.sample_frames = sample_frames
        self._store = store
        self._runs: dict[str, api.RunControl] = {}
        self._lock = threading.Lock()

    # -- people ------------------------------------------------------------------------
    def people(self, target: Path, controls: Controls | None = None) -> list[Person]:
        """The people of `target`, one thumbnail each, written as reference photos."""
        config = swap_config(self.defaults, controls or Controls.of(self.defaults))
        found = api.find_people(
            target, config=config, sample_frames=self.sample_frames, max_pixels=self.max_pixels
        )
        if not found:
            raise NoFaceError(
                f"no face found in {one_line(Path(target).name)} (searched "
                f"{self.sample_frames} frames at most); choose a target where faces are visible",
                path=target,
            )
        folder = self.workspace.new_folder(self.workspace.people)
        out = []
        for person in found:
            path = folder / f"person-{person.index + 1}.png"
            cv2.imwrite(str(path), cv2.cvtColor(person.thumbnail, cv2.COLOR_RGB2BGR))
            where = f"frame {person.frame_index} ({person.time_s:.2f} s)"
            label = f"person {person.index + 1}: seen in {person.frames_seen} frame(s), at {where}"
            out.append(Person(path, person.thumbnail, label))
        return out

    # -- preview -------------------------------------------------------------------------
    def preview(
        self,
        target: Path,
        references: Sequence[Path],
        sources: Sequence[Sequence[Path]],
        controls: Controls,
        time_s: float,
    ) -> api.Preview:
        """One frame before and after, with the page's settings; nothing is written."""
        people, refs = assigned(references, sources)
        return api.preview_frame(
            target,
            people,
            target_faces=refs,
            config=swap_config(self.defaults, controls),
            time_s=float(time_s),
            max_pixels=self.max_pixels,
        )

    # -- runs ----------------------------------------------------------------------------
    def run(
        self,
        target: Path,
        references: Sequence[Path],
        sources: Sequence[Sequence[Path]],
        controls: Controls,
        control: api.RunControl,
        *,
        key: str = "",
    ) -> RunResult:
        """The whole target swapped into a new run folder, with its JSON report; `key`
        (the browser session) is how `cancel` finds this run."""
        people, refs = assigned(references, sources)
        config = swap_config(self.defaults, controls)
        image = detect_kind(Path(target)) is MediaKind.IMAGE
        folder = self.workspace.new_folder(self.workspace.runs)
        stem = _safe_stem(Path(target))
        output = folder / f"{stem}-swapped{'.png' if image else '.mp4'}"
        with self._lock:
            self._runs[key] = control
        try:
            report = api.swap_controlled(
                target,
                people,
                output,
                control=control,
                target_faces=refs,
                config=config,
                max_pixels=self.max_pixels,
            )
        finally:
            with self._lock:
                if self._runs.get(key) is control:
                    del self._runs[key]
        report_path = folder / f"{stem}-swapped.json"
        write_text_atomic(report_path, json.dumps(report.to_dict(), indent=2) + "\n")
        return RunResult(output, report_path, report)

    def cancel(self, key: str = "") -> bool:
        """Cancel the run of browser session `key`; False when it has none."""
        with self._lock:
            control = self._runs.get(key)
        if control is None:
            return False
        control.cancel()
        return True

    # -- models --------------------------------------------------------------------------
    def store(self, progress: Progress | None = None) -> ModelStore:
        if self._store is not None and progress is None:
            return self._store
        base = self._store
        return ModelStore(
            self.defaults.models_dir if base is None else base.root,
            manifest=None if base is None else base.manifest,
            base_url=None if base is None else base.base_url,
            config=None if base is None else base.config,
            progress=progress,
        )

    def models(self) -> list[ModelRow]:
        """Every model of the manifest: installed (verified or not) or missing."""
        store = self.store()
        rows = []
        for name in store.manifest.entries:
            s = store.status(name)
            state = "verified" if s.verified else ("unverified" if s.present else "missing")
            size = s.size if s.present else s.entry.size
            rows.append(
                ModelRow(
                    name=name,
                    state=state,
                    size_mb=None if size is None else round(size / MB, 1),
                    licence=s.entry.licence,
                    role=s.entry.role,
                )
            )
        return rows

    def download(self, names: Sequence[str], progress: DownloadWatch) -> dict[str, Path]:
        """Fetch, verify and install `names`, reporting bytes to `progress`."""
        if not names:
            raise UserInputError("choose the models to download first", option="--pack")
        return self.store(progress).download(list(dict.fromkeys(names)))


class DownloadWatch(Progress):
    """The model store's progress reporter, kept as state a page can poll (`text`)."""

    def __init__(self) -> None:
        super().__init__(stream=io.StringIO())  # every method that writes is replaced
        self._state: dict[str, tuple[int, int | None]] = {}
        self._done: list[str] = []
        self._guard = threading.Lock()
        self.started = time.monotonic()

    def start(self, label: str, total: int | None, already: int = 0, source: str = "") -> None:
        with self._guard:
            self._state[label] = (already, total)

    def advance(self, label: str, nbytes: int) -> None:
        with self._guard:
            done, total = self._state.get(label, (0, None))
            self._state[label] = (done + nbytes, total)

    def finish(self, label: str, message: str) -> None:
        with self._guard:
            self._state.pop(label, None)
            self._done.append(f"{label}: {one_line(message)}")

    def note(self, message: str) -> None:
        with self._guard:
            self._done.append(one_line(message))

    def fraction(self) -> float | None:
        """Bytes done over bytes expected of the files under way (None when unknown)."""
        with self._guard:
            totals = [(d, t) for d, t in self._state.values() if t]
        if not totals:
            return None
        return min(1.0, sum(d for d, _ in totals) / sum(t for _, t in totals))

    def text(self) -> str:
        with self._guard:
            lines = list(self._done)
            for label, (done, total) in self._state.items():
                size = f" of {total / MB:.1f} MB" if total else ""
                lines.append(f"{label}: {done / MB:.1f} MB{size}")
        return "\n".join(lines)


def _safe_stem(path: Path) -> str:
    """The target's name without its suffix, kept to letters, digits, '-' and '_'."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in path.stem)
    return stem[:60] or "output"
