"""Face-swap options shared by `run` and `webcam`, declared once so both stay in step.

Each option maps one to one onto a `SwapConfig` field; `swap_config_fields` does the
mapping (and the CLI spelling `per-face` -> `per_face`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

# SwapConfig fields set by `swap_options`, in the order the options appear.
SHARED_FIELDS = (
    "generator",
    "generator_blocks",
    "detector",
    "recognizer",
    "mask_mode",
    "color_match",
    "all_faces",
    "similarity_threshold",
    "device",
    "models_dir",
    "download",
    "enhance",
    "enhance_mode",
    "enhance_blend",
    "runtime",
)

_OPTIONS = (
    click.option(
        "--generator",
        type=click.Choice(["ghost", "random", "passthrough"]),
        default="ghost",
        show_default=True,
        help="ghost: the published weights; random: right cost, no real face (benchmarks); "
        "passthrough: every stage but the generator (diagnostics).",
    ),
    click.option("--generator-blocks", type=click.IntRange(1, 3), default=2, show_default=True),
    click.option(
        "--detector",
        type=click.Choice(["auto", "scrfd", "dlib"]),
        default="auto",
        show_default=True,
        help="auto: SCRFD if installed, else the offline dlib detector.",
    ),
    click.option(
        "--recognizer",
        type=click.Choice(["auto", "arcface", "glintr100", "dlib"]),
        default="auto",
        show_default=True,
        help="Face recogniser used to match faces to --target-face references.",
    ),
    click.option(
        "--mask-mode",
        type=click.Choice(["ghost", "adaptive"]),
        default="ghost",
        show_default=True,
        help="ghost: mask settings frozen per track segment; adaptive: they follow smoothly.",
    ),
    click.option("--color-match", is_flag=True, help="Match the swap's colours to the target."),
    click.option("--all-faces", is_flag=True, help="Swap every face with the first source."),
    click.option("--similarity-threshold", type=float, default=0.15, show_default=True),
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True),
    click.option("--models-dir", type=Path, help="Model folder (default: the model store's)."),
    click.option("--download", is_flag=True, help="Download missing models first (asks first)."),
    click.option(
        "--enhance", is_flag=True, help="Face super-resolution (GHOST's LIP-SPADE) on each swap."
    ),
    click.option(
        "--enhance-mode",
        type=click.Choice(["per-face", "official"]),
        default="per-face",
        show_default=True,
        help="per-face: each face normalised alone (stable in a stream); official: batch "
        "statistics, as GHOST's inference.",
    ),
    click.option(
        "--enhance-blend",
        type=click.FloatRange(0.0, 1.0),
        default=1.0,
        show_default=True,
        help="Mix of enhanced (1) and unenhanced (0) face.",
    ),
    click.option(
        "--runtime",
        type=click.Choice(["auto", "torch", "onnxruntime"]),
        default="auto",
        show_default=True,
        help="Generator runtime; auto: the faster one measured for the device (ONNX Runtime "
        "on CPUs, exported once and cached).",
    ),
)


def swap_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with every shared face-swap option."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def swap_config_fields(opts: dict[str, Any]) -> dict[str, Any]:
    """The SwapConfig keyword arguments for the shared options in `opts`."""
    fields = {name: opts[name] for name in SHARED_FIELDS}
    fields["enhance_mode"] = fields["enhance_mode"].replace("-", "_")
    return fields
