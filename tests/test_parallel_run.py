"""`run --workers 3`: analysis once, three local worker processes synthesise segments;
the frames equal the sequential run's, also when a worker is killed mid-segment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module
from parallel_clip import FRAMES, env, frames, make_clip, run_argv


@pytest.fixture(scope="module")
def clip(media: Path, tmp_path_factory) -> Path:
    return make_clip(media, tmp_path_factory.mktemp("clip") / "two.mp4")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def sequential(media, clip, models, tmp_path_factory) -> list[np.ndarray]:
    out = tmp_path_factory.mktemp("seq") / "seq.mkv"
    done = subprocess.run(run_argv(clip, out, media, models), env=env(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    got = frames(out)
    assert len(got) == FRAMES
    return got


def _same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert np.array_equal(a, b), f"frame {i} differs by up to {np.abs(a.astype(int) - b).max()}"


@pytest.mark.slow
def test_three_local_workers_give_the_sequential_frames(media, clip, models, sequential, tmp_path):
    out, report = tmp_path / "par.mkv", tmp_path / "report.json"
    argv = [*run_argv(clip, out, media, models), "--workers", "3", "--json", str(report)]
    done = subprocess.run(argv, env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _same(frames(out), sequential)
    data = json.loads(report.read_text())
    # the joined output goes through the same signing step as a sequential run's (an
    # .mkv carries the plain label only, and the report says so)
    assert data["provenance"]["form"] == "label" and ".mkv" in data["provenance"]["reason"]
    parallel = data["settings"]["parallel"]
    assert parallel["workers"] == 3 and parallel["scheduler"] == "local"
    assert [s["key"] for s in parallel["segments"]] == [f"segment {k}" for k in range(4)]
    assert all(s["ok"] and s["attempts"] == 1 for s in parallel["segments"])
    workers = {s["worker"] for s in parallel["segments"]}
    assert len(workers) == 3  # three processes shared the four segments
    assert parallel["analysis"]["frames"] == FRAMES


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "Tt"
    except OSError:
        return True  # gone: nothing left to wait for


def _caught_mid_segment(pid: int, work: Path) -> bool:
    """Whether `pid` is held stopped with a segment file open. A worker closes its segment
    file before it reports the segment, so one stopped (SIGSTOP) while the file is open
    has not reported it: a kill then must cost that segment. Checking without stopping
    races the worker's last frame (it may close and report between check and kill)."""
    if not _writing_segment(pid, work):
        return False
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    limit = time.monotonic() + 5
    while not _stopped(pid) and time.monotonic() < limit:
        time.sleep(0.001)
    if _stopped(pid) and _writing_segment(pid, work):
        return True
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    return False


def _writing_segment(pid: int, work: Path) -> bool:
    """Whether process `pid` holds a segment file of `work` open (it is mid-segment)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(work)) and Path(target).name.startswith("segment-"):
            return True
    return False


@pytest.mark.slow
def test_a_worker_killed_mid_segment_has_its_segment_redone(
    media, clip, models, sequential, tmp_path
):
    out, report = tmp_path / "par.mkv", tmp_path / "report.json"
    argv = [*run_argv(clip, out, media, models), "--workers", "3", "--json", str(report)]
    from ghost_engine.video.workdir import work_dir_for

    work = work_dir_for(out).resolve()
    proc = subprocess.Popen(argv, env=env(), stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.monotonic() + 300
    while victim is None:
        assert proc.poll() is None, f"the run ended before a worker was killed: {proc.stderr}"
        assert time.monotonic() < deadline
        victim = next((c for c in _children(proc.pid) if _caught_mid_segment(c, work)), None)
        time.sleep(0.01)
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    _same(frames(out), sequential)
    parallel = json.loads(report.read_text())["settings"]["parallel"]
    redone = [s for s in parallel["segments"] if s["redone"]]
    assert len(redone) == 1 and parallel["redone"] == [redone[0]["key"]]
    assert redone[0]["attempts"] == 2
    assert f"(pid {victim})" not in redone[0]["worker"]  # done again by another process
    (error,) = redone[0]["errors"]
    assert "died (signal 9)" in error and redone[0]["key"] in error


@pytest.mark.slow
def test_three_workers_on_a_local_ray_cluster_give_the_sequential_frames(
    media, clip, models, sequential, tmp_path
):
    ray = require_module("ray", "the Ray scheduler needs the ray extra")
    context = ray.init(
        num_cpus=3, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False
    )
    try:
        address = context.address_info["gcs_address"]
        out, report = tmp_path / "ray.mkv", tmp_path / "report.json"
        argv = [*run_argv(clip, out, media, models), "--workers", "3", "--ray", address]
        done = subprocess.run([*argv, "--json", str(report)], env=env(), capture_output=True)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        nodes = ray.nodes()
    finally:
        ray.shutdown()
    _same(frames(out), sequential)
    parallel = json.loads(report.read_text())["settings"]["parallel"]
    assert parallel["scheduler"] == f"ray ({address})"
    assert all(s["ok"] and s["attempts"] == 1 for s in parallel["segments"])
    pids = {s["worker"] for s in parallel["segments"]}
    assert len(pids) >= 2 and all(str(os.getpid()) not in p for p in pids)  # Ray's workers
    assert len(nodes) == 1 and nodes[0]["Resources"]["CPU"] == 3


def _is_worker(pid: int) -> bool:
    """A spawned worker process (not multiprocessing's resource tracker)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"spawn_main" in command


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_stops_every_worker_and_resume_finishes_the_same_frames(
    media, clip, models, sequential, tmp_path
):
    from ghost_engine.parallel.plan import PLAN_NAME
    from ghost_engine.video.journal import JOURNAL_NAME
    from ghost_engine.video.workdir import work_dir_for

    out, report = tmp_path / "par.mkv", tmp_path / "report.json"
    argv = [*run_argv(clip, out, media, models), "--workers", "3", "--json", str(report)]
    work = work_dir_for(out)
    proc = subprocess.Popen(argv, env=env(), stderr=subprocess.PIPE, text=True)
    deadline, workers = time.monotonic() + 300, set()
    while True:
        assert proc.poll() is None, f"the run ended before it was stopped: {proc.stderr}"
        assert time.monotonic() < deadline
        workers |= {pid for pid in _children(proc.pid) if _is_worker(pid)}
        try:
            if json.loads((work / JOURNAL_NAME).read_text())["segments"]:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "--resume" in err.strip().splitlines()[-1]
    assert len(workers) == 3 and not [pid for pid in workers if _alive(pid)]
    assert not out.exists() and (work / PLAN_NAME).is_file()
    done = subprocess.run([*argv, "--resume"], env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _same(frames(out), sequential)
    data = json.loads(report.read_text())
    assert data["resumed_segments"] >= 1 and data["settings"]["parallel"]["analysis"]["reused"]
    assert len(data["settings"]["parallel"]["segments"]) == 4 - data["resumed_segments"]
