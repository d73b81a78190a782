"""Local worker processes: one process per worker (spawned, so no state is shared by
accident), each with its own pipe to the coordinator, which hands it one task at a time.

The coordinator watches every process: one that dies (killed, out of memory) while it
holds a task fails that attempt, and a fresh process takes its place, so the task is
done again from the start. Nothing is shared between workers (no common queue whose
lock a killed process could keep). Ctrl-C or SIGTERM in the coordinator
(KeyboardInterrupt) terminates every worker before it is re-raised.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

from ghost_engine.parallel.scheduler import (
    Events,
    Outcome,
    SchedulerConfig,
    Task,
    describe,
    retryable,
)

_POLL_S = 0.2


def _worker(conn: Connection) -> None:
    """A worker process: run the tasks sent on `conn` until it closes or sends None."""
    try:
        while True:
            try:
                item = conn.recv()
            except EOFError:
                return
            if item is None:
                return
            task: Task = item
            started = time.perf_counter()

            def progress(count: int) -> None:
                conn.send(("progress", count))

            try:
                value = task.fn(*task.args, progress=progress)
            except Exception as exc:  # reported to the coordinator, which decides
                seconds = time.perf_counter() - started
                conn.send(("error", (describe(exc), retryable(exc), seconds)))
                continue
            conn.send(("done", (value, time.perf_counter() - started)))
    except KeyboardInterrupt:
        return


class _Worker:
    def __init__(self, name: str, proc: Any, conn: Connection) -> None:
        self.name, self.proc, self.conn = name, proc, conn
        self.task: int | None = None


class _Pool:
    """The worker processes; starts a fresh one in a dead one's slot."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.ctx = mp.get_context("spawn")
        self.config = config
        self.workers: list[_Worker] = []
        self._count = 0

    def start(self, slot: int) -> _Worker:
        name = f"worker-{self._count}"
        self._count += 1
        env = dict(self.config.env)
        if self.config.gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)  # one GPU per worker slot
        ours, theirs = self.ctx.Pipe()
        with _environment(env):
            proc = self.ctx.Process(target=_worker, args=(theirs,), name=name, daemon=True)
            proc.start()
        theirs.close()
        worker = _Worker(name, proc, ours)
        if slot < len(self.workers):
            self.workers[slot] = worker
        else:
            self.workers.append(worker)
        return worker

    def stop(self, wait_s: float = 5.0) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        for worker in self.workers:
            worker.proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for worker in self.workers:
            if worker.proc.is_alive():
                worker.proc.terminate()
        for worker in self.workers:
            worker.proc.join(timeout=5.0)
            if worker.proc.is_alive():
                worker.proc.kill()
            worker.conn.close()


class _Run:
    """The coordinator's side of one `run_local`."""

    def __init__(self, tasks: Sequence[Task], config: SchedulerConfig, events: Events | None):
        self.tasks, self.config, self.events = tasks, config, events
        self.outcomes = [Outcome(t.key) for t in tasks]
        self.queue: deque[int] = deque(range(len(tasks)))
        self.remaining = len(tasks)
        self.pool = _Pool(config)

    def go(self) -> list[Outcome]:
        for slot in range(min(self.config.workers, len(self.tasks))):
            self.pool.start(slot)
        while self.remaining:
            self._hand_out()
            ready = wait([w.conn for w in self.pool.workers], timeout=_POLL_S)
            for worker in list(self.pool.workers):
                if worker.conn in ready:
                    self._receive(worker)
            self._replace_dead()
        self.pool.stop()
        return self.outcomes

    def _hand_out(self) -> None:
        for worker in self.pool.workers:
            if worker.task is None and self.queue and worker.proc.is_alive():
                number = self.queue.popleft()
                worker.task = number
                outcome = self.outcomes[number]
                outcome.attempts += 1
                outcome.worker = f"{worker.name} (pid {worker.proc.pid})"
                worker.conn.send(self.tasks[number])
                self._emit("start", number, outcome.worker)

    def _receive(self, worker: _Worker) -> None:
        try:
            kind, detail = worker.conn.recv()
        except (EOFError, OSError):
            return  # it died: `_replace_dead` fails its attempt
        number = worker.task
        if number is None:
            return
        if kind == "progress":
            self._emit("progress", number, detail)
            return
        worker.task = None
        outcome = self.outcomes[number]
        if kind == "done":
            value, seconds = detail
            outcome.ok, outcome.value = True, value
            outcome.seconds = round(outcome.seconds + seconds, 4)
            self._settled(number)
        else:
            message, again, seconds = detail
            outcome.seconds = round(outcome.seconds + seconds, 4)
            self._failed(number, message, again)

    def _failed(self, number: int, message: str, again: bool) -> None:
        outcome = self.outcomes[number]
        outcome.errors.append(message)
        if again and outcome.attempts < self.config.attempts:
            self.queue.appendleft(number)
            return
        outcome.error = message
        self._settled(number)

    def _settled(self, number: int) -> None:
        self.remaining -= 1
        self._emit("end", number, self.outcomes[number])

    def _replace_dead(self) -> None:
        """Fail the attempt of every worker that died holding a task; a fresh worker
        takes its slot while work is left."""
        for slot, worker in enumerate(list(self.pool.workers)):
            if worker.proc.is_alive():
                continue
            worker.proc.join(timeout=1.0)
            worker.conn.close()
            number, worker.task = worker.task, None
            if number is not None:
                code = worker.proc.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                key = self.tasks[number].key
                self._failed(number, f"{worker.name} died ({how}) during {key}", True)
            if self.remaining:
                self.pool.start(slot)

    def _emit(self, kind: str, number: int, detail: Any) -> None:
        if self.events is not None:
            self.events(kind, self.tasks[number].key, detail)


def run_local(
    tasks: Sequence[Task], config: SchedulerConfig, events: Events | None = None
) -> list[Outcome]:
    """Run `tasks` on `config.workers` local processes (see the module doc)."""
    if not tasks:
        return []
    run = _Run(tasks, config, events)
    try:
        return run.go()
    except BaseException:
        run.pool.kill()
        raise


@contextmanager
def _environment(values: dict[str, str]):
    """`values` in os.environ while a process is spawned (it copies the environment)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
