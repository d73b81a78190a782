"""`ghost-engine bench [VIDEO]`: throughput of every stage, the generator per batch size
and runtime, the whole pipeline and its efficiency, as a table, JSON and a PNG chart."""

from __future__ import annotations

from pathlib import Path

import click

from ghost_engine.choices import BENCH_RUNTIMES, RUNTIMES
from ghost_engine.commands.common import (
    choice_option,
    count_option,
    device_option,
    generator_blocks_option,
    json_option,
    models_dir_option,
    quiet_option,
    shown,
)
from ghost_engine.errors import UserInputError


def _default_video() -> Path:
    from ghost_engine.shared_paths import media_dir

    path = media_dir() / "videos" / "nggyup.mp4"
    if not path.is_file():
        raise UserInputError(
            f"no VIDEO given and the reference clip {path} is absent; name a video with a face",
            path=path,
        )
    return path


@click.command("bench")
@click.argument("video", required=False, type=click.Path(path_type=Path, dir_okay=False))
@device_option
@shown(
    "--runtime",
    "runtimes",
    default="torch",
    metavar="NAME[,NAME]",
    help=f"Generator runtimes to time: {', '.join(BENCH_RUNTIMES)} (comma list).",
)
@choice_option(
    "--pipeline-runtime",
    RUNTIMES,
    "auto",
    "Generator runtime inside the pipeline (auto: as ghost-engine run).",
)
@click.option("--enhance", is_flag=True, help="Include face super-resolution (run --enhance).")
@shown(
    "--batch-sizes",
    default="1,8,32",
    metavar="N[,N]",
    help="Generator batch sizes to time.",
)
@count_option("--frames", 24, "Use the video's first N frames (keeps a CPU run to minutes).")
@count_option("--pipeline-batch", 8, "Frames per pipeline batch (as run --batch-size).")
@count_option("--repeats", 3)
@count_option("--warmup", 1, low=0)
@count_option("--e2e-repeats", 1)
@generator_blocks_option
@click.option("-s", "--source", type=Path, help="Source face photo (default: the video's face).")
@models_dir_option
@json_option("json_out", "OUT", "Write the results as JSON.")
@click.option("--plot", type=Path, metavar="OUT.png", help="Write the chart as PNG.")
@quiet_option("Only the final table.")
def bench(**opts) -> None:
    """Measure throughput per stage and end to end on VIDEO (default: nggyup.mp4)."""
    from ghost_engine.measure.bench_config import BenchConfig, parse_int_list, parse_name_list
    from ghost_engine.measure.bench_report import format_table, write_json
    from ghost_engine.measure.chart import write_chart
    from ghost_engine.measure.suite import run_bench

    config = BenchConfig(
        video=opts["video"] or _default_video(),
        device=opts["device"],
        runtimes=parse_name_list(opts["runtimes"]),
        batch_sizes=parse_int_list(opts["batch_sizes"], "--batch-sizes"),
        frames=opts["frames"],
        pipeline_batch=opts["pipeline_batch"],
        warmup=opts["warmup"],
        repeats=opts["repeats"],
        e2e_repeats=opts["e2e_repeats"],
        generator_blocks=opts["generator_blocks"],
        source=opts["source"],
        models_dir=opts["models_dir"],
        pipeline_runtime=opts["pipeline_runtime"],
        enhance=opts["enhance"],
    )

    def log(message: str) -> None:
        if not opts["quiet"]:
            click.echo(message, err=True)

    data = run_bench(config, log).to_dict()
    click.echo(format_table(data))
    if opts["json_out"] is not None:
        write_json(data, opts["json_out"])
        log(f"wrote {opts['json_out']}")
    if opts["plot"] is not None:
        write_chart(data, opts["plot"])
        log(f"wrote {opts['plot']}")
