"""Many swap jobs: read a job list, run every job as its own `ghost-engine run`, report.

A job list is a JSON-lines file (one object per line), a TOML file (`[[job]]` tables)
or a folder (every video in it, with a naming rule for the outputs). A job is a target,
an output and any `run` option by its long name (`"source": ["a.jpg"]`,
`"codec": "ffv1"`, `"overwrite": true`); options given to the batch itself go to every
job first, so a job's own ones win. Relative paths in a file are relative to the file.

Each job runs in a process of its own (`sys.executable -m ghost_engine run ...`), so a
job that fails, or crashes its interpreter, costs only itself: it is tried again up to
the limit (a user's error, exit code 2, at once fails), the others finish, and the
report lists every job with its status, output, seconds and error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghost_engine.errors import GhostEngineError, UserInputError, one_line
from ghost_engine.parallel.scheduler import Outcome, SchedulerConfig, Task, run_tasks

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".ts")
DEFAULT_NAME_RULE = "{stem}_swapped{suffix}"
_USER_ERROR = 2  # the exit code of a GhostEngineError that is the user's to fix


@dataclass(frozen=True)
class Job:
    """One swap job: `args` are the `run` options after the target (the output's too)."""

    number: int
    target: Path
    output: Path
    args: tuple[str, ...]

    def argv(self, common: Sequence[str]) -> list[str]:
        """The command line: the batch's options first, the job's own after (they win)."""
        run = [sys.executable, "-m", "ghost_engine", "run", str(self.target), "-q"]
        return [*run, *common, *self.args]


@dataclass
class JobReport:
    """One line of the batch report."""

    job: int
    target: str
    output: str
    status: str  # "ok" | "failed"
    attempts: int
    seconds: float
    error: str | None = None
    errors: list[str] = field(default_factory=list)
    worker: str | None = None


def read_jobs(
    source: Path,
    known_options: set[str],
    *,
    output_dir: Path | None = None,
    name_rule: str = DEFAULT_NAME_RULE,
) -> list[Job]:
    """The jobs of a JSON-lines or TOML file, or one job per video in a folder; a job
    that is not as described (no target, an unknown option) is refused in one line
    naming it, before anything runs."""
    source = Path(source)
    if source.is_dir():
        return _folder_jobs(source, output_dir, name_rule)
    if output_dir is not None:
        raise UserInputError(
            "--output-dir goes with a folder of videos; a job file names each output",
            option="--output-dir",
        )
    try:
        text = source.read_text()
    except OSError as exc:
        raise UserInputError(
            f"cannot read the job list {one_line(str(source))}: {exc.strerror or exc}",
            path=source,
        ) from exc
    if source.suffix.lower() == ".toml":
        raw = _toml_jobs(source, text)
    else:
        raw = _jsonl_jobs(source, text)
    if not raw:
        raise UserInputError(f"the job list {one_line(str(source))} has no jobs", path=source)
    jobs = [_job(source, n, entry, known_options) for n, entry in enumerate(raw, start=1)]
    _check_distinct(jobs, source)
    return jobs


def _jsonl_jobs(source: Path, text: str) -> list[dict]:
    jobs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(
                f"line {number} of {one_line(str(source))} is not JSON ({exc.msg})", path=source
            ) from exc
        if not isinstance(entry, dict):
            raise UserInputError(
                f"line {number} of {one_line(str(source))} is not a JSON object", path=source
            )
        jobs.append(entry)
    return jobs


def _toml_jobs(source: Path, text: str) -> list[dict]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(
            f"{one_line(str(source))} is not TOML ({one_line(str(exc))})", path=source
        ) from exc
    unknown = sorted(set(data) - {"job"})
    jobs = data.get("job", [])
    if unknown or not isinstance(jobs, list):
        raise UserInputError(
            f"{one_line(str(source))} must hold [[job]] tables only, found {unknown or 'job'}",
            path=source,
        )
    return jobs


def _job(source: Path, number: int, entry: dict, known: set[str]) -> Job:
    where = f"job {number} of {one_line(str(source))}"
    for key in ("target", "output"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise UserInputError(f"{where} has no {key!r} (a path)", path=source, value=key)
    base = source.parent
    args: list[str] = ["-o", str(_relative_to(base, entry["output"]))]
    for key, value in entry.items():
        if key in ("target", "output"):
            continue
        flag = "--" + key.replace("_", "-")
        if flag not in known:
            raise UserInputError(
                f"{where} has the option {key!r}, which `ghost-engine run` does not have",
                path=source,
                value=key,
            )
        args += _flag_args(flag, value, base, where, source)
    target, output = _relative_to(base, entry["target"]), _relative_to(base, entry["output"])
    return Job(number, target, output, tuple(args))


_PATH_FLAGS = {"--source", "--target-face", "--json", "--faces-log", "--models-dir"}
_PATH_FLAGS |= {"--generator-engine"}


def _flag_args(flag: str, value: Any, base: Path, where: str, source: Path) -> list[str]:
    """The command-line words of one option: a flag for true, nothing for false, the
    option once per value of a list; paths made relative to the job file."""
    if isinstance(value, bool):
        return [flag] if value else []
    values = value if isinstance(value, list) else [value]
    words: list[str] = []
    for item in values:
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise UserInputError(
                f"{where} gives {flag[2:]!r} a value that is not text or a number",
                path=source,
                value=flag[2:],
            )
        text = str(item)
        if flag in _PATH_FLAGS:
            text = ",".join(str(_relative_to(base, p)) for p in text.split(","))
        words += [flag, text]
    return words


def _relative_to(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _folder_jobs(folder: Path, output_dir: Path | None, name_rule: str) -> list[Job]:
    if output_dir is None:
        raise UserInputError(
            "a folder of videos needs --output-dir for the outputs", option="--output-dir"
        )
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise UserInputError(
            f"{one_line(str(folder))} holds no videos ({', '.join(VIDEO_SUFFIXES)})", path=folder
        )
    jobs = []
    for number, video in enumerate(videos, start=1):
        try:
            name = name_rule.format(stem=video.stem, suffix=video.suffix, name=video.name)
        except (KeyError, IndexError, ValueError) as exc:
            raise UserInputError(
                f"--name {name_rule!r} may use {{stem}}, {{suffix}} and {{name}} only",
                option="--name",
                value=name_rule,
            ) from exc
        output = Path(output_dir) / name
        jobs.append(Job(number, video, output, ("-o", str(output))))
    _check_distinct(jobs, folder)
    return jobs


def _check_distinct(jobs: list[Job], source: Path) -> None:
    seen: dict[Path, int] = {}
    for job in jobs:
        key = job.output.resolve()
        if key in seen:
            raise UserInputError(
                f"jobs {seen[key]} and {job.number} of {one_line(str(source))} both write "
                f"{one_line(str(job.output))}; give each job its own output",
                path=job.output,
            )
        seen[key] = job.number


def run_job(argv: list[str], *, progress: Any = None) -> dict[str, Any]:
    """One job as its own process; raises with the run's own one-line error (a user's
    error as `UserInputError`, which is not retried)."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    seconds = round(time.perf_counter() - started, 3)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        message = f"{one_line(last)} (exit code {done.returncode})"
        if done.returncode == _USER_ERROR:
            raise UserInputError(message)
        raise GhostEngineError(message)
    if progress is not None:
        progress(1)
    return {"seconds": seconds}


def run_batch(
    jobs: Sequence[Job], common: Sequence[str], scheduler: SchedulerConfig, events: Any = None
) -> list[JobReport]:
    """Run every job (`scheduler.workers` at a time); one report line per job."""
    tasks = [Task(f"job {j.number}", run_job, (j.argv(common),)) for j in jobs]
    outcomes = run_tasks(tasks, scheduler, events)
    return [_report(job, outcome) for job, outcome in zip(jobs, outcomes, strict=True)]


def _report(job: Job, outcome: Outcome) -> JobReport:
    return JobReport(
        job=job.number,
        target=str(job.target),
        output=str(job.output),
        status="ok" if outcome.ok else "failed",
        attempts=outcome.attempts,
        seconds=outcome.seconds,
        error=outcome.error,
        errors=list(outcome.errors),
        worker=outcome.worker,
    )


def report_dict(reports: Sequence[JobReport], wall_s: float) -> dict[str, Any]:
    ok = sum(r.status == "ok" for r in reports)
    return {
        "jobs": len(reports),
        "succeeded": ok,
        "failed": len(reports) - ok,
        "wall_s": round(wall_s, 3),
        "results": [asdict(r) for r in reports],
    }
