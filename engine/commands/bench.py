"""`ghost-engine bench [VIDEO]`: throughput of every stage, the generator per batch size
and runtime, the whole pipeline and its efficiency, as a table, JSON and a PNG chart."""

from __future__ import annotations

from pathlib import Path

import click

from ghost_engine.errors import UserInputError


def _default_video() -> Path:
    from ghost_engine.shared_paths import media_dir

    path = media_dir() / "videos" / "nggyup.mp4"
    if not path.is_file():
        raise UserInputError(
            f"no VIDEO given and the reference clip {path} is absent; name a video with a face"
        )
    return path


@click.command("bench")
@click.argument("video", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "--runtime",
    "runtimes",
    default="torch",
    show_default=True,
    metavar="NAME[,NAME]",
    help="Generator runtimes to time: torch, onnxruntime, tensorrt (comma list).",
)
@click.option(
    "--pipeline-runtime",
    type=click.Choice(["auto", "torch", "onnxruntime"]),
    default="auto",
    show_default=True,
    help="Generator runtime inside the pipeline (auto: as ghost-engine run).",
)
@click.option("--enhance", is_flag=True, help="Include face super-resolution (run --enhance).")
@click.option(
    "--batch-sizes",
    default="1,8,32",
    show_default=True,
    metavar="N[,N]",
    help="Generator batch sizes to time.",
)
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="Use the video's first N frames (keeps a CPU run to minutes).",
)
@click.option(
    "--pipeline-batch",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Frames per pipeline batch (as run --batch-size).",
)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--e2e-repeats", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--generator-blocks", type=click.IntRange(1, 3), default=2, show_default=True)
@click.option("-s", "--source", type=Path, help="Source face photo (default: the video's face).")
@click.option("--models-dir", type=Path, help="Model folder (default: the model store's).")
@click.option("--json", "json_out", type=Path, metavar="OUT", help="Write the results as JSON.")
@click.option("--plot", type=Path, metavar="OUT.png", help="Write the chart as PNG.")
@click.option("-q", "--quiet", is_flag=True, help="Only the final table.")
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
