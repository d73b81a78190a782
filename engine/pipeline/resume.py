"""Exact resume: stage states saved with each finished segment, restored by `--resume`.

`checkpointed(stages)` wraps every stage that has state (`interfaces.StatefulStage`) so
it records its state just before the first frame of each output segment
(`stage_state.Checkpointed`); when the segment writer closes a segment, `BoundaryStates`
saves the states taken before the next one beside it in the work folder and names
them in the journal record. A resumed run restores them and starts decoding at the
boundary, with the frame numbers of an uninterrupted run, so its frames are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ghost_engine.errors import UserInputError
from ghost_engine.interfaces import StatefulStage, StreamStage
from ghost_engine.pipeline.stage_state import Checkpointed, StateStore, load_state, save_state
from ghost_engine.types import SEGMENT_KEY, Frame
from ghost_engine.video.journal import Journal
from ghost_engine.video.segments import SegmentPlan


def checkpointed(stages: Sequence[StreamStage]) -> tuple[list[StreamStage], BoundaryStates]:
    """The stages with the stateful ones wrapped, and what collects their states."""
    store = StateStore()
    wrapped: list[StreamStage] = [
        Checkpointed(s, store) if isinstance(s, StatefulStage) else s for s in stages
    ]
    stateful = [s for s in wrapped if isinstance(s, Checkpointed)]
    return wrapped, BoundaryStates(store, [s.name for s in stateful], stateful)


class BoundaryStates:
    """Saves the stages' states at segment boundaries and restores them on resume."""

    def __init__(self, store: StateStore, names: list[str], stages: list[Checkpointed]) -> None:
        self.store = store
        self.names = names
        self.stages = stages
        self.folder: Path | None = None

    def save(self, segment: int) -> dict[str, Any] | None:
        """Called by the segment writer when it closes the segment before `segment`:
        the journal entry naming the saved states (None when no stage has state)."""
        if not self.names or self.folder is None:
            return None
        states = self.store.take(segment, self.names)
        if states is None:
            return None
        name = save_state(self.folder, f"state-{segment:05d}", states)
        return {"name": name, "segment": segment}

    def restore(self, journal: Journal, folder: Path) -> None:
        """Put every stateful stage where the interrupted run was after its last
        finished segment (a UserInputError when that state was not kept)."""
        if not journal.segments or not self.names:
            return
        entry = journal.segments[-1].state
        if entry is None:
            raise UserInputError(
                f"the interrupted run in {folder} kept no stage state after its last "
                "segment, so it cannot be continued exactly; run without --resume",
                path=folder,
            )
        states = load_state(folder, str(entry["name"]))
        missing = [n for n in self.names if n not in states]
        if missing:
            raise UserInputError(
                f"the saved state in {folder} has no entry for stage {missing[0]!r}; run "
                "without --resume to start over",
                path=folder,
            )
        for stage in self.stages:
            stage.restore(int(entry["segment"]), states[stage.name])


class SegmentTagged:
    """The frames of `source`, each with its output segment in `meta["segment"]`;
    `close()` closes the source too (the runner closes its source when it stops)."""

    def __init__(self, source: Iterable[Frame], plan: SegmentPlan) -> None:
        self.source = source
        self.plan = plan

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.source:
            frame.meta[SEGMENT_KEY] = self.plan.index_of(frame.pts or 0)
            yield frame

    def close(self) -> None:
        close = getattr(self.source, "close", None)
        if close is not None:
            close()
