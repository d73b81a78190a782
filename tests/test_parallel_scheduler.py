"""The local scheduler: outcomes in task order, retries of passing failures, a dead
worker's task done again by a fresh process, users' errors not retried."""

from __future__ import annotations

import os

import parallel_tasks as tasks
import pytest

from ghost_engine.errors import UserInputError
from ghost_engine.parallel.scheduler import SchedulerConfig, Task, run_tasks


def test_outcomes_come_back_in_task_order_with_progress():
    events = []
    todo = [Task(f"t{i}", tasks.square, (i,)) for i in range(5)]
    out = run_tasks(todo, SchedulerConfig(workers=2), lambda *e: events.append(e))
    assert [o.value for o in out] == [0, 1, 4, 9, 16]
    assert all(o.ok and o.attempts == 1 and not o.errors for o in out)
    assert sorted(k for kind, k, _ in events if kind == "progress") == [f"t{i}" for i in range(5)]
    assert len({o.worker for o in out}) <= 2


def test_a_passing_failure_is_retried_and_a_dead_worker_replaced(tmp_path):
    todo = [
        Task("flaky", tasks.fails_once, (str(tmp_path / "flaky"),)),
        Task("killed", tasks.dies_once, (str(tmp_path / "killed"),)),
    ]
    flaky, killed = run_tasks(todo, SchedulerConfig(workers=2, attempts=2))
    assert flaky.ok and flaky.redone and flaky.value == "second time lucky"
    assert flaky.errors == ["RuntimeError: a passing failure"]
    first_pid = int((tmp_path / "killed").read_text())
    assert killed.ok and killed.redone and killed.value != first_pid
    assert os.getpid() not in (first_pid, killed.value)
    assert len(killed.errors) == 1 and "died (signal 9) during killed" in killed.errors[0]


def test_users_errors_fail_at_once_and_others_after_the_limit():
    todo = [Task("photo", tasks.no_face), Task("broken", tasks.always_fails)]
    photo, broken = run_tasks(todo, SchedulerConfig(workers=1, attempts=3))
    assert not photo.ok and photo.attempts == 1 and "no face found" in photo.error
    assert not broken.ok and broken.attempts == 3 and broken.error.endswith("broken every time")
    assert len(broken.errors) == 3


def test_no_workers_is_refused():
    with pytest.raises(UserInputError, match="--workers"):
        run_tasks([Task("t", tasks.square, (1,))], SchedulerConfig(workers=0))
