"""Live controls: which source face is active, swap on/off, mask blur, quit.

One thread-safe state object, changed by window keys or the local control interface
and read by the swap loop once per frame (`snapshot()`), so a change takes effect on
the next frame the loop starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from ghost_engine.errors import UserInputError

BLUR_MIN, BLUR_MAX = 0.25, 4.0
BLUR_STEP = 1.25
KEY_HELP = "1-9: source face  s: swap on/off  [ ]: less/more mask blur  q/Esc: quit"


@dataclass(frozen=True)
class ControlState:
    """`source`: index of the active `-s` face; `blur`: factor on the mask's blur sigmas."""

    source: int = 0
    swap: bool = True
    blur: float = 1.0
    quit: bool = False
    version: int = 0

    def as_dict(self) -> dict:
        return {"source": self.source, "swap": self.swap, "blur": self.blur, "quit": self.quit}


class LiveControls:
    """Thread-safe control state over `num_sources` source faces."""

    def __init__(self, num_sources: int, initial: ControlState = ControlState()) -> None:
        if num_sources < 1:
            raise ValueError("live controls need at least one source face")
        self.num_sources = num_sources
        self._lock = threading.Lock()
        self._state = initial
        self._check(initial)

    def _check(self, state: ControlState) -> None:
        if not 0 <= state.source < self.num_sources:
            raise UserInputError(
                f"source {state.source} does not exist; choose 0 to {self.num_sources - 1} "
                f"(one per -s face given)"
            )
        if not BLUR_MIN <= state.blur <= BLUR_MAX:
            raise UserInputError(
                f"blur factor must be between {BLUR_MIN} and {BLUR_MAX}, got {state.blur}"
            )

    def snapshot(self) -> ControlState:
        with self._lock:
            return self._state

    def update(self, **changes) -> ControlState:
        """Apply `source=`, `swap=`, `blur=`, `quit=`; a bad value raises UserInputError
        and changes nothing."""
        unknown = set(changes) - {"source", "swap", "blur", "quit"}
        if unknown:
            raise UserInputError(
                f"unknown control(s) {', '.join(sorted(unknown))}; use source, swap, blur, quit"
            )
        with self._lock:
            state = replace(self._state, **changes, version=self._state.version + 1)
            self._check(state)
            self._state = state
            return state

    def handle_key(self, key: int) -> bool:
        """Apply a window key code (see KEY_HELP); True when the key meant something."""
        if key < 0:
            return False
        ch = chr(key & 0xFF)
        state = self.snapshot()
        if ch in "123456789" and int(ch) <= self.num_sources:
            self.update(source=int(ch) - 1)
        elif ch in "sS":
            self.update(swap=not state.swap)
        elif ch == "[":
            self.update(blur=max(BLUR_MIN, state.blur / BLUR_STEP))
        elif ch == "]":
            self.update(blur=min(BLUR_MAX, state.blur * BLUR_STEP))
        elif ch in "qQ\x1b":
            self.update(quit=True)
        else:
            return False
        return True
