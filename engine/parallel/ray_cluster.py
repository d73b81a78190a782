"""The Ray scheduler: the same tasks as `local`, as Ray tasks on a cluster.

`--ray auto` joins the cluster this machine belongs to (`ray start --head` here, or
`ray start --address=...` on a worker node); `--ray ADDRESS` joins the one at that
address (`HOST:6379`, or `ray://HOST:10001` through Ray Client). A process that is
already connected (`ray.init(...)` before the call) keeps its connection.

Each task asks for `cpus` CPU cores and `gpus` GPUs, so Ray places at most as many as
the nodes hold, and at most `workers` are in flight at once. A worker process that dies
is retried by Ray itself (`max_retries`); an error the task raised comes back as data
and is judged as in the local scheduler (a user's error is final, others are tried
again up to `attempts`). Ray runs the tasks in worker processes it keeps, so a worker
loads its models once for many segments.

What the cluster needs: the same Python environment with ghost-engine (and its model
files, `--models-dir`) on every node, and every path of the job (target, photos,
output, work folder beside the output) on storage all nodes see at the same path
(NFS, a cluster file system): workers read the target and the plan and write the
segment files there, and the coordinator joins them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from ghost_engine.errors import OptionalDependencyError
from ghost_engine.parallel.scheduler import (
    Events,
    Outcome,
    SchedulerConfig,
    Task,
    describe,
    retryable,
)

_WAIT_S = 0.5


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise OptionalDependencyError.for_extra("ray", "ray", "--ray") from exc
    return ray


def _attempt(task: Task) -> tuple[str, Any, str]:
    """One attempt inside a Ray worker: ("done", (value, s), where) or ("error", ...)."""
    where = f"{socket.gethostname()} pid {os.getpid()}"
    started = time.perf_counter()
    try:
        value = task.fn(*task.args, progress=None)
    except Exception as exc:  # judged by the coordinator
        return "error", (describe(exc), retryable(exc), time.perf_counter() - started), where
    return "done", (value, time.perf_counter() - started), where


def run_on_ray(
    tasks: Sequence[Task], config: SchedulerConfig, events: Events | None = None
) -> list[Outcome]:
    """Run `tasks` as Ray tasks (see the module doc); outcomes in the tasks' order."""
    ray = _ray()
    joined = False
    if not ray.is_initialized():
        ray.init(address=config.ray_address, log_to_driver=False)
        joined = True
    try:
        return _Run(ray, tasks, config, events).go()
    finally:
        if joined:
            ray.shutdown()


class _Run:
    def __init__(self, ray: Any, tasks: Sequence[Task], config: SchedulerConfig, events):
        self.ray, self.tasks, self.config, self.events = ray, tasks, config, events
        self.outcomes = [Outcome(t.key) for t in tasks]
        self.remote = ray.remote(_attempt).options(
            num_cpus=config.cpus,
            num_gpus=config.gpus,
            max_retries=max(0, config.attempts - 1),
        )
        self.queue = list(range(len(tasks)))
        self.flying: dict[Any, int] = {}

    def go(self) -> list[Outcome]:
        try:
            while self.queue or self.flying:
                while self.queue and len(self.flying) < self.config.workers:
                    number = self.queue.pop(0)
                    self.outcomes[number].attempts += 1
                    self.flying[self.remote.remote(self.tasks[number])] = number
                    self._emit("start", number, None)
                ready, _ = self.ray.wait(list(self.flying), num_returns=1, timeout=_WAIT_S)
                for ref in ready:
                    self._settle(ref, self.flying.pop(ref))
        except BaseException:
            for ref in self.flying:
                self.ray.cancel(ref, force=True)
            raise
        return self.outcomes

    def _settle(self, ref: Any, number: int) -> None:
        outcome = self.outcomes[number]
        try:
            kind, detail, where = self.ray.get(ref)
        except Exception as exc:  # the worker died more often than Ray retries
            kind, detail, where = "error", (describe(exc), False, 0.0), None
        outcome.worker = where
        if kind == "done":
            value, seconds = detail
            outcome.ok, outcome.value = True, value
            outcome.seconds = round(outcome.seconds + seconds, 4)
            self._emit("end", number, outcome)
            return
        message, again, seconds = detail
        outcome.seconds = round(outcome.seconds + seconds, 4)
        outcome.errors.append(message)
        if again and outcome.attempts < self.config.attempts:
            self.queue.insert(0, number)
            return
        outcome.error = message
        self._emit("end", number, outcome)

    def _emit(self, kind: str, number: int, detail: Any) -> None:
        if self.events is not None:
            self.events(kind, self.tasks[number].key, detail)
