"""`ghost-engine batch JOBS [-- RUN OPTIONS]`: run many swap jobs, report every one.

JOBS is a JSON-lines file, a TOML file of `[[job]]` tables, or a folder of videos
(with --output-dir and a --name rule); see `ghost_engine.parallel.batch`. Options
after `--` are `run` options given to every job (a job's own ones win).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ghost_engine.commands.common import count_option, log_to_stderr, quiet_option
from ghost_engine.errors import GhostEngineError, one_line


@click.command("batch", context_settings={"ignore_unknown_options": True})
@click.argument("job_list", metavar="JOBS", type=click.Path(path_type=Path, exists=True))
@click.argument("run_options", nargs=-1, type=click.UNPROCESSED)
@count_option("--jobs", 1, "How many jobs run at once (each in its own process).", high=1024)
@count_option(
    "--retries", 1, "Further attempts for a job that failed (not for users' errors).", low=0
)
@click.option(
    "--output-dir",
    type=Path,
    help="With a folder of videos: where the outputs go (named by --name).",
)
@click.option(
    "--name",
    "name_rule",
    default="{stem}_swapped{suffix}",
    show_default=True,
    help="With a folder: the output name of each video ({stem}, {suffix}, {name}).",
)
@click.option(
    "--report",
    type=Path,
    metavar="REPORT",
    help="Write every job's status, output, seconds and error as JSON.",
)
@click.option(
    "--ray",
    "ray_address",
    metavar="auto|ADDRESS",
    help="Run the jobs as Ray tasks on a cluster; every path must be one all nodes see.",
)
@quiet_option("No line per finished job (the summary and errors still show).")
def batch(**opts) -> None:
    """Run every job of JOBS with the same options `run` takes; a failed job is retried
    up to --retries times and reported, the others finish. Exit code 1 when not every
    job succeeded."""
    from ghost_engine.commands.run import run
    from ghost_engine.parallel.batch import read_jobs, report_dict, run_batch
    from ghost_engine.parallel.scheduler import SchedulerConfig
    from ghost_engine.video.output import write_text_atomic

    log_to_stderr()
    known = {opt for param in run.params for opt in getattr(param, "opts", [])}
    known = {o for o in known if o.startswith("--")}
    common = list(opts["run_options"])
    if common and common[0] == "--":
        common = common[1:]
    jobs = read_jobs(
        opts["job_list"], known, output_dir=opts["output_dir"], name_rule=opts["name_rule"]
    )
    scheduler = SchedulerConfig(
        workers=opts["jobs"], attempts=opts["retries"] + 1, ray_address=opts["ray_address"]
    )
    done = {"count": 0}

    def events(kind: str, key: str, outcome: object) -> None:
        if kind != "end" or opts["quiet"]:
            return
        done["count"] += 1
        status = "ok" if getattr(outcome, "ok", False) else f"failed: {outcome.error}"  # type: ignore[attr-defined]
        click.echo(f"[{done['count']}/{len(jobs)}] {key} {status}", err=True)

    started = time.perf_counter()
    reports = run_batch(jobs, common, scheduler, events)
    summary = report_dict(reports, time.perf_counter() - started)
    if opts["report"] is not None:
        write_text_atomic(opts["report"], json.dumps(summary, indent=2) + "\n")
    failed = [r for r in reports if r.status != "ok"]
    if failed:
        where = f"; see {one_line(str(opts['report']))}" if opts["report"] else ""
        raise GhostEngineError(
            f"{len(failed)} of {len(reports)} job(s) failed (first: job {failed[0].job}, "
            f"{failed[0].error}){where}"
        )
    if not opts["quiet"]:
        click.echo(f"{len(reports)} job(s) done in {summary['wall_s']:.1f} s", err=True)
