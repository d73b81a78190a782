"""`ghost-engine run TARGET -s IMG -o OUT`: swap faces in a video or an image.

Flags follow FaceFusion's and ffmpeg's conventions; the face-swap flags map one to one
onto `SwapConfig` fields. Library errors reach the user as one line and an exit code.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ghost_engine.choices import CODECS, ENCODER_PRESETS, ON_DAMAGE, SMOOTHING
from ghost_engine.commands.common import (
    FiniteFloat,
    WholeNumber,
    choice_option,
    confirm_overwrite,
    count_option,
    json_option,
    log_to_stderr,
    max_pixels_option,
    overwrite_option,
    quiet_option,
    shown,
    sources_option,
)
from ghost_engine.commands.swap_options import swap_config_fields, swap_options
from ghost_engine.commands.verify import provenance_config, provenance_options
from ghost_engine.errors import UserInputError, one_line

# SwapConfig fields that only `run` has (the rest come from swap_options).
_RUN_FIELDS = ("smoothing", "batch_size", "debug_overlay", "generator_engine")


def parse_time(text: str | None, option: str | None = None) -> float | None:
    """Seconds from `12.5`, `1:02.5` or `0:01:02.5` (ffmpeg's forms); `option` is the flag
    the text came from, for the error's fields."""
    if text is None:
        return None
    message = (
        f"cannot read time {one_line(repr(text))}: use seconds (a finite number, 0 or more) "
        "or [HH:]MM:SS"
    )
    if option:
        message = f"{option}: {message}"
    try:
        parts = [float(p) for p in text.strip().split(":")]
    except ValueError as exc:
        raise UserInputError(message, option=option, value=text) from exc
    if not 1 <= len(parts) <= 3 or any(p < 0 or not math.isfinite(p) for p in parts):
        raise UserInputError(message, option=option, value=text)
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _two_phase_runner(target: Path, workers: int, ray_address: str | None, config):
    """`swap` for --workers N / --ray: a video runs in two phases (analysis once, then
    N workers synthesise segments); an image has nothing to split and runs as it is."""
    from ghost_engine.api import swap
    from ghost_engine.parallel.scheduler import SchedulerConfig
    from ghost_engine.parallel.segment_work import worker_threads
    from ghost_engine.parallel.two_phase import swap_video_parallel
    from ghost_engine.runtime.devices import is_gpu
    from ghost_engine.video.media import MediaKind, detect_kind

    if detect_kind(Path(target)) is MediaKind.IMAGE:
        return swap
    gpu = is_gpu(config.device)
    scheduler = SchedulerConfig(
        workers=workers,
        cpus=1 if gpu else worker_threads(None, workers),
        gpus=1 if gpu else 0,
        ray_address=ray_address,
        env=() if gpu else (("OMP_NUM_THREADS", str(worker_threads(None, workers))),),
    )

    def run_video(target, sources, output, **options):
        return swap_video_parallel(target, sources, output, scheduler=scheduler, **options)

    return run_video


def parse_sources(values: tuple[str, ...]) -> list[list[Path]]:
    """`-s a.jpg,b.jpg -s c.jpg` -> [[a, b], [c]]: commas join photos of one person."""
    return [[Path(p) for p in value.split(",") if p] for value in values]


@click.command("run")
@click.argument("target", type=click.Path(path_type=Path, dir_okay=True))
@sources_option("Source face photo(s); commas for one person, repeat for several people.")
@click.option(
    "-t",
    "--target-face",
    "target_faces",
    multiple=True,
    type=Path,
    metavar="IMG",
    help="Reference photo of the face to replace; the i-th gets the i-th --source.",
)
@click.option("-o", "--output", required=True, type=Path, help="Output video or image.")
@click.option("--start", help="Start time (seconds or [HH:]MM:SS).")
@click.option("--end", help="End time (seconds or [HH:]MM:SS).")
@choice_option("--codec", CODECS, "h264")
@click.option(
    "--crf",
    type=WholeNumber(0, 63),
    help="Constant quality (default 18 where the codec has it).",
)
@click.option(
    "--preset",
    type=click.Choice(ENCODER_PRESETS),
    help="Encoder preset (h264 and hevc).",
)
@click.option("--pix-fmt", help="Output pixel format (e.g. yuv420p, yuv444p, rgb24).")
@swap_options
@choice_option("--smoothing", SMOOTHING, "window")
@count_option("--batch-size", 8, high=1024)
@click.option("--debug-overlay", is_flag=True, help="Draw boxes, landmarks and mask outline.")
@click.option(
    "--generator-engine",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TensorRT engine of the generator (from `ghost-engine export`), run by the CUDA "
    "backend instead of PyTorch (needs --device cuda).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run of this output.")
@shown(
    "--segment-seconds",
    kind=FiniteFloat(min=0.5),
    default=10.0,
    help="Length of the resumable output segments.",
)
@choice_option(
    "--on-damage",
    ON_DAMAGE,
    "warn",
    "A target that stops decoding early: warn (keep the frames that decode, say so) or "
    "fail (write nothing).",
)
@max_pixels_option
@overwrite_option
@json_option(
    "json_report", "REPORT", "Write what was done (timings per stage, frames with faces) as JSON."
)
@click.option(
    "--faces-log",
    type=Path,
    metavar="LOG",
    help="Write one JSON line per output frame: every face's box, points, track, the "
    "source it got and its similarities (see the README).",
)
@provenance_options
@count_option(
    "--workers",
    1,
    "Run a video in two phases: analysis once, then this many processes synthesise "
    "whole segments (a GPU each with --device cuda, else a share of the CPU cores).",
    high=1024,
)
@click.option(
    "--ray",
    "ray_address",
    metavar="auto|ADDRESS",
    help="Run the --workers as Ray tasks on a cluster (`auto`: the running one); every "
    "path must be one all nodes see. Needs the `ray` extra.",
)
@quiet_option("No progress output (warnings still show).")
def run(**opts) -> None:
    """Swap faces in TARGET (a video or an image, told apart by content) into OUTPUT.

    Nothing the run reads is ever written: an output or --json path that is the target
    or a photo (through any link) is refused. An existing output is replaced only with
    -y/--overwrite or a yes at the terminal.
    """
    from ghost_engine.api import check_inputs, check_matching, swap
    from ghost_engine.pipeline.swap import make_config
    from ghost_engine.video.encode import EncodeSettings
    from ghost_engine.video.output import write_text_atomic
    from ghost_engine.video.reader import validate_range

    log_to_stderr()
    check_matching(opts["all_faces"], opts["target_faces"])
    encode = EncodeSettings(
        codec=opts["codec"], crf=opts["crf"], preset=opts["preset"], pix_fmt=opts["pix_fmt"]
    )
    times = {
        "start_s": parse_time(opts["start"], "--start"),
        "end_s": parse_time(opts["end"], "--end"),
    }
    validate_range(times["start_s"], times["end_s"])
    provenance = provenance_config(opts)
    sources, target_faces = parse_sources(opts["sources"]), list(opts["target_faces"])
    side = {
        flag: path
        for flag, path in (("--json", opts["json_report"]), ("--faces-log", opts["faces_log"]))
        if path is not None
    }
    # everything but the output's existence first, so the question comes last
    check_inputs(
        opts["target"],
        opts["output"],
        encode=encode,
        segment_s=opts["segment_seconds"],
        resume=opts["resume"],
        sources=sources,
        target_faces=target_faces,
        side_outputs=side or None,
        overwrite=True,
        max_pixels=opts["max_pixels"],
        on_damage=opts["on_damage"],
        provenance=provenance,
        **times,
    )
    overwrite = confirm_overwrite(opts["output"], opts["overwrite"])
    config = make_config(**swap_config_fields(opts), **{name: opts[name] for name in _RUN_FIELDS})
    runner = swap
    if opts["workers"] > 1 or opts["ray_address"] is not None:
        runner = _two_phase_runner(opts["target"], opts["workers"], opts["ray_address"], config)
    report = runner(
        opts["target"],
        sources,
        opts["output"],
        target_faces=target_faces,
        config=config,
        encode=encode,
        resume=opts["resume"],
        segment_s=opts["segment_seconds"],
        progress="quiet" if opts["quiet"] else "auto",
        overwrite=overwrite,
        max_pixels=opts["max_pixels"],
        on_damage=opts["on_damage"],
        faces_log=opts["faces_log"],
        provenance=provenance,
        **times,
    )
    if opts["json_report"] is not None:
        write_text_atomic(opts["json_report"], json.dumps(report.to_dict(), indent=2) + "\n")
    if not opts["quiet"]:
        click.echo(
            f"wrote {one_line(report.output)}: {report.frames} frame(s), "
            f"{report.frames_with_faces} with faces swapped, {report.wall_s:.1f} s",
            err=True,
        )
