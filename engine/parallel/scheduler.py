"""What both schedulers share: tasks, their outcomes, and how a failure is judged.

A task is a module-level function and its (picklable) arguments; it is called as
`fn(*args, progress=callback)` in a worker and returns plain data. An attempt fails when
the function raises or its worker dies; a user's error (exit code 2: a bad input, no
face in a photo) fails at once, anything else is tried again up to `attempts` times.
`run_tasks` picks the scheduler: local processes, or Ray with `ray_address`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ghost_engine.errors import GhostEngineError, UserInputError, one_line


@dataclass(frozen=True)
class Task:
    """One unit of work: `key` names it in reports ("segment 3", "job 2")."""

    key: str
    fn: Callable[..., Any]
    args: tuple = ()


@dataclass
class Outcome:
    """What became of a task: its value, or the error of its last attempt; every
    attempt's error (a dead worker included) in `errors`; `seconds` over all attempts."""

    key: str
    ok: bool = False
    value: Any = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    worker: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def redone(self) -> bool:
        return self.ok and self.attempts > 1


@dataclass(frozen=True)
class SchedulerConfig:
    """`workers` processes (or Ray tasks at a time), each with `cpus` CPU cores and
    `gpus` GPUs; `attempts` per task; `ray_address` None (local processes), "auto" or
    a cluster address; `env` extra environment for local workers."""

    workers: int = 1
    cpus: int = 1
    gpus: int = 0
    attempts: int = 3
    ray_address: str | None = None
    env: tuple[tuple[str, str], ...] = ()


Events = Callable[[str, str, Any], None]  # (event, task key, detail): "start" "progress" "end"


def retryable(exc: BaseException) -> bool:
    """Whether another attempt may succeed: not for the user's own errors."""
    return not isinstance(exc, UserInputError | FileNotFoundError)


def describe(exc: BaseException) -> str:
    """The one line an error is reported with."""
    if isinstance(exc, GhostEngineError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def run_tasks(
    tasks: Sequence[Task], config: SchedulerConfig, events: Events | None = None
) -> list[Outcome]:
    """Run `tasks` on the configured scheduler; outcomes in the tasks' order."""
    if config.workers < 1:
        raise UserInputError(
            f"--workers must be at least 1, got {config.workers}",
            option="--workers",
            value=config.workers,
        )
    if config.ray_address is not None:
        from ghost_engine.parallel.ray_cluster import run_on_ray

        return run_on_ray(tasks, config, events)
    from ghost_engine.parallel.local import run_local

    return run_local(tasks, config, events)
