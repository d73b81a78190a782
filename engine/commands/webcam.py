"""`ghost-engine webcam -s FACE [--camera 0|PATH|URL] [--output window|virtual-camera|FILE|URL]`:
swap faces live. Keys in the window and an optional HTTP control port change the source
face, the swap and the mask blur while running; a JSON report gives frames/s, drops and
latency percentiles.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ghost_engine.choices import CAUSAL_SMOOTHING, STREAM_SCHEMES, WEBCAM_OUTPUTS
from ghost_engine.commands.common import (
    FiniteFloat,
    choice_option,
    confirm_overwrite,
    count_option,
    log_to_stderr,
    max_pixels_option,
    overwrite_option,
    quiet_option,
    shown,
    sources_option,
)
from ghost_engine.commands.swap_options import swap_config_fields, swap_options
from ghost_engine.errors import UserInputError, one_line

_RESOLUTION = re.compile(r"^\s*(\d{2,5})\s*[xX]\s*(\d{2,5})\s*$")


def parse_resolution(text: str | None) -> tuple[int, int] | None:
    """`1280x720` -> (1280, 720); even sizes only (the video encoders need them)."""
    if text is None:
        return None
    match = _RESOLUTION.match(text)
    if not match:
        raise UserInputError(
            f"cannot read resolution {text!r}; use WIDTHxHEIGHT, e.g. 1280x720",
            option="--resolution",
            value=text,
        )
    width, height = int(match.group(1)), int(match.group(2))
    if width % 2 or height % 2:
        raise UserInputError(
            f"resolution {width}x{height} must have an even width and height",
            option="--resolution",
            value=text,
        )
    return width, height


def _config(opts: dict):
    """The SwapConfig of these options (a bad value raises its UserInputError)."""
    from ghost_engine.face.swap_config import SwapConfig

    return SwapConfig(
        batch_size=opts["micro_batch"], smoothing=opts["smoothing"], **swap_config_fields(opts)
    )


def _write_report(path: Path, summary: dict, records: list | None) -> None:
    from ghost_engine.video.output import write_text_atomic

    payload = dict(summary)
    if records is not None:
        payload["per_frame"] = records
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def _check_paths(opts: dict, sources: list[list[Path]]) -> bool:
    """The camera file and the photos are never written: the output file and --report
    may be none of them (nor each other) and must be creatable; an existing output file
    needs consent. Checked before the camera opens; returns the consent."""
    from ghost_engine.video.lock import check_output_free
    from ghost_engine.video.output import check_output_path, final_path
    from ghost_engine.video.paths import RunPaths, check_run_paths
    from ghost_engine.video.pixels import check_image_pixels
    from ghost_engine.webcam.capture import camera_file
    from ghost_engine.webcam.sinks import output_file

    inputs = [("source photo", p) for person in sources for p in person]
    camera = camera_file(opts["camera"])
    if camera is not None:
        inputs.insert(0, ("camera file", camera))
    output, report = output_file(opts["output"]), opts["report"]
    output = final_path(output) if output is not None else None
    if output is None and report is None:
        overwrite = False
    elif output is None:
        check_output_path(final_path(report), "--report", "--report")
        check_run_paths(RunPaths(report, tuple(inputs), (), "--report"), overwrite=True)
        overwrite = False
    else:
        check_output_path(output, option="--output")
        side = (("--report", report),) if report is not None else ()
        paths = RunPaths(output, tuple(inputs), side, "--output")
        check_run_paths(paths, overwrite=True)
        check_output_free(output)
        overwrite = confirm_overwrite(output, opts["overwrite"])
        check_run_paths(paths, overwrite=overwrite)
    for role, photo in inputs[1 if camera is not None else 0 :]:
        check_image_pixels(photo, opts["max_pixels"], role)
    return overwrite


_OUTPUT_HELP = (
    f"{', '.join(WEBCAM_OUTPUTS)}, a video file, or "
    f"{', '.join(scheme + '://' for scheme in STREAM_SCHEMES)} URL."
)


@click.command("webcam")
@sources_option("Source face photo(s); commas for one person, repeat for faces to switch between.")
@shown("--camera", default="0", help="Device index, stream URL or video file.")
@shown("--output", default="window", help=_OUTPUT_HELP)
@click.option("--resolution", metavar="WxH", help="Capture size, e.g. 1280x720.")
@click.option(
    "--fps",
    type=FiniteFloat(min=1.0, max=240.0),
    help="Camera frame rate to ask for (devices; a file plays at its own rate).",
)
@swap_options
@choice_option("--smoothing", CAUSAL_SMOOTHING, "ema", "Causal landmark smoothing (no look-ahead).")
@count_option(
    "--hold-frames", 5, "Frames the last swap is held when the face is lost.", low=0, high=120
)
@count_option(
    "--micro-batch", 1, "Consecutive frames swapped per call (more adds latency).", high=16
)
@click.option(
    "--detect-max-side",
    type=click.IntRange(min=64),
    help="dlib detector: search a copy downscaled to this longest side.",
)
@click.option(
    "--control-port",
    type=click.IntRange(0, 65535),
    help="Serve live controls on http://127.0.0.1:PORT (0: any free port).",
)
@click.option("--duration", type=FiniteFloat(min=0.1), help="Stop after this many seconds.")
@click.option("--loop", is_flag=True, help="Loop a video file given as --camera.")
@click.option("--report", type=Path, metavar="JSON", help="Write the latency report here.")
@click.option("--report-frames", is_flag=True, help="Add every frame's timestamps to --report.")
@max_pixels_option
@overwrite_option
@quiet_option("No live numbers.")
def webcam(**opts) -> None:
    """Swap faces live: camera -> newest frame -> swap -> output, with live controls.

    Keys in the window: 1-9 source face, s swap on/off, [ ] mask blur, q quit.
    Over --control-port: GET /state, POST /control {"source": 1, "swap": false, "blur": 1.5}.
    """
    from ghost_engine.commands.run import parse_sources
    from ghost_engine.runtime.devices import check_device
    from ghost_engine.webcam.capture import open_camera
    from ghost_engine.webcam.controls import LiveControls
    from ghost_engine.webcam.loop import LoopConfig
    from ghost_engine.webcam.sinks import open_output

    log_to_stderr()
    size = parse_resolution(opts["resolution"])
    sources = parse_sources(opts["sources"])
    if not sources or any(not person for person in sources):
        raise UserInputError("give at least one source photo (-s/--source IMG)", option="--source")
    config = _config(opts)
    loop = LoopConfig(
        hold_frames=opts["hold_frames"],
        micro_batch=opts["micro_batch"],
        max_seconds=opts["duration"],
        print_every_s=0.0 if opts["quiet"] else 1.0,
    )
    overwrite = _check_paths(opts, sources)
    check_device(config.device)
    controls = LiveControls(len(sources))
    camera = open_camera(
        opts["camera"],
        size=size,
        fps=opts["fps"],
        loop=opts["loop"],
        max_pixels=opts["max_pixels"],
    )
    info = getattr(camera, "info", None)
    fps = float(info.rate) if info is not None else (opts["fps"] or 30.0)
    try:
        sink = open_output(opts["output"], fps=fps, controls=controls, overwrite=overwrite)
    except BaseException:
        camera.close()
        raise
    _run(opts, config, sources, camera, sink, controls, loop, fps)


def _run(opts, config, sources, camera, sink, controls, loop, fps) -> None:
    from ghost_engine.webcam.control_server import ControlServer
    from ghost_engine.webcam.latency import LiveWindow
    from ghost_engine.webcam.live_stage import build_live_stage
    from ghost_engine.webcam.loop import run_live

    echo = None if opts["quiet"] else (lambda line: click.echo(line, err=True))
    server = None
    monitor = LiveWindow()
    try:
        stage = build_live_stage(config, sources, detect_max_side=opts["detect_max_side"])
        if opts["control_port"] is not None:
            server = ControlServer(controls, opts["control_port"], monitor.numbers).start()
            click.echo(f"live controls: {server.url}/state and POST {server.url}/control", err=True)
        if echo is not None:
            shown = one_line(f"camera: {camera.description}; output: {opts['output']}")
            click.echo(shown, err=True)
        result = run_live(stage, camera, sink, controls, loop, echo=echo, monitor=monitor)
    except BaseException:
        camera.close()
        abort = getattr(sink, "abort", sink.close)
        abort()
        raise
    finally:
        if server is not None:
            server.close()
    sink.close()
    summary = result.summary
    if opts["report"] is not None:
        from ghost_engine.webcam.latency import records_as_dicts

        frames = records_as_dicts(result.records) if opts["report_frames"] else None
        _write_report(opts["report"], summary, frames)
    lat = summary["latency_ms"]
    fps_out = summary["fps_delivered"]
    click.echo(
        f"delivered {summary['frames']['delivered']} of {summary['frames']['captured']} "
        f"frames (dropped {summary['frames']['dropped']})"
        + (f", {fps_out:.1f} frames/s" if fps_out else "")
        + (
            f", latency p50 {lat['p50']:.1f} ms p95 {lat['p95']:.1f} ms p99 {lat['p99']:.1f} ms"
            if lat["p50"] is not None
            else ""
        ),
        err=True,
    )
